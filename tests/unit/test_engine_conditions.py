"""The engine judges a commitment by its matter's conditions, not by the claims the applicant
chose to write, and leaves a check only a person can make to a person (issue 12, finding 1);
each comparison names the source that answered, when, and the hash of what it answered
(finding 6)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from ledger import Hash32, SigningKey, canonical_bytes, hex32, keccak256
from verifier import Catalog, Comparison, SignedReport, Subject, verify_report
from verifier.engine import Decision, sign_decision
from verifier.engine.worker import (
    Checked,
    Compared,
    Reporter,
    SourceAnswer,
    SourceData,
    SourceFailed,
    compare_all,
)

DAY = date(2026, 11, 27)
ANSWERED = int(datetime(2026, 11, 27, 8, 0, tzinfo=UTC).timestamp())
POINTS = "T-POINTS"
PERMIT = "T-PERMIT"
LICENCE = "T-LICENCE"
SUBJECT = Subject("resident_id", "110101199001011234")
COMMITMENT = Hash32(keccak256(b"a commitment"))


def _matter(code: str, claims: list[dict[str, Any]], **more: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": code,
        "name_en": code,
        "department": "BJ-HRSS",
        "department_name": "HRSS",
        "legal_basis": "test",
        "notice": {"version": 1, "conditions": "c", "liability": "l"},
        "claims": claims,
        "verification_window_days": 60,
        "rectification_window_days": 20,
        "severity": "general",
        **more,
    }


MONTHS = {
    "key": "social_insurance_consecutive_months",
    "type": "consecutive_months",
    "op": ">=",
    "value": 84,
    "description": "months",
    "source": "hrss_social_insurance",
    "field": "social_insurance_months",
}
CRIMINAL = {
    "key": "no_criminal_record",
    "type": "boolean",
    "op": "==",
    "value": True,
    "description": "no record",
    "source": "police_criminal",
    "on_disagree": "false",
}
EMPLOYER = {
    "key": "employer_uscc",
    "type": "string",
    "op": "==",
    "value": None,
    "description": "employer",
    "source": "employer_records",
}
SAFETY = {
    "key": "food_safety_officer_certified",
    "type": "boolean",
    "op": "==",
    "value": True,
    "description": "officer",
    "source": "samr_training",
}
REVIEW = {
    "text": "食品安全规章制度",
    "task": {
        "key": "food_safety_rules_review",
        "kind": "document_review",
        "description": "Review the food-safety rules the applicant keeps",
    },
}
CATALOG = Catalog.model_validate(
    {
        "catalog_version": 1,
        "region": "test",
        "matters": [
            _matter(POINTS, [MONTHS, CRIMINAL]),
            _matter(PERMIT, [EMPLOYER, CRIMINAL]),
            _matter(
                LICENCE,
                [SAFETY],
                conditions=[{"text": "officer", "claims": [SAFETY["key"]]}, REVIEW],
            ),
        ],
    }
)


def _months(first: str, last: str, gap: tuple[str, str] | None = None) -> list[str]:
    """Every month from `first` to `last` ("YYYY-MM"), without those in `gap`."""
    start = int(first[:4]) * 12 + int(first[5:]) - 1
    end = int(last[:4]) * 12 + int(last[5:]) - 1
    months = [f"{m // 12:04d}-{m % 12 + 1:02d}" for m in range(start, end + 1)]
    return [m for m in months if gap is None or not gap[0] <= m <= gap[1]]


# Paid since 2016, but not from 2025-06 to 2026-07 (a 14-month gap): only 3 months in a run.
GAPPED = {"social_insurance_months": _months("2016-01", "2026-10", ("2025-06", "2026-07"))}
PAID = {"social_insurance_months": _months("2016-01", "2026-10")}
CLEAN = {"no_criminal_record": True}
RECORDED = {"no_criminal_record": False}


def _data(**records: object) -> SourceData:
    return {name: SourceAnswer(record, ANSWERED) for name, record in records.items()}  # type: ignore[arg-type]


def _decide(
    matter: str, claims: list[tuple[str, str, object]], data: SourceData
) -> tuple[Compared, SignedReport]:
    found = Checked(matter, SUBJECT, tuple(claims))
    reporter = Reporter("BJ-HRSS", SigningKey.generate("ed25519"))
    [compared] = compare_all([(COMMITMENT, found, matter, data)], CATALOG, reporter, DAY)
    report = compared[2]
    assert report is not None
    verify_report(report)
    return compared, report


def _by_key(report: SignedReport) -> dict[str, Comparison]:
    return {c.key: c for c in report.comparisons()}


def test_a_claim_weaker_than_the_matters_condition_is_judged_by_the_condition() -> None:
    claims = [(MONTHS["key"], ">=", 1), (CRIMINAL["key"], "==", True)]
    (outcome, _, _, _), report = _decide(
        POINTS, claims, _data(hrss_social_insurance=GAPPED, police_criminal=CLEAN)
    )
    assert outcome == "mismatch"  # on main: kept, 3 months >= 1
    months = _by_key(report)[MONTHS["key"]]
    assert months.verdict == "disagree"
    assert months.claimed == {"op": ">=", "value": 84}
    assert "stated another condition" in months.detail
    assert months.gaps == (("2025-06", "2026-07"),)


def test_a_left_out_criminal_record_claim_is_still_checked_and_false() -> None:
    claims = [(MONTHS["key"], ">=", 84)]
    (outcome, _, _, _), report = _decide(
        POINTS, claims, _data(hrss_social_insurance=PAID, police_criminal=RECORDED)
    )
    assert outcome == "false"  # on main: kept, the claim was skipped
    criminal = _by_key(report)[CRIMINAL["key"]]
    assert criminal.verdict == "disagree"
    assert "left this claim out" in criminal.detail


def test_a_left_out_claim_whose_value_the_applicant_states_needs_a_person() -> None:
    claims = [(CRIMINAL["key"], "==", True)]
    data = _data(employer_records={"employer_uscc": "91110000MA00000000"}, police_criminal=CLEAN)
    (outcome, _, _, _), report = _decide(PERMIT, claims, data)
    assert outcome == "needs_manual"  # on main: kept
    assert _by_key(report)[EMPLOYER["key"]].verdict == "undecidable"


def test_a_stated_value_the_matter_leaves_to_the_applicant_is_compared_as_stated() -> None:
    claims = [(EMPLOYER["key"], "==", "91110000MA00000000"), (CRIMINAL["key"], "==", True)]
    data = _data(employer_records={"employer_uscc": "91110000MA00000001"}, police_criminal=CLEAN)
    (outcome, _, _, _), _report = _decide(PERMIT, claims, data)
    assert outcome == "mismatch"


def test_a_matter_with_a_task_needs_a_person_and_its_report_names_the_open_task() -> None:
    claims = [(SAFETY["key"], "==", True)]
    (outcome, _, _, note), report = _decide(
        LICENCE, claims, _data(samr_training={SAFETY["key"]: True})
    )
    assert outcome == "needs_manual"  # never kept while a person's check is open
    task = REVIEW["task"]
    assert report.tasks() == ({**task, "status": "open"},)
    assert task["key"] in note and task["key"] in report.note


def test_a_disagreement_beats_an_open_task() -> None:
    claims = [(SAFETY["key"], "==", True)]
    (outcome, _, _, _), report = _decide(
        LICENCE, claims, _data(samr_training={SAFETY["key"]: False})
    )
    assert outcome == "mismatch"
    assert report.tasks()[0]["status"] == "open"


@pytest.mark.parametrize(("decided_by", "status"), [("engine", "open"), ("officer-li", "done")])
def test_a_persons_decision_closes_the_tasks(decided_by: str, status: str) -> None:
    decision = Decision(COMMITMENT, CATALOG.matter(LICENCE), "kept")
    report = sign_decision(decision, "BJ-HRSS", DAY, SigningKey.generate("ed25519"), decided_by)
    assert [t["status"] for t in report.tasks()] == [status]


def test_a_matter_without_tasks_adds_no_tasks_to_its_report() -> None:
    claims = [(MONTHS["key"], ">=", 84), (CRIMINAL["key"], "==", True)]
    (outcome, _, _, note), report = _decide(
        POINTS, claims, _data(hrss_social_insurance=PAID, police_criminal=CLEAN)
    )
    assert outcome == "kept"
    assert note == "" and "tasks" not in report.report


# ------------------------------------------------------------------ provenance (finding 6)


def test_each_comparison_names_its_source_the_time_and_the_hash_of_the_record() -> None:
    claims = [(MONTHS["key"], ">=", 84), (CRIMINAL["key"], "==", True)]
    data = _data(hrss_social_insurance=PAID, police_criminal=None)  # no criminal record row
    _, report = _decide(POINTS, claims, data)
    for body in report.report["comparisons"]:
        assert body["answered_at"] == ANSWERED
    months, criminal = report.report["comparisons"]
    assert months["source"] == "hrss_social_insurance"
    assert months["data_hash"] == hex32(keccak256(canonical_bytes(PAID)))
    assert criminal["source"] == "police_criminal"
    assert criminal["data_hash"] == hex32(keccak256(b"null"))


def test_a_failed_source_is_named_with_no_data_hash() -> None:
    claims = [(MONTHS["key"], ">=", 84), (CRIMINAL["key"], "==", True)]
    data = _data(hrss_social_insurance=PAID, police_criminal=SourceFailed("SourceTimeout"))
    (outcome, _, _, _), report = _decide(POINTS, claims, data)
    assert outcome == "needs_manual"
    criminal = _by_key(report)[CRIMINAL["key"]]
    assert (criminal.source, criminal.answered_at, criminal.data_hash) == (
        "police_criminal",
        ANSWERED,
        None,
    )


def test_a_stored_report_without_provenance_still_reads() -> None:
    old = {
        "key": "k",
        "verdict": "agree",
        "claimed": {"op": "==", "value": True},
        "observed": True,
        "detail": "d",
        "gaps": [],
    }
    comparison = Comparison.from_json_obj(old)
    assert (comparison.source, comparison.answered_at, comparison.data_hash) == ("", None, None)
    assert comparison.to_json_obj() == old  # written back exactly as it was

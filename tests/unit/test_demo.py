"""`commitledger demo`: the whole story on the embedded chain, its summary, and its tamper check."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from typing import Any

import pytest
from rich.cells import cell_len
from support.cli import one_json
from typer.testing import CliRunner

from api.demo import (
    VERIFY_ON,
    case_story,
    documents_with_every_case,
    planted,
    run_demo,
    sample_commitments,
)
from verifier import default_catalog

# The samples plant mismatches by applicant: the first 200 hold four (two of them for
# points-based registration), enough for a rectification, breaches and a repair.
COUNT = 200


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    return run_demo(COUNT, quiet=True)


def is_hex32(value: object) -> bool:
    return isinstance(value, str) and len(value) == 66 and value.startswith("0x")


def test_demo_succeeds_and_every_proof_checks(summary: dict[str, Any]) -> None:
    assert summary["ok"] is True
    assert summary["ephemeral"] is True
    assert summary["commitments"] == COUNT
    assert summary["intake"] == {"accepted": COUNT, "refused": 0}
    assert summary["proofs_checked"] == COUNT
    assert summary["proofs_failed"] == 0
    assert sum(summary["matters"].values()) == COUNT
    assert set(summary["departments"]) == {"BJ-HRSS", "BJ-SAMR"}


def test_demo_detects_the_tampered_document(summary: dict[str, Any]) -> None:
    tamper = summary["tamper"]
    assert tamper["signature_rejected"] is True
    assert tamper["anchor_check_failed"] is True
    assert "anchored" in tamper["failed_checks"]


def test_demo_anchors_one_batch_per_department(summary: dict[str, Any]) -> None:
    batches = summary["batches"]
    assert sorted(b["department"] for b in batches) == ["BJ-HRSS", "BJ-SAMR"]
    assert {b["department"]: b["size"] for b in batches} == summary["departments"]
    for batch in batches:
        assert is_hex32(batch["root"])
        assert is_hex32(batch["transaction"])
        assert batch["block"] > 0
        assert batch["gas_used"] > 21_000
        assert batch["gas_per_commitment"] == round(batch["gas_used"] / batch["size"], 1)
        # one batch transaction costs each commitment far less than a transaction of its own
        assert batch["gas_per_commitment"] < 21_000


def test_demo_verifies_every_commitment(summary: dict[str, Any]) -> None:
    verification = summary["verification"]
    assert verification["on"] == VERIFY_ON.isoformat()
    assert verification["examined"] == COUNT
    assert verification["recorded_on_chain"] == COUNT
    outcomes = verification["outcomes"]
    assert sum(outcomes.values()) == COUNT
    # The food licence's rules need a person's document review: the engine alone keeps none
    # of its commitments, it leaves them to a person.
    food = summary["matters"]["BJ-SAMR-0001"]
    assert outcomes["kept"] > (COUNT - food) * 0.8
    assert outcomes["mismatch"] >= 2
    assert outcomes["needs_manual"] >= 1  # planted missing data, open tasks: a person decides
    assert "integrity_failure" not in outcomes
    assert summary["planted"]["mismatch"] >= 1


def test_demo_rectifies_one_mismatch_in_time(summary: dict[str, Any]) -> None:
    rectification = summary["rectification"]
    assert rectification is not None
    assert rectification["outcome"] == "kept"
    assert rectification["matter"] == "BJ-HRSS-0001"  # scenario 1: a transfer certificate
    assert VERIFY_ON.isoformat() <= rectification["on"] <= rectification["rectify_by"]


def test_demo_turns_overdue_mismatches_into_breaches(summary: dict[str, Any]) -> None:
    overdue = summary["overdue"]
    assert overdue is not None
    mismatches = summary["verification"]["outcomes"]["mismatch"]
    assert overdue["mismatches"] == mismatches - 1  # one was rectified
    assert len(overdue["breaches"]) == overdue["mismatches"] == overdue["proposed"]
    assert overdue["published_on"] > overdue["on"]  # after notice and defence (issue #14)
    assert overdue["examined"] == 0  # nothing left to look up
    assert overdue["on"] > summary["rectification"]["rectify_by"]
    assert date.fromisoformat(overdue["on"]).weekday() < 5  # decided on a working day


def test_demo_repairs_one_breach(summary: dict[str, Any]) -> None:
    repair = summary["repair"]
    assert repair is not None
    assert repair["on"] >= repair["earliest_repair"] >= repair["decided"]
    listed_ids = {row["id"] for row in summary["breaches"]["records"]}
    assert repair["record"] not in listed_ids  # off the public list


def test_demo_ends_with_outcomes_per_commitment(summary: dict[str, Any]) -> None:
    outcomes = summary["outcomes"]
    assert sum(outcomes.values()) == COUNT
    assert outcomes["kept"] > 0
    assert outcomes["breached"] >= 1
    assert set(outcomes) <= {"kept", "needs_manual", "breached"}  # nothing left open
    overdue = summary["overdue"]["breaches"]
    assert outcomes["breached"] == len(overdue) + len(summary["verification"]["breaches"])


def test_demo_ends_with_the_masked_public_breach_list(summary: dict[str, Any]) -> None:
    breaches = summary["breaches"]
    assert breaches["listed"] >= 1
    assert breaches["listed"] == len(breaches["records"]) == breaches["open_on_chain"]
    assert breaches["listed"] == summary["outcomes"]["breached"] - 1  # one was repaired
    people = [r for r in breaches["records"] if r["department"] == "BJ-HRSS"]
    assert people
    for row in breaches["records"]:
        assert is_hex32(row["transaction"])
        assert row["decision_date"] <= breaches["on"] <= row["publication_end"]
    for row in people:
        assert "*" in row["party_name"]
        assert "*" in row["party_code"]
    # Nobody's name or ID number appears anywhere in the summary.
    text = json.dumps(summary, ensure_ascii=False)
    for document in sample_commitments(COUNT):
        applicant = document.applicant
        if applicant.kind == "person":
            assert applicant.id_number not in text
            assert f'"{applicant.name}"' not in text


def test_demo_reports_transactions_and_gas_per_phase(summary: dict[str, Any]) -> None:
    phases = dict(summary["transactions"])
    total = phases.pop("total")
    assert list(phases) == [
        "setup",
        "anchoring",
        "verification",
        "rectification",
        "defence",
        "overdue breaches",
        "repair",
    ]
    assert phases["anchoring"]["transactions"] == 2
    assert phases["rectification"]["transactions"] == 1
    assert phases["repair"]["transactions"] == 1
    assert total["transactions"] == sum(p["transactions"] for p in phases.values())
    assert total["gas_used"] == sum(p["gas_used"] for p in phases.values())


def test_demo_reports_its_chain_and_timings(summary: dict[str, Any]) -> None:
    assert summary["chain"]["kind"] == "embedded"
    assert summary["chain"]["contract"].startswith("0x")
    assert isinstance(summary["chain"]["chain_id"], int)
    assert summary["seconds"]
    assert all(seconds >= 0 for seconds in summary["seconds"].values())


def test_a_tiny_demo_still_rectifies_breaches_and_repairs_and_is_quiet_when_asked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    summary = run_demo(3, quiet=True)
    assert summary["ok"] is True
    assert summary["planted_on_purpose"] == 3  # the first three samples all agree
    assert summary["rectification"] is not None
    assert summary["repair"] is not None
    assert summary["outcomes"]["breached"] >= 1
    captured = capsys.readouterr()
    assert captured.out == captured.err == ""


def test_every_case_is_planted_at_any_count_and_only_when_missing() -> None:
    documents, forced = documents_with_every_case(50)
    kinds = Counter(planted(d.applicant.id_number) for d in documents)
    assert len(documents) == 50 and forced >= 1
    assert kinds["mismatch"] >= 2 and kinds["false"] >= 1
    assert len({d.code for d in documents}) == 50
    assert documents_with_every_case(1)[0][0].applicant.id_number  # as many as fit
    plenty, none_forced = documents_with_every_case(1000)
    assert none_forced == 0
    assert [d.code for d in plenty] == [d.code for d in sample_commitments(1000)]


def test_each_planted_case_is_accounted_for(summary: dict[str, Any]) -> None:
    cases = summary["cases"]
    assert {kind: case["planted"] for kind, case in cases.items()} == summary["planted"]
    for case in cases.values():
        assert sum(case["first"].values()) == case["planted"]
        assert sum(case["final"].values()) == case["planted"]
    assert cases["missing"]["final"] == {"needs_manual": cases["missing"]["planted"]}
    rectified = sum(case["final"].get("kept", 0) for kind, case in cases.items() if kind != "agree")
    assert rectified == 1


def test_the_story_says_why_planted_false_ones_were_found_otherwise() -> None:
    case = {
        "planted": 11,
        "first": {"proposed": 4, "mismatch": 7},
        "final": {"breached": 10, "kept": 1},
    }
    told = case_story("false", case)
    assert told.startswith("7 mismatch (the claim they contradict is one the catalog lets")
    assert "4 proposed (flatly contradicted: a breach proposed, the applicant notified;" in told
    assert told.endswith("of the 7 given a window: 6 breach published, 1 rectified in time")


def test_demo_command_json_prints_one_document() -> None:
    from api.cli import app

    result = CliRunner().invoke(app, ["demo", "--count", "30", "--json"])
    assert result.exit_code == 0, result.stderr
    document = one_json(result.stdout)
    assert document["ok"] is True
    assert document["commitments"] == 30
    assert document["proofs_failed"] == 0
    assert document["tamper"]["signature_rejected"] is True
    assert document["tamper"]["anchor_check_failed"] is True
    assert document["verification"]["examined"] == 30
    assert "breaches" in document
    assert document["transactions"]["total"]["gas_used"] > 0


def test_demo_command_for_people_tells_the_story_on_stdout_in_80_columns() -> None:
    from api.cli import app

    result = CliRunner().invoke(app, ["demo", "--count", "50"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.stderr
    for shown in (
        "ephemeral",
        "Merkle root",
        "What the sample data planted",
        "window",
        "Where every commitment ended",
        "Transactions and gas",
        "Public breach list",
        "BJ-HRSS-",
    ):
        assert shown in result.stdout
    assert "demo finished" in result.stderr
    too_wide = [line for line in result.stdout.splitlines() if cell_len(line) > 80]
    assert too_wide == []
    assert "mat…" not in result.stdout  # the breach list's columns fit whole


def test_demo_command_shows_everything_when_wide() -> None:
    from api.cli import app

    result = CliRunner().invoke(app, ["demo", "--count", "5"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    name_en = default_catalog().matter("BJ-HRSS-0001").name_en
    assert f"({name_en})" in result.stdout  # English names beside the Chinese
    assert "transaction" in result.stdout  # the breach list's evidence column

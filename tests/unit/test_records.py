"""The verifier's durable records (verifications, breach records), on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import inspect, select
from support.breach_records import (
    CARD,
    DECIDED,
    FOOD,
    HRSS,
    POINTS,
    SAMR,
    breach,
    commitment,
    company,
    fingerprint,
    person,
)

from ledger import MIGRATIONS as LEDGER_MIGRATIONS
from ledger import OutcomeEntry, SigningKey, Status, Store, current_version, keccak256, make_uscc
from verifier import (
    BreachStateError,
    RecordsError,
    RepairTooEarlyError,
    UnknownRecordError,
    mask_id_number,
)
from verifier.engine import Decision, outcome_outbox, sign_decision
from verifier.records import (
    MIGRATIONS,
    VerifierRecords,
    migrate,
    verifier_migrations,
)
from verifier.records import (
    verifications_table as verifications,
)

# Chinese punctuation, as real decisions are written (ruff takes it for ASCII look-alikes).


@dataclass(frozen=True)
class Deadline:
    """What the working-day calendar gives: a day, provisional past the published calendar."""

    day: date
    provisional: bool = False


@pytest.fixture
def records(store: Store) -> VerifierRecords:
    return VerifierRecords(store)


# --------------------------------------------------------------------------- migrations


def test_opening_creates_the_tables_once_beside_the_ledgers(store: Store) -> None:
    VerifierRecords(store)
    VerifierRecords(store)  # a second opening applies nothing
    with store.engine.begin() as connection:
        tables = set(inspect(connection).get_table_names())
        assert {"verifier_migrations", "verifications", "breach_records"} <= tables
        assert "commitments" in tables
        versions = list(connection.execute(select(verifier_migrations.c.version)).scalars())
        assert versions == sorted(MIGRATIONS)
        assert migrate(connection) == []
        assert current_version(connection) == max(LEDGER_MIGRATIONS)  # the ledger's, untouched


# --------------------------------------------------------------------------- verifications


def test_scheduling_twice_keeps_the_first_deadline(records: VerifierRecords) -> None:
    assert records.schedule(commitment(1), POINTS.code, HRSS, Deadline(date(2026, 4, 30)))
    assert not records.schedule(commitment(1), POINTS.code, HRSS, Deadline(date(2026, 5, 30)))
    stored = records.verification(commitment(1))
    assert stored is not None
    assert (stored.state, stored.due_on, stored.deadline_provisional) == (
        "due",
        date(2026, 4, 30),
        False,
    )
    assert records.verification(commitment(2)) is None


def test_a_provisional_deadline_takes_the_published_calendars(records: VerifierRecords) -> None:
    records.schedule(commitment(1), POINTS.code, HRSS, Deadline(date(2027, 4, 1), True))
    assert not records.schedule(commitment(1), POINTS.code, HRSS, Deadline(date(2027, 4, 6)))
    stored = records.verification(commitment(1))
    assert stored is not None
    assert (stored.due_on, stored.deadline_provisional) == (date(2027, 4, 6), False)


def test_scheduling_under_another_matter_is_refused(records: VerifierRecords) -> None:
    records.schedule(commitment(1), POINTS.code, HRSS, Deadline(date(2026, 4, 30)))
    with pytest.raises(RecordsError, match="scheduled for matter BJ-HRSS-0001"):
        records.schedule(commitment(1), FOOD.code, SAMR, Deadline(date(2026, 4, 30)))


def test_due_lists_waiting_commitments_by_deadline(records: VerifierRecords) -> None:
    records.schedule(commitment(1), POINTS.code, HRSS, Deadline(date(2026, 4, 30)))
    records.schedule(commitment(2), POINTS.code, HRSS, Deadline(date(2026, 3, 31)))
    records.schedule(commitment(3), FOOD.code, SAMR, Deadline(date(2026, 4, 1)))
    records.schedule(commitment(4), POINTS.code, HRSS, Deadline(date(2026, 5, 31)))
    records.schedule(commitment(5), POINTS.code, HRSS, Deadline(date(2026, 3, 1)))
    records.set_state(commitment(5), "kept")
    on = date(2026, 4, 30)
    assert [v.commitment_hash for v in records.due(on)] == [
        commitment(2),
        commitment(3),
        commitment(1),
    ]
    assert [v.commitment_hash for v in records.due(on, HRSS)] == [commitment(2), commitment(1)]
    assert [v.commitment_hash for v in records.due(on, limit=1)] == [commitment(2)]
    assert records.due(date(2026, 3, 30)) == []


def test_scenario_5_an_unverified_deadline_is_flagged_for_the_department(
    records: VerifierRecords,
) -> None:
    deadline = date(2026, 3, 31)
    records.schedule(commitment(1), POINTS.code, HRSS, Deadline(deadline))
    records.schedule(commitment(2), POINTS.code, HRSS, Deadline(deadline))
    records.schedule(commitment(3), FOOD.code, SAMR, Deadline(deadline))
    records.set_state(commitment(2), "kept")  # verified in time: never overdue
    assert records.overdue_unverified(deadline) == []
    assert records.flag_overdue(deadline) == []
    day_after = date(2026, 4, 1)
    assert [v.commitment_hash for v in records.overdue_unverified(day_after, HRSS)] == [
        commitment(1)
    ]
    assert records.flag_overdue(day_after, HRSS) == [commitment(1)]
    assert records.flag_overdue(day_after, HRSS) == []  # the department is told once
    flagged = records.verification(commitment(1))
    assert flagged is not None
    assert flagged.overdue_flagged
    assert flagged.state == "due"  # still awaiting verification, just late
    assert records.flag_overdue(day_after) == [commitment(3)]


def test_an_outcome_is_stored_with_its_transaction(records: VerifierRecords) -> None:
    records.schedule(commitment(1), POINTS.code, HRSS, Deadline(date(2026, 4, 30)))
    report = {"claim": "social_insurance_consecutive_months", "found": 70, "需要": 84}
    stored = records.record_outcome(
        commitment(1),
        "mismatch",
        outcome_status=Status.MISMATCH,
        evidence=keccak256(b"evidence"),
        report=report,
        tx_hash=keccak256(b"tx"),
        block_number=77,
        rectify_by=date(2026, 5, 15),
        now=1000.0,
    )
    assert stored == records.verification(commitment(1))
    assert (stored.state, stored.outcome_status, stored.report) == ("mismatch", 4, report)
    assert (stored.evidence, stored.tx_hash, stored.block_number) == (
        keccak256(b"evidence"),
        keccak256(b"tx"),
        77,
    )
    assert (stored.rectify_by, stored.recorded_at) == (date(2026, 5, 15), 1000.0)


def test_a_report_sent_through_the_outbox_is_stored_once_and_read_from_there(
    records: VerifierRecords, store: Store
) -> None:
    records.schedule(commitment(1), POINTS.code, HRSS, Deadline(date(2026, 4, 30)))
    decision = Decision(commitment(1), POINTS, "kept")
    signed = sign_decision(decision, HRSS, date(2026, 4, 1), SigningKey.generate("ed25519"))
    outbox = outcome_outbox(store)
    outbox.enqueue(HRSS, [OutcomeEntry(commitment(1), Status.KEPT, signed)])

    records.record_outcome(
        commitment(1),
        "kept",
        outcome_status=Status.KEPT,
        evidence=signed.evidence,
        report=None,  # the outbox has it
        tx_hash=keccak256(b"tx"),
        block_number=78,
    )

    stored = records.verification(commitment(1))
    assert stored is not None and stored.report == signed.to_json_obj()
    with store.engine.connect() as connection:
        copies = connection.execute(select(verifications.c.report)).scalars().all()
    assert copies == [None]


def test_mismatches_past_their_rectification_deadline(records: VerifierRecords) -> None:
    for n, rectify_by in ((1, date(2026, 5, 15)), (2, date(2026, 5, 20))):
        records.schedule(commitment(n), POINTS.code, HRSS, Deadline(date(2026, 4, 30)))
        records.set_state(commitment(n), "mismatch", rectify_by=rectify_by)
    assert records.open_mismatches_past(date(2026, 5, 15)) == []
    late = records.open_mismatches_past(date(2026, 5, 16))
    assert [v.commitment_hash for v in late] == [commitment(1)]
    records.set_state(commitment(1), "kept")  # a transfer certificate came in time
    assert records.open_mismatches_past(date(2026, 6, 1), HRSS) == [
        records.verification(commitment(2))
    ]


def test_transitions_follow_the_lifecycle(records: VerifierRecords) -> None:
    records.schedule(commitment(1), POINTS.code, HRSS, Deadline(date(2026, 4, 30)))
    with pytest.raises(RecordsError, match="needs rectify_by"):
        records.set_state(commitment(1), "mismatch")
    records.set_state(commitment(1), "manual")
    records.set_state(commitment(1), "kept")
    with pytest.raises(RecordsError, match="is kept: it cannot become breached"):
        records.set_state(commitment(1), "breached")
    with pytest.raises(RecordsError, match="unknown verification state"):
        records.set_state(commitment(1), "lost")  # type: ignore[arg-type]
    with pytest.raises(UnknownRecordError, match="not scheduled"):
        records.set_state(commitment(9), "kept")
    stored = records.verification(commitment(1))
    assert stored is not None
    assert stored.state == "kept"


# --------------------------------------------------------------------------- breach records


def test_a_breach_is_stored_once(records: VerifierRecords) -> None:
    record = breach(1)
    assert records.add_breach(record, fingerprint(1))
    assert not records.add_breach(record, fingerprint(1))
    assert records.breach(record.id) == record
    assert records.breach("BR-0000000000000000") is None


def test_a_second_live_record_for_a_commitment_is_refused(records: VerifierRecords) -> None:
    records.add_breach(breach(1), fingerprint(1))
    with pytest.raises(RecordsError, match="already has a breach record"):
        records.add_breach(breach(1, corrects=breach(1)), fingerprint(1))


def test_search_lists_only_published_records_within_their_period(
    records: VerifierRecords,
) -> None:
    records.add_breach(breach(1), fingerprint(1))
    records.add_breach(breach(2, decided=date(2025, 1, 10)), fingerprint(2))  # ended 2026-01-10
    records.add_breach(breach(3, decided=date(2026, 3, 1)), fingerprint(3))  # not yet decided
    records.add_breach(breach(4, of=CARD, decided=date(2026, 1, 20)), fingerprint(4))
    records.update_breach_status(breach(4).id, "repaired", date(2026, 1, 21))
    page = records.search_breaches(date(2026, 2, 1))
    assert [r.id for r in page.records] == [breach(1).id]
    assert page.total == 1
    assert records.search_breaches(date(2026, 3, 1)).total == 2


def test_search_filters(records: VerifierRecords) -> None:
    records.add_breach(breach(1, person(1, "张三")), fingerprint(1))
    records.add_breach(
        breach(2, person(2, "SMITH JOHN"), decided=date(2026, 1, 20)), fingerprint(2)
    )
    records.add_breach(breach(3, company(), of=FOOD, decided=date(2026, 2, 1)), fingerprint(3))
    on = date(2026, 3, 1)

    def found(**filters: Any) -> list[str]:
        return [r.party_name for r in records.search_breaches(on, **filters).records]

    assert found() == ["北京示例餐饮有限公司", "S**** J***", "张*"]
    assert found(name="张") == ["张*"]  # shorter than TRIGRAM: a surname of a masked name
    assert found(name="张*") == ["张*"]  # or the whole name as shown
    assert found(name="s**** j") == ["S**** J***"]
    assert found(name="示例餐饮") == ["北京示例餐饮有限公司"]
    assert found(name="餐饮") == []
    assert found(name="%") == []  # a wildcard is a character, not a pattern
    assert found(credit_code=make_uscc("110108", "MA01ABCD")) == ["北京示例餐饮有限公司"]
    masked = mask_id_number("resident_id", person(1).id_number)
    assert found(credit_code=masked) == ["张*"]
    assert found(matter=POINTS.code) == ["S**** J***", "张*"]
    assert found(department=SAMR) == ["北京示例餐饮有限公司"]
    assert found(decided_from=date(2026, 1, 16), decided_to=date(2026, 1, 31)) == ["S**** J***"]


def test_search_pages_newest_decision_first(records: VerifierRecords) -> None:
    for n in range(1, 8):
        records.add_breach(breach(n, decided=date(2026, 1, n)), fingerprint(n))
    on = date(2026, 2, 1)
    first = records.search_breaches(on, page_size=3)
    third = records.search_breaches(on, page=3, page_size=3)
    assert (first.total, first.page, first.page_size) == (7, 1, 3)
    assert [r.decision_date.day for r in first.records] == [7, 6, 5]
    assert [r.decision_date.day for r in third.records] == [1]
    assert records.search_breaches(on, page=4, page_size=3).records == []
    with pytest.raises(RecordsError, match="page_size is 1 to 100"):
        records.search_breaches(on, page_size=101)
    with pytest.raises(RecordsError, match="page starts at 1"):
        records.search_breaches(on, page=0)


# ----------------------------------------------------------------- repair, expiry, exclusion


def test_scenario_6_repair_before_three_months_changes_nothing(records: VerifierRecords) -> None:
    record = breach(1)
    records.add_breach(record, fingerprint(1))
    with pytest.raises(RepairTooEarlyError, match="from 2026-04-15"):
        records.update_breach_status(record.id, "repaired", date(2026, 4, 14))
    assert records.breach(record.id) == record
    assert records.unrepaired_breach_for(fingerprint(1), date(2026, 4, 14))
    fixed = records.update_breach_status(record.id, "repaired", date(2026, 4, 15))
    assert (fixed.status, fixed.repaired_on) == ("repaired", date(2026, 4, 15))
    assert records.breach(record.id) == fixed  # history stays
    assert records.search_breaches(date(2026, 4, 15)).total == 0
    assert not records.unrepaired_breach_for(fingerprint(1), date(2026, 4, 15))
    with pytest.raises(BreachStateError):
        records.update_breach_status(record.id, "repaired", date(2026, 5, 1))


def test_scenario_4_exclusion_follows_an_unrepaired_breach(records: VerifierRecords) -> None:
    assert not records.unrepaired_breach_for(fingerprint(1), DECIDED)
    records.add_breach(breach(1), fingerprint(1))
    assert records.unrepaired_breach_for(fingerprint(1), DECIDED)
    assert records.unrepaired_breach_for(fingerprint(1), date(2027, 1, 15))
    assert not records.unrepaired_breach_for(fingerprint(1), date(2027, 1, 16))  # period over
    assert not records.unrepaired_breach_for(fingerprint(2), DECIDED)


def test_expiry_sweep_marks_ended_records(records: VerifierRecords) -> None:
    records.add_breach(breach(1), fingerprint(1))  # ends 2027-01-15
    records.add_breach(breach(2, of=FOOD), fingerprint(2))  # ends 2029-01-15
    assert records.expire_breaches(date(2027, 1, 15)) == []
    swept = records.expire_breaches(date(2027, 1, 16))
    assert [(item.record.id, item.record.status, item.fingerprint) for item in swept] == [
        (breach(1).id, "expired", fingerprint(1))
    ]
    stored = records.breach(breach(1).id)
    assert stored is not None
    assert stored.status == "expired"
    assert records.expire_breaches(date(2027, 1, 16)) == []
    with pytest.raises(BreachStateError, match="expired, not published"):
        records.update_breach_status(breach(1).id, "expired", date(2027, 2, 1))


def test_unknown_breach_updates_are_refused(records: VerifierRecords) -> None:
    with pytest.raises(UnknownRecordError, match="no breach record"):
        records.update_breach_status("BR-0000000000000000", "expired", date(2030, 1, 1))
    with pytest.raises(RecordsError, match="use correct_breach"):
        records.update_breach_status(breach(1).id, "corrected", DECIDED)  # type: ignore[arg-type]


def test_scenario_7_a_correction_supersedes_the_record(records: VerifierRecords) -> None:
    # The bureau's data belonged to another person of the same name: the record is reissued
    # for the right applicant, whose fingerprint now carries the exclusion.
    original = breach(1, person(1))
    records.add_breach(original, fingerprint(1))
    correction = breach(1, person(2), corrects=original)
    superseded = records.correct_breach(original.id, correction, fingerprint(2))
    assert (superseded.status, superseded.superseded_by) == ("corrected", correction.id)
    assert records.breach(original.id) == superseded
    assert records.breach(correction.id) == correction
    listed = records.search_breaches(date(2026, 2, 1))
    assert [r.id for r in listed.records] == [correction.id]
    assert not records.unrepaired_breach_for(fingerprint(1), date(2026, 2, 1))
    assert records.unrepaired_breach_for(fingerprint(2), date(2026, 2, 1))
    with pytest.raises(BreachStateError, match="already corrected"):
        records.correct_breach(original.id, breach(1, corrects=correction), fingerprint(2))
    with pytest.raises(UnknownRecordError):
        records.correct_breach("BR-0000000000000000", correction, fingerprint(2))

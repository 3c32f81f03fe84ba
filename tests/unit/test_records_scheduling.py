"""Scheduling's selection: the anti-join picks the same anchored, unscheduled commitments, in
the same order, as reading every anchored one and dropping those already scheduled."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select, text

from ledger import Hash32, Store, commitments, keccak256
from verifier.records import VerifierRecords
from verifier.records import verifications_table as verifications


@dataclass(frozen=True)
class Deadline:
    day: date
    provisional: bool = False


STATES = ("pending", "batched", "anchored", "anchored", "anchored")


def _fill(store: Store, count: int) -> list[Hash32]:
    """Commitments of two departments in every anchoring state, ids not in hash order."""
    hashes = [Hash32(keccak256(i.to_bytes(4, "big"))) for i in range(count)]
    rows = [
        {
            "hash": digest,
            "code": f"CODE{i}",
            "matter_code": f"M{i % 3}",
            "department": "hrss" if i % 4 else "market",
            "applicant_fingerprint": os.urandom(32),
            "received_at": 1_700_000_000.0 + (count - i),
            "state": STATES[i % len(STATES)],
            "sealed": b"sealed",
        }
        for i, digest in enumerate(hashes)
    ]
    with store.engine.begin() as connection:
        connection.execute(commitments.insert(), rows)
    return hashes


def _old_selection(
    store: Store, records: VerifierRecords, department: str
) -> list[tuple[Hash32, str, float]]:
    anchored = store.anchored(department)
    known = records.scheduled_among([h for h, _, _ in anchored])
    return [item for item in anchored if item[0] not in known]


def test_the_anti_join_selects_what_the_full_read_did(store: Store) -> None:
    records = VerifierRecords(store)
    hashes = _fill(store, 120)
    assert records.unscheduled_anchored("hrss") == _old_selection(store, records, "hrss")
    # schedule some in mixed verification states, some of another department
    first = records.unscheduled_anchored("hrss")
    chosen = first[::3]
    records.schedule_many([(h, m, Deadline(date(2026, 1, 5))) for h, m, _ in chosen], "hrss")
    for digest, _, _ in chosen[::2]:
        records.set_state(digest, "integrity_failure")
    market = records.unscheduled_anchored("market")
    records.schedule_many([(h, m, Deadline(date(2026, 1, 5))) for h, m, _ in market[:2]], "market")
    for department in ("hrss", "market", "nobody"):
        new = records.unscheduled_anchored(department)
        assert new == _old_selection(store, records, department)
    remaining = records.unscheduled_anchored("hrss")
    assert len(remaining) == len(first) - len(chosen) > 0
    assert not {h for h, _, _ in remaining} & {h for h, _, _ in chosen}
    assert all(h in hashes for h, _, _ in remaining)
    # once all are scheduled nothing is left, as before
    records.schedule_many([(h, m, Deadline(date(2026, 1, 5))) for h, m, _ in remaining], "hrss")
    assert records.unscheduled_anchored("hrss") == [] == _old_selection(store, records, "hrss")


def test_the_anti_join_uses_the_indexes(store: Store) -> None:
    """No full scan of either table: the commitments' outbox index and the verifications' key."""
    records = VerifierRecords(store)
    _fill(store, 50)
    with store.engine.connect() as connection:
        if store.dialect == "sqlite":
            plan = " ".join(
                str(row[-1])
                for row in connection.execute(
                    text(
                        "EXPLAIN QUERY PLAN SELECT c.hash FROM commitments c WHERE "
                        "c.state = 'anchored' AND c.department = 'hrss' AND NOT EXISTS "
                        "(SELECT 1 FROM verifications v WHERE v.commitment_hash = c.hash) "
                        "ORDER BY c.id"
                    )
                )
            )
            assert "commitments_outbox" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
            assert "SCAN v" not in plan and "SCAN verifications" not in plan, plan
        else:
            connection.execute(text("SET enable_seqscan = off"))
            plan = " ".join(
                str(row[0])
                for row in connection.execute(
                    text(
                        "EXPLAIN SELECT c.hash FROM commitments c WHERE "
                        "c.state = 'anchored' AND c.department = 'hrss' AND NOT EXISTS "
                        "(SELECT 1 FROM verifications v WHERE v.commitment_hash = c.hash) "
                        "ORDER BY c.id"
                    )
                )
            )
            assert "Anti Join" in plan, plan
            assert "Seq Scan" not in plan, plan
    assert records.unscheduled_anchored("hrss")


def test_scheduling_writes_the_rows_the_orm_wrote(store: Store) -> None:
    """schedule_many through the driver: the rows the ORM insert wrote, column by column;
    scheduled_among and states_of read them back."""
    records = VerifierRecords(store)
    hashes = [Hash32(keccak256(b"s" + i.to_bytes(2, "big"))) for i in range(30)]
    items = [
        (h, f"M{i % 3}", Deadline(date(2026, 1, 5 + i % 3), i % 2 == 0))
        for i, h in enumerate(hashes)
    ]
    assert records.schedule_many(items[:20], "hrss", now=1_700_000_000.5) == 20
    assert records.schedule_many(items, "hrss", now=1_700_000_001.5) == 10  # the rest only
    ours = {h for h, _, _ in items}
    with store.engine.connect() as connection:
        rows = {
            bytes(row.commitment_hash): tuple(row)[1:]
            for row in connection.execute(select(verifications))
        }
    for i, (digest, matter, due) in enumerate(items):
        assert rows[digest] == (
            matter,
            "hrss",
            due.day.isoformat(),
            due.provisional,
            "due",
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            False,
            1_700_000_000.5 if i < 20 else 1_700_000_001.5,
        )
    others = [Hash32(keccak256(b"x"))]
    assert records.scheduled_among([*hashes, *others]) == ours
    assert records.states_of([*hashes[:5], *others]) == dict.fromkeys(hashes[:5], "due")
    assert records.scheduled_among([]) == set() and records.states_of([]) == {}

"""record_outcomes through the driver writes exactly the rows the SQLAlchemy version wrote,
and keeps every status rule, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, select, update

from ledger import Hash32, Store, keccak256
from verifier import RecordsError, UnknownRecordError
from verifier.records import RecordedOutcome, VerifierRecords
from verifier.records import verifications_table as verifications
from verifier.records.stats import count_moves, stat_counts, stat_marks, stat_periods

DAY = date(2026, 1, 5)
NOW = 1_767_600_000.0


@dataclass(frozen=True)
class Deadline:
    day: date
    provisional: bool = False


@pytest.fixture(params=["sqlite", "postgresql"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """Two empty stores on one backend."""
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"]
        names: list[str] = []
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        names = [cluster.create_database(), cluster.create_database()]
        urls = [cluster.url(name) for name in names]
    stores = (Store(urls[0]), Store(urls[1]))
    try:
        yield stores
    finally:
        for store in stores:
            store.close()
        for name in names:
            cluster.drop_database(name)


def _reference(records: VerifierRecords, entries: Sequence[RecordedOutcome], now: float) -> None:
    """record_outcomes as it was before the driver (b02b1b9), minus the checks."""
    from verifier.records.verifications import _moves

    with records._writer.begin() as connection:
        found = {
            bytes(row.commitment_hash): (row.state, row.department, row.matter_code)
            for row in connection.execute(
                select(
                    verifications.c.commitment_hash,
                    verifications.c.state,
                    verifications.c.department,
                    verifications.c.matter_code,
                ).where(verifications.c.commitment_hash.in_([e.commitment_hash for e in entries]))
            )
        }
        connection.execute(
            update(verifications)
            .where(verifications.c.commitment_hash == bindparam("key"))
            .values(
                state=bindparam("new_state"),
                rectify_by=bindparam("new_rectify_by"),
                outcome_status=bindparam("new_status"),
                evidence=bindparam("new_evidence"),
                report=bindparam("new_report"),
                tx_hash=bindparam("new_tx"),
                block_number=bindparam("new_block"),
                recorded_at=now,
                updated_at=now,
            ),
            [
                {
                    "key": e.commitment_hash,
                    "new_state": e.state,
                    "new_rectify_by": None if e.rectify_by is None else e.rectify_by.isoformat(),
                    "new_status": int(e.outcome_status),
                    "new_evidence": e.evidence,
                    "new_report": None
                    if e.report is None
                    else json.dumps(dict(e.report), sort_keys=True, ensure_ascii=False),
                    "new_tx": e.tx_hash,
                    "new_block": e.block_number,
                }
                for e in entries
            ],
        )
        count_moves(connection, _moves(found, entries), now)


def _dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    dumped = {}
    with store.engine.connect() as connection:
        for table in (verifications, stat_counts, stat_periods, stat_marks):
            rows = connection.execute(select(table)).all()
            dumped[table.name] = sorted(
                (tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in rows),
                key=repr,
            )
    return dumped


def _hashes(count: int) -> list[Hash32]:
    return [Hash32(keccak256(i.to_bytes(4, "big"))) for i in range(count)]


def _schedule(records: VerifierRecords, hashes: list[Hash32]) -> None:
    for department, part in (("hrss", hashes[::2]), ("market", hashes[1::2])):
        records.schedule_many(
            [(h, f"M{i % 3}", Deadline(DAY)) for i, h in enumerate(part)], department, now=NOW
        )


def _rounds(hashes: list[Hash32]) -> list[list[RecordedOutcome]]:
    """Mixed outcomes, then moves on from some (mismatch to kept, proposed to breached, a
    state kept, one hash twice in a round)."""
    first = []
    for i, h in enumerate(hashes):
        state = ("kept", "mismatch", "manual", "proposed", "integrity_failure")[i % 5]
        first.append(
            RecordedOutcome(
                h,
                state,  # type: ignore[arg-type]
                i % 5,
                Hash32(keccak256(b"e" + h)),
                None if i % 2 else {"note": "核实一致", "n": i},
                keccak256(b"t" + h),
                100 + i,
                date(2026, 2, 1) if state == "mismatch" else None,
            )
        )
    second = []
    for i, h in enumerate(hashes):
        after = {1: "kept", 2: "manual", 3: "breached"}.get(i % 5)
        if after is None:
            continue
        second.append(
            RecordedOutcome(
                h,
                after,  # type: ignore[arg-type]
                9,
                Hash32(keccak256(b"f" + h)),
                None,
                keccak256(b"u" + h),
                900,
            )
        )
    second.append(second[0])
    return [first, second]


def test_the_rows_written_are_those_the_orm_wrote(two_stores: tuple[Store, Store]) -> None:
    ours, theirs = VerifierRecords(two_stores[0]), VerifierRecords(two_stores[1])
    hashes = _hashes(40)
    for records in (ours, theirs):
        _schedule(records, hashes)
    for step, entries in enumerate(_rounds(hashes)):
        ours.record_outcomes(entries, now=NOW + step)
        _reference(theirs, entries, NOW + step)
        assert _dump(two_stores[0]) == _dump(two_stores[1])
    assert ours.verification(hashes[3]).state == "breached"  # type: ignore[union-attr]


def test_every_status_rule_still_holds(two_stores: tuple[Store, Store]) -> None:
    records = VerifierRecords(two_stores[0])
    hashes = _hashes(4)
    _schedule(records, hashes[:3])
    kept = RecordedOutcome(hashes[0], "kept", 1, hashes[1], None, b"\1" * 32, 1)
    records.record_outcomes([kept], now=NOW)
    before = _dump(two_stores[0])
    with pytest.raises(UnknownRecordError):
        records.record_outcomes(
            [
                RecordedOutcome(hashes[1], "kept", 1, hashes[1], None, b"\1" * 32, 1),
                RecordedOutcome(hashes[3], "kept", 1, hashes[1], None, b"\1" * 32, 1),
            ]
        )
    with pytest.raises(RecordsError, match="cannot become mismatch"):
        records.record_outcomes(
            [RecordedOutcome(hashes[0], "mismatch", 2, hashes[1], None, b"\1" * 32, 1, DAY)]
        )
    with pytest.raises(RecordsError, match="needs rectify_by"):
        records.record_outcomes(
            [RecordedOutcome(hashes[2], "mismatch", 2, hashes[1], None, b"\1" * 32, 1)]
        )
    assert _dump(two_stores[0]) == before  # a refused batch writes nothing
    records.record_outcomes([kept], now=time.time())  # staying kept: a retried write

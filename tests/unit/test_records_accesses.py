"""The access log's insert through the driver stores exactly the rows the ORM insert stored,
and reads back as logged, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ledger import Hash32, Store, keccak256
from verifier.records.accesses import Access, AccessLog, accesses_of, data_accesses


@pytest.fixture(params=["sqlite", "postgresql"])
def two_logs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[AccessLog, ...]]:
    if request.param == "sqlite":
        urls = [f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"]
        names: list[str] = []
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        names = [cluster.create_database(), cluster.create_database()]
        urls = [cluster.url(name) for name in names]
    stores = [Store(url) for url in urls]
    try:
        yield tuple(AccessLog(store) for store in stores)
    finally:
        for store in stores:
            store.close()
        for name in names:
            cluster.drop_database(name)


def _orm_record(log: AccessLog, accesses: list[Access]) -> None:
    """AccessLog.record as it was before the driver (0f1e78b)."""
    rows = [
        {
            "commitment_hash": bytes(a.commitment_hash),
            "department": a.department,
            "requested_by": a.requested_by,
            "source": a.source,
            "purpose": a.purpose,
            "accessed_at": a.accessed_at,
        }
        for a in accesses
    ]
    with log._writer.begin() as connection:
        connection.execute(data_accesses.insert(), rows)


def _rows(log: AccessLog) -> list[tuple[Any, ...]]:
    with log.store.engine.connect() as connection:
        return [
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
            for row in connection.execute(select(data_accesses).order_by(data_accesses.c.id))
        ]


def test_the_rows_logged_are_those_the_orm_logged(two_logs: tuple[AccessLog, ...]) -> None:
    ours, theirs = two_logs
    now = time.time()
    hashes = [Hash32(keccak256(i.to_bytes(2, "big"))) for i in range(50)]
    rounds = [
        [
            Access(h, "hrss", "run:7", source, "verification", now + step)
            for h in hashes
            for source in ("social-insurance", "市场监管")
        ]
        + [Access(hashes[0], "market", "officer 王", "tax", "manual_check", now + 0.5)]
        for step in range(2)
    ]
    for accesses in rounds:
        assert ours.record(accesses) == len(accesses)
        _orm_record(theirs, accesses)
    assert _rows(ours) == _rows(theirs)
    logged = accesses_of(ours.store, [hashes[0]])[bytes(hashes[0])]
    assert len(logged) == 6 and {a.purpose for a in logged} == {"verification", "manual_check"}
    assert ours.record([]) == 0

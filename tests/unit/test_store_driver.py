"""Intake's batched statements straight to the driver, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import pytest

from ledger import Hash32, NewCommitment, Store, StoreError
from ledger.store_driver import IN_LIMIT, insert_rows, stored_among
from ledger.tables import commitments

COLUMNS = (
    "hash",
    "code",
    "matter_code",
    "department",
    "applicant_fingerprint",
    "received_at",
    "state",
    "sealed",
    "wrapped_key",
    "channel",
)


def new_commitment(serial: int) -> NewCommitment:
    return NewCommitment(
        hash=Hash32(os.urandom(32)),
        code=f"110105202611020{serial:05d}",
        matter_code="BJ-HRSS-0002",
        department="BJ-HRSS",
        applicant_fingerprint=os.urandom(32),
        sealed=os.urandom(300),
        wrapped_key=os.urandom(40),
        channel="online",
    )


def row(item: NewCommitment) -> tuple[object, ...]:
    public = (item.hash, item.code, item.matter_code, item.department)
    kept = (item.applicant_fingerprint, 5.0, "pending", item.sealed, item.wrapped_key)
    return (*public, *kept, item.channel)


def test_more_commitments_than_one_in_list_holds_are_stored_once(store: Store) -> None:
    earlier = [new_commitment(n) for n in range(10)]
    assert store.add_commitments(earlier, now=1.0) == [True] * 10
    later = [new_commitment(n) for n in range(10, IN_LIMIT + 10)]
    mixed = [*later[:5], *earlier, *later[5:], later[0]]  # known, new, and one twice
    fresh = store.add_commitments(mixed, now=2.0)
    assert fresh == [True] * 5 + [False] * 10 + [True] * (len(later) - 5) + [False]
    assert store.status().pending == IN_LIMIT + 10
    stored = store.get(later[-1].hash)
    assert stored is not None
    assert (stored.code, stored.received_at, stored.state) == (later[-1].code, 2.0, "pending")
    assert store.sealed(later[-1].hash) == (later[-1].sealed, later[-1].wrapped_key)


def test_stored_among_finds_exactly_the_stored_values(store: Store) -> None:
    items = [new_commitment(n) for n in range(3)]
    with store.engine.begin() as connection:
        assert stored_among(connection, commitments, "hash", []) == set()
        insert_rows(
            connection,
            commitments,
            COLUMNS,
            [row(item) for item in items[:2]],
        )
        wanted = [item.hash for item in items]
        assert stored_among(connection, commitments, "hash", wanted) == set(wanted[:2])


def test_a_driver_of_another_placeholder_style_is_refused() -> None:
    connection: Any = SimpleNamespace(dialect=SimpleNamespace(paramstyle="named"))
    with pytest.raises(StoreError, match="paramstyle 'named'"):
        stored_among(connection, commitments, "hash", [b"x" * 32])
    with pytest.raises(StoreError, match="paramstyle 'named'"):
        insert_rows(connection, commitments, ("hash",), [(b"x" * 32,)])


def test_a_column_the_table_does_not_have_is_refused(store: Store) -> None:
    with store.engine.begin() as connection, pytest.raises(KeyError):
        stored_among(connection, commitments, "hash; DROP TABLE commitments", [b"x" * 32])

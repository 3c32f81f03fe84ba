"""Versioned schema migrations, applied when the store opens: on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, Engine, create_engine, inspect, select, text

from ledger import (
    MIGRATIONS,
    NewCommitment,
    Store,
    StoreError,
    current_version,
    keccak256,
    migrate,
    schema_migrations,
)
from ledger import tables as schema

LATEST = max(MIGRATIONS)
TABLES = {
    "schema_migrations",
    "commitments",
    "batches",
    "outcomes",
    "contract_events",
    "exclusions",
    "sync_state",
}


@pytest.fixture
def bare_engine(store_url: str) -> Iterator[Engine]:
    """An engine on the empty database behind `store_url`, without the store's migrations."""
    engine = create_engine(store_url)
    try:
        yield engine
    finally:
        engine.dispose()


def versions(connection: Connection) -> list[int]:
    query = select(schema_migrations.c.version).order_by(schema_migrations.c.version)
    return list(connection.execute(query).scalars())


def one_commitment() -> NewCommitment:
    return NewCommitment(
        hash=keccak256(b"a document"),
        code="C000001",
        matter_code="M-001",
        department="BJ-HRSS",
        applicant_fingerprint=keccak256(b"an applicant"),
        sealed=b"sealed",
        wrapped_key=b"wrapped",
    )


def test_versions_start_at_one_and_are_contiguous() -> None:
    assert sorted(MIGRATIONS) == list(range(1, LATEST + 1))


def test_migrations_are_applied_when_the_store_opens(store: Store) -> None:
    with store.engine.connect() as connection:
        assert current_version(connection) == LATEST
        assert versions(connection) == list(range(1, LATEST + 1))
        assert set(inspect(connection).get_table_names()) >= TABLES
        applied_at = connection.execute(select(schema_migrations.c.applied_at)).scalars().all()
    assert all(at > 0 for at in applied_at)


def test_opening_again_applies_nothing_and_keeps_the_data(store_url: str) -> None:
    first = Store(store_url)
    try:
        assert first.add_commitments([one_commitment()]) == [True]
        with first.engine.connect() as connection:
            before = connection.execute(select(schema_migrations)).all()
    finally:
        first.close()
    second = Store(store_url)
    try:
        with second.engine.begin() as connection:
            assert connection.execute(select(schema_migrations)).all() == before
            assert migrate(connection) == []
            assert current_version(connection) == LATEST
        assert second.get(one_commitment().hash) is not None
    finally:
        second.close()


def test_an_empty_database_is_at_version_zero_and_migrates(bare_engine: Engine) -> None:
    with bare_engine.begin() as connection:
        assert current_version(connection) == 0
        assert migrate(connection) == list(range(1, LATEST + 1))
        assert current_version(connection) == LATEST
    with bare_engine.begin() as connection:
        assert migrate(connection) == []
        assert versions(connection) == list(range(1, LATEST + 1))


def test_an_old_database_at_version_zero_is_migrated_on_open(
    bare_engine: Engine, store_url: str
) -> None:
    # An old database: the migrations table exists but no step was ever recorded.
    with bare_engine.begin() as connection:
        schema_migrations.create(connection)
        assert current_version(connection) == 0
    bare_engine.dispose()
    store = Store(store_url)
    try:
        with store.engine.connect() as connection:
            assert current_version(connection) == LATEST
            assert set(inspect(connection).get_table_names()) >= TABLES
        assert store.add_commitments([one_commitment()]) == [True]
    finally:
        store.close()


def test_a_new_version_is_applied_once_on_the_next_open(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Store(store_url).close()  # the database as the released code leaves it

    calls: list[int] = []

    def add_note(connection: Connection) -> None:
        calls.append(1)
        connection.execute(text("ALTER TABLE sync_state ADD COLUMN note VARCHAR(200)"))

    monkeypatch.setitem(schema.MIGRATIONS, LATEST + 1, add_note)
    for _ in range(2):
        store = Store(store_url)
        try:
            with store.engine.connect() as connection:
                assert current_version(connection) == LATEST + 1
                columns = {c["name"] for c in inspect(connection).get_columns("sync_state")}
            assert "note" in columns
            store.set_cursor("blocks", 7)
            assert store.cursor("blocks") == 7
        finally:
            store.close()
    assert calls == [1]


def test_a_failing_step_leaves_the_database_as_it_was(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Store(store_url).close()

    def half_done(connection: Connection) -> None:
        connection.execute(text("ALTER TABLE sync_state ADD COLUMN note VARCHAR(200)"))
        raise RuntimeError("step failed half way")

    monkeypatch.setitem(schema.MIGRATIONS, LATEST + 1, half_done)
    with pytest.raises(StoreError, match="step failed half way"):
        Store(store_url)
    monkeypatch.delitem(schema.MIGRATIONS, LATEST + 1)
    store = Store(store_url)
    try:
        with store.engine.connect() as connection:
            assert current_version(connection) == LATEST
            columns = {c["name"] for c in inspect(connection).get_columns("sync_state")}
        assert "note" not in columns
    finally:
        store.close()

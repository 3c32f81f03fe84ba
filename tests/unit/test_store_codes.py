"""Finding commitments by their national code (for the auditors' "tampered"), and the
migration that indexes the code column on databases made before it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, delete, inspect, text

from ledger import MIGRATIONS, NewCommitment, Store, keccak256, schema_migrations


def commitment(n: int, code: str) -> NewCommitment:
    return NewCommitment(
        hash=keccak256(f"document {n}".encode()),
        code=code,
        matter_code="BJ-HRSS-0001",
        department="BJ-HRSS",
        applicant_fingerprint=keccak256(b"an applicant"),
        sealed=b"sealed",
        wrapped_key=b"wrapped",
    )


def test_commitments_are_found_by_code_oldest_first(store: Store) -> None:
    store.add_commitments([commitment(1, "C-A"), commitment(2, "C-B")])
    store.add_commitments([commitment(3, "C-A")])
    found = store.with_code("C-A")
    assert [c.hash for c in found] == [keccak256(b"document 1"), keccak256(b"document 3")]
    assert {c.code for c in found} == {"C-A"}
    assert store.with_code("C-A", limit=1)[0].hash == keccak256(b"document 1")
    assert store.with_code("C-nothing") == []


def test_a_database_from_before_the_code_index_gets_it_on_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    Store(url).close()
    engine = create_engine(url)
    with engine.begin() as connection:
        # As a version-2 database was: no index on the code, v3 not recorded.
        connection.execute(text("DROP INDEX commitments_code"))
        connection.execute(delete(schema_migrations).where(schema_migrations.c.version == 3))
    assert "commitments_code" not in {i["name"] for i in inspect(engine).get_indexes("commitments")}
    reopened = Store(url)
    try:
        indexes = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("commitments")}
        assert indexes["commitments_code"] == ["code"]
        with engine.connect() as connection:
            versions = set(connection.execute(schema_migrations.select()).scalars())
        assert versions == set(MIGRATIONS)
    finally:
        reopened.close()
        engine.dispose()

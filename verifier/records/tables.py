"""The verifier's tables (verifications, breach records, the public search's indexes) and their
own migrations, on the ledger store's database: `verifier.records.facade` and its parts use them."""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)

from ledger import apply_migrations, commitments, exclusions, migrations_table
from verifier.records.stats import (
    add_department_totals,
    add_period_rollups,
    create_stats_tables,
)

# What an erased applicant's name and code read as, everywhere a breach record is shown (the
# feed serves its records without them and says `personal_data_erased`).
ERASED_PARTY = "（已删除）"

metadata = MetaData()

verifier_migrations = migrations_table("verifier_migrations", metadata)

# Dates are ISO text (YYYY-MM-DD): text order is date order on both backends.
verifications = Table(
    "verifications",
    metadata,
    Column("commitment_hash", LargeBinary(32), primary_key=True),
    Column("matter_code", String(64), nullable=False),
    Column("department", String(64), nullable=False),
    Column("due_on", String(10), nullable=False),
    # computed past the last published official calendar: may move when it is published
    Column("deadline_provisional", Boolean, nullable=False),
    Column("state", String(24), nullable=False),
    Column("rectify_by", String(10), nullable=True),
    Column("outcome_status", Integer, nullable=True),  # the contract's Status
    Column("report", Text, nullable=True),  # JSON
    Column("evidence", LargeBinary(32), nullable=True),
    Column("tx_hash", LargeBinary(32), nullable=True),
    Column("block_number", BigInteger, nullable=True),
    Column("recorded_at", Float, nullable=True),
    Column("overdue_flagged", Boolean, nullable=False),
    Column("updated_at", Float, nullable=False),
)
# The same table by a name that does not clash with the module verifier.records.verifications.
verifications_table = verifications
Index("verifications_work", verifications.c.state, verifications.c.due_on)
Index("verifications_department", verifications.c.department, verifications.c.state)

breach_records = Table(
    "breach_records",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("commitment_hash", LargeBinary(32), nullable=False),
    # keyed HMAC of the applicant's identity: exclusion without storing the ID
    Column("applicant_fingerprint", LargeBinary(32), nullable=False, index=True),
    Column("public_json", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("party_name", Text, nullable=False),  # masked for persons
    Column("party_code", String(64), nullable=False, index=True),
    Column("decision_date", String(10), nullable=False),
    Column("publication_end", String(10), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("department", String(64), nullable=False),
    Column("matter_code", String(64), nullable=False),
    Column("superseded_by", String(40), nullable=True),
    Column("repaired_on", String(10), nullable=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("tx_hash", LargeBinary(32), nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
)
_LIVE = breach_records.c.status != "corrected"
# One live record per commitment; a correction supersedes its original in one transaction.
Index(
    "breach_records_live_commitment",
    breach_records.c.commitment_hash,
    unique=True,
    sqlite_where=_LIVE,
    postgresql_where=_LIVE,
)
Index(
    "breach_records_listing",
    breach_records.c.status,
    breach_records.c.publication_end,
    breach_records.c.decision_date,
)


def _create_v1(connection: Connection) -> None:
    metadata.create_all(connection, tables=[verifications, breach_records])


# Public search over millions of records: one covering index per way in, each in the list's
# order (newest decision first), so a page and a bounded count never touch the table.
SEARCH_INDEXES = [
    Index(
        name,
        *(breach_records.c[n] for n in leading),
        breach_records.c.status,
        breach_records.c.decision_date.desc(),
        breach_records.c.id,
        breach_records.c.publication_end,
        *(breach_records.c[n] for n in trailing),
    )
    for name, leading, trailing in (
        ("breach_records_listed", (), ()),
        ("breach_records_by_department", ("department",), ("matter_code",)),
        ("breach_records_by_matter", ("matter_code",), ("department",)),
        ("breach_records_by_code", ("party_code",), ()),
        ("breach_records_by_name", ("party_name",), ()),  # whole names (shorter than TRIGRAM)
    )
]
# SQLite: a trigram index of the names shown, for substring search of 3 characters or more.
# Its rowids are breach_records' rowids (kept in step by triggers; see rebuild_name_index).
NAME_INDEX_DDL = (
    "CREATE VIRTUAL TABLE breach_names USING fts5(party_name, content='breach_records', "
    "tokenize='trigram')",
    "CREATE TRIGGER breach_names_insert AFTER INSERT ON breach_records BEGIN "
    "INSERT INTO breach_names(rowid, party_name) VALUES (new.rowid, new.party_name); END",
    "CREATE TRIGGER breach_names_delete AFTER DELETE ON breach_records BEGIN "
    "INSERT INTO breach_names(breach_names, rowid, party_name) "
    "VALUES ('delete', old.rowid, old.party_name); END",
    "CREATE TRIGGER breach_names_update AFTER UPDATE OF party_name ON breach_records BEGIN "
    "INSERT INTO breach_names(breach_names, rowid, party_name) "
    "VALUES ('delete', old.rowid, old.party_name); "
    "INSERT INTO breach_names(rowid, party_name) VALUES (new.rowid, new.party_name); END",
    "INSERT INTO breach_names(breach_names) VALUES ('rebuild')",
)


def _search_indexes_v2(connection: Connection) -> None:
    for index in SEARCH_INDEXES:  # a store created at v2 has them from v1's create_all
        index.create(connection, checkfirst=True)
    if connection.dialect.name == "sqlite":
        for statement in NAME_INDEX_DDL:
            connection.exec_driver_sql(statement)


def _whole_name_index_v3(connection: Connection) -> None:
    SEARCH_INDEXES[-1].create(connection, checkfirst=True)


def _redact_erased_v4(connection: Connection) -> None:
    """Records of commitments erased before erasure redacted them: the name and code read
    ERASED_PARTY; the fingerprint becomes random unless an exclusion still holds it (a
    breach published when it was erased: the law keeps it, and its repair must find it)."""
    erased = select(commitments.c.hash).where(commitments.c.wrapped_key.is_(None))
    rows = connection.execute(
        select(
            breach_records.c.id,
            breach_records.c.public_json,
            breach_records.c.applicant_fingerprint,
        ).where(breach_records.c.commitment_hash.in_(erased))
    ).all()
    held = select(exclusions.c.applicant_fingerprint)
    kept = {bytes(f) for f in connection.execute(held).scalars()}
    for row in rows:
        public = json.loads(row.public_json)
        public.update(party_name=ERASED_PARTY, party_code=ERASED_PARTY)
        fingerprint = bytes(row.applicant_fingerprint)
        connection.execute(
            update(breach_records)
            .where(breach_records.c.id == row.id)
            .values(
                party_name=ERASED_PARTY,
                party_code=ERASED_PARTY,
                public_json=json.dumps(public, ensure_ascii=False),
                applicant_fingerprint=fingerprint if fingerprint in kept else os.urandom(32),
            )
        )
    # Each its own random value (SQLite and PostgreSQL have no common random-bytes function).
    forgotten = connection.execute(
        select(commitments.c.hash).where(
            commitments.c.wrapped_key.is_(None), commitments.c.applicant_fingerprint.not_in(held)
        )
    ).scalars()
    for digest in forgotten.all():
        connection.execute(
            update(commitments)
            .where(commitments.c.hash == digest)
            .values(applicant_fingerprint=os.urandom(32))
        )


# Version -> step. Append only: a released step never changes; a new one alters the tables.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _create_v1,
    2: _search_indexes_v2,
    3: _whole_name_index_v3,
    4: _redact_erased_v4,
    5: create_stats_tables,  # statistics counters (verifier.records.stats)
    6: add_period_rollups,  # the same per week and per month
    7: add_department_totals,  # and per department, its matters added up
}


def migrate(connection: Connection) -> list[int]:
    """Apply the verifier's migrations not yet applied, in order; return those applied now."""
    return apply_migrations(connection, verifier_migrations, MIGRATIONS)

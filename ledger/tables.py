"""The store's tables (SQLAlchemy Core) and their versioned migrations, applied on start."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    inspect,
    select,
)

metadata = MetaData()
# The advisory lock every migration transaction takes on PostgreSQL (any fixed 64-bit key).
MIGRATION_LOCK_KEY = 0x636C_6D69_6772_6174  # "clmigrat"

schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", Float, nullable=False),
)  # the ledger's track; see migrations_table for others

# The anchoring outbox is the set of commitments in state 'pending'.
commitments = Table(
    "commitments",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("hash", LargeBinary(32), nullable=False, unique=True),
    Column("code", String(20), nullable=False),
    Column("matter_code", String(64), nullable=False),
    Column("department", String(64), nullable=False),
    # keyed HMAC of the applicant's identity: finds their records without storing the ID
    Column("applicant_fingerprint", LargeBinary(32), nullable=False, index=True),
    Column("received_at", Float, nullable=False),
    Column("state", String(16), nullable=False),  # pending | batched | anchored
    Column("batch_id", Integer, ForeignKey("batches.id"), nullable=True, index=True),
    Column("proof", LargeBinary, nullable=True),  # concatenated 32-byte siblings
    # the signed document, AES-GCM under its own data key; NULL wrapped_key = erased
    Column("sealed", LargeBinary, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=True),
    Column("erased_at", Float, nullable=True),
    # v5: how the document came (counter | online; NULL for rows from before v5) and when
    # the application was decided (Unix seconds; NULL while undecided)
    Column("channel", String(8), nullable=True),
    Column("decided_at", Float, nullable=True),
)
Index("commitments_outbox", commitments.c.state, commitments.c.department, commitments.c.id)
# The department's list of applications awaiting a decision, oldest first.
commitments_undecided = Index(
    "commitments_undecided",
    commitments.c.department,
    commitments.c.received_at,
    sqlite_where=commitments.c.decided_at.is_(None),
    postgresql_where=commitments.c.decided_at.is_(None),
)
# An auditor's document is found by its national code when its hash matches nothing.
commitments_code = Index("commitments_code", commitments.c.code)

batches = Table(
    "batches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("root", LargeBinary(32), nullable=False, unique=True),
    Column("size", Integer, nullable=False),
    Column("department", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # built | sent | anchored
    Column("created_at", Float, nullable=False),
    Column("tx_hash", LargeBinary(32), nullable=True),
    Column("sent_at", Float, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("block_number", BigInteger, nullable=True),
    Column("block_hash", LargeBinary(32), nullable=True),
    Column("anchored_at", Float, nullable=True),
    # v6: the batch's Merkle tree, its 2n-1 nodes (ledger.merkle.MerkleTree.nodes), kept once
    # for the batch; a member whose own proof column is NULL has its proof sliced from it.
    # NULL for batches from before v6 and for re-formed ones (members keep their proofs).
    Column("tree", LargeBinary, nullable=True),
)
Index("batches_state", batches.c.state)

outcomes = Table(
    "outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("commitment_hash", LargeBinary(32), nullable=False, index=True),
    Column("status", Integer, nullable=False),
    Column("evidence", LargeBinary(32), nullable=False),
    Column("report", Text, nullable=True),
    Column("tx_hash", LargeBinary(32), nullable=True),
    Column("block_number", BigInteger, nullable=True),
    Column("recorded_at", Float, nullable=False),
)

contract_events = Table(
    "contract_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("block_number", BigInteger, nullable=False),
    Column("block_hash", LargeBinary(32), nullable=False),
    Column("tx_hash", LargeBinary(32), nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("name", String(64), nullable=False),
    Column("subject", LargeBinary(32), nullable=True, index=True),  # commitment or root
    Column("department", LargeBinary(32), nullable=True),
    Column("args", Text, nullable=False),  # JSON
    UniqueConstraint("tx_hash", "log_index", name="contract_events_position"),
)

exclusions = Table(
    "exclusions",
    metadata,
    Column("applicant_fingerprint", LargeBinary(32), primary_key=True),
    Column("commitment_hash", LargeBinary(32), nullable=False),
    Column("since", Float, nullable=False),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)


# Outcomes waiting to be recorded on chain; written before their transaction is sent.
outcome_outbox = Table(
    "outcome_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("commitment_hash", LargeBinary(32), nullable=False, index=True),
    Column("department", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("evidence", LargeBinary(32), nullable=False),
    Column("report", Text, nullable=False),  # the signed report whose hash is the evidence
    Column("created_at", Float, nullable=False),
    Column("tx_hash", LargeBinary(32), nullable=True),
    Column("sent_at", Float, nullable=True),
    Column("block_number", BigInteger, nullable=True),
    Column("recorded_at", Float, nullable=True),
    # Set when the contract refuses the outcome outright: closed without a transaction.
    Column("abandoned", Text, nullable=True),
)
Index("outcome_outbox_open", outcome_outbox.c.recorded_at, outcome_outbox.c.department)
# GET /v1/reports/{evidence} finds a report by the hash the chain holds.
outcome_outbox_evidence = Index("outcome_outbox_evidence", outcome_outbox.c.evidence)

# A decision on each commitment's application (ledger.decisions.DecisionRecord); its
# record hash is anchored as a leaf of the department's next batch, like a commitment.
decisions_table = Table(
    "decisions",
    metadata,
    Column("commitment_hash", LargeBinary(32), primary_key=True),
    Column("record_hash", LargeBinary(32), nullable=False, unique=True),
    Column("department", String(64), nullable=False),
    Column("matter_code", String(64), nullable=False),
    Column("channel", String(8), nullable=False),
    Column("received_at", Float, nullable=False),
    Column("due_at", Float, nullable=False),
    Column("decided_at", Float, nullable=False),
    Column("decided_by", String(64), nullable=False),
    Column("result", String(16), nullable=False),
    Column("late", Boolean, nullable=False),
    Column("record", Text, nullable=False),  # the canonical JSON whose hash is anchored
    Column("state", String(16), nullable=False),  # pending | batched | anchored
    Column("batch_id", Integer, ForeignKey("batches.id"), nullable=True, index=True),
    Column("proof", LargeBinary, nullable=True),  # concatenated 32-byte siblings
)
Index(
    "decisions_outbox",
    decisions_table.c.state,
    decisions_table.c.department,
    decisions_table.c.decided_at,
)


def _create_v1(connection: Connection) -> None:
    metadata.create_all(
        connection,
        tables=[commitments, batches, outcomes, contract_events, exclusions, sync_state],
    )


def _add_outcome_outbox_v2(connection: Connection) -> None:
    metadata.create_all(connection, tables=[outcome_outbox])


def _index_commitment_codes_v3(connection: Connection) -> None:
    # Databases created since v3 got the index with the table in v1.
    commitments_code.create(connection, checkfirst=True)


def _index_outbox_evidence_v4(connection: Connection) -> None:
    # Databases created since v4 got the index with the table in v2.
    outcome_outbox_evidence.create(connection, checkfirst=True)


def _decisions_v5(connection: Connection) -> None:
    """Commitments record their channel and decision time; decisions get their table.
    v1 creates the commitments table as defined now (with the columns); a store from
    before v5 gets them added (NULL: old rows keep no channel and no decision)."""
    present = {column["name"] for column in inspect(connection).get_columns("commitments")}
    if "channel" not in present:
        connection.exec_driver_sql("ALTER TABLE commitments ADD COLUMN channel VARCHAR(8)")
    if "decided_at" not in present:
        connection.exec_driver_sql("ALTER TABLE commitments ADD COLUMN decided_at FLOAT")
    commitments_undecided.create(connection, checkfirst=True)
    metadata.create_all(connection, tables=[decisions_table])


def _batch_trees_v6(connection: Connection) -> None:
    """Batches keep their Merkle tree once (about 64 bytes a leaf), not each member its
    proof (32 bytes a level). v1 creates the batches table with the column; a store from
    before v6 gets it added, NULL: its members keep the proofs stored with them."""
    present = {column["name"] for column in inspect(connection).get_columns("batches")}
    if "tree" not in present:
        kind = LargeBinary().compile(dialect=connection.dialect)
        connection.exec_driver_sql(f"ALTER TABLE batches ADD COLUMN tree {kind}")


# Version -> step. Append only: a released step never changes; a new one alters the tables.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _create_v1,
    2: _add_outcome_outbox_v2,
    3: _index_commitment_codes_v3,
    4: _index_outbox_evidence_v4,
    5: _decisions_v5,
    6: _batch_trees_v6,
}


def apply_migrations(
    connection: Connection, table: Table, steps: Mapping[int, Callable[[Connection], None]]
) -> list[int]:
    """Apply the `steps` not yet recorded in `table`, in order; return the versions applied.

    Each package keeps its own track (ledger here, the verifier its own) on one database.
    On PostgreSQL, instances starting together migrate one after the other: the
    transaction takes an advisory lock first, held until it commits.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
    table.create(connection, checkfirst=True)
    done = set(connection.execute(select(table.c.version)).scalars())
    applied = []
    for version in sorted(set(steps) - done):
        steps[version](connection)
        connection.execute(table.insert().values(version=version, applied_at=time.time()))
        applied.append(version)
    return applied


def migrations_table(name: str, owner: MetaData) -> Table:
    """A table recording which migrations of one track were applied, and when."""
    return Table(
        name,
        owner,
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("applied_at", Float, nullable=False),
    )


def migrate(connection: Connection) -> list[int]:
    """Apply the ledger's migrations not yet applied, in order; return those applied now."""
    return apply_migrations(connection, schema_migrations, MIGRATIONS)


def current_version(connection: Connection) -> int:
    """The highest migration applied (0 for an empty database)."""
    if not inspect(connection).has_table("schema_migrations"):
        return 0
    versions = connection.execute(select(schema_migrations.c.version)).scalars().all()
    return max(versions, default=0)

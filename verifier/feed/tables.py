"""The feed's tables (records, the sequenced events awaiting their department's signature,
the signers' published public keys, subscribers, dead letters, its head) and their own
migrations, on the ledger store's database: `verifier.feed.store`, `verifier.feed.keys` and
`verifier.feed.subscribers` use them."""

from __future__ import annotations

import json
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
    UniqueConstraint,
    func,
    inspect,
    select,
    update,
)

from ledger import migrations_table

metadata = MetaData()
feed_migrations = migrations_table("feed_migrations", metadata)

feed_meta = Table(
    "feed_meta",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("feed_id", LargeBinary(16), nullable=False),
    Column("cursor_key", LargeBinary(32), nullable=False),
    # the published head: the longest gapless prefix of signed records (what readers see)
    Column("head", BigInteger, nullable=False),
    Column("head_block", BigInteger, nullable=False),  # the last block a sequence came from
    # v6: the last sequence given (>= head; above it, records await their signers)
    Column("assigned", BigInteger, nullable=True),
)

feed_records = Table(
    "feed_records",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("record_id", String(40), nullable=False, unique=True),
    Column("tx_hash", LargeBinary(32), nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("department", String(64), nullable=False),
    Column("determined_on", String(10), nullable=False),
    Column("appended_at", Float, nullable=False),
    Column("body", Text, nullable=False),  # the signed record as served
    # v2: whose record it is, and whether its body still names the committer (masked)
    Column("commitment_hash", LargeBinary(32), nullable=True),
    Column("personal", Boolean, nullable=True),
    # v4: the sequence of the record that ended this breach (repair, expiry, correction):
    # from then on the public scope withholds it (published now only), others keep it
    Column("ended_by", BigInteger, nullable=True),
    UniqueConstraint("tx_hash", "log_index", name="feed_records_event"),
)
Index("feed_records_scope", feed_records.c.scope, feed_records.c.seq)
Index("feed_records_day", feed_records.c.determined_on)
Index("feed_records_personal", feed_records.c.personal, feed_records.c.commitment_hash)
Index("feed_records_published", feed_records.c.scope, feed_records.c.ended_by, feed_records.c.seq)
Index("feed_records_commitment", feed_records.c.commitment_hash, feed_records.c.seq)

# The kinds that end a breach's publication, and the kind they end.
ENDING_KINDS = ("repair", "expiry", "correction")
ENDED_KIND = "breach"

feed_subscribers = Table(
    "feed_subscribers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    Column("scope", String(16), nullable=False),
    Column("secret", LargeBinary(32), nullable=False),  # HMAC key of the bodies sent
    Column("created_at", Float, nullable=False),
    Column("delivered_seq", BigInteger, nullable=False),  # delivered or dead up to here
    Column("attempts", Integer, nullable=False),  # failed tries of the next record
    Column("next_attempt_at", Float, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("lease_until", Float, nullable=False),  # one deliverer per subscriber at a time
    Column("active", Boolean, nullable=False),
)

feed_dead_letters = Table(
    "feed_dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscriber_id", Integer, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("record_id", String(40), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("dead_at", Float, nullable=False),
    UniqueConstraint("subscriber_id", "seq", name="feed_dead_letters_once"),
)

# Events the builder withheld (another department's outcome on a commitment of this store):
# never published, never pending again, and listed for an operator.
feed_withheld = Table(
    "feed_withheld",
    metadata,
    Column("tx_hash", LargeBinary(32), primary_key=True),
    Column("log_index", Integer, primary_key=True, autoincrement=False),
    Column("block_number", BigInteger, nullable=False),
    Column("department", String(64), nullable=False),
    Column("commitment_hash", LargeBinary(32), nullable=False),
    Column("reason", Text, nullable=False),
    Column("withheld_at", Float, nullable=False),
)


# v6: events given their sequence by the feed's sequencer, whose department's report key it
# does not hold: only the order, no body. The department's own instance rebuilds the record
# from the indexed event, signs it into feed_records and deletes the row, in one transaction.
feed_sequenced = Table(
    "feed_sequenced",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("tx_hash", LargeBinary(32), nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("department", String(64), nullable=False),
    Column("sequenced_at", Float, nullable=False),
    UniqueConstraint("tx_hash", "log_index", name="feed_sequenced_event"),
)
Index("feed_sequenced_department", feed_sequenced.c.department, feed_sequenced.c.seq)


# v7: each department's public report keys, published by the instance signing its records
# (issue 18): any instance serves them at /v1/feed/keys and `feed check` verifies with them,
# no private key needed. A rotated key adds a row; the old rows stay so that old records
# still verify. Only an instance holding a key's private half publishes it.
feed_keys = Table(
    "feed_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # the order published
    Column("department", String(64), nullable=False),
    Column("algorithm", String(16), nullable=False),
    Column("public_key", String(512), nullable=False),  # base64 of the DER SPKI
    Column("published_at", Float, nullable=False),
    # the lowest sequence of a record signed with it as it entered the feed (redactions,
    # which re-sign older records with the current key, do not count); None: none yet
    Column("first_seq", BigInteger, nullable=True),
    UniqueConstraint("department", "public_key", name="feed_keys_once"),
)


def _create_v1(connection: Connection) -> None:
    metadata.create_all(
        connection, tables=[feed_meta, feed_records, feed_subscribers, feed_dead_letters]
    )
    # The follower reads the ledger's event index by block; the ledger has no such index.
    connection.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS feed_events_by_block "
        "ON contract_events (block_number, log_index)"
    )


def _commitments_v2(connection: Connection) -> None:
    """Which commitment each record is of, and whether it names the committer: so that an
    erased commitment's records can be redacted. v1 may have created the columns already
    (it creates the tables as defined now)."""
    present = {column["name"] for column in inspect(connection).get_columns("feed_records")}
    for name, kind in (("commitment_hash", "BYTEA"), ("personal", "BOOLEAN")):
        if name not in present:
            if kind == "BYTEA" and connection.dialect.name == "sqlite":
                kind = "BLOB"
            connection.exec_driver_sql(f"ALTER TABLE feed_records ADD COLUMN {name} {kind}")
    if "personal" not in present:
        connection.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS feed_records_personal "
            "ON feed_records (personal, commitment_hash)"
        )
    rows = connection.execute(select(feed_records.c.seq, feed_records.c.body)).all()
    for row in rows:
        body = json.loads(row.body)
        connection.execute(
            update(feed_records)
            .where(feed_records.c.seq == row.seq)
            .values(
                commitment_hash=bytes.fromhex(body["evidence"]["commitment_hash"][2:]),
                personal=body.get("committer_name") is not None,
            )
        )


def _erased_commitments_v3(connection: Connection) -> None:
    """The few erased commitments, indexed apart: the follower looks for records to redact
    on every round, and must not walk every served record to find none."""
    connection.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS feed_erased_commitments "
        "ON commitments (hash) WHERE wrapped_key IS NULL"
    )


def _ended_breaches_v4(connection: Connection) -> None:
    """Which breach records have ended (a later repair, expiry or correction of the same
    commitment by the same department), indexed: the public scope serves only the breaches
    published now, without reading every record on every page. v1 may have created the
    column and indexes already (it creates the tables as defined now)."""
    present = {column["name"] for column in inspect(connection).get_columns("feed_records")}
    if "ended_by" not in present:
        connection.exec_driver_sql("ALTER TABLE feed_records ADD COLUMN ended_by BIGINT")
    connection.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS feed_records_published ON feed_records (scope, ended_by, seq)"
    )
    connection.exec_driver_sql(
        "CREATE INDEX IF NOT EXISTS feed_records_commitment ON feed_records (commitment_hash, seq)"
    )
    ending = feed_records.alias("ending")
    first_end = (
        select(func.min(ending.c.seq))
        .where(
            ending.c.commitment_hash == feed_records.c.commitment_hash,
            ending.c.department == feed_records.c.department,
            ending.c.kind.in_(ENDING_KINDS),
            ending.c.seq > feed_records.c.seq,
        )
        .scalar_subquery()
    )
    connection.execute(
        update(feed_records)
        .where(feed_records.c.kind == ENDED_KIND, feed_records.c.ended_by.is_(None))
        .values(ended_by=first_end)
    )


def _withheld_events_v5(connection: Connection) -> None:
    """Withheld events leave the pending ones for good: a key holder of another department
    could otherwise fill the builder's window with them and stall the feed."""
    metadata.create_all(connection, tables=[feed_withheld])


def _sequenced_v6(connection: Connection) -> None:
    """The sequencer and the signers apart (issue 18): the last sequence given beside the
    published head, and the events sequenced for a signer. v1 may have created the column
    already (it creates the tables as defined now)."""
    present = {column["name"] for column in inspect(connection).get_columns("feed_meta")}
    if "assigned" not in present:
        connection.exec_driver_sql("ALTER TABLE feed_meta ADD COLUMN assigned BIGINT")
    connection.execute(
        update(feed_meta).where(feed_meta.c.assigned.is_(None)).values(assigned=feed_meta.c.head)
    )
    metadata.create_all(connection, tables=[feed_sequenced])


def _published_keys_v7(connection: Connection) -> None:
    """The departments' public report keys, published by their signers (issue 18)."""
    metadata.create_all(connection, tables=[feed_keys])


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _create_v1,
    2: _commitments_v2,
    3: _erased_commitments_v3,
    4: _ended_breaches_v4,
    5: _withheld_events_v5,
    6: _sequenced_v6,
    7: _published_keys_v7,
}

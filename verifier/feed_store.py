"""The feed's durable tables (records, subscribers, dead letters) and their own migrations.

Sequence numbers are given by one writer at a time: the append transaction locks the
`feed_meta` row (SQLite: BEGIN IMMEDIATE; PostgreSQL: SELECT ... FOR UPDATE), gives the
next numbers and moves the head in the same commit, so no reader ever sees a gap, and the
unique (tx_hash, log_index) refuses a second record of one event.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

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
    inspect,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from ledger.schema import apply_migrations, commitments, contract_events, migrations_table
from ledger.store import Store

from .feed import FeedRecord, Scope
from .feed_cursor import CursorCodec

metadata = MetaData()
feed_migrations = migrations_table("feed_migrations", metadata)

feed_meta = Table(
    "feed_meta",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("feed_id", LargeBinary(16), nullable=False),
    Column("cursor_key", LargeBinary(32), nullable=False),
    Column("head", BigInteger, nullable=False),  # the last sequence given
    Column("head_block", BigInteger, nullable=False),  # the last block a record came from
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
    UniqueConstraint("tx_hash", "log_index", name="feed_records_event"),
)
Index("feed_records_scope", feed_records.c.scope, feed_records.c.seq)
Index("feed_records_day", feed_records.c.determined_on)
Index("feed_records_personal", feed_records.c.personal, feed_records.c.commitment_hash)

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


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _create_v1,
    2: _commitments_v2,
    3: _erased_commitments_v3,
}
OUTCOME_EVENT = "OutcomeRecorded"


@dataclass(frozen=True)
class PendingEvent:
    """An indexed OutcomeRecorded event without a feed record yet."""

    block_number: int
    tx_hash: bytes
    log_index: int
    args: str  # JSON


@dataclass(frozen=True)
class StoredRow:
    """A feed record as the table holds it: the columns served by, and the body."""

    seq: int
    record_id: str
    transaction: str
    log_index: int
    kind: str
    scope: str
    department: str
    body: str


class FeedStore:
    """The feed's tables on the ledger store's database; opening applies their migrations."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._engine = store.engine
        self._writer = store.engine.execution_options(immediate=True)
        try:
            with self._writer.begin() as connection:
                apply_migrations(connection, feed_migrations, MIGRATIONS)
                if connection.execute(select(feed_meta.c.id)).first() is None:
                    connection.execute(
                        feed_meta.insert().values(
                            id=1,
                            feed_id=os.urandom(16),
                            cursor_key=os.urandom(32),
                            head=0,
                            head_block=0,
                        )
                    )
        except IntegrityError:
            pass  # another process created the feed at the same moment: use theirs
        with self._engine.connect() as connection:
            meta = connection.execute(select(feed_meta)).one()
        self.cursors = CursorCodec(bytes(meta.feed_id), bytes(meta.cursor_key))

    # ------------------------------------------------------------------ appending

    def append(
        self,
        build: Callable[[Connection, Sequence[PendingEvent]], list[FeedRecord]],
        safe_block: int,
        window: int,
        limit: int,
        now: float | None = None,
    ) -> list[FeedRecord]:
        """Append records for indexed events up to `safe_block` not in the feed yet, in chain
        order, in one transaction; `build(connection, events)` makes and signs them (given
        sequence numbers from head + 1), stopping early if it must. Returns those appended."""
        with self._engine.connect() as connection:
            # Looked at first without the write lock: most rounds find nothing to do.
            head_block = int(connection.execute(select(feed_meta.c.head_block)).scalar_one())
            if not _pending(connection, max(0, head_block - window), safe_block, 1):
                return []
        with self._writer.begin() as connection:
            meta = connection.execute(
                select(feed_meta.c.head, feed_meta.c.head_block).with_for_update()
            ).one()
            low = max(0, int(meta.head_block) - window)
            events = _pending(connection, low, safe_block, limit)
            if not events:
                return []
            records = build(connection, events)
            for offset, record in enumerate(records, start=1):
                if record.sequence != int(meta.head) + offset:
                    raise ValueError("feed records must continue the sequence from the head")
            if not records:
                return []
            stamp = time.time() if now is None else now
            connection.execute(
                feed_records.insert(), [_record_row(record, stamp) for record in records]
            )
            connection.execute(
                update(feed_meta).values(
                    head=records[-1].sequence,
                    head_block=max(int(meta.head_block), records[-1].facts.evidence.block),
                )
            )
        return records

    def erased_with_personal_data(self, limit: int = 500) -> list[tuple[int, str]]:
        """(sequence, body) of records that still name a committer whose data were erased."""
        # Led by the erased commitments (migration 3's partial index), each looked up in
        # feed_records_personal: the cost follows the erasures, not the feed's length.
        erased = select(commitments.c.hash).where(commitments.c.wrapped_key.is_(None))
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(feed_records.c.seq, feed_records.c.body)
                .where(
                    feed_records.c.personal.is_(True),
                    feed_records.c.commitment_hash.in_(erased),
                )
                .order_by(feed_records.c.seq)
                .limit(limit)
            ).all()
        return [(int(row.seq), row.body) for row in rows]

    def redact(self, records: Sequence[FeedRecord]) -> None:
        """Replace records by their redacted, re-signed versions (same sequence and id)."""
        if not records:
            return
        with self._writer.begin() as connection:
            for record in records:
                connection.execute(
                    update(feed_records)
                    .where(
                        feed_records.c.seq == record.sequence,
                        feed_records.c.record_id == record.id,
                    )
                    .values(body=record.to_json(), personal=False)
                )

    def head(self) -> int:
        """The last sequence number given (0 when the feed is empty)."""
        with self._engine.connect() as connection:
            return int(connection.execute(select(feed_meta.c.head)).scalar_one())

    # ------------------------------------------------------------------ reading

    def page(self, after: int, limit: int, scopes: Sequence[Scope]) -> tuple[list[str], int]:
        """Up to `limit` record bodies after `after` in `scopes`, and where the next page starts.

        When the page is not full the next position is the head read before the page: every
        record up to it was committed (the head moves in the same commit) and none was in scope.
        """
        with self._engine.connect() as connection:
            head = int(connection.execute(select(feed_meta.c.head)).scalar_one())
            rows = connection.execute(
                select(feed_records.c.seq, feed_records.c.body)
                .where(feed_records.c.seq > after, feed_records.c.scope.in_(list(scopes)))
                .order_by(feed_records.c.seq)
                .limit(limit)
            ).all()
        last = int(rows[-1].seq) if rows else after
        following = last if len(rows) == limit else max(last, head, after)
        return [row.body for row in rows], following

    def bodies(
        self, after: int = 0, scopes: Sequence[Scope] | None = None, since: str | None = None
    ) -> Iterator[tuple[int, str]]:
        """(sequence, body) of every record after `after` in order, optionally in `scopes` and
        determined on or after `since` (YYYY-MM-DD), read in chunks."""
        position = after
        while True:
            query = select(feed_records.c.seq, feed_records.c.body).where(
                feed_records.c.seq > position
            )
            if scopes is not None:
                query = query.where(feed_records.c.scope.in_(list(scopes)))
            if since is not None:
                query = query.where(feed_records.c.determined_on >= since)
            with self._engine.connect() as connection:
                rows = connection.execute(query.order_by(feed_records.c.seq).limit(1000)).all()
            if not rows:
                return
            for row in rows:
                yield int(row.seq), row.body
            position = int(rows[-1].seq)

    def stored_rows(self) -> Iterator[StoredRow]:
        """Every record as stored (columns and body), in sequence order, read in chunks."""
        position = 0
        while True:
            with self._engine.connect() as connection:
                rows = connection.execute(
                    select(feed_records)
                    .where(feed_records.c.seq > position)
                    .order_by(feed_records.c.seq)
                    .limit(1000)
                ).all()
            if not rows:
                return
            for row in rows:
                yield StoredRow(
                    int(row.seq),
                    row.record_id,
                    "0x" + bytes(row.tx_hash).hex(),
                    int(row.log_index),
                    row.kind,
                    row.scope,
                    row.department,
                    row.body,
                )
            position = int(rows[-1].seq)

    def head_block(self) -> int:
        """The last block a record came from (0 when none)."""
        with self._engine.connect() as connection:
            return int(connection.execute(select(feed_meta.c.head_block)).scalar_one())

    def sequences(self) -> list[int]:
        """Every sequence number in the feed, in order."""
        with self._engine.connect() as connection:
            return [
                int(s)
                for s in connection.execute(
                    select(feed_records.c.seq).order_by(feed_records.c.seq)
                ).scalars()
            ]

    def appended_at(self) -> dict[str, float]:
        """When each record entered the feed, by record id (for the figures)."""
        with self._engine.connect() as connection:
            rows = connection.execute(select(feed_records.c.record_id, feed_records.c.appended_at))
            return {row.record_id: float(row.appended_at) for row in rows}


def head_in(connection: Connection) -> int:
    """The feed's head as `connection`'s transaction sees it."""
    return int(connection.execute(select(feed_meta.c.head)).scalar_one())


def _pending(connection: Connection, low: int, high: int, limit: int) -> list[PendingEvent]:
    events = contract_events.c
    joined = contract_events.outerjoin(
        feed_records,
        (feed_records.c.tx_hash == events.tx_hash) & (feed_records.c.log_index == events.log_index),
    )
    rows = connection.execute(
        select(events.block_number, events.tx_hash, events.log_index, events.args)
        .select_from(joined)
        .where(
            events.name == OUTCOME_EVENT,
            events.block_number >= low,
            events.block_number <= high,
            feed_records.c.seq.is_(None),
        )
        .order_by(events.block_number, events.log_index)
        .limit(limit)
    ).all()
    return [
        PendingEvent(int(r.block_number), bytes(r.tx_hash), int(r.log_index), r.args) for r in rows
    ]


def _record_row(record: FeedRecord, stamp: float) -> dict[str, Any]:
    facts = record.facts
    return {
        "seq": record.sequence,
        "record_id": facts.id,
        "tx_hash": bytes.fromhex(facts.evidence.transaction.removeprefix("0x")),
        "log_index": facts.evidence.log_index,
        "block_number": facts.evidence.block,
        "kind": facts.kind,
        "scope": facts.publication_scope,
        "department": facts.department_code,
        "determined_on": facts.determined_on.isoformat(),
        "appended_at": stamp,
        "body": record.to_json(),
        "commitment_hash": bytes.fromhex(facts.evidence.commitment_hash[2:]),
        "personal": record.details.committer_name is not None
        or record.details.credit_code is not None,
    }

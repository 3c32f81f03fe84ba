"""The feed's durable tables (records, subscribers, dead letters) and their own migrations.

Sequence numbers are given by one writer at a time: the append transaction locks the
`feed_meta` row (SQLite: BEGIN IMMEDIATE; PostgreSQL: SELECT ... FOR UPDATE), gives the
next numbers and moves the head in the same commit, so no reader ever sees a gap, and the
unique (tx_hash, log_index) refuses a second record of one event.
"""

from __future__ import annotations

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
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from ledger.schema import apply_migrations, contract_events, migrations_table
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
    UniqueConstraint("tx_hash", "log_index", name="feed_records_event"),
)
Index("feed_records_scope", feed_records.c.scope, feed_records.c.seq)
Index("feed_records_day", feed_records.c.determined_on)

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


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _create_v1}
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


@dataclass(frozen=True)
class Subscriber:
    """A webhook subscriber and how far its deliveries got."""

    id: int
    url: str
    scope: str
    secret: bytes
    created_at: float
    delivered_seq: int
    attempts: int
    next_attempt_at: float
    last_error: str | None
    active: bool


@dataclass(frozen=True)
class DeadLetter:
    """A record given up on for one subscriber after the allowed tries."""

    subscriber_id: int
    seq: int
    record_id: str
    attempts: int
    last_error: str
    dead_at: float


def _subscriber(row: Any) -> Subscriber:
    return Subscriber(
        row.id,
        row.url,
        row.scope,
        bytes(row.secret),
        row.created_at,
        int(row.delivered_seq),
        row.attempts,
        row.next_attempt_at,
        row.last_error,
        bool(row.active),
    )


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

    # ------------------------------------------------------------------ subscribers

    def add_subscriber(
        self,
        url: str,
        scope: str,
        secret: bytes,
        *,
        from_start: bool = True,
        now: float | None = None,
    ) -> int:
        """Register a webhook: it receives every record (or, not `from_start`, the new ones)."""
        stamp = time.time() if now is None else now
        with self._writer.begin() as connection:
            head = int(connection.execute(select(feed_meta.c.head)).scalar_one())
            inserted = connection.execute(
                feed_subscribers.insert().values(
                    url=url,
                    scope=scope,
                    secret=secret,
                    created_at=stamp,
                    delivered_seq=0 if from_start else head,
                    attempts=0,
                    next_attempt_at=0.0,
                    lease_until=0.0,
                    active=True,
                )
            ).inserted_primary_key
        assert inserted is not None
        return int(inserted[0])

    def subscribers(self) -> list[Subscriber]:
        """Every subscriber, oldest first."""
        with self._engine.connect() as connection:
            rows = connection.execute(select(feed_subscribers).order_by(feed_subscribers.c.id))
            return [_subscriber(row) for row in rows]

    def claim(self, now: float, lease_s: float) -> list[Subscriber]:
        """Active subscribers due for a try that no other deliverer holds; leased to this one."""
        due = select(feed_subscribers).where(
            feed_subscribers.c.active.is_(True),
            feed_subscribers.c.next_attempt_at <= now,
            feed_subscribers.c.lease_until <= now,
        )
        with self._engine.connect() as connection:
            # Looked at first without the write lock: most rounds have nobody due.
            if connection.execute(due.limit(1)).first() is None:
                return []
        with self._writer.begin() as connection:
            rows = connection.execute(due.with_for_update(skip_locked=True)).all()
            if rows:
                connection.execute(
                    update(feed_subscribers)
                    .where(feed_subscribers.c.id.in_([row.id for row in rows]))
                    .values(lease_until=now + lease_s)
                )
        return [_subscriber(row) for row in rows]

    def undelivered(
        self, subscriber: Subscriber, scopes: Sequence[Scope], limit: int
    ) -> list[tuple[int, str, str]]:
        """(sequence, record id, body) of the next records for `subscriber`, in order."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(feed_records.c.seq, feed_records.c.record_id, feed_records.c.body)
                .where(
                    feed_records.c.seq > subscriber.delivered_seq,
                    feed_records.c.scope.in_(list(scopes)),
                )
                .order_by(feed_records.c.seq)
                .limit(limit)
            ).all()
        return [(int(row.seq), row.record_id, row.body) for row in rows]

    def delivered(self, subscriber_id: int, seq: int) -> None:
        """Everything up to `seq` reached the subscriber: move on, clear the failures."""
        with self._writer.begin() as connection:
            connection.execute(
                update(feed_subscribers)
                .where(feed_subscribers.c.id == subscriber_id)
                .values(delivered_seq=seq, attempts=0, next_attempt_at=0.0, last_error=None)
            )

    def failed(self, subscriber_id: int, attempts: int, retry_at: float, error: str) -> None:
        """A try failed: wait until `retry_at`, release the lease."""
        with self._writer.begin() as connection:
            connection.execute(
                update(feed_subscribers)
                .where(feed_subscribers.c.id == subscriber_id)
                .values(
                    attempts=attempts, next_attempt_at=retry_at, last_error=error, lease_until=0.0
                )
            )

    def dead(
        self, subscriber_id: int, seq: int, record_id: str, attempts: int, error: str, now: float
    ) -> None:
        """Give up on one record for a subscriber: a dead letter, and on to the next."""
        with self._writer.begin() as connection:
            exists = connection.execute(
                select(feed_dead_letters.c.id).where(
                    feed_dead_letters.c.subscriber_id == subscriber_id,
                    feed_dead_letters.c.seq == seq,
                )
            ).first()
            if exists is None:
                connection.execute(
                    feed_dead_letters.insert().values(
                        subscriber_id=subscriber_id,
                        seq=seq,
                        record_id=record_id,
                        attempts=attempts,
                        last_error=error,
                        dead_at=now,
                    )
                )
            connection.execute(
                update(feed_subscribers)
                .where(feed_subscribers.c.id == subscriber_id)
                .values(
                    delivered_seq=seq,
                    attempts=0,
                    next_attempt_at=0.0,
                    last_error=error,
                    lease_until=0.0,
                )
            )

    def release(self, subscriber_id: int) -> None:
        """Let another deliverer take the subscriber."""
        with self._writer.begin() as connection:
            connection.execute(
                update(feed_subscribers)
                .where(feed_subscribers.c.id == subscriber_id)
                .values(lease_until=0.0)
            )

    def dead_letters(self, subscriber_id: int | None = None) -> list[DeadLetter]:
        """Dead letters, oldest first."""
        query = select(feed_dead_letters).order_by(feed_dead_letters.c.id)
        if subscriber_id is not None:
            query = query.where(feed_dead_letters.c.subscriber_id == subscriber_id)
        with self._engine.connect() as connection:
            return [
                DeadLetter(
                    r.subscriber_id, int(r.seq), r.record_id, r.attempts, r.last_error, r.dead_at
                )
                for r in connection.execute(query)
            ]

    def lag(self, subscriber: Subscriber, scopes: Sequence[Scope]) -> tuple[int, float | None]:
        """Records not yet delivered to `subscriber`, and when the oldest entered the feed."""
        with self._engine.connect() as connection:
            count, oldest = connection.execute(
                select(func.count(), func.min(feed_records.c.appended_at)).where(
                    feed_records.c.seq > subscriber.delivered_seq,
                    feed_records.c.scope.in_(list(scopes)),
                )
            ).one()
        return int(count), None if oldest is None else float(oldest)


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
    }

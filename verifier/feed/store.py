"""The feed's records: sequenced in one gapless order, signed by their departments, read by
page, cursor and day.

Sequence numbers are given by one writer at a time (the `feed` lease's sequencer): the append
transaction locks the `feed_meta` row (SQLite: BEGIN IMMEDIATE; PostgreSQL: SELECT ... FOR
UPDATE) and gives the next numbers (`assigned`). An event whose department's report key the
sequencer holds gets its signed record in that transaction; one whose key it lacks is written
to `feed_sequenced` (the order only) for its department's own instance to rebuild and sign
(`sign`), which moves the row into `feed_records` under the same lock. Whoever inserts signed
records moves the published head over the gapless prefix in the same commit, and every reader
serves only up to the head: no reader ever sees a gap, or record 10 before record 9. The
unique (tx_hash, log_index) of both tables refuses a second record of one event. The tables
and their migrations are `verifier.feed.tables`'s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ledger import (
    SigningKey,
    Store,
    Vault,
    VaultError,
    apply_migrations,
    commitments,
    contract_events,
    is_sealed_secret,
)
from verifier.feed.cursor import CursorCodec
from verifier.feed.keys import publish_key
from verifier.feed.records import FeedRecord, Scope
from verifier.feed.tables import (
    ENDED_KIND,
    ENDING_KINDS,
    MIGRATIONS,
    feed_meta,
    feed_migrations,
    feed_records,
    feed_sequenced,
    feed_withheld,
)

OUTCOME_EVENT = "OutcomeRecorded"
CURSOR_KEY_PURPOSE = b"feed-cursor-key"


@dataclass(frozen=True)
class PendingEvent:
    """An indexed OutcomeRecorded event without a feed record yet."""

    block_number: int
    tx_hash: bytes
    log_index: int
    args: str  # JSON


@dataclass(frozen=True)
class Sequenced:
    """An event given its place in the feed, awaiting its department's signed record."""

    sequence: int
    tx_hash: bytes
    log_index: int
    block_number: int
    department: str


Entry = FeedRecord | Sequenced
Fence = Callable[[Connection], None]


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
    """The feed's tables on the ledger store's database; opening applies their migrations.

    The cursor key is kept sealed under the master key (`vault`); a store that kept it in
    clear has it sealed when first opened with the vault. Without the vault everything
    but cursors works (exports, status, checks)."""

    def __init__(self, store: Store, vault: Vault | None = None) -> None:
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
                            cursor_key=_new_cursor_key(vault),
                            head=0,
                            head_block=0,
                            assigned=0,
                        )
                    )
        except IntegrityError:
            pass  # another process created the feed at the same moment: use theirs
        with self._engine.connect() as connection:
            meta = connection.execute(select(feed_meta)).one()
        self._feed_id, self._cursor_key = bytes(meta.feed_id), bytes(meta.cursor_key)
        self._vault = vault
        self._cursors: CursorCodec | None = None
        if vault is not None and not is_sealed_secret(self._cursor_key):
            self._cursor_key = _seal_cursor_key(self._writer, vault, self._cursor_key)

    @property
    def vault(self) -> Vault | None:
        """The master key's vault this feed was opened with (None: without it)."""
        return self._vault

    @property
    def cursors(self) -> CursorCodec:
        """The codec of this feed's cursors; VaultError when its key is sealed and this
        store was opened without the master key."""
        if self._cursors is None:
            key = self._cursor_key
            if is_sealed_secret(key):
                if self._vault is None:
                    raise VaultError("the feed's cursor key is sealed: open it with the master key")
                key = self._vault.open_secret(key, CURSOR_KEY_PURPOSE)
            self._cursors = CursorCodec(self._feed_id, key)
        return self._cursors

    # ------------------------------------------------------------------ appending

    def append(
        self,
        build: Callable[[Connection, Sequence[PendingEvent]], Sequence[Entry]],
        safe_block: int,
        window: int,
        limit: int,
        now: float | None = None,
        fence: Fence | None = None,
    ) -> list[Entry]:
        """Sequence the indexed events up to `safe_block` not in the feed yet, in chain order,
        in one transaction; `build(connection, events)` gives each its entry, numbered from
        the last sequence given + 1: a signed record, or a `Sequenced` place for its
        department's signer (stopping early if it must). `fence` (the lease's check) runs in
        the transaction. Returns the entries added."""
        with self._engine.connect() as connection:
            # Looked at first without the write lock: most rounds find nothing to do.
            head_block = int(connection.execute(select(feed_meta.c.head_block)).scalar_one())
            if not _pending(connection, max(0, head_block - window), safe_block, 1):
                return []
        with self._writer.begin() as connection:
            meta = connection.execute(
                select(
                    feed_meta.c.head, feed_meta.c.assigned, feed_meta.c.head_block
                ).with_for_update()
            ).one()
            if fence is not None:
                fence(connection)
            low = max(0, int(meta.head_block) - window)
            events = _pending(connection, low, safe_block, limit)
            if not events:
                return []
            entries = list(build(connection, events))
            assigned = _assigned(meta)
            for offset, entry in enumerate(entries, start=1):
                if entry.sequence != assigned + offset:
                    raise ValueError("feed entries must continue the sequence given")
            if not entries:
                return []
            stamp = time.time() if now is None else now
            records = [entry for entry in entries if isinstance(entry, FeedRecord)]
            places = [entry for entry in entries if isinstance(entry, Sequenced)]
            if records:
                connection.execute(
                    feed_records.insert(), [_record_row(record, stamp) for record in records]
                )
                _mark_ended(connection, records)
            if places:
                connection.execute(
                    feed_sequenced.insert(), [_sequenced_row(place, stamp) for place in places]
                )
            connection.execute(
                update(feed_meta).values(
                    assigned=entries[-1].sequence,
                    head_block=max(int(meta.head_block), _block(entries[-1])),
                )
            )
            _advance_head(connection)
        return entries

    def sign(
        self,
        department: str,
        build: Callable[[Connection, Sequence[Sequenced]], Sequence[FeedRecord]],
        limit: int,
        now: float | None = None,
        fence: Fence | None = None,
    ) -> list[FeedRecord]:
        """Sign `department`'s sequenced events, in sequence order, in one transaction:
        `build(connection, places)` rebuilds and signs their records (leaving out any it
        refuses); each must be of `department` and take the place of a sequenced event of
        it, whose row it replaces. The head moves over the gapless prefix in the same commit.
        Returns the records signed."""
        staged = (
            select(feed_sequenced)
            .where(feed_sequenced.c.department == department)
            .order_by(feed_sequenced.c.seq)
            .limit(limit)
        )
        with self._engine.connect() as connection:
            # Looked at first without the write lock: most rounds find nothing to sign.
            if connection.execute(staged.limit(1)).first() is None:
                return []
        with self._writer.begin() as connection:
            connection.execute(select(feed_meta.c.head).with_for_update()).one()
            if fence is not None:
                fence(connection)
            # Read again under the lock: another signer may have taken them meanwhile.
            places = [_sequenced(row) for row in connection.execute(staged).all()]
            if not places:
                return []
            records = list(build(connection, places))
            by_sequence = {place.sequence: place for place in places}
            for record in records:
                place = by_sequence.get(record.sequence)
                evidence = record.facts.evidence
                if (
                    place is None
                    or record.facts.department_code != department
                    or evidence.transaction != "0x" + place.tx_hash.hex()
                    or evidence.log_index != place.log_index
                ):
                    raise ValueError(
                        f"record {record.sequence} does not take a place sequenced for {department}"
                    )
            if not records:
                return []
            stamp = time.time() if now is None else now
            connection.execute(
                delete(feed_sequenced).where(
                    feed_sequenced.c.seq.in_([record.sequence for record in records])
                )
            )
            connection.execute(
                feed_records.insert(), [_record_row(record, stamp) for record in records]
            )
            _mark_ended(connection, records)
            _advance_head(connection)
        return records

    def erased_with_personal_data(
        self, limit: int = 500, departments: Collection[str] | None = None
    ) -> list[tuple[int, str]]:
        """(sequence, body) of records (of `departments`, if given) that still name a
        committer whose data were erased."""
        # Led by the erased commitments (migration 3's partial index), each looked up in
        # feed_records_personal: the cost follows the erasures, not the feed's length.
        erased = select(commitments.c.hash).where(commitments.c.wrapped_key.is_(None))
        query = select(feed_records.c.seq, feed_records.c.body).where(
            feed_records.c.personal.is_(True), feed_records.c.commitment_hash.in_(erased)
        )
        if departments is not None:
            named = [departments] if isinstance(departments, str) else list(departments)
            query = query.where(feed_records.c.department.in_(named))
        with self._engine.connect() as connection:
            rows = connection.execute(query.order_by(feed_records.c.seq).limit(limit)).all()
        return [(int(row.seq), row.body) for row in rows]

    def redact(
        self, records: Sequence[FeedRecord], keys: Mapping[str, SigningKey] | None = None
    ) -> None:
        """Replace records by their redacted, re-signed versions (same sequence and id),
        publishing in the same transaction the keys (`keys`, by department) they were
        re-signed with."""
        if not records:
            return
        with self._writer.begin() as connection:
            for department, key in sorted((keys or {}).items()):
                publish_key(connection, department, key)
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
        """The published head: the last of the gapless signed records (0 when none)."""
        with self._engine.connect() as connection:
            return int(connection.execute(select(feed_meta.c.head)).scalar_one())

    def assigned(self) -> int:
        """The last sequence number given (the head, or above it while records await their
        departments' signatures)."""
        with self._engine.connect() as connection:
            return assigned_in(connection)

    def blocked_on(self) -> str | None:
        """The department whose unsigned record holds the head back (None: nothing waits)."""
        with self._engine.connect() as connection:
            found = connection.execute(
                select(feed_sequenced.c.department).order_by(feed_sequenced.c.seq).limit(1)
            ).scalar_one_or_none()
        return None if found is None else str(found)

    def waiting_departments(self) -> list[str]:
        """The departments with places awaiting their signed records."""
        with self._engine.connect() as connection:
            return sorted(
                str(d)
                for d in connection.execute(select(feed_sequenced.c.department).distinct())
                .scalars()
                .all()
            )

    def sequenced(self, department: str | None = None) -> list[Sequenced]:
        """The events awaiting their department's signed record (of `department`, if given),
        in sequence order."""
        query = select(feed_sequenced).order_by(feed_sequenced.c.seq)
        if department is not None:
            query = query.where(feed_sequenced.c.department == department)
        with self._engine.connect() as connection:
            return [_sequenced(row) for row in connection.execute(query).all()]

    def unpublished_events(self) -> set[tuple[str, int]]:
        """("0x" transaction, log index) of each event given a place above the head: signed
        or not, it is not served yet (`feed check` does not count it missing)."""
        found: set[tuple[str, int]] = set()
        with self._engine.connect() as connection:
            head = int(connection.execute(select(feed_meta.c.head)).scalar_one())
            for table in (feed_records, feed_sequenced):
                rows = connection.execute(
                    select(table.c.tx_hash, table.c.log_index).where(table.c.seq > head)
                ).all()
                found.update(("0x" + bytes(r.tx_hash).hex(), int(r.log_index)) for r in rows)
        return found

    # ------------------------------------------------------------------ reading

    def page(self, after: int, limit: int, scopes: Sequence[Scope]) -> tuple[list[str], int]:
        """Up to `limit` record bodies after `after` in `scopes`, and where the next page starts.

        When the page is not full the next position is the head read before the page: every
        record up to it was committed (the head moves in the same commit) and none was in scope.
        The public scope alone serves only what is published now (`in_scope`).
        """
        with self._engine.connect() as connection:
            head = int(connection.execute(select(feed_meta.c.head)).scalar_one())
            rows = connection.execute(
                select(feed_records.c.seq, feed_records.c.body)
                .where(feed_records.c.seq > after, feed_records.c.seq <= head, in_scope(scopes))
                .order_by(feed_records.c.seq)
                .limit(limit)
            ).all()
        last = int(rows[-1].seq) if rows else after
        following = last if len(rows) == limit else max(last, head, after)
        return [row.body for row in rows], following

    def bodies(
        self, after: int = 0, scopes: Sequence[Scope] | None = None, since: str | None = None
    ) -> Iterator[tuple[int, str]]:
        """(sequence, body) of every record after `after` in order, optionally in `scopes` (the
        public scope alone: what is published now, `in_scope`) and determined on or after
        `since` (YYYY-MM-DD), read in chunks, up to the published head."""
        position = after
        while True:
            query = select(feed_records.c.seq, feed_records.c.body).where(
                feed_records.c.seq > position, published()
            )
            if scopes is not None:
                query = query.where(in_scope(scopes))
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
        """Every published record as stored (columns and body), in sequence order, read in
        chunks up to the head read first."""
        position = 0
        head = self.head()
        while True:
            with self._engine.connect() as connection:
                rows = connection.execute(
                    select(feed_records)
                    .where(feed_records.c.seq > position, feed_records.c.seq <= head)
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

    def withheld_events(self) -> list[tuple[str, str, str]]:
        """(event id "tx:log", department, reason) of every event withheld, in chain order."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(
                    feed_withheld.c.tx_hash,
                    feed_withheld.c.log_index,
                    feed_withheld.c.department,
                    feed_withheld.c.reason,
                ).order_by(feed_withheld.c.block_number, feed_withheld.c.log_index)
            ).all()
        return [(f"0x{bytes(r.tx_hash).hex()}:{r.log_index}", r.department, r.reason) for r in rows]

    def head_block(self) -> int:
        """The last block a sequence number was given from (0 when none)."""
        with self._engine.connect() as connection:
            return int(connection.execute(select(feed_meta.c.head_block)).scalar_one())

    def sequences(self) -> list[int]:
        """Every published sequence number, in order."""
        with self._engine.connect() as connection:
            return [
                int(s)
                for s in connection.execute(
                    select(feed_records.c.seq).where(published()).order_by(feed_records.c.seq)
                ).scalars()
            ]

    def appended_at(self) -> dict[str, float]:
        """When each record entered the feed, by record id (for the figures)."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(feed_records.c.record_id, feed_records.c.appended_at).where(published())
            )
            return {row.record_id: float(row.appended_at) for row in rows}


def _new_cursor_key(vault: Vault | None) -> bytes:
    key = os.urandom(32)
    return key if vault is None else vault.seal_secret(key, CURSOR_KEY_PURPOSE)


def _seal_cursor_key(writer: Any, vault: Vault, clear: bytes) -> bytes:
    """Seal a cursor key kept in clear (a store from before sealing), in place; the sealed
    value (another process may have sealed it first: theirs is kept)."""
    sealed = vault.seal_secret(clear, CURSOR_KEY_PURPOSE)
    with writer.begin() as connection:
        connection.execute(
            update(feed_meta).where(feed_meta.c.cursor_key == clear).values(cursor_key=sealed)
        )
        return bytes(connection.execute(select(feed_meta.c.cursor_key)).scalar_one())


def published() -> ColumnElement[bool]:
    """The records up to the published head: every reader's bound (above it a record may
    be signed while an earlier one still waits for its department)."""
    return feed_records.c.seq <= _head()


def _head() -> ColumnElement[int]:
    return select(feed_meta.c.head).scalar_subquery()


def in_scope(scopes: Sequence[Scope]) -> ColumnElement[bool]:
    """The records a consumer reading `scopes` is served. The public scope alone gets the
    records published now: an ended breach's body is withheld once its ending record is
    served (up to the head: signed above it, the ending does not count yet); a consumer of
    restricted records keeps the whole history."""
    chosen = feed_records.c.scope.in_(list(scopes))
    if set(scopes) <= {"public"}:
        ended = feed_records.c.ended_by
        return and_(chosen, or_(ended.is_(None), ended > _head()))
    return chosen


def _mark_ended(connection: Connection, records: Sequence[FeedRecord]) -> None:
    """Mark the breach records that `records` end, and the breach records among `records`
    that a record signed before them ended (its department's records may be signed out of
    sequence order when sequenced by an instance without its key), in the transaction that
    inserts them."""
    for record in records:
        facts = record.facts
        if facts.kind == ENDED_KIND:
            _mark_ended_already(connection, record)
        if facts.kind not in ENDING_KINDS:
            continue
        connection.execute(
            update(feed_records)
            .where(
                feed_records.c.commitment_hash == bytes.fromhex(facts.evidence.commitment_hash[2:]),
                feed_records.c.seq < record.sequence,
                feed_records.c.kind == ENDED_KIND,
                feed_records.c.department == facts.department_code,
                feed_records.c.ended_by.is_(None),
            )
            .values(ended_by=record.sequence)
        )


def _mark_ended_already(connection: Connection, record: FeedRecord) -> None:
    facts = record.facts
    ending = connection.execute(
        select(func.min(feed_records.c.seq)).where(
            feed_records.c.commitment_hash == bytes.fromhex(facts.evidence.commitment_hash[2:]),
            feed_records.c.seq > record.sequence,
            feed_records.c.kind.in_(ENDING_KINDS),
            feed_records.c.department == facts.department_code,
        )
    ).scalar_one_or_none()
    if ending is not None:
        connection.execute(
            update(feed_records)
            .where(feed_records.c.seq == record.sequence)
            .values(ended_by=int(ending))
        )


def _advance_head(connection: Connection) -> None:
    """Move the published head over the gapless prefix of signed records (under the
    feed_meta lock the caller holds): every sequence given is either signed or awaiting its
    signer, so the head stops just before the first one awaiting."""
    waiting = connection.execute(select(func.min(feed_sequenced.c.seq))).scalar_one_or_none()
    head = assigned_in(connection) if waiting is None else int(waiting) - 1
    connection.execute(update(feed_meta).values(head=head))


def head_in(connection: Connection) -> int:
    """The feed's published head as `connection`'s transaction sees it."""
    return int(connection.execute(select(feed_meta.c.head)).scalar_one())


def assigned_in(connection: Connection) -> int:
    """The last sequence given, as `connection`'s transaction sees it."""
    return _assigned(connection.execute(select(feed_meta.c.head, feed_meta.c.assigned)).one())


def _assigned(meta: Any) -> int:
    # NULL only in a row written by a process from before migration 6 (the head then).
    return int(meta.head if meta.assigned is None else meta.assigned)


def _block(entry: Entry) -> int:
    return entry.block_number if isinstance(entry, Sequenced) else entry.facts.evidence.block


def withhold(
    connection: Connection, event: PendingEvent, department: str, commitment: bytes, reason: str
) -> None:
    """Record that `event` is withheld (in the builder's transaction): it is never pending
    again, so withheld events cannot fill the builder's window and stall the feed."""
    known = connection.execute(
        select(feed_withheld.c.log_index).where(
            feed_withheld.c.tx_hash == event.tx_hash, feed_withheld.c.log_index == event.log_index
        )
    ).first()
    if known is None:
        connection.execute(
            feed_withheld.insert().values(
                tx_hash=event.tx_hash,
                log_index=event.log_index,
                block_number=event.block_number,
                department=department,
                commitment_hash=commitment,
                reason=reason,
                withheld_at=time.time(),
            )
        )


def _pending(connection: Connection, low: int, high: int, limit: int) -> list[PendingEvent]:
    events = contract_events.c
    joined = (
        contract_events.outerjoin(
            feed_records,
            (feed_records.c.tx_hash == events.tx_hash)
            & (feed_records.c.log_index == events.log_index),
        )
        .outerjoin(
            feed_sequenced,
            (feed_sequenced.c.tx_hash == events.tx_hash)
            & (feed_sequenced.c.log_index == events.log_index),
        )
        .outerjoin(
            feed_withheld,
            (feed_withheld.c.tx_hash == events.tx_hash)
            & (feed_withheld.c.log_index == events.log_index),
        )
    )
    rows = connection.execute(
        select(events.block_number, events.tx_hash, events.log_index, events.args)
        .select_from(joined)
        .where(
            events.name == OUTCOME_EVENT,
            events.block_number >= low,
            events.block_number <= high,
            feed_records.c.seq.is_(None),
            feed_sequenced.c.seq.is_(None),
            feed_withheld.c.log_index.is_(None),
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


def _sequenced_row(place: Sequenced, stamp: float) -> dict[str, Any]:
    return {
        "seq": place.sequence,
        "tx_hash": place.tx_hash,
        "log_index": place.log_index,
        "block_number": place.block_number,
        "department": place.department,
        "sequenced_at": stamp,
    }


def _sequenced(row: Any) -> Sequenced:
    return Sequenced(
        int(row.seq), bytes(row.tx_hash), int(row.log_index), int(row.block_number), row.department
    )

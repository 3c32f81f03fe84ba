"""The durable store: commitments (sealed), the anchoring outbox, batches and proofs, events.

SQLAlchemy Core over a SQLite file (WAL, synchronous FULL: an acknowledged commitment
survives a crash of the process or the machine) or PostgreSQL by URL.

Over 400 lines on purpose: one Store class whose transactions (intake, the anchoring
outbox, batches, proofs, the event index, erasure) share one engine and must commit together;
splitting it would spread one transaction's SQL over several modules.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, create_engine, event, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from ledger.decisions import DecisionRecord
from ledger.errors import ErasureRefusedError, LedgerError, StoreError
from ledger.merkle import proof_in_nodes
from ledger.store_driver import insert_rows, rows_among, select_among, stored_among
from ledger.tables import (
    batches,
    commitments,
    contract_events,
    decisions_table,
    exclusions,
    migrate,
    sync_state,
)
from ledger.types import Hash32, hex32

SQLITE_BUSY_TIMEOUT_MS = 30_000
ADD_ATTEMPTS = 3  # tries to store commitments racing a concurrent writer of the same hash
IN_CHUNK = 500  # values per IN (...) list when reading many rows by key
RECEIPT_TOLERANCE = 0.002  # seconds: a decision record's receipt time is cut to milliseconds
REFORMED_BATCHES = "batches_reformed"  # cursor: batches given a fresh root (Store.reform_batch)

Fence = Callable[[Connection], None]
"""A check run first in a write's transaction: raises when the writer's lease is lost
(`ledger.leases.Leases.fence`), and the write does not happen."""


@dataclass(frozen=True)
class NewCommitment:
    """A checked commitment ready to be stored: public facts plus the sealed document."""

    hash: Hash32
    code: str
    matter_code: str
    department: str
    applicant_fingerprint: bytes
    sealed: bytes
    wrapped_key: bytes
    channel: str | None = None  # counter | online, from the document


@dataclass(frozen=True)
class StoredCommitment:
    """A commitment as the store holds it (personal data stay sealed)."""

    hash: Hash32
    code: str
    matter_code: str
    department: str
    received_at: float
    state: str
    batch_id: int | None
    proof: tuple[Hash32, ...]
    erased: bool
    channel: str | None = None  # counter | online; None for commitments stored before v5
    decided_at: float | None = None  # Unix seconds; None while undecided


@dataclass(frozen=True)
class StoredDecision:
    """A decision record as the store holds it, and how far its anchoring got."""

    record: DecisionRecord
    hash: Hash32  # the record's hash: the leaf anchored
    state: str  # pending | batched | anchored
    batch_id: int | None
    proof: tuple[Hash32, ...]


@dataclass(frozen=True)
class BatchRow:
    """One anchoring batch and how far it got."""

    id: int
    root: Hash32
    size: int
    department: str
    state: str
    created_at: float
    tx_hash: bytes | None
    sent_at: float | None
    attempts: int
    block_number: int | None
    block_hash: bytes | None
    anchored_at: float | None


@dataclass(frozen=True)
class StoreStatus:
    """What `commitledger status` shows."""

    pending: int
    in_flight: int
    anchored: int
    oldest_pending_age: float | None
    last_anchored_block: int | None
    batches_in_flight: int


def _split_proof(blob: bytes | None) -> tuple[Hash32, ...]:
    if not blob:
        return ()
    return tuple(Hash32(blob[i : i + 32]) for i in range(0, len(blob), 32))


# A batch's columns but its tree (kept once per batch, read only to give proofs).
_BATCH_COLUMNS = tuple(column for column in batches.c if column.name != "tree")

# anchor_refs_of and sealed_many, straight to the driver (ledger.store_driver): names from
# ledger.tables only; select_among appends the IN list and the tail.
_ANCHOR_REFS = (
    f"SELECT c.{commitments.c.hash.name}, c.{commitments.c.proof.name},"  # noqa: S608
    f" c.{commitments.c.batch_id.name}, b.{batches.c.root.name}"
    f" FROM {commitments.name} c JOIN {batches.name} b ON c.{commitments.c.batch_id.name}"
    f" = b.{batches.c.id.name} WHERE b.{batches.c.state.name} = 'anchored'"
    f" AND c.{commitments.c.hash.name}"
)
_SEALED = ("hash", "matter_code", "sealed", "wrapped_key")


def _member_proof(stored: bytes | None, tree: bytes | None, member: bytes) -> tuple[Hash32, ...]:
    """A batch member's proof: the one stored with it (rows from before v6, re-formed
    batches), else sliced from its batch's tree (identical to the proof its tree gave)."""
    if stored is not None or tree is None:
        return _split_proof(stored)
    proof = proof_in_nodes(bytes(tree), Hash32(bytes(member)))
    if proof is None:
        raise StoreError(f"commitment {hex32(bytes(member))} is not a leaf of its batch's tree")
    return proof


def _trees(connection: Connection, rows: Iterable[Any]) -> dict[int, bytes]:
    """The trees of the batches of those `rows` (commitments with proof, batch_id) whose
    proof is to be sliced from their batch's tree, by batch id."""
    wanted = sorted({row.batch_id for row in rows if row.proof is None and row.batch_id})
    trees: dict[int, bytes] = {}
    for chunk in _chunks(wanted):
        for batch_id, tree in connection.execute(
            select(batches.c.id, batches.c.tree).where(
                batches.c.id.in_(chunk), batches.c.tree.is_not(None)
            )
        ):
            trees[int(batch_id)] = bytes(tree)
    return trees


def _chunks(values: Sequence[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), IN_CHUNK):
        yield list(values[start : start + IN_CHUNK])


def _stored(row: Any, trees: Mapping[int, bytes]) -> StoredCommitment:
    return StoredCommitment(
        hash=Hash32(bytes(row.hash)),
        code=row.code,
        matter_code=row.matter_code,
        department=row.department,
        received_at=row.received_at,
        state=row.state,
        batch_id=row.batch_id,
        proof=_member_proof(row.proof, trees.get(row.batch_id), row.hash),
        erased=row.wrapped_key is None,
        channel=row.channel,
        decided_at=row.decided_at,
    )


def _stored_decision(row: Any) -> StoredDecision:
    return StoredDecision(
        record=DecisionRecord.from_json_obj(json.loads(row.record)),
        hash=Hash32(bytes(row.record_hash)),
        state=row.state,
        batch_id=row.batch_id,
        proof=_split_proof(row.proof),
    )


def _batch(row: Any) -> BatchRow:
    return BatchRow(
        id=row.id,
        root=Hash32(bytes(row.root)),
        size=row.size,
        department=row.department,
        state=row.state,
        created_at=row.created_at,
        tx_hash=bytes(row.tx_hash) if row.tx_hash is not None else None,
        sent_at=row.sent_at,
        attempts=row.attempts,
        block_number=row.block_number,
        block_hash=bytes(row.block_hash) if row.block_hash is not None else None,
        anchored_at=row.anchored_at,
    )


SQLITE_PAGE_BYTES = 8192  # for new databases
SQLITE_WAL_LIMIT_BYTES = 4 << 20  # the WAL is cut back to this after each checkpoint
SQLITE_MMAP_BYTES = 1 << 31  # SQLite caps it at its build's limit (2 GiB by default)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Hand transaction control to SQLAlchemy's "begin" event (the pysqlite recipe).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # Before journal_mode: a new database takes it (an existing one keeps its own). Rows of
    # about 600 bytes fill 8 KiB pages better than 4 KiB ones (a page wastes half a row).
    cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_BYTES}")
    cursor.execute("PRAGMA journal_mode=WAL")
    # The WAL file is rewound, not shrunk, after a checkpoint: without a limit it keeps the
    # largest size a burst gave it (7 MB, 350 bytes a commitment, after 20,000 at once).
    cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_LIMIT_BYTES}")
    # A checkpoint each 4 MiB of WAL, as SQLite's default 1,000 pages of 4 KiB gave.
    page_bytes = int(cursor.execute("PRAGMA page_size").fetchone()[0])
    cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_LIMIT_BYTES // page_bytes}")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Erasure must not leave the destroyed data key in freed pages.
    cursor.execute("PRAGMA secure_delete=ON")
    # Reads straight from the OS page cache, not copied page by page into each connection:
    # a search over a million breach records costs a fifth less CPU (bench.py --service).
    cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    # A writer takes the write lock up front: upgrading a read lock later fails at once
    # with SQLITE_BUSY in WAL mode, whatever the busy timeout.
    immediate = connection.get_execution_options().get("immediate", False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


SQLITE_FILE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for memory or another backend)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(str(parsed.database))


def make_private(database: Path) -> None:
    """The store's files readable by their owner only (0600): they hold sealed documents,
    fingerprints and sealed secrets. SQLite creates -wal and -shm with the database's mode,
    so a database created 0600 keeps them so; files of an older store are narrowed here."""
    if not database.exists():
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT, 0o600))
    for suffix in SQLITE_FILE_SUFFIXES:
        path = database.with_name(database.name + suffix)
        try:
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
        except FileNotFoundError:
            continue
        except PermissionError:  # another user's file: narrowing it is the owner's job
            continue


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = sqlite_file(url)
        if database is not None:
            # A new data directory is the owner's only (0700); an existing one is kept as is.
            database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            make_private(database)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    return create_engine(url, pool_pre_ping=True)


class Store:
    """The durable store. Opening it applies any pending schema migration."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = _engine(url)
            self._writer = self.engine.execution_options(immediate=True)
            with self._writer.begin() as connection:
                migrate(connection)
            database = sqlite_file(url)
            if database is not None:
                make_private(database)  # the -wal and -shm files the first connection made
        except LedgerError:
            raise
        except Exception as exc:
            raise StoreError(f"cannot open the store at {make_url(url)!r}: {exc}") from exc

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    # ------------------------------------------------------------------ intake

    def add_commitments(
        self, items: Sequence[NewCommitment], now: float | None = None
    ) -> list[bool]:
        """Store commitments durably in one transaction; per item, True if it was new.

        A hash already stored is left as it is: submitting a document twice stores nothing new.
        """
        if not items:
            return []
        received = time.time() if now is None else now
        for attempt in range(1, ADD_ATTEMPTS + 1):
            try:
                with self._writer.begin() as connection:
                    fresh = _insert_new(connection, items, received)
                break
            except IntegrityError as exc:
                # PostgreSQL: a concurrent transaction stored one of these hashes after this
                # one looked. It has committed: look again and store only the rest.
                if attempt == ADD_ATTEMPTS:
                    raise StoreError(f"a concurrent writer conflicts: {exc.orig}") from exc
        seen: set[bytes] = set()
        result = []
        for item in items:
            result.append(item.hash in fresh and item.hash not in seen)
            seen.add(item.hash)
        return result

    def get(self, commitment: Hash32) -> StoredCommitment | None:
        """A commitment by hash, or None."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(commitments).where(commitments.c.hash == commitment)
            ).first()
            return None if row is None else _stored(row, _trees(connection, [row]))

    def with_code(self, code: str, limit: int = 20) -> list[StoredCommitment]:
        """Commitments stored under a national commitment code (oldest first, at most
        `limit`): intake refuses a code used before, but a store filled before it did may
        hold several commitments under one code."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(commitments)
                .where(commitments.c.code == code)
                .order_by(commitments.c.id)
                .limit(limit)
            ).all()
            trees = _trees(connection, rows)
        return [_stored(row, trees) for row in rows]

    def code_holders(self, codes: Collection[str]) -> dict[tuple[str, str], Hash32]:
        """(department, code) -> the oldest commitment stored under it, for those of `codes`
        in use (through the code index, IN_CHUNK codes per query)."""
        wanted = sorted(set(codes))
        holders: dict[tuple[str, str], Hash32] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), IN_CHUNK):
                rows = connection.execute(
                    select(commitments.c.department, commitments.c.code, commitments.c.hash)
                    .where(commitments.c.code.in_(wanted[start : start + IN_CHUNK]))
                    .order_by(commitments.c.id)
                ).all()
                for row in rows:
                    holders.setdefault((row.department, row.code), Hash32(bytes(row.hash)))
        return holders

    def anchoring_of(self, commitment: Hash32) -> tuple[BatchRow, tuple[Hash32, ...]] | None:
        """The anchored batch holding `commitment` and its proof, or None if not anchored yet."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(commitments.c.proof, batches.c.tree, *_BATCH_COLUMNS)
                .select_from(commitments.join(batches, commitments.c.batch_id == batches.c.id))
                .where(commitments.c.hash == commitment, batches.c.state == "anchored")
            ).first()
        if row is None:
            return None
        return _batch(row), _member_proof(row.proof, row.tree, commitment)

    def anchored(self, department: str) -> list[tuple[Hash32, str, float]]:
        """(hash, matter code, received_at) of a department's anchored commitments."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(commitments.c.hash, commitments.c.matter_code, commitments.c.received_at)
                .where(commitments.c.department == department, commitments.c.state == "anchored")
                .order_by(commitments.c.id)
            ).all()
        return [(Hash32(bytes(r.hash)), r.matter_code, float(r.received_at)) for r in rows]

    def anchorings_of(
        self, hashes: Sequence[Hash32]
    ) -> dict[bytes, tuple[Hash32, tuple[Hash32, ...]]]:
        """Batch root and proof of each of these commitments that is anchored in a batch."""
        refs = self.anchor_refs_of(hashes)
        trees = self.batch_trees(sorted({ref[2] for ref in refs.values() if ref[1] is None}))
        return {
            member: (
                root,
                proof if proof is not None else _member_proof(None, trees.get(batch_id), member),
            )
            for member, (root, proof, batch_id) in refs.items()
        }

    def anchor_refs_of(
        self, hashes: Sequence[Hash32]
    ) -> dict[bytes, tuple[Hash32, tuple[Hash32, ...] | None, int]]:
        """(batch root, proof, batch id) of each of these commitments anchored in a batch.
        The proof is None when it is not stored with the commitment (rows since v6): it is
        `proof_in_nodes` of its batch's tree (`batch_trees`), which whoever checks many
        commitments reads once per batch and slices where the proofs are checked."""
        found: dict[bytes, tuple[Hash32, tuple[Hash32, ...] | None, int]] = {}
        with self.engine.connect() as connection:
            rows = select_among(connection, _ANCHOR_REFS, [bytes(h) for h in hashes])
        for digest, proof, batch_id, root in rows:
            split = None if proof is None else _split_proof(bytes(proof))
            found[bytes(digest)] = (Hash32(bytes(root)), split, int(batch_id))
        return found

    def batch_trees(self, batch_ids: Sequence[int]) -> dict[int, bytes]:
        """The nodes of these batches' trees (`MerkleTree.nodes`), by batch id; a batch
        without one (formed before v6) is left out."""
        trees: dict[int, bytes] = {}
        with self.engine.connect() as connection:
            for chunk in _chunks(batch_ids):
                for batch_id, tree in connection.execute(
                    select(batches.c.id, batches.c.tree).where(
                        batches.c.id.in_(chunk), batches.c.tree.is_not(None)
                    )
                ):
                    trees[int(batch_id)] = bytes(tree)
        return trees

    def sealed_many(self, hashes: Sequence[Hash32]) -> dict[bytes, tuple[str, bytes, bytes | None]]:
        """(matter code, sealed document, wrapped key or None once erased) of each known hash."""
        found: dict[bytes, tuple[str, bytes, bytes | None]] = {}
        with self.engine.connect() as connection:
            rows = rows_among(connection, commitments, "hash", _SEALED, [bytes(h) for h in hashes])
        for digest, matter_code, sealed, wrapped in rows:
            kept = None if wrapped is None else bytes(wrapped)
            found[bytes(digest)] = (matter_code, bytes(sealed), kept)
        return found

    def sealed(self, commitment: Hash32) -> tuple[bytes, bytes | None] | None:
        """The sealed document and its wrapped data key (None once erased)."""
        found = self.sealed_many([commitment]).get(commitment)
        return None if found is None else (found[1], found[2])

    def erase(
        self,
        commitment: Hash32,
        now: float | None = None,
        also: Callable[[Connection, Hash32], None] | None = None,
    ) -> bool:
        """Destroy the data key (and the ciphertext with it); False when unknown.

        The applicant's fingerprint goes too (a random value takes its place): with the
        public masked ID only a few digits are unknown, so a keyed hash of the ID that stays
        would let whoever holds the master key test guesses until one matches. `also` runs
        in the same transaction (the verifier's breach records forget the applicant there).
        While an exclusion holds the fingerprint (an unrepaired published breach, which the
        law requires to keep), ErasureRefusedError: nothing changes.
        """
        with self._writer.begin() as connection:
            row = connection.execute(
                select(commitments.c.applicant_fingerprint).where(commitments.c.hash == commitment)
            ).first()
            if row is None:
                return False
            fingerprint = bytes(row.applicant_fingerprint)
            held = connection.execute(
                select(exclusions.c.since).where(exclusions.c.applicant_fingerprint == fingerprint)
            ).first()
            if held is not None:
                raise ErasureRefusedError(
                    "erasure refused: the applicant has an unrepaired published breach, which "
                    "the law requires to keep (with its exclusion) while it is published; "
                    "erase again once it is repaired, corrected or expired"
                )
            result = connection.execute(
                update(commitments)
                .where(commitments.c.hash == commitment)
                .values(
                    wrapped_key=None,
                    sealed=b"",
                    erased_at=time.time() if now is None else now,
                    applicant_fingerprint=os.urandom(32),
                )
            )
            if also is not None:
                also(connection, commitment)
        if self.dialect == "sqlite" and result.rowcount == 1:
            # Until the write-ahead log is folded back and truncated, the old page with the
            # wrapped key is still on disk: a copy of the disk would still open the document.
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return result.rowcount == 1

    # ------------------------------------------------------------------ decisions

    def record_decision(
        self, record: DecisionRecord, *, also: Callable[[Connection], None] | None = None
    ) -> bool:
        """Store the decision on a commitment's application and mark the commitment decided,
        in one write transaction in which `also` runs too (the statistics counters); the
        record joins the department's anchoring outbox. False, nothing changed, when the
        commitment is decided already. StoreError when the commitment is unknown or erased,
        or when the record's department, matter, receipt time or channel are not the
        commitment's."""
        decided_at = record.decided_at.timestamp()
        with self._writer.begin() as connection:
            # PostgreSQL: a concurrent decision waits here and then sees this one's.
            row = connection.execute(
                select(
                    commitments.c.department,
                    commitments.c.matter_code,
                    commitments.c.received_at,
                    commitments.c.channel,
                    commitments.c.wrapped_key,
                    commitments.c.decided_at,
                )
                .where(commitments.c.hash == record.commitment)
                .with_for_update()
            ).first()
            if row is None:
                raise StoreError(f"no commitment {hex32(record.commitment)} to decide")
            if row.decided_at is not None:
                return False
            _check_decision_fits(record, row)
            connection.execute(
                update(commitments)
                .where(commitments.c.hash == record.commitment)
                .values(decided_at=decided_at)
            )
            connection.execute(
                decisions_table.insert().values(
                    commitment_hash=record.commitment,
                    record_hash=record.hash(),
                    department=record.department,
                    matter_code=record.matter_code,
                    channel=record.channel,
                    received_at=record.received_at.timestamp(),
                    due_at=record.due_at.timestamp(),
                    decided_at=decided_at,
                    decided_by=record.decided_by,
                    result=record.result,
                    late=record.late,
                    record=record.canonical().decode("utf-8"),
                    state="pending",
                )
            )
            if also is not None:
                also(connection)
        return True

    def decision_of(self, commitment: Hash32) -> StoredDecision | None:
        """The decision on a commitment's application, or None while undecided."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(decisions_table).where(decisions_table.c.commitment_hash == commitment)
            ).first()
        return None if row is None else _stored_decision(row)

    def decision_anchoring(self, commitment: Hash32) -> tuple[BatchRow, tuple[Hash32, ...]] | None:
        """The batch holding the decision record on `commitment` and the record hash's proof
        in it, once batched (None before); the batch's state says whether it is anchored."""
        with self.engine.connect() as connection:
            row = connection.execute(
                select(decisions_table.c.proof, *_BATCH_COLUMNS)
                .select_from(
                    decisions_table.join(batches, decisions_table.c.batch_id == batches.c.id)
                )
                .where(decisions_table.c.commitment_hash == commitment)
            ).first()
        if row is None:
            return None
        return _batch(row), _split_proof(row.proof)

    # ------------------------------------------------------------------ exclusions

    def is_excluded(self, fingerprint: bytes) -> bool:
        """Whether an applicant has an unrepaired breach."""
        return bool(self.excluded_among([fingerprint]))

    def excluded_among(self, fingerprints: Sequence[bytes]) -> set[bytes]:
        """The fingerprints among these that are excluded."""
        if not fingerprints:
            return set()
        with self.engine.connect() as connection:
            return stored_among(connection, exclusions, "applicant_fingerprint", set(fingerprints))

    def exclude(self, fingerprint: bytes, commitment: Hash32, now: float | None = None) -> None:
        """Exclude an applicant from the commitment route (an unrepaired breach)."""
        try:
            with self._writer.begin() as connection:
                connection.execute(
                    exclusions.insert().values(
                        applicant_fingerprint=fingerprint,
                        commitment_hash=commitment,
                        since=time.time() if now is None else now,
                    )
                )
        except IntegrityError:
            pass  # already excluded

    def lift_exclusion(self, fingerprint: bytes) -> None:
        """Readmit an applicant (breach repaired or expired)."""
        with self._writer.begin() as connection:
            connection.execute(
                exclusions.delete().where(exclusions.c.applicant_fingerprint == fingerprint)
            )

    # ------------------------------------------------------------------ the outbox and batches

    def pending_by_department(self) -> list[tuple[str, int, float]]:
        """(department, pending count, oldest waiting since) for each department with a
        backlog: its pending commitments (since received) and decision records (since
        decided), the leaves of its next batches."""
        backlog: dict[str, tuple[int, float]] = {}
        with self.engine.connect() as connection:
            for table, since in (
                (commitments, commitments.c.received_at),
                (decisions_table, decisions_table.c.decided_at),
            ):
                rows = connection.execute(
                    select(table.c.department, func.count(), func.min(since))
                    .where(table.c.state == "pending")
                    .group_by(table.c.department)
                ).all()
                for department, count, oldest in rows:
                    before = backlog.get(department, (0, float(oldest)))
                    backlog[department] = (before[0] + int(count), min(before[1], float(oldest)))
        return [(department, count, oldest) for department, (count, oldest) in backlog.items()]

    def pending_decisions(self) -> int:
        """How many decision records wait to be batched."""
        with self.engine.connect() as connection:
            count = connection.execute(
                select(func.count()).where(decisions_table.c.state == "pending")
            ).scalar()
        return int(count or 0)

    def form_batch(
        self,
        department: str,
        limit: int,
        build: Callable[[list[Hash32]], tuple[Hash32, dict[Hash32, list[Hash32]]]],
        now: float | None = None,
        fence: Fence | None = None,
    ) -> BatchRow | None:
        """Take up to `limit` pending leaves of `department` into a new batch, in one
        transaction: its pending commitments first, then, room left, its pending decision
        records (their hashes); `build` gives the root and each proof, stored with the batch."""
        created = time.time() if now is None else now
        with self._writer.begin() as connection:
            if fence is not None:
                fence(connection)
            # PostgreSQL: lock the rows taken and let a concurrent batcher take others (else
            # both build the same root and the second fails on its unique key). SQLite
            # ignores FOR UPDATE: BEGIN IMMEDIATE already serialises writers there.
            rows = connection.execute(
                select(commitments.c.id, commitments.c.hash)
                .where(commitments.c.state == "pending", commitments.c.department == department)
                .order_by(commitments.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            decided: Sequence[Any] = []
            if len(rows) < limit:
                decided = connection.execute(
                    select(decisions_table.c.commitment_hash, decisions_table.c.record_hash)
                    .where(
                        decisions_table.c.state == "pending",
                        decisions_table.c.department == department,
                    )
                    .order_by(decisions_table.c.decided_at, decisions_table.c.commitment_hash)
                    .limit(limit - len(rows))
                    .with_for_update(skip_locked=True)
                ).all()
            if not rows and not decided:
                return None
            hashes = [Hash32(bytes(row.hash)) for row in rows]
            records = [Hash32(bytes(row.record_hash)) for row in decided]
            root, proofs = build(hashes + records)
            tree = _tree_of(root, len(hashes) + len(records), proofs)
            inserted = connection.execute(
                batches.insert().values(
                    root=root,
                    size=len(hashes) + len(records),
                    department=department,
                    state="built",
                    created_at=created,
                    attempts=0,
                    tree=tree,
                )
            ).inserted_primary_key
            assert inserted is not None
            batch_id = int(inserted[0])
            if rows:
                _take_commitments(connection, batch_id, rows, hashes, None if tree else proofs)
            if decided:
                _take_decisions(connection, batch_id, records, proofs)
            batch = connection.execute(
                select(*_BATCH_COLUMNS).where(batches.c.id == batch_id)
            ).one()
        return _batch(batch)

    def batches_in(self, *states: str) -> list[BatchRow]:
        """Batches in any of `states`, oldest first."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(*_BATCH_COLUMNS).where(batches.c.state.in_(states)).order_by(batches.c.id)
            ).all()
        return [_batch(row) for row in rows]

    def count_batches(self, *states: str) -> int:
        """How many batches are in any of `states`."""
        with self.engine.connect() as connection:
            count = connection.execute(
                select(func.count()).where(batches.c.state.in_(states))
            ).scalar()
        return int(count or 0)

    def anchored_ends(self) -> list[BatchRow]:
        """The first and the last anchored batch (fewer when there are fewer)."""
        anchored = select(*_BATCH_COLUMNS).where(batches.c.state == "anchored")
        with self.engine.connect() as connection:
            first = connection.execute(anchored.order_by(batches.c.id).limit(1)).first()
            last = connection.execute(anchored.order_by(batches.c.id.desc()).limit(1)).first()
        ends = [_batch(row) for row in (first, last) if row is not None]
        return ends[:1] if len(ends) == 2 and ends[0].id == ends[1].id else ends

    def batch(self, batch_id: int) -> BatchRow:
        """One batch by id."""
        with self.engine.connect() as connection:
            return _batch(
                connection.execute(select(*_BATCH_COLUMNS).where(batches.c.id == batch_id)).one()
            )

    def batch_members(self, batch_id: int) -> list[Hash32]:
        """The leaves of a batch in the order they were taken: its commitment hashes, then
        its decision records' hashes."""
        with self.engine.connect() as connection:
            members = [
                Hash32(bytes(h))
                for h in connection.execute(
                    select(commitments.c.hash)
                    .where(commitments.c.batch_id == batch_id)
                    .order_by(commitments.c.id)
                ).scalars()
            ]
            members.extend(_decision_members(connection, batch_id))
        return members

    def mark_sent(
        self, batch_id: int, tx_hash: bytes, now: float | None = None, fence: Fence | None = None
    ) -> None:
        """Record the transaction before it is broadcast, so a crash leaves a trail to follow."""
        with self._writer.begin() as connection:
            if fence is not None:
                fence(connection)
            connection.execute(
                update(batches)
                .where(batches.c.id == batch_id)
                .values(
                    state="sent",
                    tx_hash=tx_hash,
                    sent_at=time.time() if now is None else now,
                    attempts=batches.c.attempts + 1,
                )
            )

    def mark_anchored(
        self,
        batch_id: int,
        tx_hash: bytes,
        block_number: int,
        block_hash: bytes,
        now: float | None = None,
    ) -> None:
        """The batch is on chain with enough confirmations: it and its members are anchored."""
        with self._writer.begin() as connection:
            connection.execute(
                update(batches)
                .where(batches.c.id == batch_id)
                .values(
                    state="anchored",
                    tx_hash=tx_hash,
                    block_number=block_number,
                    block_hash=block_hash,
                    anchored_at=time.time() if now is None else now,
                )
            )
            for table in (commitments, decisions_table):
                connection.execute(
                    update(table).where(table.c.batch_id == batch_id).values(state="anchored")
                )

    def mark_unsent(self, batch_id: int, fence: Fence | None = None) -> None:
        """The batch's transaction vanished (node restarted without state, a reorg): resend."""
        with self._writer.begin() as connection:
            if fence is not None:
                fence(connection)
            connection.execute(
                update(batches)
                .where(batches.c.id == batch_id)
                .values(state="built", block_number=None, block_hash=None, anchored_at=None)
            )
            for table in (commitments, decisions_table):
                connection.execute(
                    update(table).where(table.c.batch_id == batch_id).values(state="batched")
                )

    def reform_batch(
        self,
        batch_id: int,
        root: Hash32,
        size: int,
        proofs: Mapping[Hash32, Sequence[Hash32]],
        fence: Fence | None = None,
    ) -> None:
        """Give a batch a fresh root (its own was anchored on chain with another size): the
        new root, size (leaves on chain) and member proofs, back to built, in one
        transaction; counted under the cursor REFORMED_BATCHES."""
        with self._writer.begin() as connection:
            if fence is not None:
                fence(connection)
            connection.execute(
                update(batches)
                .where(batches.c.id == batch_id)
                .values(
                    root=root,
                    size=size,
                    state="built",
                    tree=None,  # the members get their proofs under the fresh root
                    tx_hash=None,
                    sent_at=None,
                    block_number=None,
                    block_hash=None,
                    anchored_at=None,
                )
            )
            records = set(_decision_members(connection, batch_id))
            for table, key, members in (
                (commitments, commitments.c.hash, [h for h in proofs if h not in records]),
                (
                    decisions_table,
                    decisions_table.c.record_hash,
                    [h for h in proofs if h in records],
                ),
            ):
                if not members:
                    continue
                connection.execute(
                    update(table)
                    .where(key == bindparam("member"))
                    .where(table.c.batch_id == batch_id)
                    .values(proof=bindparam("blob"), state="batched"),
                    [{"member": h, "blob": b"".join(proofs[h])} for h in members],
                )
            done = connection.execute(
                select(sync_state.c.value).where(sync_state.c.name == REFORMED_BATCHES)
            ).scalar()
            _upsert_cursor(connection, REFORMED_BATCHES, int(done or 0) + 1)

    def reformed_batches(self) -> int:
        """How many times a batch was given a fresh root (`reform_batch`), ever."""
        return self.cursor(REFORMED_BATCHES) or 0

    # ------------------------------------------------------------------ reporting

    def status(self, now: float | None = None) -> StoreStatus:
        """Backlog, in flight, anchored, oldest pending age, last anchored block."""
        now = time.time() if now is None else now
        with self.engine.connect() as connection:
            counts: dict[str, int] = dict(
                connection.execute(
                    select(commitments.c.state, func.count()).group_by(commitments.c.state)
                ).all()
            )
            oldest = connection.execute(
                select(func.min(commitments.c.received_at)).where(commitments.c.state == "pending")
            ).scalar()
            last_block = connection.execute(
                select(func.max(batches.c.block_number)).where(batches.c.state == "anchored")
            ).scalar()
            in_flight_batches = connection.execute(
                select(func.count()).where(batches.c.state.in_(("built", "sent")))
            ).scalar()
        return StoreStatus(
            pending=int(counts.get("pending", 0)),
            in_flight=int(counts.get("batched", 0)),
            anchored=int(counts.get("anchored", 0)),
            oldest_pending_age=None if oldest is None else max(0.0, now - float(oldest)),
            last_anchored_block=None if last_block is None else int(last_block),
            batches_in_flight=int(in_flight_batches or 0),
        )

    def anchoring_latencies(self) -> list[float]:
        """Seconds from acknowledgement to anchored, for every anchored commitment."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(batches.c.anchored_at - commitments.c.received_at)
                .select_from(commitments.join(batches, commitments.c.batch_id == batches.c.id))
                .where(batches.c.state == "anchored")
            ).scalars()
            return [float(r) for r in rows]

    # ------------------------------------------------------------------ the event index

    def add_events(self, rows: Iterable[dict[str, Any]]) -> int:
        """Index contract events (idempotent by transaction and log index); return how many new."""
        items = list(rows)
        if not items:
            return 0
        with self._writer.begin() as connection:
            known: set[tuple[bytes, int]] = set()
            for chunk in _chunks(list({bytes(row["tx_hash"]) for row in items})):
                known.update(
                    (bytes(tx_hash), int(log_index))
                    for tx_hash, log_index in connection.execute(
                        select(contract_events.c.tx_hash, contract_events.c.log_index).where(
                            contract_events.c.tx_hash.in_(chunk)
                        )
                    )
                )
            fresh: dict[tuple[bytes, int], dict[str, Any]] = {}
            for row in items:
                key = (bytes(row["tx_hash"]), int(row["log_index"]))
                if key not in known:
                    fresh.setdefault(key, row)
            if fresh:
                connection.execute(contract_events.insert(), list(fresh.values()))
        return len(fresh)

    def events(self, name: str | None = None, subject: bytes | None = None) -> list[dict[str, Any]]:
        """Indexed events, in chain order, optionally of one name or subject."""
        query = select(contract_events).order_by(
            contract_events.c.block_number, contract_events.c.log_index
        )
        if name is not None:
            query = query.where(contract_events.c.name == name)
        if subject is not None:
            query = query.where(contract_events.c.subject == subject)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def drop_events_from(self, block_number: int) -> None:
        """Forget indexed events at or after `block_number` (they were reorged away)."""
        with self._writer.begin() as connection:
            connection.execute(
                contract_events.delete().where(contract_events.c.block_number >= block_number)
            )

    def cursor(self, name: str) -> int | None:
        """A named progress marker (e.g. the last indexed block)."""
        with self.engine.connect() as connection:
            value = connection.execute(
                select(sync_state.c.value).where(sync_state.c.name == name)
            ).scalar()
        return None if value is None else int(value)

    def set_cursor(self, name: str, value: int) -> None:
        """Move a named progress marker."""
        with self._writer.begin() as connection:
            _upsert_cursor(connection, name, value)

    def size_bytes(self) -> int | None:
        """Bytes the store takes on disk (SQLite files only)."""
        if self.dialect != "sqlite" or not self.engine.url.database:
            return None
        base = Path(self.engine.url.database)
        return sum(
            p.stat().st_size for p in (base, base.with_name(base.name + "-wal")) if p.exists()
        )


def _insert_new(
    connection: Connection, items: Sequence[NewCommitment], received: float
) -> dict[bytes, NewCommitment]:
    """Insert the items whose hash is not stored yet (each once); return them by hash."""
    known = stored_among(connection, commitments, "hash", [item.hash for item in items])
    fresh: dict[bytes, NewCommitment] = {}
    for item in items:
        if item.hash not in known and item.hash not in fresh:
            fresh[item.hash] = item
    insert_rows(
        connection,
        commitments,
        _NEW_COMMITMENT_COLUMNS,
        [
            (
                item.hash,
                item.code,
                item.matter_code,
                item.department,
                item.applicant_fingerprint,
                received,
                "pending",
                item.sealed,
                item.wrapped_key,
                item.channel,
            )
            for item in fresh.values()
        ],
    )
    return fresh


_NEW_COMMITMENT_COLUMNS = (
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


def _tree_of(root: Hash32, size: int, proofs: Mapping[Hash32, Sequence[Hash32]]) -> bytes | None:
    """The tree to keep with a new batch when `build` gave its nodes (`ledger.MerkleTree`'s
    proofs do) and they are the tree of `root` over `size` leaves; else None, and each
    commitment keeps its own proof."""
    nodes = getattr(proofs, "nodes", b"")
    if not isinstance(nodes, bytes) or len(nodes) != 32 * (2 * size - 1):
        return None
    return nodes if nodes[:32] == root else None


def _take_commitments(
    connection: Connection,
    batch_id: int,
    rows: Sequence[Any],
    hashes: Sequence[Hash32],
    proofs: Mapping[Hash32, Sequence[Hash32]] | None,
) -> None:
    """Move the pending commitment `rows` into the batch, each with its proof (None: their
    proofs are sliced from the batch's tree)."""
    taken = connection.execute(
        update(commitments)
        .where(commitments.c.id.in_([row.id for row in rows]))
        .where(commitments.c.state == "pending")
        .values(state="batched", batch_id=batch_id)
    ).rowcount
    if taken != len(rows):
        raise StoreError("another batcher took some of these commitments: retry")
    if proofs is None:
        return
    connection.execute(
        update(commitments)
        .where(commitments.c.id == bindparam("row_id"))
        .values(proof=bindparam("blob")),
        [
            {"row_id": row.id, "blob": b"".join(proofs[h])}
            for row, h in zip(rows, hashes, strict=True)
        ],
    )


def _take_decisions(
    connection: Connection,
    batch_id: int,
    records: Sequence[Hash32],
    proofs: Mapping[Hash32, Sequence[Hash32]],
) -> None:
    """Move the pending decision records (by record hash) into the batch, with proofs."""
    taken = connection.execute(
        update(decisions_table)
        .where(decisions_table.c.record_hash.in_(list(records)))
        .where(decisions_table.c.state == "pending")
        .values(state="batched", batch_id=batch_id)
    ).rowcount
    if taken != len(records):
        raise StoreError("another batcher took some of these decision records: retry")
    connection.execute(
        update(decisions_table)
        .where(decisions_table.c.record_hash == bindparam("member"))
        .values(proof=bindparam("blob")),
        [{"member": h, "blob": b"".join(proofs[h])} for h in records],
    )


def _decision_members(connection: Connection, batch_id: int) -> list[Hash32]:
    """The record hashes of a batch's decision records, in the order they were taken."""
    rows = connection.execute(
        select(decisions_table.c.record_hash)
        .where(decisions_table.c.batch_id == batch_id)
        .order_by(decisions_table.c.decided_at, decisions_table.c.commitment_hash)
    ).scalars()
    return [Hash32(bytes(h)) for h in rows]


def _check_decision_fits(record: DecisionRecord, row: Any) -> None:
    """StoreError unless the record describes the stored commitment `row`, which must
    still hold its document (an erased commitment is not decided)."""
    shown = hex32(record.commitment)
    if row.wrapped_key is None:
        raise StoreError(f"commitment {shown} was erased: it is not decided any more")
    if (row.department, row.matter_code) != (record.department, record.matter_code):
        raise StoreError(
            f"the decision names {record.department}/{record.matter_code}, but commitment "
            f"{shown} is {row.department}/{row.matter_code}"
        )
    # The record's times are cut to milliseconds; the stored receipt time is not.
    if abs(record.received_at.timestamp() - float(row.received_at)) >= RECEIPT_TOLERANCE:
        raise StoreError(f"the decision's received_at is not when {shown} was received")
    if row.channel is not None and row.channel != record.channel:
        raise StoreError(f"the decision says {record.channel}, but {shown} came {row.channel}")


def _upsert_cursor(connection: Connection, name: str, value: int) -> None:
    changed = connection.execute(
        update(sync_state).where(sync_state.c.name == name).values(value=value)
    ).rowcount
    if not changed:
        connection.execute(sync_state.insert().values(name=name, value=value))

"""The store reconciled with the chain: confirmed OutcomeRecorded events the store did not
write are taken up with their evidence; a store state the chain contradicts is a conflict.

Another instance with the department's key, a restored backup or a misused key can record
outcomes that this store never wrote. After each indexer pass, `ChainReconciler.reconcile`
compares every commitment the indexed events touched with the store: a chain state ahead
of the store is taken up (the verification with the event's evidence, transaction and
block; a breach published, repaired, expired or annulled), anything else is a conflict,
recorded, logged (commitment hash and states only) and counted for `/readyz`; `commitledger
chain check` lists them. Nothing is ever silently ignored.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    func,
    or_,
    select,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from ledger import (
    ErasedError,
    Hash32,
    LedgerContract,
    SignedCommitment,
    Status,
    Store,
    StoredCommitment,
    Vault,
    VaultError,
    apply_migrations,
    commitments,
    contract_events,
    department_id,
    hex32,
    migrations_table,
    outcome_outbox,
)
from verifier.breaches import BreachEvidence, BreachRecord, make_breach_record
from verifier.calendar import WorkingDays, default_calendar
from verifier.catalog import Catalog
from verifier.errors import BreachError, RecordsError
from verifier.public_text import document_number
from verifier.records.facade import VerifierRecords
from verifier.records.notices import NoticeRecords
from verifier.records.tables import breach_records, verifications_table
from verifier.records.verifications import RecordedOutcome

log = logging.getLogger("commitledger.reconcile")

CURSOR = "reconcile.last_block"
CURSOR_HASH = "reconcile.last_block_hash_prefix"
REORG_WINDOW = 64  # blocks looked at again when the last one was replaced (as the indexer)
PAGE = 5_000  # events read at once
IN_CHUNK = 500  # commitments looked up in the store at once
# A withdrawal, repair, expiry or annulment is first recorded on chain, then in the store,
# by the same process: one seen on chain for less than this is left to that process for now.
SETTLE_SECONDS = 5.0
BEIJING = timedelta(hours=8)

ReconciliationKind = Literal["taken_up", "conflict"]

metadata = MetaData()
reconcile_migrations = migrations_table("reconcile_migrations", metadata)
chain_reconciliations = Table(
    "chain_reconciliations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # taken_up | conflict
    Column("commitment_hash", LargeBinary(32), nullable=False, index=True),
    Column("department", String(64), nullable=False),
    Column("chain_status", Integer, nullable=False),
    Column("store_state", String(24), nullable=False),
    Column("evidence", LargeBinary(32), nullable=False),
    Column("tx_hash", LargeBinary(32), nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("detail", Text, nullable=False),
    Column("recorded_at", Float, nullable=False),
    UniqueConstraint("tx_hash", "log_index", "kind", name="chain_reconciliations_event"),
)


def _create_v1(connection: Connection) -> None:
    metadata.create_all(connection, tables=[chain_reconciliations])


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _create_v1}

# The status machine of CommitmentLedger.sol (transitionAllowed).
_MOVES: dict[Status, frozenset[Status]] = {
    Status.ANCHORED: frozenset(
        {Status.WITHDRAWN, Status.KEPT, Status.MISMATCH, Status.NEEDS_MANUAL, Status.PROPOSED}
    ),
    Status.MISMATCH: frozenset({Status.KEPT, Status.NEEDS_MANUAL, Status.PROPOSED}),
    Status.NEEDS_MANUAL: frozenset({Status.KEPT, Status.MISMATCH, Status.PROPOSED}),
    Status.PROPOSED: frozenset(
        {Status.BREACHED, Status.KEPT, Status.NEEDS_MANUAL, Status.CORRECTED}
    ),
    Status.BREACHED: frozenset({Status.REPAIRED, Status.EXPIRED, Status.CORRECTED}),
}
_STATE_OF: dict[Status, str] = {
    Status.KEPT: "kept",
    Status.MISMATCH: "mismatch",
    Status.NEEDS_MANUAL: "manual",
    Status.PROPOSED: "proposed",
    Status.BREACHED: "breached",
    Status.WITHDRAWN: "withdrawn",
    Status.REPAIRED: "breached",
    Status.EXPIRED: "breached",
    Status.CORRECTED: "breached",
}
_BREACH_STATUS: dict[str, Status] = {
    "published": Status.BREACHED,
    "repaired": Status.REPAIRED,
    "expired": Status.EXPIRED,
    "corrected": Status.CORRECTED,
}
_CLOSINGS = frozenset({Status.REPAIRED, Status.EXPIRED, Status.CORRECTED})
# Moves the department's own process makes on chain first and in the store right after
# (withdrawal, repair, expiry, annulment): they are given SETTLE_SECONDS to do so.
_SETTLING = _CLOSINGS | {Status.WITHDRAWN}
STATUS_NAMES = {
    Status.NONE: "None",
    Status.ANCHORED: "Anchored",
    Status.WITHDRAWN: "Withdrawn",
    Status.KEPT: "Kept",
    Status.MISMATCH: "Mismatch",
    Status.NEEDS_MANUAL: "NeedsManual",
    Status.BREACHED: "Breached",
    Status.REPAIRED: "Repaired",
    Status.EXPIRED: "Expired",
    Status.CORRECTED: "Corrected",
    Status.PROPOSED: "Proposed",
}


def reachable(start: Status, goal: Status) -> bool:
    """Whether the contract's status machine leads from `start` to `goal` in one move or more."""
    seen, todo = {start}, [start]
    while todo:
        for after in _MOVES.get(todo.pop(), frozenset()):
            if after == goal:
                return True
            if after not in seen:
                seen.add(after)
                todo.append(after)
    return False


def store_status(state: str | None, breach_status: str | None) -> Status:
    """The chain status the store's verification state (and live breach record) stands for."""
    if state is None or state in ("due", "integrity_failure"):
        return Status.ANCHORED
    if state == "breached":
        return _BREACH_STATUS.get(breach_status or "published", Status.BREACHED)
    if state == "corrected":
        return Status.CORRECTED  # a proposed breach whose defence succeeded
    return {v: k for k, v in _STATE_OF.items() if k not in _CLOSINGS}[state]


def live_breach_statuses(connection: Connection, hashes: list[bytes]) -> dict[bytes, str]:
    """Each commitment's breach record status as the registry shows it: the live record's
    (a correction supersedes its original), else 'corrected'."""
    found: dict[bytes, str] = {}
    for start in range(0, len(hashes), 500):
        rows = connection.execute(
            select(breach_records.c.commitment_hash, breach_records.c.status).where(
                breach_records.c.commitment_hash.in_(hashes[start : start + 500])
            )
        ).all()
        for row in rows:
            key = bytes(row.commitment_hash)
            if row.status != "corrected" or key not in found:
                found[key] = row.status
    return found


@dataclass(frozen=True)
class _Held:
    """What the store holds of one commitment."""

    department: str
    state: str | None
    evidence: bytes | None
    block_number: int | None
    breach: str | None


@dataclass(frozen=True)
class ChainEvent:
    """One confirmed OutcomeRecorded event, as the store's event index holds it."""

    commitment: Hash32
    department: bytes
    to: Status
    evidence: Hash32
    tx_hash: bytes
    block_number: int
    log_index: int

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> ChainEvent:
        """From a `contract_events` row."""
        args = json.loads(row["args"])
        return cls(
            Hash32(bytes.fromhex(args["commitment"][2:])),
            bytes.fromhex(args["department"][2:]),
            Status(int(args["to"])),
            Hash32(bytes.fromhex(args["evidence"][2:])),
            bytes(row["tx_hash"]),
            int(row["block_number"]),
            int(row["log_index"]),
        )


@dataclass(frozen=True)
class Reconciliation:
    """One event taken up, or one conflict, as recorded."""

    kind: ReconciliationKind
    commitment_hash: str
    department: str
    chain_status: str
    store_state: str
    evidence: str
    transaction: str
    block: int
    detail: str


def reconciliations(store: Store, kind: ReconciliationKind | None = None) -> list[Reconciliation]:
    """What reconciliation recorded, oldest first (none before it first ran)."""
    query = select(chain_reconciliations).order_by(chain_reconciliations.c.id)
    if kind is not None:
        query = query.where(chain_reconciliations.c.kind == kind)
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(query).all()
    except DBAPIError:  # the table is made by the first reconciliation
        return []
    return [
        Reconciliation(
            row.kind,
            hex32(Hash32(bytes(row.commitment_hash))),
            row.department,
            STATUS_NAMES[Status(row.chain_status)],
            row.store_state,
            hex32(Hash32(bytes(row.evidence))),
            hex32(Hash32(bytes(row.tx_hash))),
            row.block_number,
            row.detail,
        )
        for row in rows
    ]


def reconciliation_counts(store: Store) -> dict[str, int]:
    """How many events were taken up and how many conflicts were found (for operators)."""
    counts = {"taken_up": 0, "conflicts": 0}
    query = select(chain_reconciliations.c.kind, func.count()).group_by(
        chain_reconciliations.c.kind
    )
    try:
        with store.engine.connect() as connection:
            for kind, count in connection.execute(query).all():
                counts["conflicts" if kind == "conflict" else "taken_up"] = int(count)
    except DBAPIError:  # the table is made by the first reconciliation
        pass
    return counts


class ChainReconciler:
    """Takes up, or reports, confirmed status changes that the store did not write."""

    def __init__(
        self,
        store: Store,
        ledger: LedgerContract,
        catalog: Catalog,
        vault: Vault | None,
        *,
        calendar: WorkingDays | None = None,
        settle_seconds: float = SETTLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.catalog = catalog
        self.vault = vault
        self.calendar = calendar or default_calendar()
        self.settle_seconds = settle_seconds
        self.clock = clock
        self.records = VerifierRecords(store)
        self._writer = store.engine.execution_options(immediate=True)
        self._first_seen: dict[tuple[bytes, int], float] = {}
        with self._writer.begin() as connection:
            apply_migrations(connection, reconcile_migrations, MIGRATIONS)

    def reconcile(self, indexed_up_to: int | None = None) -> int:
        """Compare the commitments of the events indexed since the last pass with the store;
        return how many events were taken up or found in conflict now. `indexed_up_to` is
        the last block the indexer has (the indexer's hook passes it)."""
        last = self.store.cursor(CURSOR)
        if last is None:
            start = 0
        elif self._still_canonical(last):
            start = last + 1
        else:  # the indexer re-indexes replaced blocks: look at them again
            start = max(0, last - REORG_WINDOW)
        found, unsettled, reach = 0, None, last
        after: tuple[int, int] = (start, -1)
        while True:
            rows = self._events_after(after)
            if not rows:
                break
            after = (int(rows[-1].block_number), int(rows[-1].log_index))
            reach = max(reach or 0, after[0])
            latest: dict[tuple[bytes, bytes], ChainEvent] = {}
            for row in rows:
                event = ChainEvent.of(dict(row._mapping))
                latest[event.department, event.commitment] = event  # the last one stands
            events = list(latest.values())
            for first in range(0, len(events), IN_CHUNK):
                part = events[first : first + IN_CHUNK]
                held = self._held([e.commitment for e in part])
                for event in part:
                    outcome = self._one(event, held.get(event.commitment))
                    if outcome == "unsettled":
                        block = event.block_number
                        unsettled = block if unsettled is None else min(unsettled, block)
                    elif outcome is not None:
                        found += 1
        if indexed_up_to is not None:
            reach = max(reach or 0, indexed_up_to)
        if unsettled is not None:
            reach = unsettled - 1  # looked at again next time
        if reach is not None and reach >= 0 and reach != last:
            self._remember(reach)
        return found

    def _events_after(self, after: tuple[int, int]) -> list[Any]:
        """Up to PAGE indexed OutcomeRecorded events after (block, log index), in chain order."""
        block, log_index = after
        with self.store.engine.connect() as connection:
            return list(
                connection.execute(
                    select(contract_events)
                    .where(
                        contract_events.c.name == "OutcomeRecorded",
                        or_(
                            contract_events.c.block_number > block,
                            and_(
                                contract_events.c.block_number == block,
                                contract_events.c.log_index > log_index,
                            ),
                        ),
                    )
                    .order_by(contract_events.c.block_number, contract_events.c.log_index)
                    .limit(PAGE)
                ).all()
            )

    def _remember(self, block: int) -> None:
        self.store.set_cursor(CURSOR, block)
        block_hash = self.ledger.chain.block_hash(block)
        if block_hash is not None:  # 7 bytes fit a BIGINT and tell a replaced block
            self.store.set_cursor(CURSOR_HASH, int.from_bytes(block_hash[:7], "big"))

    def _still_canonical(self, block: int) -> bool:
        remembered = self.store.cursor(CURSOR_HASH)
        current = self.ledger.chain.block_hash(block)
        if remembered is None or current is None:
            return current is not None
        return int.from_bytes(current[:7], "big") == remembered

    # ------------------------------------------------------------------ one commitment

    def _held(self, hashes: list[Hash32]) -> dict[bytes, _Held]:
        """What the store holds of these commitments, read in three queries."""
        keys = [bytes(h) for h in hashes]
        with self.store.engine.connect() as connection:
            departments = dict(
                connection.execute(
                    select(commitments.c.hash, commitments.c.department).where(
                        commitments.c.hash.in_(keys)
                    )
                ).all()
            )
            verified = {
                bytes(row.commitment_hash): row
                for row in connection.execute(
                    select(
                        verifications_table.c.commitment_hash,
                        verifications_table.c.state,
                        verifications_table.c.evidence,
                        verifications_table.c.block_number,
                    ).where(verifications_table.c.commitment_hash.in_(keys))
                ).all()
            }
            breaches = live_breach_statuses(connection, keys)
        held = {}
        for key, department in departments.items():
            row = verified.get(bytes(key))
            held[bytes(key)] = _Held(
                department,
                None if row is None else row.state,
                None if row is None or row.evidence is None else bytes(row.evidence),
                None if row is None else row.block_number,
                breaches.get(bytes(key)),
            )
        return held

    def _one(
        self, event: ChainEvent, held: _Held | None
    ) -> ReconciliationKind | Literal["unsettled"] | None:
        if held is None or department_id(held.department) != event.department:
            return None  # not this store's, or another department's own record of the hash
        status = store_status(held.state, held.breach)
        state = held.state or "due"
        if status == event.to:
            if event.to not in _STATE_OF or event.to == Status.BREACHED or event.to in _CLOSINGS:
                return None
            if held.evidence in (None, event.evidence):
                return None
        elif not reachable(status, event.to):
            if reachable(event.to, status) and (
                held.block_number is None or held.block_number >= event.block_number
            ):
                return None  # the store is ahead by a transaction not confirmed yet
            stored = self.store.get(event.commitment)
            assert stored is not None
            return self._conflict(event, stored, state, f"the store holds {STATUS_NAMES[status]}")
        if self._ours(event):
            return None  # this store sent it: its sender records it once mined
        if event.to in _SETTLING and not self._settled(event):
            return "unsettled"
        stored = self.store.get(event.commitment)
        assert stored is not None
        return self._take_up(event, stored, state, held.breach)

    def _ours(self, event: ChainEvent) -> bool:
        """Whether this store's outbox sent the outcome (its sender records it, or recorded
        it after the store was read above): it is not another instance's."""
        with self.store.engine.connect() as connection:
            found = connection.execute(
                select(outcome_outbox.c.id)
                .where(
                    outcome_outbox.c.commitment_hash == event.commitment,
                    outcome_outbox.c.evidence == event.evidence,
                    outcome_outbox.c.abandoned.is_(None),
                )
                .limit(1)
            ).first()
        return found is not None

    def _settled(self, event: ChainEvent) -> bool:
        key = (event.tx_hash, event.log_index)
        now = self.clock()
        first = self._first_seen.setdefault(key, now)
        return now - first >= self.settle_seconds

    def _take_up(
        self, event: ChainEvent, stored: StoredCommitment, state: str, breach: str | None
    ) -> ReconciliationKind:
        """Move the store to the chain's state, with the event's evidence."""
        try:
            on = self._decision_day(event.block_number)
            target = _STATE_OF[event.to]
            if event.to == Status.CORRECTED and state == "proposed":
                # A proposed breach annulled before it was published (by the admin Safe's
                # correctBreach, or the department's defence elsewhere): nothing to unlist.
                target = "corrected"
            if self.records.verification(event.commitment) is None:
                self._schedule(stored, on)
            if target == "breached" and state in ("due", "mismatch", "manual"):
                # Breached only from Proposed: the chain went through it (its notice is
                # the other instance's), so the store does too.
                self._record_verification(event, stored, "proposed", on)
            if state != target or event.to in (Status.KEPT, Status.MISMATCH, Status.NEEDS_MANUAL):
                self._record_verification(event, stored, target, on)
            if target == "corrected":
                self._settle_notice(event, on)
            elif event.to == Status.BREACHED or event.to in _CLOSINGS:
                self._follow_breach(event, stored, breach, on)
        except (RecordsError, BreachError, VaultError, ErasedError, ValueError) as exc:
            return self._conflict(event, stored, state, f"cannot take it up: {exc}")
        self._note("taken_up", event, stored, state, "recorded on chain, not by this store")
        log.warning(
            "reconciled: %s of %s is %s on chain (tx %s), taken up",
            hex32(event.commitment),
            stored.department,
            STATUS_NAMES[event.to],
            hex32(Hash32(event.tx_hash)),
        )
        return "taken_up"

    def _schedule(self, stored: StoredCommitment, on: date) -> None:
        matter = self.catalog.matter(stored.matter_code)
        signed_on = datetime.fromtimestamp(stored.received_at, UTC).date()
        due = self.calendar.add(min(signed_on, on), matter.verification_window_days)
        self.records.schedule(stored.hash, matter.code, stored.department, due)

    def _record_verification(
        self, event: ChainEvent, stored: StoredCommitment, target: str, on: date
    ) -> None:
        rectify_by = None
        if target == "mismatch":
            matter = self.catalog.matter(stored.matter_code)
            rectify_by = self.calendar.add(on, matter.rectification_window_days).day
        closing = event.to in _CLOSINGS and target == "breached"
        outcome_status = Status.BREACHED if closing else event.to
        self.records.record_outcomes(
            [
                RecordedOutcome(
                    event.commitment,
                    target,  # type: ignore[arg-type]  # a VerificationState by _STATE_OF
                    int(outcome_status),
                    event.evidence,
                    None,
                    event.tx_hash,
                    event.block_number,
                    rectify_by,
                )
            ]
        )

    def _settle_notice(self, event: ChainEvent, on: date) -> None:
        """The open notice of a proposed breach the chain annulled is settled as defended,
        so no lapsed defence period publishes it later."""
        NoticeRecords(self.store).settle(
            event.commitment,
            "defended",
            "corrected",
            on,
            f"on chain, tx {hex32(Hash32(event.tx_hash))}",
            event.evidence,
        )

    def _follow_breach(
        self, event: ChainEvent, stored: StoredCommitment, breach: str | None, on: date
    ) -> None:
        """Publish the breach the chain recorded, then close it as the chain did."""
        record_id = self._breach_id(event.commitment)
        if record_id is None:
            if event.to != Status.BREACHED:
                raise RecordsError("the chain closed a breach this store never published")
            record_id = self._publish(event, stored, on)
        if event.to == Status.REPAIRED:
            self.records.update_breach_status(record_id, "repaired", on)
        elif event.to == Status.EXPIRED:
            self.records.update_breach_status(record_id, "expired", on)
        elif event.to == Status.CORRECTED:
            self.records.annul_breach(record_id)
        if event.to in _CLOSINGS:
            found = self.records.stored_breach(record_id)
            if found is not None and not self.records.unrepaired_breach_for(found.fingerprint, on):
                self.store.lift_exclusion(found.fingerprint)

    def _breach_id(self, commitment: Hash32) -> str | None:
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                select(breach_records.c.id, breach_records.c.status).where(
                    breach_records.c.commitment_hash == commitment
                )
            ).all()
        live = [row.id for row in rows if row.status != "corrected"]
        return live[0] if live else None

    def _publish(self, event: ChainEvent, stored: StoredCommitment, on: date) -> str:
        if self.vault is None:
            raise RecordsError("no master key: the breach's party cannot be named")
        sealed = self.store.sealed(event.commitment)
        if sealed is None or sealed[1] is None:
            raise RecordsError("the document was erased: the breach's party cannot be named")
        plain = self.vault.open(sealed[0], sealed[1], associated=event.commitment)
        applicant = SignedCommitment.from_json_obj(json.loads(plain)).document.applicant
        matter = self.catalog.matter(stored.matter_code)
        record: BreachRecord = make_breach_record(
            applicant,
            matter,
            event.commitment,
            facts=f"经链上记录认定承诺不实（证据 {hex32(event.evidence)}）",
            decision=f"撤销{matter.name}审批决定，记入失信记录",
            document_number=document_number(stored.department, on.year, f"链{event.block_number}"),
            decision_date=on,
            evidence=BreachEvidence(
                chain_id=self.ledger.chain.chain_id,
                contract=self.ledger.address,
                transaction=hex32(Hash32(event.tx_hash)),
                block=event.block_number,
                commitment_hash=hex32(event.commitment),
            ),
        )
        fingerprint = self.vault.fingerprint(applicant.id_type, applicant.id_number)
        self.records.add_breach(record, fingerprint)
        self.store.exclude(fingerprint, event.commitment)
        return record.id

    def _decision_day(self, block: int) -> date:
        """The event's day in Beijing time, as the feed dates its records."""
        stamp = int(self.ledger.chain.w3.eth.get_block(block)["timestamp"])
        return (datetime.fromtimestamp(stamp, UTC) + BEIJING).date()

    # ------------------------------------------------------------------ the record

    def _conflict(
        self, event: ChainEvent, stored: StoredCommitment, state: str, detail: str
    ) -> ReconciliationKind:
        if self._note("conflict", event, stored, state, detail):
            log.error(
                "conflict: %s of %s is %s on chain (tx %s) but %s in the store: %s",
                hex32(event.commitment),
                stored.department,
                STATUS_NAMES[event.to],
                hex32(Hash32(event.tx_hash)),
                state,
                detail,
            )
        return "conflict"

    def _note(
        self,
        kind: ReconciliationKind,
        event: ChainEvent,
        stored: StoredCommitment,
        state: str,
        detail: str,
    ) -> bool:
        """Record it once per event and kind; False when it was recorded before."""
        try:
            with self._writer.begin() as connection:
                connection.execute(
                    chain_reconciliations.insert().values(
                        kind=kind,
                        commitment_hash=event.commitment,
                        department=stored.department,
                        chain_status=int(event.to),
                        store_state=state,
                        evidence=event.evidence,
                        tx_hash=event.tx_hash,
                        block_number=event.block_number,
                        log_index=event.log_index,
                        detail=detail[:500],
                        recorded_at=time.time(),
                    )
                )
        except IntegrityError:
            return False
        return True

"""The outcome outbox: outcomes decided but not yet on chain, so a crash records nothing twice."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy import select, update

from ledger.contract import Status
from ledger.errors import StoreError
from ledger.store import Store
from ledger.store_driver import insert_returning, update_among
from ledger.tables import outcome_outbox
from ledger.types import Hash32


class OutboxReport(Protocol):
    """What an outcome's evidence is the hash of (the verifier's signed report): a typed
    value everywhere but in the store, where it is the JSON of `to_json_obj` (or the
    `stored_json` text of it that a report may bring, made where it was signed)."""

    @property
    def evidence(self) -> Hash32:
        """The hash recorded on chain beside the outcome."""
        ...

    def to_json_obj(self) -> dict[str, Any]:
        """The report as plain JSON, as the outbox stores it."""
        ...


R = TypeVar("R", bound=OutboxReport)

_QUEUED = ("commitment_hash", "department", "status", "evidence", "report", "created_at")


def _stored_json(report: OutboxReport) -> str:
    """The report's JSON as the outbox stores it: the text a report brings along (a signed
    report's `stored_json`, made from the bytes it signed), else `to_json_obj` encoded."""
    made = getattr(report, "stored_json", None)
    if isinstance(made, str):
        return made
    return json.dumps(report.to_json_obj(), ensure_ascii=False, sort_keys=True)


ReadReport = Callable[[dict[str, Any], Hash32], R]
"""The report again from its stored JSON and its evidence (so that it is not hashed again)."""


@dataclass(frozen=True)
class OutcomeEntry(Generic[R]):
    """An outcome to queue: the status to record for a commitment, and its report."""

    commitment_hash: Hash32
    status: Status
    report: R

    @property
    def evidence(self) -> Hash32:
        """The report's hash, recorded on chain beside the outcome."""
        return self.report.evidence


@dataclass(frozen=True)
class QueuedOutcome(Generic[R]):
    """An outcome in the outbox; `tx_hash` is set once sent, `recorded_at` once mined."""

    id: int
    commitment_hash: Hash32
    department: str
    status: Status
    evidence: Hash32
    report: R
    tx_hash: bytes | None
    block_number: int | None
    recorded_at: float | None


def _ids_in_order(items: Sequence[OutcomeEntry[R]], inserted: Sequence[Any]) -> list[int]:
    """The ids of the rows inserted for `items` (each (id, commitment, evidence)), in the
    items' order: each row is known by its commitment and evidence; identical items take
    their ids in ascending order."""
    if len(inserted) != len(items):
        raise StoreError(f"queued {len(items)} outcomes, the store inserted {len(inserted)}")
    by_key: dict[tuple[bytes, bytes], list[int]] = {}
    for key, commitment, evidence in sorted(inserted, key=lambda row: int(row[0]), reverse=True):
        by_key.setdefault((bytes(commitment), bytes(evidence)), []).append(int(key))
    return [by_key[(bytes(i.commitment_hash), bytes(i.evidence))].pop() for i in items]


class OutcomeOutbox(Generic[R]):
    """Outcomes queued for the chain, on the store's database; their reports are `R`, read
    back from JSON by `read`. The outbox holds the one copy of each report: a verification
    refers to its outcome's row (by commitment and evidence)."""

    def __init__(self, store: Store, read: ReadReport[R]) -> None:
        self._engine = store.engine
        self._writer = store.engine.execution_options(immediate=True)
        self._read = read

    def _queued(self, row: Any) -> QueuedOutcome[R]:
        evidence = Hash32(bytes(row.evidence))
        return QueuedOutcome(
            id=row.id,
            commitment_hash=Hash32(bytes(row.commitment_hash)),
            department=row.department,
            status=Status(row.status),
            evidence=evidence,
            report=self._read(json.loads(row.report), evidence),
            tx_hash=None if row.tx_hash is None else bytes(row.tx_hash),
            block_number=row.block_number,
            recorded_at=row.recorded_at,
        )

    def enqueue(
        self,
        department: str,
        items: Sequence[OutcomeEntry[R]],
        now: float | None = None,
    ) -> list[QueuedOutcome[R]]:
        """Queue outcomes in one transaction; return them as queued, in order (so the caller
        need not read them back)."""
        if not items:
            return []
        stamp = time.time() if now is None else now
        rows = [
            (
                bytes(item.commitment_hash),
                department,
                int(item.status),
                bytes(item.evidence),
                _stored_json(item.report),
                stamp,
            )
            for item in items
        ]
        with self._writer.begin() as connection:
            # Plain tuples to the driver, a multi-row VALUES a statement; matched back by
            # (commitment, evidence) since the order RETURNING gives is not promised.
            inserted = insert_returning(
                connection, outcome_outbox, _QUEUED, rows, ("id", "commitment_hash", "evidence")
            )
        ids = _ids_in_order(items, inserted)
        return [
            QueuedOutcome(
                key,
                item.commitment_hash,
                department,
                item.status,
                item.evidence,
                item.report,
                None,
                None,
                None,
            )
            for key, item in zip(ids, items, strict=True)
        ]

    def open(self, department: str) -> list[QueuedOutcome[R]]:
        """Outcomes of `department` not yet recorded, oldest first."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(outcome_outbox)
                .where(
                    outcome_outbox.c.recorded_at.is_(None),
                    outcome_outbox.c.department == department,
                )
                .order_by(outcome_outbox.c.id)
            ).all()
        return [self._queued(row) for row in rows]

    def mark_sent(self, ids: Sequence[int], tx_hash: bytes, now: float | None = None) -> None:
        """The transaction carrying these outcomes, written before it is broadcast."""
        stamp = time.time() if now is None else now
        with self._writer.begin() as connection:
            update_among(
                connection,
                outcome_outbox,
                "id",
                ("tx_hash", "sent_at"),
                (bytes(tx_hash), stamp),
                ids,
            )

    def mark_recorded(
        self, ids: Sequence[int], tx_hash: bytes, block_number: int, now: float | None = None
    ) -> None:
        """These outcomes are on chain."""
        stamp = time.time() if now is None else now
        with self._writer.begin() as connection:
            update_among(
                connection,
                outcome_outbox,
                "id",
                ("tx_hash", "block_number", "recorded_at"),
                (bytes(tx_hash), int(block_number), stamp),
                ids,
            )

    def abandoned(self, ids: Sequence[int]) -> dict[int, str]:
        """Which of these outcomes were set aside, and why."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(outcome_outbox.c.id, outcome_outbox.c.abandoned).where(
                    outcome_outbox.c.id.in_(list(ids)), outcome_outbox.c.abandoned.is_not(None)
                )
            ).all()
        return {int(row.id): str(row.abandoned) for row in rows}

    def abandon(self, ids: Sequence[int], reason: str, now: float | None = None) -> None:
        """Close outcomes the contract refuses outright (another outcome came first, say):
        they would block every later flush. The reason stays for the department to see."""
        with self._writer.begin() as connection:
            connection.execute(
                update(outcome_outbox)
                .where(outcome_outbox.c.id.in_(list(ids)))
                .values(abandoned=reason, recorded_at=time.time() if now is None else now)
            )

"""The outcome outbox: outcomes decided but not yet on chain, so a crash records nothing twice."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from ledger.contract import Status
from ledger.store import Store
from ledger.tables import outcome_outbox
from ledger.types import Hash32


@dataclass(frozen=True)
class QueuedOutcome:
    """An outcome in the outbox; `tx_hash` is set once sent, `recorded_at` once mined."""

    id: int
    commitment_hash: Hash32
    department: str
    status: Status
    evidence: Hash32
    report: dict[str, Any]
    tx_hash: bytes | None
    block_number: int | None
    recorded_at: float | None


def _queued(row: Any) -> QueuedOutcome:
    return QueuedOutcome(
        id=row.id,
        commitment_hash=Hash32(bytes(row.commitment_hash)),
        department=row.department,
        status=Status(row.status),
        evidence=Hash32(bytes(row.evidence)),
        report=json.loads(row.report),
        tx_hash=None if row.tx_hash is None else bytes(row.tx_hash),
        block_number=row.block_number,
        recorded_at=row.recorded_at,
    )


class OutcomeOutbox:
    """Outcomes queued for the chain, on the store's database."""

    def __init__(self, store: Store) -> None:
        self._engine = store.engine
        self._writer = store.engine.execution_options(immediate=True)

    def enqueue(
        self,
        department: str,
        items: Sequence[tuple[Hash32, Status, Hash32, dict[str, Any]]],
        now: float | None = None,
    ) -> list[QueuedOutcome]:
        """Queue (commitment, status, evidence, signed report) outcomes in one transaction;
        return them as queued, in order (so the caller need not read them back)."""
        if not items:
            return []
        stamp = time.time() if now is None else now
        with self._writer.begin() as connection:
            ids = connection.scalars(
                outcome_outbox.insert().returning(
                    outcome_outbox.c.id, sort_by_parameter_order=True
                ),
                [
                    {
                        "commitment_hash": commitment,
                        "department": department,
                        "status": int(status),
                        "evidence": evidence,
                        "report": json.dumps(report, ensure_ascii=False, sort_keys=True),
                        "created_at": stamp,
                    }
                    for commitment, status, evidence, report in items
                ],
            ).all()
        return [
            QueuedOutcome(key, commitment, department, status, evidence, report, None, None, None)
            for key, (commitment, status, evidence, report) in zip(ids, items, strict=True)
        ]

    def open(self, department: str) -> list[QueuedOutcome]:
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
        return [_queued(row) for row in rows]

    def mark_sent(self, ids: Sequence[int], tx_hash: bytes, now: float | None = None) -> None:
        """The transaction carrying these outcomes, written before it is broadcast."""
        with self._writer.begin() as connection:
            connection.execute(
                update(outcome_outbox)
                .where(outcome_outbox.c.id.in_(list(ids)))
                .values(tx_hash=tx_hash, sent_at=time.time() if now is None else now)
            )

    def mark_recorded(
        self, ids: Sequence[int], tx_hash: bytes, block_number: int, now: float | None = None
    ) -> None:
        """These outcomes are on chain."""
        with self._writer.begin() as connection:
            connection.execute(
                update(outcome_outbox)
                .where(outcome_outbox.c.id.in_(list(ids)))
                .values(
                    tx_hash=tx_hash,
                    block_number=block_number,
                    recorded_at=time.time() if now is None else now,
                )
            )

    def abandon(self, ids: Sequence[int], reason: str, now: float | None = None) -> None:
        """Close outcomes the contract refuses outright (another outcome came first, say):
        they would block every later flush. The reason stays for the department to see."""
        with self._writer.begin() as connection:
            connection.execute(
                update(outcome_outbox)
                .where(outcome_outbox.c.id.in_(list(ids)))
                .values(abandoned=reason, recorded_at=time.time() if now is None else now)
            )

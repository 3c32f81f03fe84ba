"""Deciding a commitment's application: the decision record, when it was due, whether late.

The department decides each application made under a commitment, approved or refused, once.
`DecisionDesk.decide` counts when the decision was due from the store's receipt time in the
office hours (`verifier.OfficeHours.decision_due`: online within the matter's
`online_decision_working_days`, at the counter on the spot), builds the
`ledger.DecisionRecord` and stores it with the statistics counters in one transaction; the
record is anchored with the department's next batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection

from ledger import (
    BatchRow,
    DecisionChannel,
    DecisionRecord,
    DecisionResult,
    Hash32,
    Store,
    StoredCommitment,
    StoredDecision,
    StoreError,
    hex32,
)
from verifier.catalog import Catalog
from verifier.errors import VerificationError
from verifier.records import count_decision
from verifier.working_time import OfficeHours

__all__ = [
    "DecisionCounter",
    "DecisionDesk",
    "DecisionRefusal",
    "DecisionRefusedError",
    "decision_json",
]

DecisionRefusal = Literal["unknown", "other-department", "decided", "erased"]
# Statistics kept in the decision's own transaction (verifier.records' counters).
DecisionCounter = Callable[[Connection, DecisionRecord], None]


class DecisionRefusedError(VerificationError):
    """The desk does not decide this: `reason` says why (an unknown commitment, another
    department's, one decided already, one erased); nothing was stored."""

    def __init__(self, reason: DecisionRefusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class DecisionDesk:
    """Where a department's decisions on applications are recorded, each once.

    `counter` runs in each decision's transaction: by default the statistics counters
    (`verifier.records.count_decision`), whose tables `VerifierRecords(store)` makes.
    """

    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        hours: OfficeHours,
        *,
        counter: DecisionCounter | None = count_decision,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.hours = hours
        self.counter = counter

    def due(self, stored: StoredCommitment) -> datetime:
        """When the decision on `stored` is (or was) due, UTC."""
        limit = self.catalog.matter(stored.matter_code).online_decision_working_days
        return self.hours.decision_due(_received(stored), _channel(stored), limit)

    def decide(
        self,
        commitment: Hash32,
        result: DecisionResult,
        decided_by: str,
        department: str,
        now: datetime | None = None,
    ) -> StoredDecision:
        """Record `department`'s decision on `commitment` by the account `decided_by` at
        `now` (default: the clock) and return it as stored. DecisionRefusedError for an
        unknown commitment, another department's, an erased one or one decided already;
        InvalidDocumentError (from the record) for a malformed `decided_by` or `result`."""
        shown = hex32(commitment)
        stored = self.store.get(commitment)
        if stored is None:
            raise DecisionRefusedError("unknown", f"no commitment {shown} in the store")
        if stored.department != department:
            raise DecisionRefusedError(
                "other-department", f"commitment {shown} belongs to another department"
            )
        if stored.erased:
            raise DecisionRefusedError("erased", f"commitment {shown} was erased")
        if stored.decided_at is not None:
            raise DecisionRefusedError("decided", f"commitment {shown} is decided already")
        decided_at = now or datetime.fromtimestamp(time.time(), UTC)
        record = DecisionRecord(
            commitment=commitment,
            department=stored.department,
            matter_code=stored.matter_code,
            channel=_channel(stored),
            received_at=_received(stored),
            due_at=self.due(stored),
            decided_at=decided_at,
            decided_by=decided_by,
            result=result,
        )
        counter = self.counter
        also = None if counter is None else (lambda connection: counter(connection, record))
        try:
            recorded = self.store.record_decision(record, also=also)
        except StoreError as exc:  # erased or removed since it was read
            raise DecisionRefusedError("erased", str(exc)) from None
        if not recorded:  # a concurrent decision came first
            raise DecisionRefusedError("decided", f"commitment {shown} is decided already")
        decision = self.store.decision_of(commitment)
        if decision is None:  # pragma: no cover - written in the transaction above
            raise StoreError(f"the decision on {shown} was not stored")
        return decision

    def view(self, commitment: Hash32) -> dict[str, Any] | None:
        """The decision on `commitment` as JSON (None while undecided): the record's fields
        (RFC 3339 times, `late`), its hash, its anchoring state and, once batched, the batch
        and the record hash's Merkle proof; `due_provisional` when the due time was counted
        into a year whose official calendar is not yet published."""
        decision = self.store.decision_of(commitment)
        if decision is None:
            return None
        shown = decision_json(decision, self.store.decision_anchoring(commitment))
        record = decision.record
        # A due time counted into a year whose holidays are not yet published may move.
        shown["due_provisional"] = self.hours.provisional(record.received_at, record.due_at)
        return shown


def decision_json(
    decision: StoredDecision, anchoring: tuple[BatchRow, tuple[Hash32, ...]] | None
) -> dict[str, Any]:
    """A stored decision as JSON: the record, `record_hash`, `state` and `anchoring` (the
    batch: id, root, state, transaction and block once sent and mined; the proof)."""
    shown: dict[str, Any] = decision.record.to_json_obj()
    shown["record_hash"] = hex32(decision.hash)
    shown["state"] = decision.state
    shown["anchoring"] = None
    if anchoring is not None:
        batch, proof = anchoring
        shown["anchoring"] = {
            "batch_id": batch.id,
            "root": hex32(batch.root),
            "state": batch.state,
            "tx_hash": None if batch.tx_hash is None else "0x" + batch.tx_hash.hex(),
            "block_number": batch.block_number,
            "proof": [hex32(step) for step in proof],
        }
    return shown


def _received(stored: StoredCommitment) -> datetime:
    return datetime.fromtimestamp(stored.received_at, UTC)


def _channel(stored: StoredCommitment) -> DecisionChannel:
    # Commitments stored before the channel was kept (store version 5) are counted as
    # online: the limit the rule sets for applications not made in person.
    return "counter" if stored.channel == "counter" else "online"

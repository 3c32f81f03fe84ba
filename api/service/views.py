"""How the service shows stored commitments and batches, and the contract's statuses."""

from __future__ import annotations

from api.service.models import BatchView, CommitmentStatus, VerificationView, utc_text
from ledger import Status, Store, StoredCommitment, hex32
from verifier.records import VerifierRecords


def status_name(value: int | None) -> str | None:
    """The contract's status as a lowercase name ("breached"), or None."""
    if value is None:
        return None
    try:
        return Status(value).name.lower()
    except ValueError:
        return f"unknown({value})"


def batch_view(store: Store, batch_id: int) -> BatchView:
    """The batch a commitment is in, as departments see it."""
    row = store.batch(batch_id)
    return BatchView(
        id=row.id,
        root=hex32(row.root),
        size=row.size,
        state=row.state,
        transaction=None if row.tx_hash is None else hex32(row.tx_hash),
        block_number=row.block_number,
    )


def status_view(
    store: Store, records: VerifierRecords, stored: StoredCommitment
) -> CommitmentStatus:
    """A commitment's anchoring and verification state (no personal data)."""
    digest = stored.hash
    batch = None if stored.batch_id is None else batch_view(store, stored.batch_id)
    found = records.verification(digest)
    verification = None
    if found is not None:
        verification = VerificationView(
            state=found.state,
            due_on=found.due_on.isoformat(),
            deadline_provisional=found.deadline_provisional,
            rectify_by=None if found.rectify_by is None else found.rectify_by.isoformat(),
            outcome_status=status_name(found.outcome_status),
            transaction=None if found.tx_hash is None else hex32(found.tx_hash),
            block_number=found.block_number,
        )
    return CommitmentStatus(
        hash=hex32(stored.hash),
        department=stored.department,
        matter_code=stored.matter_code,
        received_at=utc_text(stored.received_at),
        state=stored.state,
        erased=stored.erased,
        batch=batch,
        verification=verification,
    )

"""The JSON the service answers with, as pydantic models (they make the OpenAPI document)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Accepted(BaseModel):
    """A commitment is durable; anchoring follows."""

    hash: str = Field(description="keccak256 of the canonical commitment, 0x-hex")
    new: bool = Field(description="False when this exact document was stored before")
    status_url: str


class BatchView(BaseModel):
    """The anchoring batch a commitment is in."""

    id: int
    root: str
    size: int
    state: Literal["built", "sent", "anchored"] | str
    transaction: str | None
    block_number: int | None


class VerificationView(BaseModel):
    """Where a commitment's verification stands."""

    state: str
    due_on: str
    deadline_provisional: bool
    rectify_by: str | None
    outcome_status: str | None = Field(description="The contract's status name, once recorded")
    transaction: str | None
    block_number: int | None


class CommitmentStatus(BaseModel):
    """A commitment as its department sees it (no personal data)."""

    hash: str
    department: str
    matter_code: str
    received_at: float
    state: Literal["pending", "batched", "anchored"] | str
    erased: bool
    batch: BatchView | None
    verification: VerificationView | None


class AnchorView(BaseModel):
    """Where a commitment is anchored."""

    batch_root: str
    batch_size: int
    transaction: str
    block_number: int
    block_hash: str
    anchored_at: float | None
    confirmations: int | None = Field(
        description="Blocks on top of the anchoring block; null when the node cannot be asked"
    )


class OnChainView(BaseModel):
    """What the contract says, asked now."""

    reachable: bool
    chain_id: int | None
    contract: str | None
    anchored: bool | None = Field(description="The contract's isAnchored with the stored proof")
    status: str | None = Field(description="The contract's statusOf, as a lowercase name")


class AuditCommitment(BaseModel):
    """An anchor as an auditor may see it: hashes, transactions and states only."""

    hash: str
    department: str
    matter_code: str
    received_at: float
    state: str
    anchor: AnchorView | None
    verification_state: str | None
    on_chain: OnChainView
    proof_url: str | None


class DocumentCheck(BaseModel):
    """Whether a document is one the ledger holds."""

    status: Literal["matches", "tampered", "unknown"]
    signature_valid: bool | None = Field(description="null for a bare (unsigned) document")
    hash: str
    anchored: bool
    audit_url: str | None


class BreachList(BaseModel):
    """One page of the public breach list."""

    records: list[dict[str, Any]]
    total: int
    page: int
    page_size: int
    on: str = Field(description="The day the list is for (records published then)")


class Health(BaseModel):
    """The process is up."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """The store and the chain answer; the anchoring backlog."""

    status: Literal["ready"]
    checks: dict[str, Any]
    anchoring: dict[str, Any]

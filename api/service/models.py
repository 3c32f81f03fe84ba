"""The JSON the service answers with, as pydantic models (they make the OpenAPI document)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ledger import time_text


def utc_text(stamp: float) -> str:
    """A store's Unix time as the API shows times: RFC 3339 in UTC, milliseconds."""
    return time_text(datetime.fromtimestamp(stamp, UTC))


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
    received_at: str = Field(description="When the store received it: RFC 3339, UTC")
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
    anchored_at: str | None = Field(description="When it was seen anchored: RFC 3339, UTC")
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
    received_at: str = Field(description="When the store received it: RFC 3339, UTC")
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
    committed_hashes: list[str] = Field(
        default=[],
        description="For a tampered document: the hashes committed under its code",
    )


class BreachList(BaseModel):
    """One page of the public breach list."""

    records: list[dict[str, Any]]
    total: int = Field(description="Records that match, counted up to total_capped's bound")
    page: int
    page_size: int
    on: str = Field(description="The day the list is for (records published then)")
    total_capped: bool = Field(
        default=False,
        description="More records match than are counted (and paged): narrow the search",
    )


class Health(BaseModel):
    """The process is up."""

    status: Literal["ok"]


class Readiness(BaseModel):
    """The store and the chain answer; for an operator token, the anchoring backlog."""

    status: Literal["ready"]
    checks: dict[str, Any] = Field(default={}, description="Operators only")
    anchoring: dict[str, Any] = Field(default={}, description="Operators only")
    background: dict[str, Any] = Field(
        default={}, description="Each background task's runs, failures in a row, last error"
    )
    development_chain: str | None = Field(
        default=None,
        description="Set on a managed anvil or the embedded chain: its history can be rewritten",
    )
    reconciliation: dict[str, int] = Field(
        default={}, description="Operators only: chain events taken up, conflicts found"
    )
    leases: dict[str, Any] = Field(
        default={},
        description="Operators only: this instance's name, the leases it holds now (each "
        "with its fencing token) and those it asks for, its fair share of them among the "
        "live instances, and the lease it is handing over (if any)",
    )


# ---------------------------------------------------------------------- department actions

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
NOTE_MAX = 1000


class WithdrawRequest(BaseModel):
    """The applicant withdrew before the decision."""

    model_config = _STRICT

    note: str = Field(min_length=1, max_length=NOTE_MAX, description="Why, as recorded")


class DecisionRequest(BaseModel):
    """A person's verification decision; `kept` on an open mismatch is its rectification."""

    model_config = _STRICT

    outcome: Literal["kept", "mismatch", "needs_manual", "false"]
    note: str = Field(min_length=1, max_length=NOTE_MAX, description="What was checked")
    evidence: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="A reference to the evidence (a file number, a document hash)",
    )


class RepairRequest(BaseModel):
    """The decision that repairs a breach (credit repair granted)."""

    model_config = _STRICT

    decision: str = Field(min_length=1, max_length=NOTE_MAX)


class RunRequest(BaseModel):
    """Run verification for the token's department."""

    model_config = _STRICT

    on: date | None = Field(default=None, description="The day (default: today)")
    all_manual: bool = Field(
        default=False,
        description="Without data sources, record every commitment due NEEDS_MANUAL",
    )


class RunResult(BaseModel):
    """What one verification run did."""

    department: str
    on: str
    examined: int
    outcomes: dict[str, int]
    transactions: int
    gas_used: int
    recorded_on_chain: int
    breaches: list[str] = Field(description="Ids of the breach records published")
    proposed: list[str] = Field(
        default_factory=list,
        description="Hashes of the commitments whose breach is proposed: notified, not published",
    )
    overdue_flagged: int
    abandoned: int


class RepairResult(BaseModel):
    """A breach record after its repair."""

    id: str
    commitment_hash: str
    status: str
    repaired_on: str | None
    on_chain_status: str | None = Field(description="The contract's status, asked now")


class AcceptedAnchored(Accepted):
    """A commitment is durable and anchored (the submitter waited for it)."""

    batch: BatchView

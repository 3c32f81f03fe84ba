"""The applicant routes' bodies and answers, for the OpenAPI document and the page alike."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

HASH_PATTERN = r"^0x[0-9a-fA-F]{64}$"
MAX_SIGNATURE_CHARS = 200  # base64 of a 64-byte Ed25519 or a <= 72-byte DER P-256 signature
MAX_FILING_CHARS = 4000

DeadlineKind = Literal[
    "verification_due",
    "rectify_by",
    "defence_ends",
    "publication_until",
    "earliest_repair",
    "decision_due",
]
FilingKind = Literal["statement", "rectification", "objection", "repair"]


class ChallengeRequest(BaseModel):
    """Which commitment the applicant will prove they signed."""

    model_config = ConfigDict(extra="forbid")

    commitment: str = Field(pattern=HASH_PATTERN, description="The commitment hash, 0x-hex")


class ChallengeAnswer(BaseModel):
    """A one-time challenge: sign `message` (its UTF-8 bytes) with the commitment's key."""

    challenge: str = Field(description="32 random bytes as 64 lowercase hex digits")
    commitment: str
    message: str = Field(
        description="commitledger-applicant-challenge:v1:<challenge>:<commitment>: its UTF-8 "
        "bytes are what is signed (Ed25519, or ECDSA P-256 over SHA-256, as commitments are)"
    )
    expires_at: datetime
    sign_with: str = Field(description="The command that signs it with the key file")


class SessionRequest(BaseModel):
    """The challenge, the commitment it binds, and the signature over its message."""

    model_config = ConfigDict(extra="forbid")

    commitment: str = Field(pattern=HASH_PATTERN)
    challenge: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature: str = Field(min_length=1, max_length=MAX_SIGNATURE_CHARS, description="base64")


class SessionAnswer(BaseModel):
    """A session: send `Authorization: Bearer <token>` to the applicant routes."""

    token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme's name, not a secret
    expires_at: datetime
    commitments: list[str] = Field(description="What the session may see: this key's ones")


class ClaimView(BaseModel):
    """One claim as committed and, once verified, as compared with the department's data."""

    key: str
    claimed: Any = Field(description='{"op", "value"} as committed')
    verdict: str | None = Field(description="None until verified")
    observed: Any = None
    detail: str | None = None
    source: str | None = Field(default=None, description="The data source that answered")
    answered_at: datetime | None = Field(default=None, description="When it answered (UTC)")
    data_hash: str | None = Field(
        default=None, description="keccak256 of the RFC 8785 bytes of the record it returned"
    )
    data_signature: str | None = Field(
        default=None, description="The department's Ed25519 signature of its answer (base64)"
    )
    data_key_id: str | None = Field(default=None, description="The id of the key that signed it")


class AccessView(BaseModel):
    """One lookup of the applicant's data in a department's data source."""

    source: str = Field(description="The data source looked up")
    department: str = Field(description="The department that asked")
    requested_by: str = Field(description="Who in it: a verification run or an officer")
    purpose: str = Field(description="verification or manual_check")
    accessed_at: datetime


class DeadlineView(BaseModel):
    """A date that matters to the applicant."""

    kind: DeadlineKind
    day: date
    provisional: bool = Field(
        default=False, description="Counted on a calendar not yet official; may move"
    )
    breach_id: str | None = None


class StatementView(BaseModel):
    """A statement filed against a notice: when and by whom (its text stays sealed)."""

    id: int
    filed_by: str
    filed_at: datetime | None = None


class NoticeView(BaseModel):
    """A notice sent to the applicant (of a proposed breach: what was found, until when they
    may answer), with the signed notice itself in `notice`."""

    model_config = ConfigDict(extra="allow")

    id: str
    kind: str
    state: str | None = None
    issued_on: date | None = None
    delivered_on: date | None = None
    defence_ends: date | None = None
    hash: str | None = Field(default=None, description="The notice's hash, recorded on chain")
    statements: list[StatementView] = Field(
        default_factory=list, description="The statements filed against it (texts kept sealed)"
    )


class AppealView(BaseModel):
    """An objection or a repair application of a breach record, and where it stands."""

    id: str
    kind: str
    filed_by: str
    filed_on: date
    decide_by: date
    state: str
    decided_on: date | None = None


class RectificationView(BaseModel):
    """Rectification evidence filed for a mismatch, and where it stands (text kept sealed)."""

    id: str
    filed_by: str
    filed_on: date
    rectify_by: date
    state: str = Field(description="open, accepted (the mismatch kept) or rejected")
    decided_on: date | None = None


class BreachView(BaseModel):
    """A breach record of one of the applicant's commitments."""

    id: str
    status: str
    decision_date: date
    publication_end: date
    earliest_repair: date
    repaired_on: date | None
    superseded_by: str | None
    document_number: str
    facts: str
    decision: str
    record_url: str
    appeals: list[AppealView] = Field(default_factory=list)


class FilingView(BaseModel):
    """Something the applicant may file, and where."""

    kind: FilingKind
    available: bool = Field(description="False: the service cannot take it yet (501)")
    url: str
    breach_id: str | None = None


class CommitmentView(BaseModel):
    """One of the applicant's commitments: claims, outcome, deadlines, notices, breaches."""

    hash: str
    code: str
    matter_code: str
    matter_name: str
    department: str
    department_name: str
    signed_at: datetime
    received_at: datetime
    anchored: bool
    verification_state: str | None
    outcome: str | None
    decided_at: str | None
    decided_by: str | None
    report_evidence: str | None
    claims: list[ClaimView]
    deadlines: list[DeadlineView]
    notices: list[NoticeView]
    breaches: list[BreachView]
    filings: list[FilingView]
    rectifications: list[RectificationView] = Field(
        default_factory=list, description="Rectification evidence filed, oldest first"
    )
    data_accesses: list[AccessView] = Field(
        default_factory=list, description="Every lookup of the applicant's data, oldest first"
    )


class ApplicantView(BaseModel):
    """Everything the applicant's session may see."""

    applicant_name: str
    applicant_id: str = Field(description="The ID number, masked as the public sees it")
    key_algorithm: str
    as_of: date
    session_expires_at: datetime
    commitments: list[CommitmentView]


class FilingRequest(BaseModel):
    """A statement, rectification evidence, an objection or a repair application."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_FILING_CHARS)
    breach_id: str | None = Field(
        default=None, max_length=100, description="For an objection or a repair: the record"
    )


class FilingAnswer(BaseModel):
    """What the service did with a filing."""

    model_config = ConfigDict(extra="allow")

    kind: FilingKind
    commitment: str
    accepted: bool

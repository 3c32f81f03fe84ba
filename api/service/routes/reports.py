"""Signed verification reports by their evidence hash: GET /v1/reports/{evidence}.

The hash of every signed report is the evidence of its outcome on chain (the `evidence` of
its OutcomeRecorded event): with the report, its signature and the department's key (at
`/v1/feed/keys`) anyone can check that the outcome was decided on what the report says.
The report of a published breach (one in today's public list) is public; any other report
needs a token of the report's department. Reports name no person by design; the public copy
is checked for the applicant's name and ID, and for anything shaped like a resident ID, in
case a person typed one into a note: what is found is masked, and the copy says so (its hash
is then no longer the evidence; the department's copy is).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api.service.context import ChainLink
from api.service.deps import (
    ChainDep,
    IntakeDep,
    LimiterDep,
    StoreDep,
    TodayDep,
    TokensDep,
    rate_limited,
)
from api.service.problems import (
    INVALID_HASH,
    NOT_FOUND,
    OTHER_DEPARTMENT,
    UNAUTHORIZED,
    ProblemError,
    problem_responses,
)
from ledger import (
    ErasedError,
    Hash32,
    Intake,
    InvalidHashError,
    Status,
    Store,
    VaultError,
    department_id,
    hex32,
    outcome_outbox,
    to_hash32,
)
from verifier import mask_id_number, mask_person_name
from verifier.records import breach_records, verifications_table

router = APIRouter(tags=["auditors"])
_bearer = HTTPBearer(
    auto_error=False,
    description="A token of the report's department (none for a published breach's report).",
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="commitledger"'}
# An 18-character resident ID standing alone (not part of a hash, a code or a longer number).
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
# The parts of a report a person or a data source writes; the rest is the engine's own.
_FREE_TEXT = ("note", "decided_by")
_COMPARED = ("claimed", "observed", "detail")


class ReportSignature(BaseModel):
    """The department's signature over the RFC 8785 bytes of `report`."""

    algorithm: str = Field(description="ed25519 or ecdsa-p256")
    public_key: str = Field(description="base64 of the DER SubjectPublicKeyInfo")
    value: str = Field(description="base64 of the signature")


class ReportOnChain(BaseModel):
    """Where the report's hash was recorded: the contract and the outcome's transaction."""

    chain_id: int | None
    contract: str | None
    department_id: str = Field(description="keccak256 of the department's code")
    commitment_hash: str
    status: str
    transaction: str | None
    block: int | None


class ServedReport(BaseModel):
    """A signed verification report and where its evidence hash is on chain."""

    evidence: str = Field(description="keccak256 of the RFC 8785 bytes of `report`")
    scope: Literal["public", "department"]
    masked: bool = Field(
        description="Personal data was masked in this public copy: its bytes no longer hash "
        "to `evidence` (the department's copy does)"
    )
    report: dict[str, Any]
    signature: ReportSignature
    on_chain: ReportOnChain


@dataclass(frozen=True)
class _Recorded:
    """A report as stored beside its outcome."""

    commitment: Hash32
    department: str
    status: Status
    signed: dict[str, Any]
    tx_hash: bytes | None
    block: int | None


def _evidence(evidence: str) -> Hash32:
    try:
        return to_hash32(evidence)
    except InvalidHashError as exc:
        raise ProblemError(
            INVALID_HASH, f"{exc}: give the evidence as 0x and 64 hex digits"
        ) from None


def _recorded(store: Store, evidence: Hash32) -> _Recorded | None:
    """The report recorded on chain with this evidence: the outbox row that recorded it (the
    one copy), or the copy a verification kept in stores written before the outbox."""
    box = outcome_outbox.c
    with store.engine.connect() as connection:
        row = connection.execute(
            select(box.commitment_hash, box.department, box.status, box.report)
            .add_columns(box.tx_hash, box.block_number)
            .where(box.evidence == evidence, box.recorded_at.is_not(None), box.abandoned.is_(None))
            .order_by(box.id.desc())
            .limit(1)
        ).first()
        if row is None:
            v = verifications_table.c
            row = connection.execute(
                select(v.commitment_hash, v.department, v.outcome_status, v.report)
                .add_columns(v.tx_hash, v.block_number)
                .where(v.evidence == evidence, v.report.is_not(None))
                .limit(1)
            ).first()
    if row is None:
        return None
    commitment, department, status, report, tx_hash, block = row
    return _Recorded(
        Hash32(bytes(commitment)),
        department,
        Status(status),
        json.loads(report),
        None if tx_hash is None else bytes(tx_hash),
        block,
    )


def _published_breach(store: Store, found: _Recorded, on: date) -> bool:
    """Whether the report decided a breach that today's public list shows."""
    if found.status != Status.BREACHED:
        return False
    c = breach_records.c
    day = on.isoformat()
    with store.engine.connect() as connection:
        # verifier.breaches.publicly_listed, as SQL
        listed = connection.execute(
            select(c.id)
            .where(
                c.commitment_hash == found.commitment,
                c.department == found.department,
                c.status == "published",
                c.decision_date <= day,
                c.publication_end >= day,
            )
            .limit(1)
        ).first()
    return listed is not None


def _secrets(intake: Intake | None, commitment: Hash32) -> list[tuple[str, str]]:
    """The applicant's name and ID, each with its public mask (none once erased)."""
    if intake is None:
        return []
    try:
        signed = intake.open_document(commitment)
    except (ErasedError, VaultError, ValueError):
        return []
    if signed is None:
        return []
    applicant = signed.document.applicant
    return [
        (applicant.id_number, mask_id_number(applicant.id_type, applicant.id_number)),
        (applicant.name, mask_person_name(applicant.name)),
    ]


def _masked_text(text: str, secrets: list[tuple[str, str]]) -> str:
    for secret, mask in secrets:
        if secret:
            text = text.replace(secret, mask)
    return _RESIDENT_ID.sub(lambda m: mask_id_number("resident_id", m[0]), text)


def _masked(value: Any, secrets: list[tuple[str, str]]) -> Any:
    if isinstance(value, str):
        return _masked_text(value, secrets)
    if isinstance(value, list):
        return [_masked(item, secrets) for item in value]
    if isinstance(value, dict):
        return {key: _masked(item, secrets) for key, item in value.items()}
    return value


def public_copy(report: dict[str, Any], secrets: list[tuple[str, str]]) -> dict[str, Any]:
    """The report with personal data masked where a person or a source wrote text: the
    note, who decided, and each comparison's values and sentence. Unchanged (the same
    object) when there was none, as there should be."""
    copy = dict(report)
    for name in _FREE_TEXT:
        if isinstance(copy.get(name), str):
            copy[name] = _masked_text(copy[name], secrets)
    copy["comparisons"] = [
        {k: _masked(v, secrets) if k in _COMPARED else v for k, v in comparison.items()}
        for comparison in report.get("comparisons", ())
    ]
    if "tasks" in report:  # a person's evidence note and name (verifier.engine.tasks)
        copy["tasks"] = _masked(report["tasks"], secrets)
    return report if copy == report else copy


def _reader(
    request: Request,
    tokens: TokensDep,
    limiter: LimiterDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """The department of the caller's token; None for the public (rate-limited)."""
    if credentials is None:
        rate_limited(request, limiter)
        return None
    principal = tokens.lookup(credentials.credentials)
    if principal is None:
        raise ProblemError(
            UNAUTHORIZED,
            "the token is unknown or revoked (a published breach's report needs none)",
            headers=_CHALLENGE,
        )
    return None if principal.role == "feed" else principal.department


def _on_chain(chain: ChainLink, found: _Recorded) -> ReportOnChain:
    deployment = chain.deployment
    return ReportOnChain(
        chain_id=deployment.chain_id if deployment else None,
        contract=deployment.contract if deployment else None,
        department_id=hex32(department_id(found.department)),
        commitment_hash=hex32(found.commitment),
        status=found.status.name.lower(),
        transaction=None if found.tx_hash is None else hex32(found.tx_hash),
        block=found.block,
    )


def _serve(
    store: Store,
    intake: Intake | None,
    chain: ChainLink,
    evidence: Hash32,
    reader: str | None,
    on: date,
) -> ServedReport:
    found = _recorded(store, evidence)
    if found is None:
        raise ProblemError(
            NOT_FOUND, f"no report recorded on chain with evidence {hex32(evidence)}"
        )
    signature = ReportSignature(**found.signed["signature"])
    report: dict[str, Any] = found.signed["report"]
    place = _on_chain(chain, found)
    if reader == found.department:
        return ServedReport(
            evidence=hex32(evidence),
            scope="department",
            masked=False,
            report=report,
            signature=signature,
            on_chain=place,
        )
    if not _published_breach(store, found, on):
        if reader is None:
            raise ProblemError(
                UNAUTHORIZED,
                "this report is not of a published breach: it needs a token of its department",
                headers=_CHALLENGE,
            )
        raise ProblemError(
            OTHER_DEPARTMENT, f"this report is {found.department}'s; this token is not"
        )
    public = public_copy(report, _secrets(intake, found.commitment))
    return ServedReport(
        evidence=hex32(evidence),
        scope="public",
        masked=public is not report,
        report=public,
        signature=signature,
        on_chain=place,
    )


@router.get(
    "/v1/reports/{evidence}",
    summary="A signed verification report by the evidence hash on chain",
    response_model=ServedReport,
    openapi_extra={"security": [{}, {"HTTPBearer": []}]},  # none for a published breach's
    responses=problem_responses(400, 401, 403, 404, 429),
)
async def get_report(
    evidence: str,
    store: StoreDep,
    intake: IntakeDep,
    chain: ChainDep,
    on: TodayDep,
    reader: Annotated[str | None, Depends(_reader)],
) -> ServedReport:
    """The report whose keccak256 (of its RFC 8785 bytes) is `evidence`, with the
    department's signature and where the outcome is on chain. Public for a breach in today's
    public list; otherwise a token of the report's department is needed."""
    digest = _evidence(evidence)
    return await run_in_threadpool(_serve, store, intake, chain, digest, reader, on)

"""Routes for departments (a bearer token each): submit commitments, follow them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from ledger import (
    InvalidDocumentError,
    SignatureError,
    SignedCommitment,
    Status,
    hex32,
    load_json_bytes,
)
from ledger.intake import ApplicantExcludedError
from ledger.store import Store, StoredCommitment
from ledger.types import Hash32

from ..deps import (
    ContextDep,
    DepartmentDep,
    HashDep,
    RecordsDep,
    RegistrarDep,
    StoreDep,
    VerifierDep,
    require_department,
)
from ..models import Accepted, BatchView, CommitmentStatus, VerificationView
from ..problems import (
    APPLICANT_EXCLUDED,
    INVALID_DOCUMENT,
    INVALID_SIGNATURE,
    MALFORMED_JSON,
    NOT_FOUND,
    NOT_IMPLEMENTED,
    UNAVAILABLE,
    ProblemError,
    problem_responses,
)
from ..tokens import Principal

router = APIRouter(prefix="/v1", tags=["departments"])

_SIGNED_SCHEMA = SignedCommitment.model_json_schema(ref_template="#/components/schemas/{model}")
_SIGNED_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A signed commitment: {document, signature}, as `commitledger sign` "
        "writes it. The document's department must be the token's.",
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SignedCommitment"}}
        },
    }
}


def signed_schemas() -> dict[str, Any]:
    """The SignedCommitment schema and the ones it refers to, for the OpenAPI components."""
    definitions: dict[str, Any] = dict(_SIGNED_SCHEMA.get("$defs", {}))
    definitions["SignedCommitment"] = {k: v for k, v in _SIGNED_SCHEMA.items() if k != "$defs"}
    return definitions


def parse_json(raw: bytes) -> object:
    """Strict JSON (no duplicate keys, NaN or trailing data); 400 problem otherwise."""
    try:
        return load_json_bytes(raw)
    except InvalidDocumentError as exc:
        raise ProblemError(MALFORMED_JSON, str(exc)) from None


def _parse_signed(raw: bytes) -> SignedCommitment:
    try:
        return SignedCommitment.from_json_obj(parse_json(raw))
    except InvalidDocumentError as exc:
        raise ProblemError(INVALID_DOCUMENT, str(exc)) from None


@router.post(
    "/commitments",
    status_code=202,
    summary="Submit a signed commitment",
    openapi_extra=_SIGNED_BODY,
    responses=problem_responses(400, 401, 403, 413, 422, 503),
)
async def submit_commitment(
    request: Request, response: Response, principal: RegistrarDep, context: ContextDep
) -> Accepted:
    """Check, seal and store a signed commitment of the token's department.

    Answers 202 once the commitment is durable; anchoring follows. A document submitted
    twice is stored once (`new` is false the second time).
    """
    intake = context.intake
    if intake is None:
        raise ProblemError(
            UNAVAILABLE,
            "intake is closed: the service was started without a master key "
            "(COMMITLEDGER_MASTER_KEY_FILE)",
        )
    signed = _parse_signed(await request.body())
    require_department(principal, signed.document.department, "this commitment")
    try:
        ack = await run_in_threadpool(intake.submit, signed)
    except ApplicantExcludedError as exc:
        raise ProblemError(APPLICANT_EXCLUDED, str(exc)) from None
    except SignatureError as exc:
        raise ProblemError(INVALID_SIGNATURE, str(exc)) from None
    except InvalidDocumentError as exc:
        raise ProblemError(INVALID_DOCUMENT, str(exc)) from None
    digest = hex32(ack.hash)
    status_url = f"/v1/commitments/{digest}/status"
    response.headers["Location"] = status_url
    return Accepted(hash=digest, new=ack.new, status_url=status_url)


def _own_commitment(store: Store, digest: Hash32, principal: Principal) -> StoredCommitment:
    stored = store.get(digest)
    if stored is None:
        raise ProblemError(NOT_FOUND, f"no commitment {hex32(digest)} in the store")
    require_department(principal, stored.department, "this commitment")
    return stored


def status_name(value: int | None) -> str | None:
    """The contract's status as a lowercase name ("breached"), or None."""
    if value is None:
        return None
    try:
        return Status(value).name.lower()
    except ValueError:
        return f"unknown({value})"


@router.get(
    "/commitments/{hash}/status",
    summary="A commitment's anchoring and verification state",
    responses=problem_responses(400, 401, 403, 404),
)
def commitment_status(
    digest: HashDep, principal: DepartmentDep, store: StoreDep, records: RecordsDep
) -> CommitmentStatus:
    """For a registrar or verifier of the commitment's department."""
    stored = _own_commitment(store, digest, principal)
    batch = None
    if stored.batch_id is not None:
        row = store.batch(stored.batch_id)
        batch = BatchView(
            id=row.id,
            root=hex32(row.root),
            size=row.size,
            state=row.state,
            transaction=None if row.tx_hash is None else hex32(row.tx_hash),
            block_number=row.block_number,
        )
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
        received_at=stored.received_at,
        state=stored.state,
        erased=stored.erased,
        batch=batch,
        verification=verification,
    )


_NEEDS_KEYS = (
    "it sends a transaction with the department's {role} account, which this service does "
    "not hold; the verification engine (verifier.engine.VerificationEngine.{action}) does it"
)


@router.post(
    "/commitments/{hash}/withdraw",
    summary="Withdraw a commitment (not available yet)",
    responses=problem_responses(400, 401, 403, 404, 501),
)
def withdraw_commitment(digest: HashDep, principal: RegistrarDep, store: StoreDep) -> None:
    """Checks who asks, then answers 501: withdrawal is not served over HTTP yet."""
    _own_commitment(store, digest, principal)
    raise ProblemError(NOT_IMPLEMENTED, _NEEDS_KEYS.format(role="registrar", action="withdraw"))


@router.post(
    "/verifications/{hash}/decision",
    summary="Record a person's verification decision (not available yet)",
    responses=problem_responses(400, 401, 403, 404, 501),
)
def decide_verification(digest: HashDep, principal: VerifierDep, store: StoreDep) -> None:
    """Checks who asks, then answers 501: decisions are not served over HTTP yet."""
    _own_commitment(store, digest, principal)
    raise ProblemError(NOT_IMPLEMENTED, _NEEDS_KEYS.format(role="verifier", action="decide"))


@router.post(
    "/breaches/{record_id}/repair",
    summary="Repair a breach record (not available yet)",
    responses=problem_responses(401, 403, 404, 501),
)
def repair_breach(record_id: str, principal: VerifierDep, records: RecordsDep) -> None:
    """Checks who asks, then answers 501: repairs are not served over HTTP yet."""
    record = records.breach(record_id)
    if record is None:
        raise ProblemError(NOT_FOUND, f"no breach record {record_id}")
    require_department(principal, record.department, "this breach record")
    raise ProblemError(NOT_IMPLEMENTED, _NEEDS_KEYS.format(role="verifier", action="repair"))

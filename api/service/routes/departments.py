"""Routes for departments (a bearer token each): submit commitments, follow them."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.service.deps import (
    DepartmentDep,
    HashDep,
    IntakeDep,
    RecordsDep,
    RegistrarDep,
    StoreDep,
    own_commitment,
    parse_json,
    require_department,
)
from api.service.models import Accepted, AcceptedAnchored, CommitmentStatus
from api.service.problems import (
    APPLICANT_EXCLUDED,
    CODE_TAKEN,
    INVALID_DOCUMENT,
    INVALID_SIGNATURE,
    UNAVAILABLE,
    ProblemError,
    problem_responses,
)
from api.service.views import batch_view, status_view
from ledger import (
    ApplicantExcludedError,
    CodeTakenError,
    Hash32,
    InvalidDocumentError,
    SignatureError,
    SignedCommitment,
    Store,
    hex32,
)

router = APIRouter(prefix="/v1", tags=["departments"])

MAX_WAIT_S = 60.0
DEFAULT_WAIT_S = 30.0
WAIT_POLL_S = 0.1

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
    responses={
        200: {"model": AcceptedAnchored, "description": "Stored before, and anchored"},
        201: {"model": AcceptedAnchored, "description": "Stored and anchored (wait=true)"},
        **problem_responses(400, 401, 403, 409, 413, 422, 503),
    },
)
async def submit_commitment(
    request: Request,
    response: Response,
    principal: RegistrarDep,
    intake: IntakeDep,
    store: StoreDep,
    wait: Annotated[
        bool, Query(description="Answer once the commitment is anchored (or the timeout passes)")
    ] = False,
    timeout: Annotated[
        float, Query(gt=0, le=MAX_WAIT_S, description="Seconds to wait for the anchor")
    ] = DEFAULT_WAIT_S,
) -> Accepted | AcceptedAnchored:
    """Check, seal and store a signed commitment of the token's department.

    Answers 202 once the commitment is durable; anchoring follows. A document submitted
    twice is stored once (`new` is false the second time). With `wait=true` it answers
    when the commitment is anchored, 201 (200 if it was stored before) with its batch, or
    202 as without waiting once `timeout` seconds have passed.
    """
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
    except CodeTakenError as exc:
        raise ProblemError(CODE_TAKEN, str(exc)) from None
    except InvalidDocumentError as exc:
        raise ProblemError(INVALID_DOCUMENT, str(exc)) from None
    digest = hex32(ack.hash)
    status_url = f"/v1/commitments/{digest}/status"
    response.headers["Location"] = status_url
    accepted = Accepted(hash=digest, new=ack.new, status_url=status_url)
    if not wait:
        return accepted
    batch_id = await _anchored_batch(store, ack.hash, timeout)
    if batch_id is None:
        return accepted
    response.status_code = 201 if ack.new else 200
    batch = await run_in_threadpool(batch_view, store, batch_id)
    return AcceptedAnchored(**accepted.model_dump(), batch=batch)


async def _anchored_batch(store: Store, digest: Hash32, timeout: float) -> int | None:
    """The batch id once `digest` is anchored, polling the store until the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        stored = await run_in_threadpool(store.get, digest)
        if stored is not None and stored.state == "anchored" and stored.batch_id is not None:
            return stored.batch_id
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        await asyncio.sleep(min(WAIT_POLL_S, left))


@router.get(
    "/commitments/{hash}/status",
    summary="A commitment's anchoring and verification state",
    responses=problem_responses(400, 401, 403, 404),
)
def commitment_status(
    digest: HashDep, principal: DepartmentDep, store: StoreDep, records: RecordsDep
) -> CommitmentStatus:
    """For a registrar or verifier of the commitment's department."""
    return status_view(store, records, own_commitment(store, digest, principal))

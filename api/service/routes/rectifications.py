"""Rectification evidence (整改材料) for departments: an officer files it for the applicant
during a mismatch's rectification window, lists the department's own, and decides it.

Every route is scoped to the token's department (another's commitment or filing: 403).
Deciding needs a verifier's token: an accepted filing is the department's rectify action,
recorded on chain with its verifier account (the mismatch is kept).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.service.context import ServiceContext
from api.service.deps import (
    ContextDep,
    DepartmentDep,
    HashDep,
    RecordsDep,
    StoreDep,
    TodayDep,
    VaultDep,
    VerifierDep,
    own_commitment,
)
from api.service.problems import INVALID_REQUEST, ProblemError, problem_responses
from api.service.rectifications import (
    decide_rectification,
    file_rectification,
    open_rectifications,
)
from api.service.tokens import Principal
from ledger import Hash32, Store, Vault
from verifier.records import Rectification, VerifierRecords

router = APIRouter(prefix="/v1", tags=["rectifications"])

_REFUSALS = problem_responses(400, 401, 403, 404, 409, 422, 503)
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
TEXT_MAX = 4000
NOTE_MAX = 500


class RectificationRequest(BaseModel):
    """Evidence an officer files for the applicant."""

    model_config = _STRICT

    text: str = Field(min_length=1, max_length=TEXT_MAX, description="The evidence (sealed)")


class RectificationDecision(BaseModel):
    """The department's decision on a filing."""

    model_config = _STRICT

    accepted: bool = Field(description="True: the mismatch is kept (rectified)")
    note: str = Field(min_length=1, max_length=NOTE_MAX, description="Why (no personal data)")


class RectificationAnswer(BaseModel):
    """A filing of rectification evidence (its text kept sealed)."""

    id: str
    commitment: str
    department: str
    filed_by: str
    filed_on: str
    rectify_by: str
    state: str
    decided_on: str | None
    decided_by: str | None


class RectificationList(BaseModel):
    """The department's filings, oldest first."""

    department: str
    rectifications: list[RectificationAnswer]


def _answer(filing: Rectification) -> RectificationAnswer:
    return RectificationAnswer.model_validate(filing.to_json_obj())


def _decided_by(principal: Principal) -> str:
    return f"{principal.department} {principal.role} (token {principal.token_id})"


def _file(
    store: Store,
    records: VerifierRecords,
    vault: Vault | None,
    on: date,
    digest: Hash32,
    principal: Principal,
    body: RectificationRequest,
) -> RectificationAnswer:
    own_commitment(store, digest, principal)
    filed = file_rectification(store, records, vault, on, digest, body.text, by="officer")
    return _answer(filed)


@router.post(
    "/commitments/{hash}/rectification",
    summary="File rectification evidence for the applicant",
    responses=_REFUSALS,
    status_code=201,
)
async def file_evidence(
    digest: HashDep,
    principal: DepartmentDep,
    store: StoreDep,
    records: RecordsDep,
    vault: VaultDep,
    on: TodayDep,
    body: RectificationRequest,
) -> RectificationAnswer:
    """For an officer of the commitment's department, during its mismatch's rectification
    window (409 naming `rectify_by` outside it, nothing stored). The text is sealed."""
    return await run_in_threadpool(_file, store, records, vault, on, digest, principal, body)


_PARAMS = frozenset({"state", "limit"})


@router.get(
    "/rectifications",
    summary="The department's rectification evidence",
    responses=problem_responses(400, 401, 422, 503),
)
async def list_evidence(
    request: Request,
    principal: DepartmentDep,
    store: StoreDep,
    vault: VaultDep,
    state: Literal["open", "accepted", "rejected"] | None = None,
    limit: int = Query(default=100, ge=1, le=500),
) -> RectificationList:
    """The token's department's filings (in `state`, if given), oldest first; texts left out."""
    unknown = set(request.query_params) - _PARAMS
    if unknown:
        raise ProblemError(INVALID_REQUEST, f"unknown query parameter {sorted(unknown)[0]!r}")
    found = await run_in_threadpool(
        lambda: open_rectifications(store, vault).listed(principal.department, state, limit)
    )
    return RectificationList(
        department=principal.department, rectifications=[_answer(f) for f in found]
    )


def _decide(
    context: ServiceContext, filing_id: str, principal: Principal, body: RectificationDecision
) -> RectificationAnswer:
    decided = decide_rectification(
        context,
        filing_id,
        accepted=body.accepted,
        department=principal.department,
        decided_by=_decided_by(principal),
        note=body.note,
    )
    return _answer(decided)


@router.post(
    "/rectifications/{filing_id}/decision",
    summary="Decide rectification evidence",
    responses=_REFUSALS,
)
async def decide_evidence(
    filing_id: str, principal: VerifierDep, context: ContextDep, body: RectificationDecision
) -> RectificationAnswer:
    """For a verifier of the filing's department: accepted is the rectify action (the
    mismatch kept, the filing's id in the note; refused past the window); rejected leaves
    the mismatch's window running."""
    return await run_in_threadpool(_decide, context, filing_id, principal, body)

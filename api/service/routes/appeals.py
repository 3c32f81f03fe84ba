"""Objections (异议申诉) and repair applications (信用修复) for departments: an officer files
one for the applicant, lists and reads the department's own, and decides them with reasons.

Every route is scoped to the token's department: another department's objection or
application is neither shown nor decided (403), and its records cannot be appealed there.
Deciding needs a verifier's token (an upheld objection or a granted repair is recorded on
chain with the department's verifier account).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.service.appeals import (
    appeal_records,
    apply_for_repair,
    decide_objection,
    decide_repair,
    file_objection,
    open_appeals,
)
from api.service.context import ServiceContext
from api.service.deps import (
    ContextDep,
    DepartmentDep,
    StoreDep,
    VaultDep,
    VerifierDep,
    require_department,
)
from api.service.problems import INVALID_REQUEST, NOT_FOUND, ProblemError, problem_responses
from api.service.tokens import Principal
from ledger import Store, Vault
from verifier.records import Appeal, AppealKind, AppealRecords, AppealState

router = APIRouter(prefix="/v1", tags=["appeals"])

_REFUSALS = problem_responses(400, 401, 403, 404, 409, 422, 503)
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
TEXT_MAX = 2000
EVIDENCE_ITEMS = 10
EVIDENCE_MAX = 500

Evidence = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=EVIDENCE_MAX)]],
    Field(max_length=EVIDENCE_ITEMS, description="What supports it (descriptions, file names)"),
]


class ObjectionRequest(BaseModel):
    """An objection an officer files for the applicant."""

    model_config = _STRICT

    reason: str = Field(min_length=1, max_length=TEXT_MAX, description="Why the record is wrong")
    evidence: Evidence = []


class RepairApplicationRequest(BaseModel):
    """A repair application an officer files for the applicant."""

    model_config = _STRICT

    evidence_text: str = Field(
        min_length=1, max_length=TEXT_MAX, description="How the breach was put right"
    )
    evidence: Evidence = []


class ObjectionDecisionRequest(BaseModel):
    """The department's decision on an objection."""

    model_config = _STRICT

    outcome: Literal["upheld", "rejected"]
    reasons: str = Field(min_length=1, max_length=TEXT_MAX)


class RepairDecisionRequest(BaseModel):
    """The department's decision on a repair application."""

    model_config = _STRICT

    outcome: Literal["granted", "refused"]
    reasons: str = Field(min_length=1, max_length=TEXT_MAX)


class AppealView(BaseModel):
    """An objection or repair application (its texts are in the detail view only)."""

    id: str
    kind: Literal["objection", "repair"]
    record_id: str
    department: str
    filed_by: Literal["applicant", "officer"]
    filed_on: str
    decide_by: str = Field(description="The last day of the decision period (working days)")
    state: Literal["open", "upheld", "rejected", "granted", "refused"]
    decided_on: str | None
    decided_by: str | None
    overdue: bool = Field(description="Flagged by the lifecycle job: past decide_by, undecided")


class AppealDetail(AppealView):
    """An appeal with what was written: personal data, for its department only."""

    text: str = Field(description="The objection's reason, or the repair application")
    evidence: list[str]
    reasons: str | None = Field(description="The decision's reasons, once decided")


class AppealList(BaseModel):
    """The department's objections or repair applications, oldest filing first."""

    appeals: list[AppealView]


def _view(appeal: Appeal) -> AppealView:
    return AppealView.model_validate(appeal.to_json_obj())


def _decided_by(principal: Principal) -> str:
    # The token's id is a prefix of its hash: it names who acted without revealing anything.
    return f"{principal.department} {principal.role} (token {principal.token_id})"


def _own_record(context: ServiceContext, record_id: str, principal: Principal) -> str:
    record = context.records.breach(record_id[:64])
    if record is None:
        raise ProblemError(NOT_FOUND, f"no breach record {record_id[:64]}")
    require_department(principal, record.department, "this breach record")
    return record.id


def _own_appeal(
    appeals: AppealRecords, appeal_id: str, kind: AppealKind, principal: Principal
) -> Appeal:
    appeal = appeals.get(appeal_id[:64])
    what = "objection" if kind == "objection" else "repair application"
    if appeal is None or appeal.kind != kind:
        raise ProblemError(NOT_FOUND, f"no {what} {appeal_id[:64]}")
    require_department(principal, appeal.department, f"this {what}")
    return appeal


def _detail(store: Store, vault: Vault | None, appeal: Appeal) -> AppealDetail:
    texts = open_appeals(store, vault, sealing=True).texts(appeal.id)
    return AppealDetail(
        **appeal.to_json_obj(),
        text=texts.text,
        evidence=list(texts.evidence),
        reasons=texts.reasons,
    )


async def _known_query(request: Request) -> None:
    """422 for a query parameter a list does not take: a misspelt filter must not list all."""
    unknown = sorted(set(request.query_params) - {"state", "limit"})
    if unknown:
        raise ProblemError(
            INVALID_REQUEST,
            f"query.{unknown[0][:40]}: not a parameter of this list (state, limit)",
            errors=[{"location": ["query", unknown[0][:40]], "message": "unknown parameter"}],
        )


KnownQuery = Depends(_known_query)
StateQuery = Annotated[Literal["open", "upheld", "rejected", "granted", "refused"] | None, Query()]
LimitQuery = Annotated[int, Query(ge=1, le=500)]


def _list(
    store: Store,
    vault: Vault | None,
    principal: Principal,
    kind: AppealKind,
    state: AppealState | None,
    limit: int,
) -> AppealList:
    found = open_appeals(store, vault).listed(principal.department, kind, state, limit)
    return AppealList(appeals=[_view(a) for a in found])


# ---------------------------------------------------------------------- objections


def _file_objection(
    context: ServiceContext, record_id: str, principal: Principal, body: ObjectionRequest
) -> AppealView:
    own = _own_record(context, record_id, principal)
    appeal = file_objection(
        context,
        own,
        by="officer",
        reason=body.reason,
        evidence=body.evidence,
        department=principal.department,
    )
    return _view(appeal)


@router.post(
    "/breaches/{record_id}/objections",
    summary="File an objection to a published breach record",
    status_code=201,
    responses=_REFUSALS,
)
async def post_objection(
    record_id: str, principal: DepartmentDep, context: ContextDep, body: ObjectionRequest
) -> AppealView:
    """For an officer of the record's department, on the applicant's behalf: the record
    shows 异议处理中 / under objection until the department decides (within
    `objection_decision_days` working days). One open objection per record (409)."""
    return await run_in_threadpool(_file_objection, context, record_id, principal, body)


@router.get(
    "/objections",
    summary="The department's objections",
    responses=_REFUSALS,
    dependencies=[KnownQuery],
)
async def list_objections(
    principal: DepartmentDep,
    store: StoreDep,
    vault: VaultDep,
    state: StateQuery = None,
    limit: LimitQuery = 100,
) -> AppealList:
    """The token's department's objections (in `state`, if given), oldest first."""
    return await run_in_threadpool(_list, store, vault, principal, "objection", state, limit)


@router.get("/objections/{appeal_id}", summary="One objection with its texts", responses=_REFUSALS)
async def get_objection(
    appeal_id: str, principal: DepartmentDep, store: StoreDep, vault: VaultDep
) -> AppealDetail:
    """The objection, its reason and evidence, and the decision's reasons once decided."""

    def read() -> AppealDetail:
        appeals = open_appeals(store, vault)
        return _detail(store, vault, _own_appeal(appeals, appeal_id, "objection", principal))

    return await run_in_threadpool(read)


def _decide_objection(
    context: ServiceContext, appeal_id: str, principal: Principal, body: ObjectionDecisionRequest
) -> AppealView:
    appeal = _own_appeal(appeal_records(context), appeal_id, "objection", principal)
    decided = decide_objection(
        context,
        appeal.id,
        body.outcome,
        department=principal.department,
        decided_by=_decided_by(principal),
        reasons=body.reasons,
    )
    return _view(decided)


@router.post(
    "/objections/{appeal_id}/decision",
    summary="Decide an objection",
    responses=_REFUSALS,
)
async def post_objection_decision(
    appeal_id: str, principal: VerifierDep, context: ContextDep, body: ObjectionDecisionRequest
) -> AppealView:
    """For a verifier of the department: `upheld` corrects the record (Corrected on chain,
    withdrawn from the list, its page and the public feed; the applicant readmitted);
    `rejected` leaves it published and removes the mark. The reasons are kept."""
    return await run_in_threadpool(_decide_objection, context, appeal_id, principal, body)


# ---------------------------------------------------------------------- repair applications


def _apply(
    context: ServiceContext, record_id: str, principal: Principal, body: RepairApplicationRequest
) -> AppealView:
    own = _own_record(context, record_id, principal)
    appeal = apply_for_repair(
        context,
        own,
        body.evidence_text,
        by="officer",
        evidence=body.evidence,
        department=principal.department,
    )
    return _view(appeal)


@router.post(
    "/breaches/{record_id}/repair-applications",
    summary="File a repair application for a published breach record",
    status_code=201,
    responses=_REFUSALS,
)
async def post_repair_application(
    record_id: str, principal: DepartmentDep, context: ContextDep, body: RepairApplicationRequest
) -> AppealView:
    """For an officer of the record's department, on the applicant's behalf, once the
    minimum publication period has passed (409 with `earliest_repair` before it); the
    department decides within `repair_decision_days` working days."""
    return await run_in_threadpool(_apply, context, record_id, principal, body)


@router.get(
    "/repair-applications",
    summary="The department's repair applications",
    responses=_REFUSALS,
    dependencies=[KnownQuery],
)
async def list_repair_applications(
    principal: DepartmentDep,
    store: StoreDep,
    vault: VaultDep,
    state: StateQuery = None,
    limit: LimitQuery = 100,
) -> AppealList:
    """The token's department's repair applications (in `state`, if given), oldest first."""
    return await run_in_threadpool(_list, store, vault, principal, "repair", state, limit)


@router.get(
    "/repair-applications/{appeal_id}",
    summary="One repair application with its texts",
    responses=_REFUSALS,
)
async def get_repair_application(
    appeal_id: str, principal: DepartmentDep, store: StoreDep, vault: VaultDep
) -> AppealDetail:
    """The application, its evidence, and the decision's reasons once decided."""

    def read() -> AppealDetail:
        appeals = open_appeals(store, vault)
        return _detail(store, vault, _own_appeal(appeals, appeal_id, "repair", principal))

    return await run_in_threadpool(read)


def _decide_repair(
    context: ServiceContext, appeal_id: str, principal: Principal, body: RepairDecisionRequest
) -> AppealView:
    appeal = _own_appeal(appeal_records(context), appeal_id, "repair", principal)
    decided = decide_repair(
        context,
        appeal.id,
        body.outcome,
        department=principal.department,
        decided_by=_decided_by(principal),
        reasons=body.reasons,
    )
    return _view(decided)


@router.post(
    "/repair-applications/{appeal_id}/decision",
    summary="Decide a repair application",
    responses=_REFUSALS,
)
async def post_repair_decision(
    appeal_id: str, principal: VerifierDep, context: ContextDep, body: RepairDecisionRequest
) -> AppealView:
    """For a verifier of the department: `granted` repairs the record (Repaired on chain,
    off public view, the applicant's exclusion lifted); `refused` leaves it. Reasons kept."""
    return await run_in_threadpool(_decide_repair, context, appeal_id, principal, body)

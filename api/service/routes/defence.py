"""Notice and defence of a proposed breach (告知、陈述申辩), for the commitment's department:
the notice and where it stands, a statement filed on the applicant's behalf, the officer's
decision on it, the officer's early confirmation, and the department's notices with their
dead letters.

A proposed breach is published only by these decisions (naming the officer) or by the
lifecycle job when the defence period ended with no statement (naming that). Statements are
personal data: sealed in the store, never logged, never echoed in a problem's detail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.service.context import ServiceContext
from api.service.deps import (
    ContextDep,
    DepartmentDep,
    HashDep,
    IntakeDep,
    StoreDep,
    TodayDep,
    VerifierDep,
    own_commitment,
)
from api.service.engines import department_actions, engine_refusals
from api.service.problems import (
    ACTION_REFUSED,
    INVALID_REQUEST,
    NOT_FOUND,
    UNAVAILABLE,
    ProblemError,
    problem_responses,
)
from api.service.tokens import Principal
from ledger import Hash32, Intake, Store
from verifier.engine import DefenceOutcome, confirm_breach, decide_statement, file_statement
from verifier.records import (
    MAX_REASONS,
    MAX_STATEMENT,
    NoticeClosedError,
    NoticeRecords,
    StatementError,
)

router = APIRouter(prefix="/v1", tags=["departments"])

_REFUSALS = problem_responses(400, 401, 403, 404, 409, 422, 503)
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


class StatementRequest(BaseModel):
    """The applicant's statement (陈述申辩), filed by the department on their behalf."""

    model_config = _STRICT

    text: str = Field(min_length=1, max_length=MAX_STATEMENT)


class ConfirmRequest(BaseModel):
    """The officer publishes a proposed breach before its defence period ends."""

    model_config = _STRICT

    reasons: str = Field(min_length=1, max_length=MAX_REASONS)


class DefenceDecisionRequest(BaseModel):
    """The officer's decision on the applicant's statement, with reasons."""

    model_config = _STRICT

    accept: bool
    outcome: Literal["kept", "needs_manual", "corrected"] = "kept"
    reasons: str = Field(min_length=1, max_length=MAX_REASONS)


@contextmanager
def _refusals() -> Iterator[None]:
    """The engine's refusals as `engine_refusals` answers them; reasons out of bounds as 422."""
    try:
        with engine_refusals():
            yield
    except StatementError as exc:
        raise ProblemError(INVALID_REQUEST, str(exc)) from None


def _officer(principal: Principal) -> str:
    # The token's id is a prefix of its hash: it names who acted without revealing anything.
    return f"{principal.department} {principal.role} (token {principal.token_id})"


def _notice_view(store: Store, digest: Hash32) -> dict[str, Any]:
    records = NoticeRecords(store)
    notice = records.latest_for(digest)
    if notice is None:
        raise ProblemError(NOT_FOUND, "no breach of this commitment was proposed")
    view = notice.to_json_obj()
    view["statements"] = [
        {"id": s.id, "filed_by": s.filed_by, "filed_at": s.filed_at}
        for s in records.statements_of(notice)
    ]
    view["deliveries"] = [
        d.to_json_obj() for d in records.deliveries(notice.department) if d.notice_id == notice.id
    ]
    return view


def _statement(
    store: Store,
    intake: Intake | None,
    today: date,
    digest: Hash32,
    principal: Principal,
    body: StatementRequest,
) -> dict[str, Any]:
    own_commitment(store, digest, principal)
    if intake is None:
        raise ProblemError(UNAVAILABLE, "no master key: statements cannot be sealed")
    try:
        file_statement(store, intake.vault, digest, body.text, filed_by="officer", on=today)
    except StatementError as exc:
        raise ProblemError(INVALID_REQUEST, str(exc)) from None
    except NoticeClosedError as exc:
        raise ProblemError(ACTION_REFUSED, str(exc)) from None
    return _notice_view(store, digest)


@router.get(
    "/commitments/{hash}/notice",
    summary="The notice of a proposed breach and where it stands",
    responses=_REFUSALS,
)
async def get_notice(digest: HashDep, principal: DepartmentDep, store: StoreDep) -> dict[str, Any]:
    """For the commitment's department: the signed notice, its delivery, the defence
    deadline, the statements filed (without their texts) and the decision, if any."""

    def view() -> dict[str, Any]:
        own_commitment(store, digest, principal)
        return _notice_view(store, digest)

    return await run_in_threadpool(view)


@router.post(
    "/commitments/{hash}/statement",
    summary="File the applicant's statement against a proposed breach",
    responses=_REFUSALS,
)
async def post_statement(
    digest: HashDep,
    principal: DepartmentDep,
    store: StoreDep,
    intake: IntakeDep,
    today: TodayDep,
    body: StatementRequest,
) -> dict[str, Any]:
    """For the commitment's department, on the applicant's behalf (a letter, a visit): the
    statement is kept sealed, and the lifecycle job no longer publishes when the period
    ends: an officer decides it (`/defence-decision`)."""
    return await run_in_threadpool(_statement, store, intake, today, digest, principal, body)


def _confirm(
    context: ServiceContext, digest: Hash32, principal: Principal, body: ConfirmRequest
) -> dict[str, Any]:
    own_commitment(context.store, digest, principal)
    with department_actions(context, principal.department) as actions, _refusals():
        confirm_breach(actions, digest, context.today(), _officer(principal), body.reasons)
    return _notice_view(context.store, digest)


@router.post(
    "/commitments/{hash}/confirm-breach",
    summary="Publish a proposed breach before its defence period ends",
    responses=_REFUSALS,
)
async def post_confirm(
    digest: HashDep, principal: VerifierDep, context: ContextDep, body: ConfirmRequest
) -> dict[str, Any]:
    """For a verifier of the commitment's department: Breached on chain with a signed
    decision naming the officer and the reasons; the breach is published."""
    return await run_in_threadpool(_confirm, context, digest, principal, body)


def _decide(
    context: ServiceContext, digest: Hash32, principal: Principal, body: DefenceDecisionRequest
) -> dict[str, Any]:
    own_commitment(context.store, digest, principal)
    outcome: DefenceOutcome = body.outcome
    with department_actions(context, principal.department) as actions, _refusals():
        decide_statement(
            actions,
            digest,
            context.today(),
            _officer(principal),
            accept=body.accept,
            reasons=body.reasons,
            outcome=outcome,
        )
    return _notice_view(context.store, digest)


@router.post(
    "/commitments/{hash}/defence-decision",
    summary="Decide the applicant's statement: accept (no breach) or reject (publish)",
    responses=_REFUSALS,
)
async def post_defence_decision(
    digest: HashDep, principal: VerifierDep, context: ContextDep, body: DefenceDecisionRequest
) -> dict[str, Any]:
    """For a verifier of the commitment's department: rejected publishes the breach;
    accepted ends it as `outcome` (kept, needs_manual or corrected). The reasons go in the
    signed decision and are kept sealed with the notice."""
    return await run_in_threadpool(_decide, context, digest, principal, body)


async def _known_query(request: Request) -> None:
    """422 for a query parameter the list does not take: a misspelt filter must not list all."""
    unknown = sorted(set(request.query_params) - {"dead"})
    if unknown:
        raise ProblemError(
            INVALID_REQUEST,
            f"query.{unknown[0][:40]}: not a parameter of this list (dead)",
            errors=[{"location": ["query", unknown[0][:40]], "message": "unknown parameter"}],
        )


@router.get(
    "/notices",
    summary="The department's notices and dead letters",
    responses=_REFUSALS,
    dependencies=[Depends(_known_query)],
)
async def list_notices(
    principal: DepartmentDep, store: StoreDep, dead: bool = False
) -> dict[str, Any]:
    """For a department: its notices of proposed breaches, newest first (with `dead=true`,
    those whose delivery failed for good: the gateway must be looked at)."""

    def listed() -> dict[str, Any]:
        records = NoticeRecords(store)
        deliveries = {d.notice_id: d for d in records.deliveries(principal.department)}
        notices = records.listed(principal.department)
        if dead:
            notices = [n for n in notices if n.id in deliveries and deliveries[n.id].dead]
        items = []
        for notice in notices:
            item = notice.to_json_obj()
            item.pop("notice")
            delivery = deliveries.get(notice.id)
            item["delivery"] = None if delivery is None else delivery.to_json_obj()
            items.append(item)
        return {"notices": items}

    return await run_in_threadpool(listed)

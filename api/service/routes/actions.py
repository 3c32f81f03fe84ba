"""Department actions that send transactions with the department's own accounts: withdraw a
commitment, record a person's decision, repair a breach, run verification.

Each is checked here (the token's department and role) and again by the contract, which has
bound the department's accounts to the department. A refusal changes nothing.
"""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Body
from starlette.concurrency import run_in_threadpool

from api.errors import RunRefusedError
from api.run_start import (
    chain_day,
    check_chain_day,
    check_run_day,
    earliest_commitment_day,
    latest_undecided_day,
    require_sources,
)
from api.service.appeals import appeal_records, apply_for_repair, decide_repair
from api.service.context import ServiceContext
from api.service.deps import (
    ContextDep,
    HashDep,
    RegistrarDep,
    VerifierDep,
    own_commitment,
    require_department,
)
from api.service.engines import department_actions, department_engine, engine_refusals
from api.service.models import (
    CommitmentStatus,
    DecisionRequest,
    RepairRequest,
    RepairResult,
    RunRequest,
    RunResult,
    WithdrawRequest,
)
from api.service.problems import (
    INVALID_REQUEST,
    NOT_FOUND,
    UNAVAILABLE,
    ProblemError,
    problem_responses,
)
from api.service.tokens import Principal
from api.service.views import status_name, status_view
from ledger import Hash32, department_id, hex32, to_hash32

# The only routes that take the whole ServiceContext (ContextDep): a department's engine is
# built per request from most of it (intake, store, records, the chain and its write lock,
# the department's keys, the settings' data service, today), and the action's answer reads
# the store and records again; naming seven of its ten parts one by one would say no more.
router = APIRouter(prefix="/v1", tags=["departments"])

_REFUSALS = problem_responses(400, 401, 403, 404, 409, 422, 503)


def _decided_by(principal: Principal) -> str:
    # The token's id is a prefix of its hash: it names who acted without revealing anything.
    return f"{principal.department} {principal.role} (token {principal.token_id})"


def _withdraw(
    context: ServiceContext, digest: Hash32, principal: Principal, body: WithdrawRequest
) -> CommitmentStatus:
    stored = own_commitment(context.store, digest, principal)
    actions = department_actions(context, principal.department, acting="registrar")
    with actions as withdrawing, engine_refusals():
        withdrawing.withdraw(digest, context.today(), body.note)
    return status_view(context.store, context.records, stored)


@router.post(
    "/commitments/{hash}/withdraw",
    summary="Withdraw a commitment before the decision",
    responses=_REFUSALS,
)
async def withdraw_commitment(
    digest: HashDep, principal: RegistrarDep, context: ContextDep, body: WithdrawRequest
) -> CommitmentStatus:
    """For a registrar of the commitment's department: no breach can follow, but the
    applicant must bring certificates. Recorded on chain with the registrar's account."""
    return await run_in_threadpool(_withdraw, context, digest, principal, body)


def _decide(
    context: ServiceContext, digest: Hash32, principal: Principal, body: DecisionRequest
) -> CommitmentStatus:
    stored = own_commitment(context.store, digest, principal)
    note = body.note if body.evidence is None else f"{body.note} (evidence: {body.evidence})"
    on = context.today()
    verification = context.records.verification(digest)
    rectifies = (
        body.outcome == "kept" and verification is not None and verification.state == "mismatch"
    )
    with department_actions(context, principal.department) as actions, engine_refusals():
        if rectifies:
            actions.rectify(digest, on, _decided_by(principal), note)
        else:
            actions.decide(digest, body.outcome, on, _decided_by(principal), note)
    return status_view(context.store, context.records, stored)


@router.post(
    "/verifications/{hash}/decision",
    summary="Record a person's verification decision",
    responses=_REFUSALS,
)
async def decide_verification(
    digest: HashDep, principal: VerifierDep, context: ContextDep, body: DecisionRequest
) -> CommitmentStatus:
    """For a verifier of the commitment's department, after an on-site check say. `kept` on
    an open mismatch is its rectification (within its window); `false` proposes a breach:
    the applicant is notified, and it is published after the defence (`/confirm-breach`)."""
    return await run_in_threadpool(_decide, context, digest, principal, body)


def _repair(
    context: ServiceContext, record_id: str, principal: Principal, body: RepairRequest
) -> RepairResult:
    record = context.records.breach(record_id)
    if record is None:
        raise ProblemError(NOT_FOUND, f"no breach record {record_id}")
    require_department(principal, record.department, "this breach record")
    # The shorthand of an application filed for the applicant and granted at once: the
    # decision is kept as its reasons (sealed), as `repair-applications` keep theirs.
    application = appeal_records(context).open_for(record.id, "repair") or apply_for_repair(
        context, record.id, body.decision, by="officer", department=principal.department
    )
    decide_repair(
        context,
        application.id,
        "granted",
        department=principal.department,
        decided_by=_decided_by(principal),
        reasons=body.decision,
    )
    repaired = context.records.breach(record_id)
    assert repaired is not None
    commitment = to_hash32(repaired.commitment_hash)
    owner = department_id(repaired.department)
    standing = context.chain.read(lambda ledger: int(ledger.status_of(owner, commitment).status))
    return RepairResult(
        id=repaired.id,
        commitment_hash=hex32(commitment),
        status=repaired.status,
        repaired_on=None if repaired.repaired_on is None else repaired.repaired_on.isoformat(),
        on_chain_status=status_name(standing),
    )


@router.post(
    "/breaches/{record_id}/repair",
    summary="Repair a breach record",
    responses=_REFUSALS,
)
async def repair_breach(
    record_id: str, principal: VerifierDep, context: ContextDep, body: RepairRequest
) -> RepairResult:
    """For a verifier of the record's department, once its minimum period has passed: off
    the public list; its history stays on chain."""
    return await run_in_threadpool(_repair, context, record_id, principal, body)


def _check_run_start(context: ServiceContext, department: str, on: date, all_manual: bool) -> None:
    """422 for a day out of bounds; 503 without data sources (unless all-manual was asked)."""
    try:
        check_run_day(
            on,
            context.today(),
            earliest_commitment_day(context.store, department),
            latest_undecided_day(context.store, department),
        )
        # The block that records the run dates it on chain and in the feed: the same day.
        # (Not on the embedded chain: a development chain in this process, whose clock the
        # demo and the tests set by hand and cannot move back.)
        chain = context.chain.read(
            lambda ledger: None if ledger.chain.kind == "embedded" else chain_day(ledger)
        )
        if chain is not None:
            check_chain_day(on, chain)
    except RunRefusedError as exc:
        raise ProblemError(INVALID_REQUEST, str(exc)) from None
    try:
        require_sources(context.settings.sources_url is not None, all_manual, flag="all_manual")
    except RunRefusedError as exc:
        raise ProblemError(UNAVAILABLE, str(exc)) from None


def _run(
    context: ServiceContext, principal: Principal, on: date, all_manual: bool = False
) -> RunResult:
    _check_run_start(context, principal.department, on, all_manual)
    with (
        department_engine(context, principal.department, with_sources=True) as engine,
        engine_refusals(),
    ):
        summary = engine.run(on)
    return RunResult(
        department=principal.department,
        on=on.isoformat(),
        examined=summary.examined,
        outcomes=dict(sorted(summary.outcomes.items())),
        transactions=summary.transactions,
        gas_used=summary.gas_used,
        recorded_on_chain=summary.recorded,
        breaches=list(summary.breaches),
        proposed=list(summary.proposed),
        overdue_flagged=summary.overdue_flagged,
        abandoned=summary.abandoned,
    )


@router.post(
    "/verifications/run",
    summary="Verify the department's commitments that are due",
    responses=_REFUSALS,
)
async def run_verification(
    principal: VerifierDep,
    context: ContextDep,
    body: RunRequest | None = Body(default=None),  # noqa: B008 - FastAPI's idiom
) -> RunResult:
    """For a verifier: compares due commitments with department data (the service's
    `sources_url`), records outcomes on chain, publishes breaches, flags overdue ones.
    `on` is today (Beijing), the day of the blocks that record the run: a day past or to
    come is refused (422), so every date a record shows is the chain's. Without data
    sources a run is refused (503) unless `all_manual` asks for every commitment due to go
    to manual review."""
    on = body.on if body is not None and body.on is not None else context.today()
    all_manual = body is not None and body.all_manual
    return await run_in_threadpool(_run, context, principal, on, all_manual)

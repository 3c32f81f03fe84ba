"""The workbench's forms that change something, each with the session's CSRF token, for
the session's own department and its token's role (a supervisor's changes nothing):
decide a commitment, confirm or dismiss a proposed breach, decide an objection or a repair
application, record a check's result, revoke or rotate one of the department's tokens.

Each calls what the HTTP routes call (the decision desk, the defence and appeal engines
through `api.service.engines` and `api.service.appeals`, the token store), so the rules and
refusals are the same; a refusal is a page saying why, and nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.errors import TokenError
from api.service.appeals import appeal_records, decide_objection, decide_repair
from api.service.context import ServiceContext
from api.service.deps import ContextDep, instance_takes
from api.service.engines import department_actions, engine_refusals
from api.service.problems import ProblemError
from api.service.tokens import Principal
from api.service.workbench.access import (
    PageRefusedError,
    back_to,
    department_only,
    form_of,
    form_session,
    html,
    needs_role,
    refusal_page,
    see_other,
    with_done,
)
from api.service.workbench.pages import render_tokens
from api.service.workbench.sessions import WorkbenchSession
from ledger import DecisionResult, Hash32, InvalidHashError, hex32, to_hash32
from verifier.engine import (
    DecisionRefusedError,
    ObjectionOutcome,
    RepairOutcome,
    TaskDesk,
    confirm_breach,
    decide_statement,
)
from verifier.records import MAX_REASONS, TaskError, TaskRecords, TaskResult

router = APIRouter(include_in_schema=False)
_RESULTS: dict[str, DecisionResult] = {"approved": "approved", "refused": "refused"}
_OBJECTION: dict[str, ObjectionOutcome] = {"upheld": "upheld", "rejected": "rejected"}
_REPAIR: dict[str, RepairOutcome] = {"granted": "granted", "refused": "refused"}
_TASK_RESULTS: dict[str, TaskResult] = {"passed": "passed", "failed": "failed"}
_DECISION_STATUS = {"unknown": 404, "other-department": 403, "decided": 409, "erased": 409}
HashPath = Annotated[str, Path(max_length=66)]
IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


def _digest(text: str) -> Hash32:
    try:
        return to_hash32(text)
    except InvalidHashError:
        raise PageRefusedError(400, "不是承诺哈希 / Not a commitment hash") from None


def officer(principal: Principal) -> str:
    """Who acted, as the defence and appeal routes name it: never a person's name."""
    return f"{principal.department} {principal.role} (token {principal.token_id})"


def _reasons(form: dict[str, str]) -> str:
    reasons = form.get("reasons", "").strip()
    if not reasons or len(reasons) > MAX_REASONS:
        raise PageRefusedError(
            422,
            f"请填写理由（1 至 {MAX_REASONS} 字）/ Give reasons (1 to {MAX_REASONS} characters)",
        )
    return reasons


def _own(context: ServiceContext, digest: Hash32, department: str) -> None:
    stored = context.store.get(digest)
    if stored is None:
        raise PageRefusedError(404, f"没有这项承诺 / No commitment {hex32(digest)}")
    if stored.department != department:
        raise PageRefusedError(
            403, "这项承诺属于其他部门 / This commitment is another department's"
        )


async def _act(
    request: Request,
    done: str,
    fallback: str,
    act: Callable[[WorkbenchSession, dict[str, str]], str | None],
) -> Response:
    """Read the form, check its session and CSRF token, `act` in a thread, then back to the
    form's page saying `done`; a refusal (or a problem from the service) as a page."""
    session: WorkbenchSession | None = None
    try:
        form = await form_of(request)
        session = await run_in_threadpool(form_session, request, form)
        # A department's instance (`serve --department`) acts for its department only.
        context: ServiceContext = request.app.state.context
        instance_takes(context.settings.department, request.method, session.principal)
        said: str | None = await run_in_threadpool(act, session, form)
        done = said or done
    except PageRefusedError as refusal:
        return refusal_page(refusal, session)
    except ProblemError as exc:
        return refusal_page(PageRefusedError(exc.kind.status, exc.detail), session)
    return see_other(with_done(back_to(form, fallback), done))


@router.post("/workbench/commitments/{hash}/decision")
async def decide(request: Request, hash: HashPath, context: ContextDep) -> Response:
    """A registrar decides the application: approved or refused, once."""

    def act(session: WorkbenchSession, form: dict[str, str]) -> str | None:
        digest = _digest(hash)
        needs_role(session, "registrar", "作出审批决定 / Deciding an application")
        result = _RESULTS.get(form.get("result", ""))
        if result is None:
            raise PageRefusedError(422, "决定为批准或不予批准 / result: approved or refused")
        principal = session.principal
        try:
            context.decision_desk().decide(digest, result, principal.token_id, principal.department)
        except DecisionRefusedError as exc:
            raise PageRefusedError(_DECISION_STATUS.get(exc.reason, 409), str(exc)) from None
        return None

    return await _act(request, "decided", "/workbench/lists/awaiting-decision", act)


@router.post("/workbench/commitments/{hash}/defence")
async def defence(request: Request, hash: HashPath, context: ContextDep) -> Response:
    """A verifier confirms a proposed breach (published) or dismisses it (kept), with reasons."""

    def act(session: WorkbenchSession, form: dict[str, str]) -> str | None:
        digest = _digest(hash)
        needs_role(session, "verifier", "处理拟认定失信 / Deciding a proposed breach")
        what = form.get("act")
        if what not in ("confirm", "dismiss"):
            raise PageRefusedError(422, "确认或撤销 / act: confirm or dismiss")
        reasons = _reasons(form)
        principal = session.principal
        _own(context, digest, principal.department)
        with department_actions(context, principal.department) as actions, engine_refusals():
            if what == "confirm":
                confirm_breach(actions, digest, context.today(), officer(principal), reasons)
            else:
                decide_statement(
                    actions,
                    digest,
                    context.today(),
                    officer(principal),
                    accept=True,
                    reasons=reasons,
                    outcome="kept",
                )
        return "confirmed" if what == "confirm" else "dismissed"

    return await _act(request, "confirmed", "/workbench/lists/defence", act)


@router.post("/workbench/appeals/{appeal_id}/decision")
async def decide_appeal(request: Request, appeal_id: IdPath, context: ContextDep) -> Response:
    """A verifier decides an objection (upheld or rejected) or a repair (granted or refused)."""

    def act(session: WorkbenchSession, form: dict[str, str]) -> str | None:
        needs_role(session, "verifier", "决定异议或信用修复 / Deciding an appeal")
        reasons = _reasons(form)
        principal = session.principal
        appeal = appeal_records(context).get(appeal_id)
        if appeal is None:
            raise PageRefusedError(404, f"没有这项申请 / No appeal {appeal_id}")
        if appeal.department != principal.department:
            raise PageRefusedError(
                403, "这项申请属于其他部门 / This appeal is another department's"
            )
        outcome = form.get("outcome", "")
        decided_by = officer(principal)
        if appeal.kind == "objection" and outcome in _OBJECTION:
            decide_objection(
                context,
                appeal.id,
                _OBJECTION[outcome],
                department=principal.department,
                decided_by=decided_by,
                reasons=reasons,
            )
        elif appeal.kind == "repair" and outcome in _REPAIR:
            decide_repair(
                context,
                appeal.id,
                _REPAIR[outcome],
                department=principal.department,
                decided_by=decided_by,
                reasons=reasons,
            )
        else:
            raise PageRefusedError(
                422, "决定结果与申请类型不符 / The outcome does not fit the appeal"
            )
        return "objection" if appeal.kind == "objection" else "repair"

    return await _act(request, "objection", "/workbench/lists/appeals", act)


@router.post("/workbench/tasks/{hash}/{key}")
async def complete_task(
    request: Request, hash: HashPath, key: IdPath, context: ContextDep
) -> Response:
    """A verifier records a check's result; the last open check decides the commitment."""

    def act(session: WorkbenchSession, form: dict[str, str]) -> str | None:
        digest = _digest(hash)
        needs_role(session, "verifier", "记录核查结果 / Recording a check")
        result = _TASK_RESULTS.get(form.get("result", ""))
        note = form.get("note", "").strip()
        if result is None or not note or len(note) > 2000:
            raise PageRefusedError(422, "结果与说明 / result passed or failed, and a note")
        records = TaskRecords(context.store)
        found = [row for row in records.tasks_of(digest) if row.key == key]
        if not found:
            raise PageRefusedError(404, f"没有这项核查 / No check {key}")
        [row] = found
        department = session.principal.department
        if department not in (row.department, row.assist_department):
            raise PageRefusedError(403, "这项核查属于其他部门 / This check is another department's")
        on = context.today()
        try:
            records.complete(digest, key, department, result, officer(session.principal), note, on)
        except TaskError as exc:
            raise PageRefusedError(409, str(exc)) from None
        # The commitment's own department decides it, whoever answered the last task.
        with department_actions(context, row.department) as actions, engine_refusals():
            TaskDesk(actions, records).settle(digest, on)
        return None

    return await _act(request, "checked", "/workbench/tasks", act)


@router.post("/workbench/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: IdPath, context: ContextDep) -> Response:
    """Revoke one of the department's own tokens (its sessions end with it)."""

    def act(session: WorkbenchSession, form: dict[str, str]) -> str | None:
        department = department_only(session)
        try:
            context.tokens.revoke(token_id, department)
        except TokenError as exc:
            raise PageRefusedError(409, str(exc)) from None
        return None

    return await _act(request, "revoked", "/workbench/tokens", act)


@router.post("/workbench/tokens/{token_id}/rotate")
async def rotate_token(request: Request, token_id: IdPath, context: ContextDep) -> Response:
    """Rotate one of the department's own tokens: the new one is shown once, on this answer."""
    session: WorkbenchSession | None = None
    try:
        form = await form_of(request)
        session = await run_in_threadpool(form_session, request, form)
        department = department_only(session)
        try:
            issued = await run_in_threadpool(context.tokens.rotate, token_id, department)
        except TokenError as exc:
            raise PageRefusedError(409, str(exc)) from None
        listed = await run_in_threadpool(context.tokens.list_for, department)
    except PageRefusedError as refusal:
        return refusal_page(refusal, session)
    # The rotated-out token may have been this session's: then the page is the last it shows.
    principal = session.principal
    return html(
        render_tokens(
            listed,
            who=(principal.department, principal.role),
            csrf=session.csrf_token,
            issued=issued.token,
            message="令牌已轮换 / The token is rotated",
        )
    )

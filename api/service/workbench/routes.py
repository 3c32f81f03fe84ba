"""The workbench's pages (GET) and the sign-in and sign-out forms: `/workbench/...`.

Pages need a live session (else they send the browser to the sign-in form); what a page
shows is the session's department's (a supervisor's: every department's).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from api.service.context import ServiceContext
from api.service.deps import ContextDep
from api.service.record_page import e, label
from api.service.tokens import Role, TokenStore, token_hash
from api.service.workbench.access import (
    COOKIE_PATH,
    SESSION_COOKIE,
    SIGN_IN,
    PageRefusedError,
    client_of,
    cookie_secure,
    current_session,
    form_of,
    form_session,
    html,
    refusal_page,
    see_other,
    sessions_of,
    sign_in_limiter,
)
from api.service.workbench.layout import WORKBENCH_CSS, table
from api.service.workbench.lists import render_items
from api.service.workbench.pages import DONE, render_sign_in, render_tasks, render_today
from api.service.workbench.sessions import ABSOLUTE_S, WorkbenchSession
from api.service.workbench.today import (
    decisions_due,
    late_by_department,
    today_figures,
    work_lists,
)
from verifier import default_catalog
from verifier.records import TaskRecords

router = APIRouter(include_in_schema=False)
assets = APIRouter(include_in_schema=False)

# Who may sign in: a department's own tokens and the reform office's supervisor.
SIGN_IN_ROLES: tuple[Role, ...] = ("registrar", "verifier", "supervisor")
DoneQuery = Annotated[str | None, Query(max_length=20)]


def who(session: WorkbenchSession) -> tuple[str, str]:
    """The session's department and role, for the page's bar."""
    return session.principal.department, session.principal.role


def message_of(done: str | None) -> str | None:
    """The fixed message for `done=` (a key, never text from the address bar)."""
    return None if done is None else DONE.get(done)


def signed_in(request: Request) -> WorkbenchSession | RedirectResponse:
    """The live session, or the redirect to the sign-in form."""
    session = current_session(request)
    if session is None:
        return see_other(SIGN_IN)
    return session


def reads(session: WorkbenchSession) -> str | None:
    """The department a session reads: its own, or every one (None) for a supervisor."""
    return None if session.principal.role == "supervisor" else session.principal.department


@router.get("/workbench")
def workbench_root(request: Request) -> Response:
    """Today's page when signed in, else the sign-in form."""
    return see_other("/workbench/today" if current_session(request) else SIGN_IN)


@router.get("/workbench/sign-in")
def sign_in_page(request: Request) -> Response:
    """The sign-in form (today's page when a session is live already)."""
    if current_session(request) is not None:
        return see_other("/workbench/today")
    return html(render_sign_in())


def _sign_in(context: ServiceContext, request: Request, token: str) -> str:
    """A new session's id for `token`; PageRefusedError (401, 429) otherwise."""
    limiter = sign_in_limiter(request)
    client = client_of(request)
    wait = limiter.wait(client)
    if wait > 0:
        retry = limiter.retry_after(wait)
        raise PageRefusedError(
            429, f"登录失败次数过多，请 {retry} 秒后再试 / Too many failed sign-ins: wait {retry} s"
        )
    tokens: TokenStore = context.tokens
    principal = tokens.lookup(token.strip(), roles=SIGN_IN_ROLES)
    if principal is None:
        limiter.take(client)
        raise PageRefusedError(
            401, "令牌无效、已吊销或已过期 / The token is unknown, revoked or expired"
        )
    sessions = sessions_of(request)
    sessions.close(request.cookies.get(SESSION_COOKIE))  # a sign-in replaces the one before
    return sessions.open(principal, token_hash(token.strip()))


@router.post("/workbench/sign-in")
async def sign_in(request: Request, context: ContextDep) -> Response:
    """The token exchanged for a session cookie (HttpOnly, SameSite=Strict, Secure over
    TLS, Path=/workbench), then today's page; or the form again, saying why not."""
    try:
        form = await form_of(request)
        session_id = await run_in_threadpool(_sign_in, context, request, form.get("token", ""))
    except PageRefusedError as refusal:
        return html(render_sign_in(error=refusal.message), refusal.status)
    response = see_other("/workbench/today")
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(ABSOLUTE_S),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request),
    )
    return response


@router.post("/workbench/sign-out")
async def sign_out(request: Request) -> Response:
    """End the session (the form carries its CSRF token), then the sign-in form."""
    try:
        form = await form_of(request)
        await run_in_threadpool(form_session, request, form)
    except PageRefusedError as refusal:
        return refusal_page(refusal)
    await run_in_threadpool(sessions_of(request).close, request.cookies.get(SESSION_COOKIE))
    response = see_other(SIGN_IN)
    response.delete_cookie(
        SESSION_COOKIE,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=cookie_secure(request),
    )
    return response


@router.get("/workbench/today")
def today_page(request: Request, context: ContextDep, done: DoneQuery = None) -> Response:
    """New commitments today, decisions due today and late ones, checks due."""
    session = signed_in(request)
    if not isinstance(session, WorkbenchSession):
        return session
    day: date = context.today()
    department = reads(session)
    figures = today_figures(context.store, day, department)
    decisions = ""
    if department is not None:
        late, due, awaited = decisions_due(
            work_lists(context.store, context.hours), department, day
        )
        role = session.principal.role
        csrf = session.csrf_token
        decisions = (
            '<p><a href="/workbench/lists/awaiting-decision">'
            + label(f"待决定共 {awaited} 件 / {awaited} awaiting a decision in all")
            + "</a></p>"
            f'<h2 id="late">{label("已超时未决定 / Decisions already late")}'
            f' <span class="late-mark">{late.total}</span></h2>'
            + render_items(late, csrf=csrf, role=role, back="/workbench/today")
            + f'<h2 id="due">{label("今日到期、尚未超时 / Due today, still in time")}'
            f" {due.total}</h2>" + render_items(due, csrf=csrf, role=role, back="/workbench/today")
        )
    else:
        decisions = _supervisor_today(context, day)
    return html(
        render_today(
            figures,
            who=who(session),
            csrf=session.csrf_token,
            decisions=decisions,
            message=message_of(done),
        )
    )


def _supervisor_today(context: ServiceContext, day: date) -> str:
    """Every department's late and awaited decisions, each linked to its list."""
    lists = work_lists(context.store, context.hours)
    rows = [
        (
            "late" if late else "",
            [
                f'<a href="/workbench/lists/awaiting-decision?department={e(code)}">{e(code)}</a>',
                f'<a href="/workbench/lists/awaiting-decision?department={e(code)}&amp;late=true">'
                f"{late}</a>",
                e(awaited),
            ],
        )
        for code, late, awaited in late_by_department(lists, default_catalog().departments(), day)
    ]
    return f"<h2>{label('各部门审批决定 / Decisions by department')}</h2>" + table(
        ["部门 / Department", "已超时 / Late", "待决定 / Awaited"], rows
    )


@router.get("/workbench/tasks")
def tasks_page(
    request: Request,
    context: ContextDep,
    done: DoneQuery = None,
    offset: Annotated[int, Query(ge=0, le=10**6)] = 0,
) -> Response:
    """The department's open checks, each with its result forms."""
    session = signed_in(request)
    if not isinstance(session, WorkbenchSession):
        return session
    department = reads(session)
    if department is None:
        return refusal_page(
            PageRefusedError(403, "监督人员请查看对比页 / A supervisor reads the comparison page"),
            session,
        )
    found = TaskRecords(context.store).work_list(department, offset=offset, limit=100)
    return html(
        render_tasks(
            found.tasks,
            found.total,
            on=context.today(),
            who=who(session),
            csrf=session.csrf_token,
            message=message_of(done),
        )
    )


@assets.get("/assets/workbench.css")
def workbench_css() -> Response:
    """The workbench's stylesheet (no inline style: the CSP allows none)."""
    return Response(
        WORKBENCH_CSS,
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )

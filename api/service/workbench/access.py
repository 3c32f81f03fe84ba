"""The workbench's way in, shared by its pages and its forms: the session store, the
sign-in throttle, the cookie, a form's fields and its CSRF token, answers as HTML.

Every refusal is a `PageRefusedError` (status and a bilingual message) and changes nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from api.service.context import ServiceContext
from api.service.ratelimit import RateLimiter
from api.service.record_page import label
from api.service.workbench.layout import page
from api.service.workbench.sessions import WorkbenchSession, WorkbenchSessions, csrf_matches

SESSION_COOKIE = "commitledger_workbench"
COOKIE_PATH = "/workbench"
SIGN_IN = "/workbench/sign-in"
NO_STORE = {"Cache-Control": "no-store"}
MAX_FORM_FIELDS = 12
MAX_FORM_VALUE = 4000
_open_lock = threading.Lock()


@dataclass
class PageRefusedError(Exception):
    """Why a page or a form is refused: an HTTP status and a "中文 / English" message."""

    status: int
    message: str


def sessions_of(request: Request) -> WorkbenchSessions:
    """The app's session store, opened on first use (opening applies its migration)."""
    state = request.app.state
    with _open_lock:
        found: WorkbenchSessions | None = getattr(state, "workbench_sessions", None)
        if found is None:
            context: ServiceContext = state.context
            found = state.workbench_sessions = WorkbenchSessions(context.store)
    return found


def sign_in_limiter(request: Request) -> RateLimiter:
    """The app's throttle of failed sign-ins, per client address (as wrong bearer tokens)."""
    state = request.app.state
    with _open_lock:
        found: RateLimiter | None = getattr(state, "workbench_sign_in", None)
        if found is None:
            settings = state.context.settings
            limit = settings.auth_failure_limit
            found = state.workbench_sign_in = RateLimiter(
                limit, limit / settings.auth_failure_window_seconds
            )
    return found


def client_of(request: Request) -> str:
    """The peer's address (behind a local proxy, the forwarded one uvicorn put there)."""
    return request.client.host if request.client else "unknown"


def cookie_secure(request: Request) -> bool:
    """Whether the cookie is Secure: served over TLS, or the service's public URL is https."""
    base = request.app.state.context.settings.public_base_url or ""
    return request.url.scheme == "https" or base.startswith("https://")


def html(text: str, status: int = 200) -> HTMLResponse:
    """A page, never cached (it shows a department's work)."""
    return HTMLResponse(text, status_code=status, headers=NO_STORE)


def see_other(location: str) -> RedirectResponse:
    """After a form: back to a page (303, so a reload does not post again)."""
    return RedirectResponse(location, status_code=303, headers=NO_STORE)


def refusal_page(
    refusal: PageRefusedError, session: WorkbenchSession | None = None
) -> HTMLResponse:
    """The refusal as a page of its status, with the navigation when signed in."""
    who = None
    if session is not None:
        who = (session.principal.department, session.principal.role)
    body = f'<p><a href="/workbench/today">{label("返回今日 / Back to today")}</a></p>'
    text = page(
        f"{refusal.status} / {refusal.status}",
        body,
        who=who,
        csrf=None if session is None else session.csrf_token,
        error=refusal.message,
    )
    return html(text, refusal.status)


def current_session(request: Request) -> WorkbenchSession | None:
    """The cookie's live session, or None (its department goes in the request's log line)."""
    session = sessions_of(request).get(request.cookies.get(SESSION_COOKIE))
    if session is not None:
        request.state.department = session.principal.department
    return session


async def form_of(request: Request) -> dict[str, str]:
    """The urlencoded form's fields (the first value of each, bounded); refusals otherwise."""
    # Another site's form is refused before anything (the browser says where it came from);
    # the sign-in form has no session yet, hence no CSRF token, to check.
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise PageRefusedError(
            403, "表单只能从本站页面提交 / This form may be posted from this site only"
        )
    kind = request.headers.get("content-type", "")
    if not kind.startswith("application/x-www-form-urlencoded"):
        raise PageRefusedError(
            422, "请以表单提交 / Send the form as application/x-www-form-urlencoded"
        )
    try:
        text = (await request.body()).decode("utf-8")
        fields = parse_qs(text, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise PageRefusedError(
            422, "表单无法读取 / The form is not UTF-8 or has too many fields"
        ) from None
    return {name[:40]: values[0][:MAX_FORM_VALUE] for name, values in fields.items() if values}


def form_session(request: Request, form: dict[str, str]) -> WorkbenchSession:
    """The cookie's live session if the form carries its CSRF token: 401 without a session,
    403 without the token or with another."""
    session = current_session(request)
    if session is None:
        raise PageRefusedError(401, "请先登录 / Sign in first: the session has ended")
    if not csrf_matches(session, form.get("csrf")):
        raise PageRefusedError(
            403,
            "表单的防伪令牌无效，请刷新页面 / The form's CSRF token is not this session's: reload",
        )
    return session


def department_only(session: WorkbenchSession) -> str:
    """The session's department; 403 for a supervisor, who reads everything and changes nothing."""
    if session.principal.role == "supervisor":
        raise PageRefusedError(
            403, "监督人员只能查看，不能办理 / A supervisor reads and changes nothing"
        )
    return session.principal.department


def needs_role(session: WorkbenchSession, role: str, what: str) -> None:
    """403 unless the session's token has `role` (`what`: "中文 / English" of the act)."""
    department_only(session)
    if session.principal.role != role:
        zh, _, en = what.partition(" / ")
        raise PageRefusedError(
            403,
            f"{zh}需要{role}令牌 / {en} needs a {role} token; "
            f"this session's is a {session.principal.role}'s",
        )


def back_to(form: dict[str, str], fallback: str) -> str:
    """Where a form returns: its `back` field when it is a workbench page, else `fallback`."""
    back = form.get("back", "")
    plain = back.isascii() and back.isprintable() and " " not in back
    if plain and back.startswith("/workbench/") and "//" not in back and "\\" not in back:
        return back
    return fallback


def with_done(location: str, done: str) -> str:
    """`location` with `done=<what was done>` added to its query (a key of fixed messages)."""
    return f"{location}{'&' if '?' in location else '?'}done={done}"

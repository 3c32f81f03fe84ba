"""Routes for the applicant: proof of the key that signed a commitment (a one-time challenge
signed, no password), then their own file: `/v1/applicant/...` as JSON with a bearer
session, and `/applicant`, a bilingual page that works without JavaScript, with a cookie
session (HttpOnly, SameSite=Strict) whose forms carry a per-session CSRF token.

Personal data go only to the applicant's own session, never into a cache (`no-store`).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.service.applicant_access import (
    CSRF_REFUSED,
    SESSION_COOKIE,
    applicant_auth,
    challenge_text,
    commitment_of,
    expiry,
    in_scope,
    issue_challenge,
    open_session,
    require_intake,
    session_of,
    sign_command,
)
from api.service.applicant_auth import ApplicantAuth, ApplicantSession, csrf_matches
from api.service.applicant_filings import Filing, FilingUnavailableError, file_for_applicant
from api.service.applicant_models import (
    MAX_FILING_CHARS,
    ApplicantView,
    ChallengeAnswer,
    ChallengeRequest,
    FilingAnswer,
    FilingKind,
    FilingRequest,
    SessionAnswer,
    SessionRequest,
)
from api.service.applicant_page import (
    APPLICANT_CSS,
    render_challenge_page,
    render_message_page,
    render_sign_in_page,
    render_view_page,
)
from api.service.applicant_view import view_for
from api.service.context import ServiceContext
from api.service.deps import (
    ContextDep,
    HashDep,
    IntakeDep,
    RateLimit,
    RecordsDep,
    StoreDep,
    TodayDep,
)
from api.service.problems import (
    INVALID_REQUEST,
    NOT_IMPLEMENTED,
    ProblemError,
    problem_responses,
)
from ledger import Hash32, hex32

router = APIRouter(prefix="/v1/applicant", tags=["applicants"], dependencies=[RateLimit])
page = APIRouter(tags=["applicants"], include_in_schema=False, dependencies=[RateLimit])
assets = APIRouter(include_in_schema=False)

AuthDep = Annotated[ApplicantAuth, Depends(applicant_auth)]
_bearer = HTTPBearer(
    auto_error=False, description="An applicant session token from POST /v1/applicant/session."
)
NO_STORE = {"Cache-Control": "no-store"}
MAX_FORM_FIELDS = 8
_KINDS: dict[str, FilingKind] = {
    "statement": "statement",
    "rectification": "rectification",
    "objection": "objection",
    "repair": "repair",
}


def bearer_session(
    auth: AuthDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApplicantSession:
    """The session of the bearer token; 401 problem without a live one."""
    return session_of(auth, None if credentials is None else credentials.credentials)


SessionDep = Annotated[ApplicantSession, Depends(bearer_session)]


# --- JSON -----------------------------------------------------------------------------------


@router.post(
    "/challenge",
    summary="A one-time challenge to sign with the key that signed a commitment",
    responses=problem_responses(400, 404, 422, 429, 503),
)
def new_challenge(body: ChallengeRequest, auth: AuthDep, intake: IntakeDep) -> ChallengeAnswer:
    """32 random bytes bound to the commitment, valid for five minutes and for one session.

    Sign the UTF-8 bytes of `message` with the commitment's key (Ed25519: the raw 64 bytes;
    P-256: DER over SHA-256), base64, and send them to `POST /v1/applicant/session`:
    `commitledger applicant sign-challenge` does it."""
    challenge = issue_challenge(auth, require_intake(intake), commitment_of(body.commitment))
    return ChallengeAnswer(
        challenge=challenge.hex,
        commitment=hex32(challenge.commitment),
        message=challenge_text(challenge),
        expires_at=expiry(challenge.expires_at),
        sign_with=sign_command(challenge),
    )


@router.post(
    "/session",
    summary="A session for a signed challenge",
    responses=problem_responses(400, 401, 422, 429, 503),
)
def new_session(body: SessionRequest, auth: AuthDep, intake: IntakeDep) -> SessionAnswer:
    """The challenge's signature by the key that signed the commitment opens a session of a
    quarter of an hour over the commitments of the same applicant signed by the same key
    (a commitment of the same person signed with another key is not in it). A wrong
    signature, or a used or expired challenge, is refused (401) and changes nothing."""
    token, session = open_session(
        auth,
        require_intake(intake),
        commitment_of(body.commitment),
        body.challenge,
        body.signature,
    )
    return SessionAnswer(
        token=token,
        expires_at=expiry(session.expires_at),
        commitments=[hex32(h) for h in session.commitments],
    )


@router.delete(
    "/session",
    summary="End the session",
    status_code=204,
    responses=problem_responses(401, 429),
)
def end_session(
    auth: AuthDep,
    _session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Response:
    """The token stops working at once."""
    if credentials is not None:
        auth.sessions.close(credentials.credentials)
    return Response(status_code=204)


@router.get(
    "/commitments",
    summary="The applicant's own commitments, outcomes, deadlines, notices and breaches",
    responses=problem_responses(401, 429, 503),
)
def my_commitments(
    session: SessionDep,
    store: StoreDep,
    intake: IntakeDep,
    records: RecordsDep,
    on: TodayDep,
    response: Response,
) -> ApplicantView:
    """Each claim beside the department's data (source, time, hash of what it returned),
    every deadline, every notice sent, every breach record with its status and appeals, and
    where to file a statement, rectification evidence, an objection or a repair application."""
    response.headers.update(NO_STORE)
    return view_for(session, store, intake, records, on)


def _file(context: ServiceContext, session: ApplicantSession, filing: Filing) -> FilingAnswer:
    in_scope(session, filing.commitment)
    require_intake(context.intake)
    try:
        answer = file_for_applicant(context, filing)
    except FilingUnavailableError as exc:
        raise ProblemError(NOT_IMPLEMENTED, f"{exc.en}: nothing was stored") from None
    return FilingAnswer(
        kind=filing.kind, commitment=hex32(filing.commitment), accepted=True, **answer
    )


@router.post(
    "/commitments/{hash}/{kind}",
    summary="File a statement, rectification evidence, an objection or a repair application",
    responses=problem_responses(400, 401, 404, 409, 422, 429, 501, 503),
)
def file_json(
    digest: HashDep,
    kind: FilingKind,
    body: FilingRequest,
    session: SessionDep,
    context: ContextDep,
) -> FilingAnswer:
    """For a commitment of the session's. An objection or a repair names its `breach_id`
    (a record of that commitment). A kind the service cannot take yet answers 501 and
    stores nothing; a refusal (too early, not published, already open) 409."""
    return _file(context, session, Filing(kind, digest, body.text, body.breach_id))


# --- the page -------------------------------------------------------------------------------


def _html(text: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(text, status_code=status, headers=NO_STORE)


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded form's fields (the first value of each); 422 problem otherwise."""
    # A form posted from another site (the browser says so) is refused before anything: the
    # sign-in forms have no session, hence no CSRF token, to check.
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise ProblemError(CSRF_REFUSED, "this form may be posted from this site's pages only")
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise ProblemError(INVALID_REQUEST, "send the form as application/x-www-form-urlencoded")
    try:
        text = (await request.body()).decode("utf-8")
        fields = parse_qs(text, max_num_fields=MAX_FORM_FIELDS, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise ProblemError(
            INVALID_REQUEST, "the form is not UTF-8 or has too many fields"
        ) from None
    return {name: values[0] for name, values in fields.items() if values}


def _cookie_session(request: Request, auth: ApplicantAuth) -> ApplicantSession | None:
    return auth.sessions.get(request.cookies.get(SESSION_COOKIE, ""))


@page.get("/applicant")
def applicant_page(
    request: Request,
    auth: AuthDep,
    store: StoreDep,
    intake: IntakeDep,
    records: RecordsDep,
    on: TodayDep,
) -> HTMLResponse:
    """The sign-in form, or the applicant's own file when the cookie's session is live."""
    session = _cookie_session(request, auth)
    if session is None or intake is None:
        return _html(render_sign_in_page(intake_open=intake is not None))
    filed = request.query_params.get("filed")
    view = view_for(session, store, intake, records, on)
    return _html(render_view_page(view, session.csrf_token, filed=filed))


def _page_problem(exc: ProblemError) -> HTMLResponse:
    return _html(render_message_page(exc.kind.status, exc.detail), exc.kind.status)


@page.post("/applicant/challenge")
async def applicant_challenge(request: Request, auth: AuthDep, intake: IntakeDep) -> Response:
    """The challenge for the commitment typed in, the command that signs it, and the form
    that takes the signature."""
    try:
        form = await _form(request)
        commitment = commitment_of(form.get("commitment", ""))
        challenge = issue_challenge(auth, require_intake(intake), commitment)
    except ProblemError as exc:
        return _page_problem(exc)
    return _html(
        render_challenge_page(challenge, challenge_text(challenge), sign_command(challenge))
    )


@page.post("/applicant/session")
async def applicant_session(request: Request, auth: AuthDep, intake: IntakeDep) -> Response:
    """The signature pasted in: a cookie session and back to /applicant, or why not (401)."""
    try:
        form = await _form(request)
        commitment = commitment_of(form.get("commitment", ""))
        token, _session = open_session(
            auth,
            require_intake(intake),
            commitment,
            form.get("challenge", ""),
            form.get("signature", "")[:400],
        )
    except ProblemError as exc:
        return _page_problem(exc)
    response = RedirectResponse("/applicant", status_code=303, headers=NO_STORE)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(auth.sessions.ttl),
        path="/applicant",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _form_session(request: Request, auth: ApplicantAuth, form: dict[str, str]) -> ApplicantSession:
    """The cookie's live session, if the form carries its CSRF token; 401 or 403 problem."""
    session = session_of(auth, request.cookies.get(SESSION_COOKIE))
    if not csrf_matches(session, form.get("csrf")):
        raise ProblemError(CSRF_REFUSED, "the form's CSRF token is not this session's: reload")
    return session


@page.post("/applicant/file")
async def applicant_file(request: Request, auth: AuthDep, context: ContextDep) -> Response:
    """A form's filing: back to /applicant saying it was filed, or why not."""
    try:
        form = await _form(request)
        session = _form_session(request, auth, form)
        kind = _KINDS.get(form.get("kind", ""))
        if kind is None:
            raise ProblemError(
                INVALID_REQUEST, "kind: statement, rectification, objection or repair"
            )
        text = form.get("text", "").strip()
        if not text or len(text) > MAX_FILING_CHARS:
            raise ProblemError(
                INVALID_REQUEST, f"write between 1 and {MAX_FILING_CHARS} characters"
            )
        digest: Hash32 = commitment_of(form.get("commitment", ""))
        breach_id = form.get("breach_id") or None
        filing = Filing(kind, digest, text, breach_id[:100] if breach_id else None)
        await run_in_threadpool(_file, context, session, filing)
    except ProblemError as exc:
        return _page_problem(exc)
    return RedirectResponse(f"/applicant?filed={kind}", status_code=303, headers=NO_STORE)


@page.post("/applicant/sign-out")
async def applicant_sign_out(request: Request, auth: AuthDep) -> Response:
    """End the cookie's session (with the form's CSRF token)."""
    try:
        form = await _form(request)
        _form_session(request, auth, form)
    except ProblemError as exc:
        return _page_problem(exc)
    auth.sessions.close(request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/applicant", status_code=303, headers=NO_STORE)
    response.delete_cookie(SESSION_COOKIE, path="/applicant", httponly=True, samesite="strict")
    return response


@assets.get("/assets/applicant.css")
def applicant_css() -> Response:
    """The page's stylesheet (no inline style: the CSP allows none)."""
    return Response(
        APPLICANT_CSS,
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )

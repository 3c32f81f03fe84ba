"""The workbench's pages beyond today: each work list, one commitment, the department's
tokens. Each needs a live session; a department reads its own, a supervisor any (and acts
on none)."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from api.service.deps import ContextDep
from api.service.record_page import bilingual, e, label
from api.service.workbench.access import NO_STORE, PageRefusedError, html, refusal_page
from api.service.workbench.commitment import commitment_file, render_commitment_body
from api.service.workbench.figures import charts_body, compare_body, period_form
from api.service.workbench.layout import page
from api.service.workbench.lists import TITLES, render_list_body
from api.service.workbench.pages import render_tokens
from api.service.workbench.routes import DoneQuery, message_of, reads, signed_in, who
from api.service.workbench.sessions import WorkbenchSession
from api.service.workbench.today import work_lists
from ledger import InvalidHashError, hex32, to_hash32
from verifier import RecordsError, default_catalog
from verifier.records import MAX_WORK_PAGE, WORK_LISTS, StatsQuery, WorkListError, WorkPage

router = APIRouter(include_in_schema=False)
DepartmentQuery = Annotated[str | None, Query(max_length=64, pattern=r"^([A-Z][A-Z0-9-]*)?$")]


def read_department(session: WorkbenchSession, department: str | None) -> str | None:
    """The department a page reads: the session's own; for a supervisor the one it names
    (None: it named none). A department asking for another's: 403."""
    own = reads(session)
    department = department or None  # an empty field: none named
    if own is None:
        return department
    if department not in (None, own):
        raise PageRefusedError(403, "只能查看本部门 / This session reads its own department only")
    return own


def _departments_picker(path: str) -> str:
    links = "".join(
        f'<li><a href="{e(path)}?department={e(code)}">{e(code)}</a></li>'
        for code in default_catalog().departments()
    )
    return f"<p>{bilingual('请选择部门：', 'Choose a department:')}</p><ul>{links}</ul>"


@router.get("/workbench/lists/{name}")
def list_page(
    request: Request,
    name: Annotated[str, Path(max_length=40)],
    context: ContextDep,
    matter: Annotated[str | None, Query(max_length=64)] = None,
    late: bool = False,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    department: DepartmentQuery = None,
    done: DoneQuery = None,
    format: Literal["html", "csv"] = "html",
) -> Response:
    """One work list: filters, rows with their time left or how late, the forms that act;
    `format=csv`: the page (up to 500 rows) as the API's CSV."""
    session = signed_in(request)
    if not isinstance(session, WorkbenchSession):
        return session
    path = f"/workbench/lists/{name}"
    try:
        if name not in WORK_LISTS:
            raise PageRefusedError(404, f"没有这个工作清单 / No work list {name[:40]}")
        reading = read_department(session, department)
        if reading is None:
            body = _departments_picker(path)
        else:
            found = work_lists(context.store, context.hours).page(
                name,
                reading,
                matter=matter or None,
                late=late,
                offset=offset,
                limit=MAX_WORK_PAGE if format == "csv" else 50,
                today=context.today(),
            )
            if format == "csv":
                return _csv(found, name, reading)
            query = [(k, v) for k, v in request.query_params.multi_items() if k != "done"]
            back = request.url.path + (f"?{urlencode(query)}" if query else "")
            download = urlencode([*query, ("format", "csv")])
            body = (
                f'<p><a href="{e(path)}?{e(download)}">{label("下载 CSV / Download CSV")}</a></p>'
            )
            body += render_list_body(
                found,
                csrf=session.csrf_token,
                role=session.principal.role,
                back=back,
                matter=matter or "",
                late=late,
                department=department,
            )
    except PageRefusedError as refusal:
        return refusal_page(refusal, session)
    except WorkListError as exc:
        return refusal_page(PageRefusedError(422, str(exc)), session)
    return html(
        page(
            TITLES[name],
            body,
            current=path,
            who=who(session),
            csrf=session.csrf_token,
            message=message_of(done),
        )
    )


def _csv(found: WorkPage, name: str, department: str) -> Response:
    return Response(
        found.to_csv(),
        media_type="text/csv; charset=utf-8",
        headers={
            **NO_STORE,
            "Content-Disposition": f'attachment; filename="worklist-{name}-{department}.csv"',
        },
    )


@router.get("/workbench/commitments/{hash}")
def commitment_page(
    request: Request, hash: Annotated[str, Path(max_length=66)], context: ContextDep
) -> Response:
    """One commitment: its history, evidence and deadlines."""
    session = signed_in(request)
    if not isinstance(session, WorkbenchSession):
        return session
    try:
        try:
            digest = to_hash32(hash)
        except InvalidHashError:
            raise PageRefusedError(400, "不是承诺哈希 / Not a commitment hash") from None
        stored = context.store.get(digest)
        if stored is None:
            raise PageRefusedError(404, f"没有这项承诺 / No commitment {hex32(digest)}")
        read_department(session, stored.department)
        found = commitment_file(context.store, context.records, stored)
    except PageRefusedError as refusal:
        return refusal_page(refusal, session)
    body = render_commitment_body(found, context.today())
    return html(
        page(
            f"承诺 {stored.code} / Commitment {stored.code}",
            body,
            who=who(session),
            csrf=session.csrf_token,
        )
    )


@router.get("/workbench/tokens")
def tokens_page(request: Request, context: ContextDep, done: DoneQuery = None) -> Response:
    """The department's own tokens, with revoke and rotate."""
    session = signed_in(request)
    if not isinstance(session, WorkbenchSession):
        return session
    department = reads(session)
    if department is None:
        refusal = PageRefusedError(
            403,
            "监督令牌由改革办通过命令行管理 / Supervisor tokens are managed on the command line",
        )
        return refusal_page(refusal, session)
    listed = context.tokens.list_for(department)
    return html(
        render_tokens(listed, who=who(session), csrf=session.csrf_token, message=message_of(done))
    )


PeriodQuery = Annotated[Literal["day", "week", "month"], Query()]
MatterQuery = Annotated[str | None, Query(max_length=64)]


@router.get("/workbench/charts")
def charts_page(
    request: Request,
    context: ContextDep,
    period: PeriodQuery = "day",
    matter: MatterQuery = None,
    department: DepartmentQuery = None,
) -> Response:
    """Kept and breach rates over time per matter, decisions within and past the half-day
    limit, the verification backlog: the department's own (a supervisor's: any, or all)."""
    session = signed_in(request)
    if not isinstance(session, WorkbenchSession):
        return session
    try:
        reading = read_department(session, department)
        body = charts_body(
            StatsQuery(context.store), reading, matter or None, period, context.today()
        )
    except PageRefusedError as refusal:
        return refusal_page(refusal, session)
    except RecordsError as exc:
        return refusal_page(PageRefusedError(422, str(exc)), session)
    # A supervisor may name a department ("" for all); a department's session reads its own.
    chosen = (department or "") if session.principal.role == "supervisor" else None
    form = period_form("/workbench/charts", period, matter or "", chosen)
    return html(
        page(
            "图表 / Charts",
            form + body,
            current="/workbench/charts",
            who=who(session),
            csrf=session.csrf_token,
        )
    )


@router.get("/workbench/compare")
def compare_page(
    request: Request,
    context: ContextDep,
    period: PeriodQuery = "month",
    matter: MatterQuery = None,
) -> Response:
    """The reform office's view: departments and matters side by side (supervisor only)."""
    session = signed_in(request)
    if not isinstance(session, WorkbenchSession):
        return session
    if session.principal.role != "supervisor":
        refusal = PageRefusedError(
            403, "部门对比仅供改革办 / The comparison is the reform office's (a supervisor's)"
        )
        return refusal_page(refusal, session)
    try:
        body = compare_body(StatsQuery(context.store), matter or None, period, context.today())
    except RecordsError as exc:
        return refusal_page(PageRefusedError(422, str(exc)), session)
    form = period_form("/workbench/compare", period, matter or "", None)
    return html(
        page(
            "部门对比 / Compare departments",
            form + body,
            current="/workbench/compare",
            who=who(session),
            csrf=session.csrf_token,
        )
    )

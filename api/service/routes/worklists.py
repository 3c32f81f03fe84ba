"""A department's work lists over HTTP: `GET /v1/worklists/{name}` as JSON or CSV.

A department token reads its own department's lists (another department's is a 403); a
supervisor token reads any one department it names with `?department=`. Rows carry hashes,
codes, dates and states, never personal data. CSV is UTF-8 with a byte-order mark (Excel
on Chinese Windows reads a file without one as GBK), text cells guarded against formulas.
"""

from __future__ import annotations

import builtins
import json
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.service.deps import HoursDep, ReaderDep, StoreDep, TodayDep, reader_for
from api.service.problems import INVALID_REQUEST, ProblemError, problem_responses
from ledger import Store
from verifier import OfficeHours, default_catalog
from verifier.records import (
    MAX_WORK_PAGE,
    WorkListError,
    WorkListName,
    WorkLists,
    WorkPage,
)

router = APIRouter(prefix="/v1/worklists", tags=["departments"])

_REFUSALS = problem_responses(401, 403, 422)
_FILTERS = ("department", "matter", "late", "since", "until", "sort", "order")
_PARAMETERS = (*_FILTERS, "offset", "limit", "format")


class WorkItemView(BaseModel):
    """One row: what waits, since when, until when, how late. No personal data."""

    list: str
    commitment_hash: str
    matter_code: str
    department: str
    status: str
    started: str | None = Field(description="ISO: received, recorded, issued or filed")
    due: str | None = Field(description="ISO: the deadline (a time for decisions, else a day)")
    late: bool
    left: float | None = Field(description="Until due, in left_unit; negative: how late")
    left_unit: Literal["working_days", "days"]
    reference: str | None = Field(description="A channel, an appeal's or filing's id, a task")
    note: str | None = Field(description="The contract's refusal, where there is one")


class WorkListView(BaseModel):
    """One page of a work list and how many rows its filters match."""

    list: str
    department: str
    total: int
    offset: int
    limit: int
    sort: str
    order: Literal["asc", "desc"]
    items: builtins.list[WorkItemView]  # `list` is a field's name here


def work_lists(request: Request, store: Store, hours: OfficeHours) -> WorkLists:
    """The lists over the service's store, opened once per app (opening migrates)."""
    lists: WorkLists | None = getattr(request.app.state, "worklists", None)
    if lists is None or lists.store is not store:
        limits = {m.code: m.online_decision_working_days for m in default_catalog().matters}
        lists = request.app.state.worklists = WorkLists(store, hours, limits)
    return lists


async def _known_query(request: Request) -> None:
    """422 for a query parameter the lists do not take: a misspelt filter must not list
    everything."""
    unknown = sorted(set(request.query_params) - set(_PARAMETERS))
    if unknown:
        raise ProblemError(
            INVALID_REQUEST,
            f"query.{unknown[0][:40]}: not a parameter of the work lists "
            f"({', '.join(_PARAMETERS)})",
            errors=[{"location": ["query", unknown[0][:40]], "message": "unknown parameter"}],
        )


def _page(
    request: Request,
    store: Store,
    hours: OfficeHours,
    name: str,
    department: str,
    today: date,
    query: dict[str, Any],
) -> WorkPage:
    lists = work_lists(request, store, hours)  # one trip to the thread pool for both
    try:
        return lists.page(name, department, today=today, now=datetime.now(UTC), **query)
    except WorkListError as exc:
        raise ProblemError(INVALID_REQUEST, str(exc)) from None


@router.get(
    "/{name}",
    summary="A department's work list",
    responses=_REFUSALS,
    response_model=WorkListView,
    dependencies=[Depends(_known_query)],
)
async def work_list(
    request: Request,
    name: Annotated[WorkListName, Path(description="Which list")],
    principal: ReaderDep,
    store: StoreDep,
    hours: HoursDep,
    today: TodayDep,
    department: Annotated[
        str | None, Query(max_length=64, description="A supervisor's choice of department")
    ] = None,
    matter: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    late: Annotated[bool, Query(description="Only rows past their deadline now")] = False,
    since: Annotated[date | None, Query(description="Deadline (received: decisions) from")] = None,
    until: Annotated[date | None, Query(description="... to this day, inclusive")] = None,
    sort: Annotated[str | None, Query(max_length=16, description="One of the list's keys")] = None,
    order: Literal["asc", "desc"] = "asc",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_WORK_PAGE)] = 50,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """What waits for the department: decisions (time left or how late by the office
    hours), rectifications, defences, appeals, cases for a person, refused outcomes,
    overdue verifications. `?format=csv` gives the page as CSV."""
    read = reader_for(principal, department)
    query = {
        "matter": matter,
        "late": late,
        "since": since,
        "until": until,
        "sort": sort,
        "order": order,
        "offset": offset,
        "limit": limit,
    }
    page = await run_in_threadpool(_page, request, store, hours, name, read, today, query)
    if format == "csv":
        return Response(
            page.to_csv(),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="worklist-{name}-{read}.csv"',
                "Cache-Control": "no-store",
            },
        )
    # Built as it is documented (WorkListView), sent without validating it again.
    body = json.dumps(page.to_json_obj(), ensure_ascii=False, separators=(",", ":"))
    return Response(body.encode(), media_type="application/json")

"""Routes for the public (no token): the breach list as JSON and the lookup page."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.service.appeals import AppealsDep, get_appeals, marked_texts, with_objection
from api.service.correction_page import correction_on_chain, render_correction_page
from api.service.deps import (
    ChainDep,
    ContextDep,
    IntakeDep,
    RateLimit,
    RecordsDep,
    SettingsDep,
    TodayDep,
    rate_limited,
)
from api.service.dev_chain import development_chain
from api.service.lookup_page import LOOKUP_CSS, render_lookup_page
from api.service.lookup_terms import department_code, identity_fingerprints, matter_code
from api.service.models import BreachList
from api.service.problems import INVALID_REQUEST, NOT_FOUND, ProblemError, problem_responses
from api.service.record_page import bilingual, block_time, render_record_page
from verifier import BreachRecord
from verifier.records import (
    MAX_PAGE_SIZE,
    MAX_RESULTS,
    BreachJsonPage,
    BreachPage,
    VerifierRecords,
)

router = APIRouter(tags=["public"], dependencies=[RateLimit])
# The search, which spends the rate limit and checks its query itself (see list_breaches).
search = APIRouter(tags=["public"])
assets = APIRouter(tags=["public"], include_in_schema=False)

MAX_PAGE = 10_000
Text = Annotated[str | None, Field(max_length=100)]


class SearchParameters(BaseModel):
    """The query of `GET /v1/breaches`, checked in one step by pydantic's rules for each
    field, as FastAPI checks parameters declared one by one (and for a tenth of the cost)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: Text = None
    credit_code: Text = None
    matter: Text = None
    department: Text = None
    decided_from: date | None = None
    decided_to: date | None = None
    page: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 1
    page_size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 20

    @classmethod
    def of(cls, request: Request) -> SearchParameters:
        """The request's query (a repeated name: its last value, as FastAPI takes it); a
        RequestValidationError (422 problem, values not echoed) when a value is wrong."""
        try:
            return cls.model_validate(dict(request.query_params))
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            raise RequestValidationError(
                [{**error, "loc": ("query", *error["loc"])} for error in errors]
            ) from None

    @classmethod
    def openapi(cls) -> list[dict[str, Any]]:
        """The fields as OpenAPI query parameters, as FastAPI writes declared ones."""
        properties: dict[str, dict[str, Any]] = cls.model_json_schema()["properties"]
        return [
            {
                "name": name,
                "in": "query",
                "required": False,
                "schema": {k: v for k, v in schema.items() if (k, v) != ("default", None)},
            }
            for name, schema in properties.items()
        ]


@dataclass(frozen=True)
class BreachQuery:
    """A search of the public breach list; blank fields are left out."""

    name: str | None = None
    credit_code: str | None = None
    matter: str | None = None
    department: str | None = None
    decided_from: date | None = None
    decided_to: date | None = None
    page: int = 1
    page_size: int = 20
    fingerprints: tuple[bytes, ...] = ()

    @property
    def reversed_dates(self) -> bool:
        """The range ends before it starts: no date is in it."""
        start, end = self.decided_from, self.decided_to
        return start is not None and end is not None and start > end

    def resolved(self, intake: IntakeDep) -> BreachQuery:
        """Names of matters and departments as codes; a full ID's fingerprints."""
        vault = None if intake is None else intake.vault
        return replace(
            self,
            matter=matter_code(self.matter),
            department=department_code(self.department),
            fingerprints=identity_fingerprints(vault, self.credit_code),
        )

    def _filters(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "credit_code": self.credit_code,
            "matter": self.matter,
            "department": self.department,
            "decided_from": self.decided_from,
            "decided_to": self.decided_to,
            "page": self.page,
            "page_size": self.page_size,
            "fingerprints": self.fingerprints,
        }

    @property
    def too_deep(self) -> bool:
        """The page starts past the MAX_RESULTS records a search reaches."""
        return (self.page - 1) * self.page_size >= MAX_RESULTS

    def run(self, records: VerifierRecords, on: date) -> BreachPage:
        """The page of records listed on `on` that match."""
        return records.search_breaches(on, **self._filters())

    def run_json(self, records: VerifierRecords, on: date) -> BreachJsonPage:
        """The same page, each record as its stored public JSON text."""
        return records.search_breach_json(on, **self._filters())


def _blank_to_none(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


@search.get(
    "/v1/breaches",
    summary="Search the public breach list",
    response_model=BreachList,
    responses=problem_responses(422, 429),
    openapi_extra={"parameters": SearchParameters.openapi()},
)
async def list_breaches(request: Request, context: ContextDep) -> Response:
    """Records published today (within their publication period), newest decision first.

    `name` of 3 characters or more matches part of the name as shown (masked for
    persons, e.g. "张*"); a shorter `name` is a whole name as shown or the surname of
    persons' masked names ("张" finds "张*" and "张**"), as a part that short would match
    nearly every record. `credit_code` is the credit code or masked ID exactly as shown, or
    a full ID (found by its keyed fingerprint; the record is still shown masked): beside it,
    a person's full `name` matches the masked one. `matter` and `department` are codes or
    names. Matches are counted up to a bound (`total_capped` says when there are more) and
    paged that deep only.
    """
    # The context, not its parts, and the query checked in one step: FastAPI's solving of
    # each dependency and declared parameter cost a quarter of an indexed search. The rate
    # limit first, as the other public routes' dependency spends it before their query.
    rate_limited(request, context.limiter)
    asked = SearchParameters.of(request)
    records, on, intake = context.records, context.today(), context.intake
    appeals = await get_appeals(context.store, None if intake is None else intake.vault)
    query = BreachQuery(
        _blank_to_none(asked.name),
        _blank_to_none(asked.credit_code),
        _blank_to_none(asked.matter),
        _blank_to_none(asked.department),
        asked.decided_from,
        asked.decided_to,
        asked.page,
        asked.page_size,
    ).resolved(intake)
    if query.reversed_dates:
        raise ProblemError(
            INVALID_REQUEST,
            "query.decided_from: the range starts after it ends (decided_to)",
            errors=[{"location": ["query", "decided_from"], "message": "after decided_to"}],
        )
    if query.too_deep:
        raise ProblemError(
            INVALID_REQUEST,
            f"query.page: a search pages through its first {MAX_RESULTS} records only; "
            "narrow the search",
            errors=[{"location": ["query", "page"], "message": "beyond the searchable records"}],
        )
    # Index lookups of a millisecond or two: inline, as a thread hop would cost as much.
    found = query.run_json(records, on)
    # The stored texts are the records' public JSON already: joined, not parsed and re-encoded.
    head = json.dumps(
        {
            "total": found.total,
            "page": found.page,
            "page_size": found.page_size,
            "on": on.isoformat(),
            "total_capped": found.total_capped,
        },
        ensure_ascii=False,
    )
    texts = marked_texts(appeals, found.texts)
    body = f'{head[:-1]}, "records": [{", ".join(texts)}]}}'
    return Response(body.encode(), media_type="application/json")


@search.get(
    "/v1/breaches/{record_id}",
    summary="One published breach record",
    response_model=dict[str, Any],
    responses=problem_responses(404, 429),
)
async def get_breach(request: Request, record_id: str, context: ContextDep) -> Response:
    """The record as published, with its on-chain evidence (and `objection` while it is
    under objection); 404 once it is off the list."""
    # As the search: the rate limit spent first, then the context's parts, not six
    # dependencies solved per request.
    rate_limited(request, context.limiter)
    records, on, intake = context.records, context.today(), context.intake
    appeals = await get_appeals(context.store, None if intake is None else intake.vault)
    # One lookup by primary key: inline, as a thread hop would cost as much.
    public_json = records.listed_breach_json(record_id[:64], on)
    if public_json is None:
        raise ProblemError(NOT_FOUND, f"no breach record {record_id[:64]} is published")
    marked = with_objection(public_json, appeals.open_for(record_id[:64], "objection"))
    return Response(marked.encode(), media_type="application/json")


def _page_number(text: str | None, default: int, upper: int) -> int | None:
    if text is None or not text.strip():
        return default
    if not text.strip().isdigit() or not 1 <= int(text) <= upper:
        return None
    return int(text)


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text.strip()) if text and text.strip() else None


def _page_query(
    name: str | None,
    credit_code: str | None,
    matter: str | None,
    department: str | None,
    decided_from: str | None,
    decided_to: str | None,
    page: str | None,
    page_size: str | None,
) -> tuple[BreachQuery, str | None]:
    """The page's form as a query; what is wrong with it, for people to read."""
    try:
        start, end = _day(decided_from), _day(decided_to)
    except ValueError:
        return BreachQuery(), "日期格式应为 YYYY-MM-DD / Dates are written YYYY-MM-DD"
    number = _page_number(page, 1, MAX_PAGE)
    size = _page_number(page_size, 20, MAX_PAGE_SIZE)
    if number is None or size is None:
        return BreachQuery(), "页码无效 / Invalid page"
    texts = [_blank_to_none(t) for t in (name, credit_code, matter, department)]
    if any(t is not None and len(t) > 100 for t in texts):
        return BreachQuery(), "检索词过长 / Search term too long"
    query = BreachQuery(texts[0], texts[1], texts[2], texts[3], start, end, number, size)
    if query.reversed_dates:
        return query, (
            "起始日期晚于截止日期 / The start date is after the end date: "
            "no decision can be in that range"
        )
    return query, None


def _page_error(query: BreachQuery, first: BreachPage) -> str:
    """What to say when the page asked for is past the records (`first`: the first page)."""
    if first.total_capped:
        return (
            f"仅可翻阅前 {MAX_RESULTS} 条，请缩小查询范围 / "
            f"Only the first {MAX_RESULTS} records can be paged: narrow the search"
        )
    return (
        f"第 {query.page} 页没有记录；共 {first.total} 条 / "
        f"No records on page {query.page}; there are {first.total}"
    )


@router.get(
    "/",
    response_class=HTMLResponse,
    summary="The public lookup page (HTML)",
    responses={
        400: {
            "description": "The page again, with what is wrong with the search explained",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **problem_responses(429),
    },
)
def lookup_page(
    records: RecordsDep,
    on: TodayDep,
    settings: SettingsDep,
    intake: IntakeDep,
    appeals: AppealsDep,
    name: str | None = None,
    credit_code: str | None = None,
    matter: str | None = None,
    department: str | None = None,
    decided_from: str | None = None,
    decided_to: str | None = None,
    page: str | None = None,
    page_size: str | None = None,
) -> HTMLResponse:
    """失信记录查询 / Breach record lookup: a form and the records, rendered on the server."""
    query, error = _page_query(
        name, credit_code, matter, department, decided_from, decided_to, page, page_size
    )
    form = {
        "name": name or "",
        "credit_code": credit_code or "",
        "matter": matter or "",
        "department": department or "",
        "decided_from": decided_from or "",
        "decided_to": decided_to or "",
    }
    found = None
    if error is None:
        query = query.resolved(intake)
        found = None if query.too_deep else query.run(records, on)
        if found is None or (not found.records and query.page > 1):
            # Past the records: the first page, to say how many there are.
            error = _page_error(query, replace(query, page=1).run(records, on))
            found = None
    shown = [] if found is None else [record.id for record in found.records]
    under_objection = appeals.open_objections_among(shown)
    html = render_lookup_page(
        form=form,
        found=found,
        error=error,
        on=on,
        base_url=settings.public_base_url,  # never the request's Host header
        rpc_url=settings.public_rpc_url,
        development_chain=development_chain(settings) is not None,
        objections={i: (a.filed_on, a.decide_by) for i, a in under_objection.items()},
    )
    return HTMLResponse(html, status_code=400 if error else 200)


@router.get(
    "/records/{record_id}",
    response_class=HTMLResponse,
    summary="One published breach record's page (HTML)",
    responses={
        404: {
            "description": "A page saying no such record is published",
            "content": {"text/html": {"schema": {"type": "string"}}},
        },
        **problem_responses(429),
    },
)
def record_page(
    record_id: str,
    records: RecordsDep,
    on: TodayDep,
    settings: SettingsDep,
    chain: ChainDep,
    appeals: AppealsDep,
) -> HTMLResponse:
    """失信记录 / One breach record explained: what, when, by whom, where to check it."""
    public_json = records.listed_breach_json(record_id[:64], on)
    stored = None if public_json is not None else records.breach(record_id[:64])
    if stored is not None and stored.status == "corrected":  # no party named: see the module
        html = render_correction_page(
            stored,
            correction_on_chain(chain, stored),
            development_chain=development_chain(settings) is not None,
        )
        return HTMLResponse(html, status_code=404)
    if public_json is None:
        message = bilingual("未找到公示中的该记录", "No such record is published")
        return HTMLResponse(
            '<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<title>未找到 / Not found</title><link rel="stylesheet" href="/assets/lookup.css">'
            f'</head><body><p class="error">{message}</p>'
            '<p><a href="/">返回查询 / <span lang="en">Back to the search</span></a></p>'
            "</body></html>\n",
            status_code=404,
        )
    record = BreachRecord.from_json(public_json)
    objection = appeals.open_for(record.id, "objection")
    html = render_record_page(
        record,
        block_time=block_time(chain, record),
        rpc_url=settings.public_rpc_url,
        explorer_url=settings.explorer_url,
        base_url=settings.public_base_url,
        development_chain=development_chain(settings) is not None,
        under_objection=None if objection is None else (objection.filed_on, objection.decide_by),
    )
    return HTMLResponse(html)


@assets.get("/assets/lookup.css")
def lookup_css() -> Response:
    """The lookup page's style sheet (a file of its own: the CSP forbids inline styles)."""
    return Response(
        LOOKUP_CSS,
        media_type="text/css; charset=utf-8",
        headers={"Cache-Control": "public, max-age=3600"},
    )

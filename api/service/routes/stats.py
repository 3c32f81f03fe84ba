"""Statistics over HTTP: `GET /v1/stats`, counts and rates per department, matter and day,
week or month, as JSON or CSV.

Who asks decides what is shown. Without a token, the public subset: per department and
matter, how many were verified and kept and how many were breaches, with the kept and
breach rates (rate limited like the other public routes). A department token: its own
department, every metric (decisions and late ones, mismatches, repairs, ...). A supervisor
token (the reform office): every department, or the one it names. Nothing is per person:
the counters hold departments, matters, days and counts only.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.service.deps import (
    LimiterDep,
    OptionalReaderDep,
    StoreDep,
    TodayDep,
    rate_limited,
    reader_for_any,
)
from api.service.problems import INVALID_REQUEST, ProblemError, problem_responses
from ledger import Store
from verifier import RecordsError
from verifier.records import (
    METRICS,
    PUBLIC_METRICS,
    Grouping,
    Metric,
    Period,
    StatsAnswers,
    StatsQuery,
    bounded_range,
    stats_csv,
)

router = APIRouter(prefix="/v1", tags=["statistics"])

_PARAMETERS = ("period", "start", "end", "department", "matter", "by", "format")
Scope = Literal["public", "department", "supervisor"]


async def _known_query(request: Request) -> None:
    """422 for a query parameter /v1/stats does not take: a misspelt filter must not
    answer for everything."""
    unknown = sorted(set(request.query_params) - set(_PARAMETERS))
    if unknown:
        raise ProblemError(
            INVALID_REQUEST,
            f"query.{unknown[0][:40]}: not a parameter of /v1/stats ({', '.join(_PARAMETERS)})",
            errors=[{"location": ["query", unknown[0][:40]], "message": "unknown parameter"}],
        )


async def _public_limit(
    request: Request, principal: OptionalReaderDep, limiter: LimiterDep
) -> None:
    """The public routes' rate limit, for requests without a token."""
    if principal is None:
        rate_limited(request, limiter)  # memory only: no need for a thread


def answers(request: Request, store: Store) -> StatsAnswers:
    """The answers kept for the service's store, one set per app."""
    kept: StatsAnswers | None = getattr(request.app.state, "stats_answers", None)
    if kept is None or kept.store is not store:
        kept = request.app.state.stats_answers = StatsAnswers(store)
    return kept


def _render(
    store: Store,
    head: dict[str, Any],
    period: Period,
    days: tuple[date, date],
    metrics: tuple[Metric, ...],
    format: str,
) -> bytes:
    """The answer's body, read from the counters and rendered once (plain dicts, no model
    per row: an answer may hold thousands)."""
    try:
        rows = StatsQuery(store).counts(
            head["department"],
            head["matter"],
            period,
            *days,
            metrics=metrics,
            by=head["by"],
            catch_up=False,  # caught up by StatsAnswers.answer
        )
    except RecordsError as exc:
        raise ProblemError(INVALID_REQUEST, str(exc)) from None
    if format == "csv":
        return stats_csv(rows, metrics).encode()
    body = {**head, "rows": [row.to_json_obj(metrics) for row in rows]}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _answer(
    request: Request,
    store: Store,
    head: dict[str, Any],
    period: Period,
    days: tuple[date, date],
    metrics: tuple[Metric, ...],
    format: str,
) -> bytes:
    # The scope, who is read and every parameter resolved (the metrics follow the scope).
    key = (format, *(v for k, v in head.items() if k != "metrics"))
    kept = answers(request, store)  # one trip to the thread pool for everything
    return kept.answer(
        key,
        lambda: _render(store, head, period, days, metrics, format),
        received="received" in metrics,
    )


@router.get(
    "/stats",
    summary="Counts and rates per department, matter and period",
    # The token is optional: without one the public subset is served.
    openapi_extra={"security": [{}, {"HTTPBearer": []}]},
    responses={
        200: {
            "description": "Rows per department, matter and period (CSV with format=csv)",
            "content": {"application/json": {}, "text/csv": {"schema": {"type": "string"}}},
        },
        **problem_responses(401, 403, 422, 429),
    },
    dependencies=[Depends(_known_query), Depends(_public_limit)],
)
async def statistics(
    request: Request,
    principal: OptionalReaderDep,
    store: StoreDep,
    today: TodayDep,
    period: Period = "day",
    start: Annotated[date | None, Query(description="First day (Beijing), inclusive")] = None,
    end: Annotated[date | None, Query(description="Last day (Beijing), inclusive")] = None,
    department: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    matter: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    by: Annotated[
        Grouping, Query(description="A row per matter, or per department (matters added up)")
    ] = "matter",
    format: Literal["json", "csv"] = "json",
) -> Any:
    """Counts and rates kept current as outcomes land: per department, matter and day,
    ISO week or month, from `start` to `end` (by default the last 30 days, 12 weeks or
    year up to today; at most a year of days, three of weeks, ten of months).

    Without a token: verified, kept and breach counts with the kept and breach rates.
    A department token: its own department, every metric (received, decided, decided
    late, verified, kept, mismatch, false, needs manual, proposed, breach, defended,
    repair, correction, expired, withdrawn) and the late rate. A supervisor token: every
    department, or the one named. `?by=department` adds up each department's matters (the
    rows' matter_code is "*"). `?format=csv` gives the same rows as CSV."""
    scope: Scope = "public"
    metrics: tuple[Metric, ...] = PUBLIC_METRICS
    read = department
    if principal is not None:
        read = reader_for_any(principal, department)
        scope = "supervisor" if principal.role == "supervisor" else "department"
        metrics = METRICS
    try:
        days = bounded_range(period, start, end, today)
    except RecordsError as exc:
        raise ProblemError(INVALID_REQUEST, str(exc)) from None
    head: dict[str, Any] = {
        "scope": scope,
        "department": read,
        "matter": matter,
        "period": period,
        "by": by,
        "start": days[0].isoformat(),
        "end": days[1].isoformat(),
        "metrics": list(metrics),
    }
    body = await run_in_threadpool(_answer, request, store, head, period, days, metrics, format)
    if format == "csv":
        name = f"stats-{period}-{read or 'all'}.csv"
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
            },
        )
    return Response(body, media_type="application/json")

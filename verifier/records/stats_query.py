"""Statistics read back: counts and rates per department, matter and day, ISO week or month,
and where commitments stand now, from the counters of `verifier.records.stats` alone.

Rates: kept rate = kept / verified, breach rate = breach / verified (verified: commitments
given a first outcome), late rate = decided_late / decided; None when the divisor is 0. A
period's rate divides what happened in it, so a mismatch found in one month and rectified
(kept) in the next counts in each month's own figures.

A query reads counter rows only (one per department, matter, day, week or month and metric
that saw anything: days from `stat_counts`, weeks and months from `stat_periods`), through
an index that leads with the department (a department's view) or the period (everyone's);
the database adds them up into one row per department, matter and period; with
by="department" each department's totals are read (counters of their own, matter "*").
Spans and rows are bounded; `received` is caught up first (see
`stats.catch_up_received`). A week or month is counted whole.
Measured on a store of 1,000,000 commitments (a year, 19 departments, 247 matters), read
and rendered as JSON: a department's 30 days per matter or every department's totals
(by="department") take 3 to 9 ms of CPU; every department per matter, 44 ms (the public's
year of months, 0.6 MB) to 120 ms (a supervisor's 30 days, every metric, 3.2 MB).
`StatsAnswers` keeps rendered answers per counters' generation: asked again before a
counter moves, an answer costs one primary-key read.
"""

from __future__ import annotations

import csv
import io
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, get_args

from sqlalchemy import case, func, select

from ledger import Store, commitments
from verifier.errors import RecordsError
from verifier.records.stats import (
    ALL_MATTERS,
    BEIJING,
    GENERATION_MARK,
    METRICS,
    OUTCOME_METRICS,
    RECEIVED_MARK,
    Metric,
    catch_up_received,
    counters_generation,
    stat_counts,
    stat_marks,
    stat_periods,
)

# What anyone may see, per matter and department (nothing per person is counted at all).
PUBLIC_METRICS: tuple[Metric, ...] = ("verified", "kept", "breach")

Grouping = Literal["matter", "department"]
GROUPINGS: tuple[Grouping, ...] = get_args(Grouping)

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = get_args(Period)
# How far back a query looks when no start is given, and the longest span it may ask for.
DEFAULT_SPAN = {"day": 30, "week": 7 * 12, "month": 366}
MAX_SPAN_DAYS = {"day": 366, "week": 3 * 366, "month": 10 * 366}
MAX_ROWS = 20_000  # rows a query may return (departments x matters x periods)
MAX_CODE = 64

# Where commitments stand, as the demo's outcome table names the states: entries less closings.
STANDING: dict[str, tuple[tuple[Metric, ...], tuple[Metric, ...]]] = {
    "kept": (("kept",), ()),
    "mismatch": (("mismatch",), ("mismatch_closed",)),
    "needs_manual": (("manual",), ("manual_closed",)),
    "proposed": (("proposed",), ("proposed_closed",)),
    "breached": (("breach",), ()),
    "corrected": (("defended",), ()),
    "withdrawn": (("withdrawn",), ()),
}


@dataclass(frozen=True)
class StatRow:
    """One department's counts for one matter in one period, with its rates."""

    department: str
    matter_code: str
    period: Period
    start: date  # the period's first day (a Monday for weeks, the 1st for months)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, metric: Metric) -> int:
        """One metric's count (0 when nothing was counted)."""
        return self.counts.get(metric, 0)

    @property
    def kept_rate(self) -> float | None:
        """kept / verified, or None when nothing was verified."""
        return _rate(self.count("kept"), self.count("verified"))

    @property
    def breach_rate(self) -> float | None:
        """breach / verified, or None when nothing was verified."""
        return _rate(self.count("breach"), self.count("verified"))

    @property
    def late_rate(self) -> float | None:
        """decided_late / decided, or None when nothing was decided."""
        return _rate(self.count("decided_late"), self.count("decided"))

    @property
    def label(self) -> str:
        """The period as people write it: 2026-12-07, 2026-W50, 2026-12."""
        if self.period == "week":
            year, week, _ = self.start.isocalendar()
            return f"{year}-W{week:02d}"
        if self.period == "month":
            return self.start.strftime("%Y-%m")
        return self.start.isoformat()

    def to_json_obj(self, metrics: Sequence[Metric] = METRICS) -> dict[str, Any]:
        """Plain JSON: every metric asked for (0 included), and the rates they allow."""
        got = self.counts.get
        counts = {m: got(m, 0) for m in metrics}  # (answers hold thousands of rows)
        rates: dict[str, float | None] = {}
        if "verified" in counts:
            verified = counts["verified"]
            if "kept" in counts:
                rates["kept_rate"] = _rounded(_rate(counts["kept"], verified))
            if "breach" in counts:
                rates["breach_rate"] = _rounded(_rate(counts["breach"], verified))
        if "decided" in counts and "decided_late" in counts:
            rates["late_rate"] = _rounded(_rate(counts["decided_late"], counts["decided"]))
        return {
            "department": self.department,
            "matter_code": self.matter_code,
            "period": self.period,
            "label": self.label,
            "start": self.start.isoformat(),
            "counts": counts,
            "rates": rates,
        }


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def _rounded(rate: float | None) -> float | None:
    return None if rate is None else round(rate, 6)


def period_start(day: date, period: Period) -> date:
    """The first day of the period holding `day`."""
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def today_in_beijing() -> date:
    """Today's date in Beijing."""
    return datetime.now(BEIJING).date()


def bounded_range(
    period: Period, start: date | None, end: date | None, today: date | None = None
) -> tuple[date, date]:
    """The days a query covers: `end` defaults to today (Beijing), `start` to a span back
    (30 days, 12 weeks, a year; from a period's first day); RecordsError when reversed or
    longer than the period allows (a year of days, three of weeks, ten of months)."""
    if period not in PERIODS:
        raise RecordsError(f"period {period!r}: one of {', '.join(PERIODS)}")
    last = end or today or today_in_beijing()
    first = start or period_start(last - timedelta(days=DEFAULT_SPAN[period] - 1), period)
    if first > last:
        raise RecordsError(f"start {first} is after end {last}")
    if (last - first).days + 1 > MAX_SPAN_DAYS[period]:
        raise RecordsError(
            f"{first} to {last} is longer than {MAX_SPAN_DAYS[period]} days: "
            f"ask for a shorter range or a longer period than {period}"
        )
    return first, last


def check_code(name: str, value: str | None) -> None:
    """RecordsError unless `value` is None or a plausible department or matter code."""
    if value is not None and (not value or len(value) > MAX_CODE or not value.isprintable()):
        raise RecordsError(f"{name}: 1 to {MAX_CODE} printable characters")


def _check_metrics(metrics: Sequence[str]) -> None:
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown or not metrics:
        raise RecordsError(f"unknown metrics {unknown}; known: {list(METRICS)}")


class StatsQuery:
    """Counts and rates per department, matter and period, read from the counters."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def counts(
        self,
        department: str | None = None,
        matter: str | None = None,
        period: Period = "day",
        start: date | None = None,
        end: date | None = None,
        *,
        metrics: Sequence[Metric] = METRICS,
        today: date | None = None,
        catch_up: bool = True,
        by: Grouping = "matter",
    ) -> list[StatRow]:
        """Rows per (period, department, matter) from `start` to `end` (see `bounded_range`),
        in that order; only counters of `metrics` are read. `by="department"`: one row per
        department and period, its matters added up (matter_code ALL_MATTERS). RecordsError
        on bad input or when more than MAX_ROWS rows would come back."""
        check_code("department", department)
        check_code("matter", matter)
        _check_metrics(metrics)
        first, last = bounded_range(period, start, end, today)
        if catch_up and "received" in metrics:
            catch_up_received(self.store)
        if by not in GROUPINGS:
            raise RecordsError(f"by {by!r}: one of {', '.join(GROUPINGS)}")
        # A department's totals are counters of their own (matter ALL_MATTERS); a matter
        # asked for is that matter's rows either way.
        totals = by == "department" and matter is None
        if period == "day" and not totals:
            table, first_day, on = stat_counts, stat_counts.c.day, None
        else:  # a week or month is counted whole, from its first day
            table, first_day, on = stat_periods, stat_periods.c.start, stat_periods.c.period
            first = period_start(first, period)
        # One row per department, matter and period, each metric summed by the database.
        sums = [
            func.sum(case((table.c.metric == m, table.c.count), else_=0)).label(f"m{n}")
            for n, m in enumerate(metrics)
        ]
        keys = (table.c.department, table.c.matter_code, first_day)
        query = (
            select(*keys, *sums)
            .where(
                first_day >= first.isoformat(),
                first_day <= last.isoformat(),
                table.c.metric.in_(list(metrics)),
            )
            .group_by(*keys)
            .limit(MAX_ROWS + 1)
        )
        if on is not None:
            query = query.where(on == period)
        if totals:
            query = query.where(table.c.matter_code == ALL_MATTERS)
        elif table is stat_periods:
            query = query.where(table.c.matter_code != ALL_MATTERS)
        if department is not None:
            query = query.where(table.c.department == department)
        if matter is not None:
            query = query.where(table.c.matter_code == matter)
        with self.store.engine.connect() as connection:
            found = connection.execute(query).all()
        if len(found) > MAX_ROWS:
            raise RecordsError(
                f"more than {MAX_ROWS} rows: ask for a department, a matter, a shorter range "
                "or a longer period"
            )
        starts: dict[str, date] = {}
        rows = []
        for department_code, matter_code, day, *values in found:
            begins = starts.get(day)
            if begins is None:
                begins = starts[day] = date.fromisoformat(day)
            counts: dict[str, int] = {m: int(v) for m, v in zip(metrics, values, strict=True) if v}
            rows.append(StatRow(department_code, matter_code, period, begins, counts))
        rows.sort(key=lambda r: (r.start, r.department, r.matter_code))
        return rows

    def totals(
        self, department: str | None = None, metrics: Sequence[Metric] = OUTCOME_METRICS
    ) -> Counter[tuple[str, str, str]]:
        """All-time counts per (department, matter, metric): what the chain check compares."""
        check_code("department", department)
        _check_metrics(metrics)
        query = (
            select(
                stat_counts.c.department,
                stat_counts.c.matter_code,
                stat_counts.c.metric,
                func.sum(stat_counts.c.count).label("total"),
            )
            .where(stat_counts.c.metric.in_(list(metrics)))
            .group_by(stat_counts.c.department, stat_counts.c.matter_code, stat_counts.c.metric)
        )
        if department is not None:
            query = query.where(stat_counts.c.department == department)
        with self.store.engine.connect() as connection:
            found = {
                (row.department, row.matter_code, row.metric): int(row.total)
                for row in connection.execute(query)
            }
        return Counter({key: n for key, n in found.items() if n})

    def standing(self, department: str | None = None) -> dict[tuple[str, str], dict[str, int]]:
        """Where the commitments of each (department, matter) stand now, by verification
        state (kept, mismatch, needs_manual, proposed, breached, corrected, withdrawn): the
        entries into each state less the moves out of it, all time."""
        totals = self.totals(department, OUTCOME_METRICS)
        keys = sorted({(d, m) for d, m, _ in totals})
        return {
            (d, m): {
                state: sum(totals[(d, m, e)] for e in entered)
                - sum(totals[(d, m, c)] for c in closed)
                for state, (entered, closed) in STANDING.items()
            }
            for d, m in keys
        }


def _csv_cell(value: object) -> object:
    # Spreadsheets run a cell starting with = + - @ as a formula: text cells are guarded.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def stats_csv(rows: Sequence[StatRow], metrics: Sequence[Metric] = METRICS) -> str:
    """The rows as CSV (each metric asked for, then the rates they allow), UTF-8 with a
    byte-order mark: Excel on Chinese Windows reads a file without one as GBK."""
    shown = [row.to_json_obj(metrics) for row in rows]
    rates = list(StatRow("", "", "day", date.min).to_json_obj(metrics)["rates"])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["department", "matter_code", "period", "label", *metrics, *rates])
    for row in shown:
        cells = [row["department"], row["matter_code"], row["period"], row["label"]]
        writer.writerow(
            [
                *(_csv_cell(c) for c in cells),
                *(row["counts"][m] for m in metrics),
                *("" if row["rates"][r] is None else row["rates"][r] for r in rates),
            ]
        )
    return "\ufeff" + out.getvalue()


def _mark(name: str) -> Any:
    return select(stat_marks.c.value).where(stat_marks.c.name == name).scalar_subquery()


# The counters' generation, how far `received` has counted and the newest commitment.
_WHERE_COUNTERS_ARE = select(
    _mark(GENERATION_MARK),
    _mark(RECEIVED_MARK),
    select(func.max(commitments.c.id)).scalar_subquery(),
)


class StatsAnswers:
    """Answers rendered once and served again while the counters stay as they were: each
    is kept with the counters' generation it was read at (`stats.counters_generation`,
    moved in every transaction that changes a counter), and a request reads that one row
    before it serves a kept answer, so an answer is exactly as current as a fresh read.
    At most `max_bytes` of answers are kept, the least recently asked dropped first."""

    def __init__(self, store: Store, max_bytes: int = 32 << 20) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self._kept: OrderedDict[Hashable, tuple[int, bytes]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def answer(self, key: Hashable, render: Callable[[], bytes], *, received: bool) -> bytes:
        """The answer to `key`: the kept one if the counters have not moved since it was
        rendered, else `render()` (kept for next time). `received`: the answer counts
        commitments received, so the received counter catches up first."""
        with self.store.engine.connect() as connection:  # one statement, the usual case
            generation, mark, newest = connection.execute(_WHERE_COUNTERS_ARE).one()
        if received and newest is not None and (mark is None or newest > mark):
            catch_up_received(self.store)
            with self.store.engine.connect() as connection:
                generation = counters_generation(connection)
        generation = generation or 0
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept[0] == generation:
                self._kept.move_to_end(key)
                return kept[1]
        # Read after the generation: a change landing in between is in the body, and the
        # next request sees the generation moved and renders again.
        body = render()
        if len(body) <= self.max_bytes // 4:
            with self._lock:
                old = self._kept.pop(key, None)
                if old is not None:
                    self._size -= len(old[1])
                self._kept[key] = (generation, body)
                self._size += len(body)
                while self._size > self.max_bytes:
                    _, (_, dropped) = self._kept.popitem(last=False)
                    self._size -= len(dropped)
        return body

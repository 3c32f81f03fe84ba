"""Statistics: counters of what happened per department, matter, Beijing day and metric,
bumped in the transaction that records each fact, and read back per day, week or month.

Facts are counted as they land, never by scanning rows:
- outcomes (kept, mismatch, false, needs manual, proposed, breach, repair, correction,
  expired, defended, withdrawn, and `verified`: a commitment's first outcome) are bumped by
  the verification and breach-record writes, from the same move of state the contract
  makes, so `stats_chain` can count them again from the chain's `OutcomeRecorded` events;
  a move out of mismatch, needs manual or proposed also counts `<state>_closed`, so what
  stands open now is the entries less the closings (`stats_query.StatsQuery.standing`);
- decisions (`decided`, `decided_late`) by `count_decision`, which the decision desk passes
  to the store's `record_decision` to run in its transaction;
- `received`: intake is the ledger's, which knows nothing of the verifier. Rather than a
  GROUP BY over the commitments of the period (a million rows in a month is far beyond the
  20 ms a statistics request may take), the counters catch up with the commitments table
  by its id: the rows past a mark are counted once, in one transaction with the mark's move,
  so each commitment is counted exactly once and a request reads only counters. On
  PostgreSQL ids can commit out of order, so rows younger than SETTLE_SECONDS wait for the
  next catch-up.

A day is the Beijing date of the moment the fact was recorded (a decision: its decided_at).
Each bump also adds to its ISO week's and month's counter (`stat_periods`), so that a long
range reads few rows. The counters are read by `stats_query`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Literal, Protocol, get_args

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    MetaData,
    String,
    Table,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from ledger import Status, Store, commitments
from verifier.errors import RecordsError

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

Metric = Literal[
    "received",
    "decided",
    "decided_late",
    "verified",
    "kept",
    "mismatch",
    "false",
    "manual",
    "proposed",
    "breach",
    "defended",
    "repair",
    "correction",
    "expired",
    "withdrawn",
    "mismatch_closed",
    "manual_closed",
    "proposed_closed",
]
METRICS: tuple[Metric, ...] = get_args(Metric)
# The metrics the chain's events also count (stats_chain compares them).
OUTCOME_METRICS: tuple[Metric, ...] = METRICS[3:]
# What anyone may see, per matter and department (nothing per person exists here anyway).
PUBLIC_METRICS: tuple[Metric, ...] = ("verified", "kept", "breach")

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = get_args(Period)
# How far back a query looks when no start is given, and the longest span it may ask for.
DEFAULT_SPAN = {"day": 30, "week": 7 * 12, "month": 366}
MAX_SPAN_DAYS = {"day": 366, "week": 3 * 366, "month": 10 * 366}
MAX_ROWS = 20_000  # rows a query may return (departments x matters x periods)
MAX_CODE = 64

SETTLE_SECONDS = 60.0  # PostgreSQL: how long a commitment row may take to commit
CATCH_UP_CHUNK = 20_000  # commitments counted per catch-up transaction
RECEIVED_MARK = "received"
# Bumped in every transaction that changes a counter: an answer read at one generation
# holds until the generation moves (see `counters_generation`).
GENERATION_MARK = "generation"

stats_metadata = MetaData()

stat_counts = Table(
    "stat_counts",
    stats_metadata,
    Column("department", String(64), primary_key=True),
    Column("matter_code", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),  # Beijing date, YYYY-MM-DD
    Column("metric", String(16), primary_key=True),
    Column("count", BigInteger, nullable=False),
)
# Every department's counters of a period (the supervisor's and the public view), covering.
stat_counts_by_day = Index(
    "stat_counts_by_day",
    stat_counts.c.day,
    stat_counts.c.department,
    stat_counts.c.matter_code,
    stat_counts.c.metric,
    stat_counts.c.count,
)
# One department's counters of a period (its own view), covering.
stat_counts_by_department = Index(
    "stat_counts_by_department",
    stat_counts.c.department,
    stat_counts.c.day,
    stat_counts.c.matter_code,
    stat_counts.c.metric,
    stat_counts.c.count,
)
# The same counts per ISO week and per month (`start`: a Monday, a 1st), bumped beside the
# day's: a year of months reads 12 rows per matter and metric, not 365. A department's
# totals over its matters are here too (matter ALL_MATTERS), per day, week and month.
stat_periods = Table(
    "stat_periods",
    stats_metadata,
    Column("period", String(5), primary_key=True),  # week | month
    Column("department", String(64), primary_key=True),
    Column("start", String(10), primary_key=True),  # (the key in this order: a department's)
    Column("matter_code", String(64), primary_key=True),
    Column("metric", String(16), primary_key=True),
    Column("count", BigInteger, nullable=False),
)
stat_periods_by_start = Index(
    "stat_periods_by_start",
    stat_periods.c.period,
    stat_periods.c.start,
    stat_periods.c.department,
    stat_periods.c.matter_code,
    stat_periods.c.metric,
    stat_periods.c.count,
)
ALL_MATTERS = "*"  # the matter of a department's totals (never a matter's code)
# Every department's totals of a period (the supervisor's comparison), covering.
stat_periods_totals = Index(
    "stat_periods_totals",
    stat_periods.c.period,
    stat_periods.c.matter_code,
    stat_periods.c.start,
    stat_periods.c.department,
    stat_periods.c.metric,
    stat_periods.c.count,
)
# How far a counter has caught up with a table it counts (received: commitments.id).
stat_marks = Table(
    "stat_marks",
    stats_metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

CounterKey = tuple[str, str, str, str]  # (department, matter_code, day, metric)


def create_stats_tables(connection: Connection) -> None:
    """The verifier's migration step that adds the counters (see verifier.records.tables)."""
    stats_metadata.create_all(connection, tables=[stat_counts, stat_marks])
    connection.execute(stat_marks.insert().values(name=RECEIVED_MARK, value=0))


def add_period_rollups(connection: Connection) -> None:
    """The verifier's migration step that adds the week and month counters, counted from
    the day counters already there."""
    stats_metadata.create_all(connection, tables=[stat_periods])
    stat_counts_by_department.create(connection, checkfirst=True)  # made with v5's since
    rebuild_rollups(connection)


def add_department_totals(connection: Connection) -> None:
    """The verifier's migration step that adds each department's totals over its matters
    (and their index), counted from the day counters."""
    stat_periods_totals.create(connection, checkfirst=True)  # made with v6's since
    rebuild_rollups(connection)


def rebuild_rollups(connection: Connection) -> int:
    """Count the week and month counters again from the day counters (after rows were
    written into stat_counts directly, as a bulk load does); how many rows were written."""
    totals: Counter[tuple[str, str, str, str, str]] = Counter()
    rows = connection.execute(
        select(
            stat_counts.c.department,
            stat_counts.c.matter_code,
            stat_counts.c.day,
            stat_counts.c.metric,
            stat_counts.c.count.label("n"),
        )
    )
    for department, matter_code, day, metric, n in rows:
        for key in _rollup_keys(department, matter_code, day, metric):
            totals[key] += n
    connection.execute(delete(stat_periods))
    batch = [_rollup_row(key, n) for key, n in totals.items() if n]
    for first in range(0, len(batch), 50_000):
        connection.execute(stat_periods.insert(), batch[first : first + 50_000])
    next_generation(connection)
    return len(batch)


def next_generation(connection: Connection) -> None:
    """Move the counters' generation on, in the caller's transaction (locked last, after
    the counters, so that writers take their locks in one order)."""
    _upsert(connection, stat_marks, [{"name": GENERATION_MARK, "value": 1}], "value")


def counters_generation(connection: Connection) -> int:
    """The counters' generation: it moves in every transaction that changes a counter, so
    two reads of the same generation saw the same counters (0: never changed)."""
    found = connection.execute(
        select(stat_marks.c.value).where(stat_marks.c.name == GENERATION_MARK)
    ).scalar()
    return 0 if found is None else int(found)


def _rollup_row(key: tuple[str, str, str, str, str], count: int) -> dict[str, Any]:
    period, department, matter_code, start, metric = key
    return {
        "period": period,
        "department": department,
        "matter_code": matter_code,
        "start": start,
        "metric": metric,
        "count": count,
    }


def _rollup_keys(
    department: str, matter_code: str, day: str, metric: str
) -> list[tuple[str, str, str, str, str]]:
    """The week and month counters a day's count adds to, and its department's totals (all
    matters: the day's, the week's and the month's)."""
    when = date.fromisoformat(day)
    starts = (
        ("day", day),
        ("week", (when - timedelta(days=when.weekday())).isoformat()),
        ("month", day[:8] + "01"),
    )
    keys = [(p, department, matter_code, start, metric) for p, start in starts[1:]]
    keys += [(p, department, ALL_MATTERS, start, metric) for p, start in starts]
    return keys


def beijing_day(moment: float | datetime) -> str:
    """The Beijing date of an instant (Unix seconds or an aware datetime), as YYYY-MM-DD."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise RecordsError("a statistics time must be timezone-aware")
        return moment.astimezone(BEIJING).date().isoformat()
    return datetime.fromtimestamp(moment, UTC).astimezone(BEIJING).date().isoformat()


def _upsert(
    connection: Connection, table: Table, rows: list[dict[str, Any]], column: str = "count"
) -> None:
    """Insert the rows, adding each `column` to the row of the same key where there is one."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(table)
    elif dialect == "sqlite":
        statement = sqlite.insert(table)
    else:
        raise RecordsError(f"statistics counters need SQLite or PostgreSQL, not {dialect}")
    statement = statement.on_conflict_do_update(
        index_elements=list(table.primary_key.columns),
        set_={column: table.c[column] + statement.excluded[column]},
    )
    connection.execute(statement, rows)


def bump_many(connection: Connection, counts: Mapping[CounterKey, int]) -> None:
    """Add each count to its counter, in the caller's transaction (one upsert, batched)."""
    for department, matter_code, day, metric in counts:
        if metric not in METRICS:
            raise RecordsError(f"unknown statistics metric {metric!r}; known: {list(METRICS)}")
        try:
            date.fromisoformat(day if len(day) == 10 else "")
        except ValueError:
            raise RecordsError(f"statistics day {day!r}: expected YYYY-MM-DD") from None
        if not department or not matter_code or matter_code == ALL_MATTERS:
            raise RecordsError("a statistics counter needs a department and a matter")
    keys = sorted((key, n) for key, n in counts.items() if n)
    if not keys:
        return
    rows = [
        {"department": d, "matter_code": m, "day": day, "metric": metric, "count": n}
        for (d, m, day, metric), n in keys
    ]
    rollups: Counter[tuple[str, str, str, str, str]] = Counter()
    for (department, matter_code, day, metric), n in keys:
        for key in _rollup_keys(department, matter_code, day, metric):
            rollups[key] += n
    # Sorted keys: concurrent PostgreSQL writers lock counters in one order, no deadlock.
    _upsert(connection, stat_counts, rows)
    _upsert(connection, stat_periods, [_rollup_row(k, n) for k, n in sorted(rollups.items())])
    next_generation(connection)


def bump(
    connection: Connection,
    department: str,
    matter_code: str,
    day: str | date,
    metric: Metric,
    by: int = 1,
) -> None:
    """Add `by` to one counter, in the caller's transaction (works on SQLite and PostgreSQL)."""
    text = day.isoformat() if isinstance(day, date) else day
    bump_many(connection, {(department, matter_code, text, metric): by})


class DecisionFacts(Protocol):
    """What `count_decision` reads of a decision record (ledger.DecisionRecord)."""

    @property
    def department(self) -> str: ...
    @property
    def matter_code(self) -> str: ...
    @property
    def decided_at(self) -> datetime: ...
    @property
    def late(self) -> bool: ...


def count_decision(connection: Connection, record: DecisionFacts) -> None:
    """Count one decision (and whether it was late) on the Beijing day it was made; for
    `Store.record_decision(record, also=lambda c: count_decision(c, record))`."""
    day = beijing_day(record.decided_at)
    counts: Counter[CounterKey] = Counter()
    counts[(record.department, record.matter_code, day, "decided")] += 1
    if record.late:
        counts[(record.department, record.matter_code, day, "decided_late")] += 1
    bump_many(connection, counts)


# ------------------------------------------------------------------ outcomes

# A verification state as the contract's status (integrity_failure is ours: still Anchored).
STATUS_OF_STATE: dict[str, Status] = {
    "due": Status.ANCHORED,
    "integrity_failure": Status.ANCHORED,
    "kept": Status.KEPT,
    "mismatch": Status.MISMATCH,
    "manual": Status.NEEDS_MANUAL,
    "proposed": Status.PROPOSED,
    "breached": Status.BREACHED,
    "corrected": Status.CORRECTED,
    "withdrawn": Status.WITHDRAWN,
}
_ENTERED: dict[Status, Metric] = {
    Status.KEPT: "kept",
    Status.MISMATCH: "mismatch",
    Status.NEEDS_MANUAL: "manual",
    Status.PROPOSED: "proposed",
    Status.BREACHED: "breach",
    Status.REPAIRED: "repair",
    Status.EXPIRED: "expired",
    Status.WITHDRAWN: "withdrawn",
}
_CLOSED: dict[Status, Metric] = {
    Status.MISMATCH: "mismatch_closed",
    Status.NEEDS_MANUAL: "manual_closed",
    Status.PROPOSED: "proposed_closed",
}
_UNVERIFIED = frozenset({Status.NONE, Status.ANCHORED})
_FINDINGS = frozenset({Status.KEPT, Status.MISMATCH, Status.NEEDS_MANUAL, Status.PROPOSED})


def transition_metrics(before: Status, after: Status) -> tuple[Metric, ...]:
    """The metrics one move of a commitment's status counts: the same for the store's move
    and for the chain's `OutcomeRecorded(from, to)`, so the two can be compared."""
    if before == after:
        return ()
    found: list[Metric] = []
    if before in _UNVERIFIED and after in _FINDINGS:
        found.append("verified")
    if after == Status.CORRECTED:
        # a published breach annulled after an objection, or a proposal the defence overturned
        found.append("correction" if before == Status.BREACHED else "defended")
    elif after in _ENTERED:
        found.append(_ENTERED[after])
    if after == Status.PROPOSED and before != Status.MISMATCH:
        found.append("false")  # found false (not a rectification window that ran out)
    if before in _CLOSED:
        found.append(_CLOSED[before])  # what stands open is the entries less these
    return tuple(found)


def state_move_metrics(before: str, after: str) -> tuple[Metric, ...]:
    """`transition_metrics` of a verification's move between the store's state names."""
    return transition_metrics(STATUS_OF_STATE[before], STATUS_OF_STATE[after])


def count_moves(
    connection: Connection,
    moves: Iterable[tuple[str, str, Status, Status]],
    now: float | None = None,
) -> None:
    """Count moves (department, matter, status before, status after) on `now`'s day."""
    day = beijing_day(time.time() if now is None else now)
    counts: Counter[CounterKey] = Counter()
    for department, matter_code, before, after in moves:
        for metric in transition_metrics(before, after):
            counts[(department, matter_code, day, metric)] += 1
    bump_many(connection, counts)


# ------------------------------------------------------------------ received


def catch_up_received(store: Store, now: float | None = None) -> int:
    """Count the commitments taken in since the last catch-up; how many were counted."""
    counted = 0
    writer = store.engine.execution_options(immediate=True)
    while True:
        with store.engine.connect() as connection:
            mark = connection.execute(
                select(stat_marks.c.value).where(stat_marks.c.name == RECEIVED_MARK)
            ).scalar()
            newest = connection.execute(select(func.max(commitments.c.id))).scalar()
        if mark is None or newest is None or newest <= mark:
            return counted
        with writer.begin() as connection:
            step = _catch_up_chunk(connection, time.time() if now is None else now)
        if step == 0:
            return counted
        counted += step


def _catch_up_chunk(connection: Connection, now: float) -> int:
    locked = select(stat_marks.c.value).where(stat_marks.c.name == RECEIVED_MARK)
    mark = connection.execute(locked.with_for_update()).scalar_one()  # one catch-up at a time
    rows = connection.execute(
        select(
            commitments.c.id,
            commitments.c.department,
            commitments.c.matter_code,
            commitments.c.received_at,
        )
        .where(commitments.c.id > mark)
        .order_by(commitments.c.id)
        .limit(CATCH_UP_CHUNK)
    ).all()
    settle = SETTLE_SECONDS if connection.dialect.name == "postgresql" else 0.0
    counts: Counter[CounterKey] = Counter()
    last = mark
    for row in rows:
        if settle and row.received_at > now - settle:
            break  # an older id may still be committing: wait for it
        counts[(row.department, row.matter_code, beijing_day(row.received_at), "received")] += 1
        last = row.id
    if last == mark:
        return 0
    bump_many(connection, counts)
    connection.execute(
        update(stat_marks).where(stat_marks.c.name == RECEIVED_MARK).values(value=last)
    )
    return sum(counts.values())

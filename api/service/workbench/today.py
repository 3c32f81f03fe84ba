"""What today's page shows, read from the store: the commitments received today (Beijing
day), the decisions due today and those already late, the checks due by today."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select

from api.service.workbench.layout import BEIJING
from ledger import Hash32, Store, commitments
from verifier import OfficeHours, default_catalog
from verifier.records import MAX_WORK_PAGE, TaskRecords, TaskRow, WorkLists, WorkPage

_lists: weakref.WeakKeyDictionary[Store, WorkLists] = weakref.WeakKeyDictionary()
NEW_SHOWN = 50  # commitments received today listed; the count covers them all


@dataclass(frozen=True)
class Received:
    """A commitment received today (no personal data: its hash, code and matter)."""

    hash: Hash32
    code: str
    matter_code: str
    department: str
    received_at: float


@dataclass(frozen=True)
class TodayFigures:
    """Today's page for one department (or every department: `department` None)."""

    day: date
    department: str | None
    received_count: int
    received: tuple[Received, ...]
    checks_due: tuple[TaskRow, ...]
    checks_due_count: int


def day_bounds(day: date) -> tuple[float, float]:
    """The Unix seconds at which the Beijing `day` begins and ends."""
    start = datetime.combine(day, time(0, 0), BEIJING)
    return start.timestamp(), (start + timedelta(days=1)).timestamp()


def received_on(
    store: Store, day: date, department: str | None, limit: int = NEW_SHOWN
) -> tuple[int, tuple[Received, ...]]:
    """How many commitments arrived on the Beijing `day`, and the newest `limit` of them."""
    start, end = day_bounds(day)
    c = commitments.c
    where = [c.received_at >= start, c.received_at < end]
    if department is not None:
        where.append(c.department == department)
    with store.engine.connect() as connection:
        count = connection.execute(select(func.count()).where(*where)).scalar_one()
        rows = connection.execute(
            select(c.hash, c.code, c.matter_code, c.department, c.received_at)
            .where(*where)
            .order_by(c.received_at.desc(), c.id.desc())
            .limit(limit)
        ).all()
    found = tuple(
        Received(Hash32(bytes(r.hash)), r.code, r.matter_code, r.department, r.received_at)
        for r in rows
    )
    return int(count), found


def today_figures(store: Store, day: date, department: str | None) -> TodayFigures:
    """Today's figures for `department` (None: every department, for a supervisor)."""
    count, received = received_on(store, day, department)
    checks: tuple[TaskRow, ...] = ()
    checks_total = 0
    if department is not None:
        page = TaskRecords(store).work_list(department, due_before=day + timedelta(days=1))
        checks, checks_total = page.tasks, page.total
    return TodayFigures(day, department, count, received, checks, checks_total)


def work_lists(store: Store, hours: OfficeHours) -> WorkLists:
    """The work lists over `store`, opened once per store (opening migrates their indexes),
    decision deadlines counted in `hours` with each matter's online limit."""
    found = _lists.get(store)
    if found is None or found.hours is not hours:
        limits = {m.code: m.online_decision_working_days for m in default_catalog().matters}
        found = _lists[store] = WorkLists(store, hours, limits)
    return found


def decisions_due(
    lists: WorkLists, department: str, day: date, now: datetime | None = None
) -> tuple[WorkPage, WorkPage, int]:
    """The department's undecided commitments already late; those due on the Beijing `day`
    and still in time at `now` (read from the newest `MAX_WORK_PAGE` awaited: what is due
    today was received lately); and how many await a decision in all."""
    late = lists.page("awaiting-decision", department, late=True, limit=50, today=day, now=now)
    recent = lists.page(
        "awaiting-decision", department, order="desc", limit=MAX_WORK_PAGE, today=day, now=now
    )
    due = tuple(
        item
        for item in reversed(recent.items)
        if not item.late and item.due is not None and _beijing_day(item.due) == day
    )
    return late, replace(recent, items=due, total=len(due), order="asc"), recent.total


def _beijing_day(moment: str) -> date:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(BEIJING).date()


def late_by_department(
    lists: WorkLists, departments: Sequence[str], day: date
) -> list[tuple[str, int, int]]:
    """(department, decisions already late, decisions awaited) for each of `departments`:
    the reform office's first look."""
    found = []
    for department in departments:
        late = lists.page("awaiting-decision", department, late=True, limit=1, today=day)
        awaited = lists.page("awaiting-decision", department, limit=1, today=day)
        found.append((department, late.total, awaited.total))
    return found

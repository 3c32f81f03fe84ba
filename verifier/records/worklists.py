"""A department's work lists: what waits for a person, each list one query over an index.

Seven lists, named as the workbench and `GET /v1/worklists/{name}` name them: commitments
awaiting an approval decision (time left, or how late, by the office hours), mismatches
awaiting rectification, proposed breaches in their defence period, objections and repair
applications awaiting a decision, cases for a person (needs manual, document review,
on-site checks), outcomes the contract refused, and overdue verifications.

A row carries hashes, codes, dates and states only: never the sealed document, never a
statement, a name or an ID number. Each list is filtered (matter, late only, a date range
on its deadline), sorted by one of its own keys, paged (at most `MAX_WORK_PAGE` rows) and
counted; every query walks an index led by the department (this module's own migration
track adds those the owning tables lacked), so a page stays fast at millions of rows.

Over 400 lines: seven queries, each small, read together because they share one page shape.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any, ClassVar, Literal, cast, get_args

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    MetaData,
    Select,
    and_,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)

from ledger import Hash32, Store, apply_migrations, commitments, hex32, migrations_table
from ledger import outcome_outbox as outbox
from verifier.errors import RecordsError
from verifier.records.appeals import AppealRecords, appeals
from verifier.records.decision_clock import DecisionClock, DecisionHours
from verifier.records.notices import NoticeRecords, notices
from verifier.records.rectifications import RectificationRecords, rectifications
from verifier.records.tables import breach_records
from verifier.records.tables import verifications as verifying
from verifier.records.tasks import TaskRecords, method_tasks

WorkListName = Literal[
    "awaiting-decision", "rectification", "defence", "appeals", "manual", "refused", "overdue"
]
WORK_LISTS: tuple[WorkListName, ...] = get_args(WorkListName)
Order = Literal["asc", "desc"]
LeftUnit = Literal["working_days", "days"]

MAX_WORK_PAGE = 500
MAX_OFFSET = 1_000_000
MAX_MATTER = 64
_REASON = 200  # characters of the contract's refusal shown
_BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
_DAY = timedelta(days=1)
_EPOCH = date(2020, 1, 1)  # counting working days from here (late by years is still late)

# Each list's sort keys, its default first; every one is the trailing column of an index
# led by (department, state), so a page is read in order, never sorted whole.
WORK_SORTS: dict[WorkListName, tuple[str, ...]] = {
    "awaiting-decision": ("received",),
    "rectification": ("rectify_by", "due"),
    "defence": ("defence_by", "issued"),
    "appeals": ("decide_by", "filed"),
    "manual": ("due",),
    "refused": ("created",),
    "overdue": ("due",),
}

# CSV columns, in order (the JSON object has the same names).
WORK_CSV_COLUMNS = (
    "list",
    "commitment_hash",
    "matter_code",
    "department",
    "status",
    "started",
    "due",
    "late",
    "left",
    "left_unit",
    "reference",
    "note",
)


UTF8_BOM = "\ufeff"
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_TEXT_COLUMNS = frozenset({"status", "reference", "note", "matter_code", "department"})


def _cell(name: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if name in _TEXT_COLUMNS and text.startswith(_FORMULA_STARTS):
        return "'" + text
    return text


class WorkListError(RecordsError, ValueError):
    """A list, sort key, filter or page that does not exist or is out of bounds."""


@dataclass(frozen=True)
class WorkItem:
    """One row of a work list: what waits, since when, until when, and how late."""

    list: WorkListName
    commitment: Hash32
    matter_code: str
    department: str
    status: str
    started: str | None  # ISO: received, recorded, issued, filed
    due: str | None  # ISO: the deadline (a time for decisions, a day for the rest)
    late: bool
    left: float | None  # until due, in `left_unit`; negative: how late
    left_unit: LeftUnit
    reference: str | None = None  # a channel, an appeal's or filing's id, a task's key
    note: str | None = None  # a task's kind, the contract's refusal

    def to_json_obj(self) -> dict[str, Any]:
        """The row as plain JSON (hash 0x-hex, dates ISO)."""
        return {
            "list": self.list,
            "commitment_hash": hex32(self.commitment),
            "matter_code": self.matter_code,
            "department": self.department,
            "status": self.status,
            "started": self.started,
            "due": self.due,
            "late": self.late,
            "left": self.left,
            "left_unit": self.left_unit,
            "reference": self.reference,
            "note": self.note,
        }


@dataclass(frozen=True)
class WorkPage:
    """One page of a work list and how many rows its filters match in all."""

    name: WorkListName
    department: str
    items: tuple[WorkItem, ...]
    total: int
    offset: int
    limit: int
    sort: str
    order: Order

    def to_csv(self) -> str:
        """The page as CSV: UTF-8's byte-order mark (Excel on Chinese Windows reads a file
        without one as GBK), a header of `WORK_CSV_COLUMNS`, a line per row; a text cell
        that a spreadsheet would run as a formula (OWASP CSV injection) starts with '."""
        out = io.StringIO()
        out.write(UTF8_BOM)
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(WORK_CSV_COLUMNS)
        for item in self.items:
            fields = item.to_json_obj()
            writer.writerow([_cell(name, fields[name]) for name in WORK_CSV_COLUMNS])
        return out.getvalue()

    def to_json_obj(self) -> dict[str, Any]:
        """The page as plain JSON."""
        return {
            "list": self.name,
            "department": self.department,
            "total": self.total,
            "offset": self.offset,
            "limit": self.limit,
            "sort": self.sort,
            "order": self.order,
            "items": [item.to_json_obj() for item in self.items],
        }


@dataclass(frozen=True)
class WorkFilter:
    """What a page asks for, checked."""

    department: str
    matter: str | None
    late: bool
    since: date | None
    until: date | None
    today: date
    now: datetime
    # A page reads at most this many rows from the start of the list (offset + limit), in
    # this direction: a list made of several parts takes no more than that from each.
    window: int | None = None
    descending: bool = False


# Lists made of several parts (a union), whose page and count are built apart.
_WINDOWED = frozenset({"manual"})

_Convert = Callable[[Connection, Sequence[Any], WorkFilter], list[WorkItem]]
_Query = tuple[Select[Any], Mapping[str, Any], _Convert]

# Indexes the lists walk that the owning tables lack: (department, state, the sort key).
# Plain DDL, the same on SQLite and PostgreSQL; attached to no Table, so no other track's
# create_all makes them.
_INDEX_DDL = (
    "CREATE INDEX IF NOT EXISTS worklist_verifications_due "
    "ON verifications (department, state, due_on)",
    "CREATE INDEX IF NOT EXISTS worklist_verifications_rectify "
    "ON verifications (department, state, rectify_by)",
    "CREATE INDEX IF NOT EXISTS worklist_notices_defence "
    "ON notices (department, state, defence_by)",
    "CREATE INDEX IF NOT EXISTS worklist_notices_issued ON notices (department, state, issued_on)",
    "CREATE INDEX IF NOT EXISTS worklist_appeals_decide ON appeals (department, state, decide_by)",
    "CREATE INDEX IF NOT EXISTS worklist_appeals_filed ON appeals (department, state, filed_on)",
    "CREATE INDEX IF NOT EXISTS worklist_tasks_open ON method_tasks (department, status, due_on)",
    "CREATE INDEX IF NOT EXISTS worklist_tasks_assist "
    "ON method_tasks (assist_department, status, due_on)",
    "CREATE INDEX IF NOT EXISTS worklist_refused "
    "ON outcome_outbox (department, created_at) WHERE abandoned IS NOT NULL",
)

metadata = MetaData()
worklist_migrations = migrations_table("worklist_migrations", metadata)


def _indexes_v1(connection: Connection) -> None:
    for statement in _INDEX_DDL:
        connection.exec_driver_sql(statement)


# v2: pages and counts of the two biggest lists read their index alone (covering): the
# decisions awaited (a partial index, undecided rows only) and the overdue verifications.
_COVERING_DDL = (
    "CREATE INDEX IF NOT EXISTS worklist_undecided "
    "ON commitments (department, received_at, channel, matter_code, hash, decided_at) "
    "WHERE decided_at IS NULL",  # decided_at too: SQLite's planner then sees it covers
    "CREATE INDEX IF NOT EXISTS worklist_verifications_overdue "
    "ON verifications (department, overdue_flagged, state, due_on, matter_code)",
)


def _covering_v2(connection: Connection) -> None:
    for statement in _COVERING_DDL:
        connection.exec_driver_sql(statement)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _indexes_v1, 2: _covering_v2}


@lru_cache(maxsize=100_000)  # the same rows come back page after page
def _iso_time(stamp: float) -> str:
    moment = datetime.fromtimestamp(stamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _day_of(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, _BEIJING).date().isoformat()


def _day_start(day: date) -> float:
    """The first moment of a Beijing day, as Unix seconds."""
    return datetime.combine(day, time(0), _BEIJING).timestamp()


def _days_left(due: str | None, today: date) -> float | None:
    return None if due is None else float((date.fromisoformat(due) - today).days)


class WorkLists:
    """The department's work lists over a ledger store (opening migrates the tables the
    lists read, and this module's indexes). `hours` counts decision deadlines; `limits`
    gives a matter's online decision limit in working days (0.5 when it names none)."""

    def __init__(
        self,
        store: Store,
        hours: DecisionHours | None = None,
        limits: Mapping[str, float] | None = None,
    ) -> None:
        self.store = store
        self._engine: Engine = store.engine
        self.hours = hours
        self.clock = None if hours is None else DecisionClock(hours)
        self.limits = dict(limits or {})
        # Each record kind migrates its own tables when opened: the lists join them.
        TaskRecords(store)
        NoticeRecords(store)
        AppealRecords(store)
        RectificationRecords(store)
        with store.engine.execution_options(immediate=True).begin() as connection:
            apply_migrations(connection, worklist_migrations, MIGRATIONS)

    def page(
        self,
        name: str,
        department: str,
        *,
        matter: str | None = None,
        late: bool = False,
        since: date | None = None,
        until: date | None = None,
        sort: str | None = None,
        order: str = "asc",
        offset: int = 0,
        limit: int = 50,
        today: date | None = None,
        now: datetime | None = None,
    ) -> WorkPage:
        """One page of list `name` for `department`: WorkListError for an unknown list or
        sort key, a page out of bounds, a range that ends before it starts."""
        if name not in WORK_LISTS:
            raise WorkListError(f"no work list {name[:40]!r}; known: {', '.join(WORK_LISTS)}")
        listed: WorkListName = name
        sorts = WORK_SORTS[listed]
        key = sorts[0] if sort is None else sort
        if key not in sorts:
            raise WorkListError(f"{name} sorts by {', '.join(sorts)}, not {key[:40]!r}")
        if order not in ("asc", "desc"):
            raise WorkListError(f"order is asc or desc, not {order[:10]!r}")
        if not 1 <= limit <= MAX_WORK_PAGE or not 0 <= offset <= MAX_OFFSET:
            raise WorkListError(
                f"a page is 1 to {MAX_WORK_PAGE} rows from an offset of 0 to {MAX_OFFSET}"
            )
        if matter is not None and not 0 < len(matter) <= MAX_MATTER:
            raise WorkListError(f"a matter code is 1 to {MAX_MATTER} characters")
        if since is not None and until is not None and until < since:
            raise WorkListError("the range ends before it starts")
        # Late as of the second: a cutoff found once serves every request of that second.
        moment = (datetime.now(UTC) if now is None else now.astimezone(UTC)).replace(microsecond=0)
        wanted = WorkFilter(
            department,
            matter,
            late,
            since,
            until,
            moment.astimezone(_BEIJING).date() if today is None else today,
            moment,
        )
        page, counting, convert = self.statements(listed, wanted, key, order, offset, limit)
        with self._engine.connect() as connection:
            rows = connection.execute(page).all()
            total = int(connection.execute(counting).scalar_one())
            items = convert(connection, rows, wanted)
        ordered = cast(Order, order)
        return WorkPage(listed, department, tuple(items), total, offset, limit, key, ordered)

    def statements(
        self, name: WorkListName, wanted: WorkFilter, sort: str, order: str, offset: int, limit: int
    ) -> tuple[Select[Any], Select[Any], _Convert]:
        """The page's query, its count's and how its rows read (checked arguments)."""
        windowed = replace(wanted, window=offset + limit, descending=order == "desc")
        query, columns, convert = self._QUERIES[name](self, windowed)
        column = columns[sort]
        ordering = (column.asc(), query.selected_columns.commitment_hash.asc())
        if order == "desc":
            ordering = (column.desc(), query.selected_columns.commitment_hash.desc())
        whole = self._QUERIES[name](self, wanted)[0] if name in _WINDOWED else query
        counting = select(func.count()).select_from(whole.order_by(None).subquery())
        return query.order_by(*ordering).offset(offset).limit(limit), counting, convert

    # --- each list: its query, its sort columns, and how its rows read --------------------

    def _awaiting_decision(self, wanted: WorkFilter) -> _Query:
        c = commitments.c
        conditions: list[ColumnElement[bool]] = [
            c.department == wanted.department,
            c.decided_at.is_(None),  # the partial index commitments_undecided
            c.channel.is_not(None),  # received before decisions were recorded: none awaited
        ]
        if wanted.matter is not None:
            conditions.append(c.matter_code == wanted.matter)
        if wanted.since is not None:
            conditions.append(c.received_at >= _day_start(wanted.since))
        if wanted.until is not None:
            conditions.append(c.received_at < _day_start(wanted.until + timedelta(days=1)))
        if wanted.late:
            conditions.append(self._late_now(wanted))
        query = select(
            c.hash.label("commitment_hash"),
            c.matter_code,
            c.department,
            c.channel,
            c.received_at,
        ).where(*conditions)
        return query, {"received": c.received_at}, self._decision_rows

    def _late_now(self, wanted: WorkFilter) -> ColumnElement[bool]:
        """Late now, as ranges of received_at (the index's second column): for each channel
        and limit the latest receipt already late, found once, never a due per row."""
        c = commitments.c
        clock = self._clock()
        counter = clock.cutoff("counter", 0.5, wanted.now)
        ranges = [and_(c.channel == "counter", c.received_at <= counter)]
        by_limit: dict[float, list[str]] = {}
        for matter, days in self.limits.items():
            if wanted.matter is None or matter == wanted.matter:
                by_limit.setdefault(days, []).append(matter)
        named = [m for group in by_limit.values() for m in group]
        cutoffs = [counter]
        for days, matters in sorted(by_limit.items()):
            cut = clock.cutoff("online", days, wanted.now)
            cutoffs.append(cut)
            ranges.append(
                and_(c.channel == "online", c.matter_code.in_(matters), c.received_at <= cut)
            )
        default = clock.cutoff("online", 0.5, wanted.now)
        cutoffs.append(default)
        ranges.append(
            and_(c.channel == "online", c.matter_code.not_in(named), c.received_at <= default)
            if named
            else and_(c.channel == "online", c.received_at <= default)
        )
        # The widest cutoff bounds the index range; the channels pick within it.
        return and_(c.received_at <= max(cutoffs), or_(*ranges))

    def _clock(self) -> DecisionClock:
        if self.clock is None:
            raise WorkListError("awaiting-decision needs the office hours (settings)")
        return self.clock

    def _decision_rows(
        self, connection: Connection, rows: Sequence[Any], wanted: WorkFilter
    ) -> list[WorkItem]:
        clock = self._clock()
        items = []
        for row in rows:
            days = self.limits.get(row.matter_code, 0.5)
            due = clock.due(row.received_at, row.channel, days)
            late = due < wanted.now
            items.append(
                WorkItem(
                    "awaiting-decision",
                    Hash32(bytes(row.commitment_hash)),
                    row.matter_code,
                    row.department,
                    "late" if late else "awaiting",
                    _iso_time(row.received_at),
                    _iso_time(due.timestamp()),
                    late,
                    round(clock.left(due, wanted.now), 4),
                    "working_days",
                    reference=row.channel,
                )
            )
        return items

    def _verifications(
        self, wanted: WorkFilter, state: str, deadline: str, *extra: ColumnElement[bool]
    ) -> Select[Any]:
        v = verifying.c
        conditions: list[ColumnElement[bool]] = [
            v.department == wanted.department,
            v.state == state,
            *extra,
        ]
        conditions += _day_filters(v[deadline], wanted, late_means_before_today=True)
        if wanted.matter is not None:
            conditions.append(v.matter_code == wanted.matter)
        return select(
            v.commitment_hash,
            v.matter_code,
            v.department,
            v.state,
            v.due_on,
            v.rectify_by,
            v.recorded_at,
            v.updated_at,
        ).where(*conditions)

    def _rectification(self, wanted: WorkFilter) -> _Query:
        query = self._verifications(wanted, "mismatch", "rectify_by")
        v = verifying.c
        return query, {"rectify_by": v.rectify_by, "due": v.due_on}, _rectification_rows

    def _overdue(self, wanted: WorkFilter) -> _Query:
        v = verifying.c
        query = self._verifications(wanted, "due", "due_on", v.overdue_flagged.is_(True))
        return query, {"due": v.due_on}, _overdue_rows

    def _defence(self, wanted: WorkFilter) -> _Query:
        n, v = notices.c, verifying.c
        conditions: list[ColumnElement[bool]] = [
            n.department == wanted.department,
            n.state == "open",
            *_day_filters(n.defence_by, wanted, late_means_before_today=True),
        ]
        if wanted.matter is not None:
            conditions.append(v.matter_code == wanted.matter)
        query = (
            select(
                n.commitment_hash,
                v.matter_code,
                n.department,
                n.issued_on,
                n.delivered_on,
                n.defence_by,
            )
            .join_from(notices, verifying, v.commitment_hash == n.commitment_hash)
            .where(*conditions)
        )
        return query, {"defence_by": n.defence_by, "issued": n.issued_on}, _defence_rows

    def _appeals(self, wanted: WorkFilter) -> _Query:
        a, b = appeals.c, breach_records.c
        conditions: list[ColumnElement[bool]] = [
            a.department == wanted.department,
            a.state == "open",
            *_day_filters(a.decide_by, wanted, late_means_before_today=True),
        ]
        if wanted.matter is not None:
            conditions.append(b.matter_code == wanted.matter)
        query = (
            select(
                b.commitment_hash,
                b.matter_code,
                a.department,
                a.id,
                a.kind,
                a.filed_on,
                a.decide_by,
            )
            .join_from(appeals, breach_records, b.id == a.record_id)
            .where(*conditions)
        )
        return query, {"decide_by": a.decide_by, "filed": a.filed_on}, _appeal_rows

    def _manual(self, wanted: WorkFilter) -> _Query:
        v, t = verifying.c, method_tasks.c
        needs_manual = select(
            v.commitment_hash.label("commitment_hash"),
            v.matter_code.label("matter_code"),
            v.department.label("department"),
            literal("manual").label("status"),
            v.due_on.label("due_on"),
            null().label("task_key"),
            v.updated_at.label("since"),
        ).where(
            v.department == wanted.department,
            v.state == "manual",
            *_day_filters(v.due_on, wanted, late_means_before_today=True),
            *([] if wanted.matter is None else [v.matter_code == wanted.matter]),
        )
        decided = (
            select(v.commitment_hash)
            .where(
                v.commitment_hash == t.commitment_hash,
                v.state.in_(("kept", "breached", "corrected", "withdrawn")),
            )
            .exists()
        )

        def tasks(mine: ColumnElement[bool]) -> Select[Any]:
            return select(
                t.commitment_hash,
                t.matter_code,
                t.department,
                t.kind,
                t.due_on,
                t.task_key,
                t.created_at,
            ).where(
                mine,
                t.status == "open",
                ~decided,
                *_day_filters(t.due_on, wanted, late_means_before_today=True),
                *([] if wanted.matter is None else [t.matter_code == wanted.matter]),
            )

        # Own tasks and assistance asked of the department: two index ranges, no OR.
        parts = [
            needs_manual,
            tasks(t.department == wanted.department),
            tasks(
                and_(
                    t.assist_department == wanted.department,
                    t.department != wanted.department,
                )
            ),
        ]
        if wanted.window is not None:  # a page: each part's first rows, read in index order
            parts = [_first(part, wanted.window, wanted.descending) for part in parts]
        both = union_all(*parts).subquery("manual")
        query = select(*both.c)
        return query, {"due": both.c.due_on}, _manual_rows

    def _refused(self, wanted: WorkFilter) -> _Query:
        o, c = outbox.c, commitments.c
        conditions: list[ColumnElement[bool]] = [
            o.department == wanted.department,
            o.abandoned.is_not(None),
        ]
        if wanted.late:
            # A refusal has no deadline: never late. (Said as a column test, not FALSE, so
            # that the plan still walks the partial index rather than the whole outbox.)
            conditions.append(o.created_at.is_(None))
        if wanted.since is not None:
            conditions.append(o.created_at >= _day_start(wanted.since))
        if wanted.until is not None:
            conditions.append(o.created_at < _day_start(wanted.until + timedelta(days=1)))
        if wanted.matter is not None:
            conditions.append(c.matter_code == wanted.matter)
        query = (
            select(
                o.commitment_hash,
                c.matter_code,
                o.department,
                o.status,
                o.created_at,
                o.abandoned,
            )
            .join_from(outbox, commitments, c.hash == o.commitment_hash)
            .where(*conditions)
        )
        return query, {"created": o.created_at}, _refused_rows

    _QUERIES: ClassVar[Mapping[WorkListName, Callable[[WorkLists, WorkFilter], _Query]]] = {
        "awaiting-decision": _awaiting_decision,
        "rectification": _rectification,
        "defence": _defence,
        "appeals": _appeals,
        "manual": _manual,
        "refused": _refused,
        "overdue": _overdue,
    }


def _first(part: Select[Any], window: int, descending: bool) -> Select[Any]:
    """A part's first `window` rows by due day (then hash), as a member of a union."""
    due, digest = part.selected_columns.due_on, part.selected_columns.commitment_hash
    ordered = (due.desc(), digest.desc()) if descending else (due.asc(), digest.asc())
    head = part.order_by(*ordered).limit(window).subquery()
    return select(*head.c)


def _day_filters(
    column: Any, wanted: WorkFilter, *, late_means_before_today: bool
) -> list[ColumnElement[bool]]:
    """A deadline column (ISO day text) filtered by the range and, asked, by lateness."""
    found: list[ColumnElement[bool]] = []
    if wanted.since is not None:
        found.append(column >= wanted.since.isoformat())
    if wanted.until is not None:
        found.append(column <= wanted.until.isoformat())
    if wanted.late and late_means_before_today:
        found.append(column < wanted.today.isoformat())
    return found


def _dated(
    name: WorkListName,
    row: Any,
    status: str,
    started: str | None,
    due: str | None,
    today: date,
    reference: str | None = None,
) -> WorkItem:
    left = _days_left(due, today)
    return WorkItem(
        name,
        Hash32(bytes(row.commitment_hash)),
        row.matter_code,
        row.department,
        status,
        started,
        due,
        left is not None and left < 0,
        left,
        "days",
        reference,
    )


def _rectification_rows(
    connection: Connection, rows: Sequence[Any], wanted: WorkFilter
) -> list[WorkItem]:
    hashes = [bytes(row.commitment_hash) for row in rows]
    filed: dict[bytes, str] = {}
    if hashes:
        r = rectifications.c
        found = connection.execute(
            select(r.commitment_hash, r.id).where(r.commitment_hash.in_(hashes), r.state == "open")
        ).all()
        filed = {bytes(f.commitment_hash): f.id for f in found}
    items = []
    for row in rows:
        started = None if row.recorded_at is None else _day_of(row.recorded_at)
        reference = filed.get(bytes(row.commitment_hash))
        status = "mismatch" if reference is None else "evidence_filed"
        items.append(
            _dated("rectification", row, status, started, row.rectify_by, wanted.today, reference)
        )
    return items


def _overdue_rows(
    connection: Connection, rows: Sequence[Any], wanted: WorkFilter
) -> list[WorkItem]:
    return [_dated("overdue", row, "overdue", None, row.due_on, wanted.today) for row in rows]


def _defence_rows(
    connection: Connection, rows: Sequence[Any], wanted: WorkFilter
) -> list[WorkItem]:
    items = []
    for row in rows:
        status = "proposed" if row.delivered_on is not None else "notice_undelivered"
        items.append(_dated("defence", row, status, row.issued_on, row.defence_by, wanted.today))
    return items


def _appeal_rows(connection: Connection, rows: Sequence[Any], wanted: WorkFilter) -> list[WorkItem]:
    return [
        _dated("appeals", row, row.kind, row.filed_on, row.decide_by, wanted.today, row.id)
        for row in rows
    ]


def _manual_rows(connection: Connection, rows: Sequence[Any], wanted: WorkFilter) -> list[WorkItem]:
    items = []
    for row in rows:
        task = row.task_key is not None
        started = None if task else _day_of(row.since)
        items.append(
            _dated("manual", row, row.status, started, row.due_on, wanted.today, row.task_key)
        )
    return items


def _refused_rows(
    connection: Connection, rows: Sequence[Any], wanted: WorkFilter
) -> list[WorkItem]:
    from ledger import Status  # the contract binding: loaded only when this list is read

    items = []
    for row in rows:
        try:
            status = Status(row.status).name.lower()
        except ValueError:
            status = str(row.status)
        item = WorkItem(
            "refused",
            Hash32(bytes(row.commitment_hash)),
            row.matter_code,
            row.department,
            status,
            _iso_time(row.created_at),
            None,
            False,
            None,
            "days",
            note=str(row.abandoned)[:_REASON],
        )
        items.append(item)
    return items

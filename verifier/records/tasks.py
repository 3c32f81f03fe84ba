"""Checks a person makes (document review, on-site inspection, a request for assistance to
another department): one row per commitment and task, open until a person records the
result, on the same database as a ledger `Store`, with a migration track of its own.

The engine opens a commitment's tasks when it first meets it (when sampling selected it);
the department's work list is the open ones; `complete` records who did it, when, the
result and the evidence note. The outcome waits for every task (`verifier.engine.tasks`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    case,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from ledger import Hash32, Store, apply_migrations, hex32, migrations_table
from verifier.catalog import Task
from verifier.errors import RecordsError
from verifier.records.tables import migrate, verifications_table

TaskStatus = Literal["open", "done"]
TaskResult = Literal["passed", "failed"]
MAX_TASK_NOTE = 2_000  # characters of a person's evidence note
MAX_DONE_BY = 200
MAX_TASK_PAGE = 200
_IN_CHUNK = 500  # commitments looked up at once
# A commitment decided for good: its open tasks leave the work list (a person decided it).
_DECIDED = ("kept", "breached", "corrected", "withdrawn")

metadata = MetaData()
task_migrations = migrations_table("task_migrations", metadata)
method_tasks = Table(
    "method_tasks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("commitment_hash", LargeBinary(32), nullable=False, index=True),
    Column("task_key", String(64), nullable=False),
    Column("department", String(64), nullable=False, index=True),
    Column("matter_code", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("description", Text, nullable=False),
    Column("assist_department", String(64), nullable=True, index=True),
    Column("on_fail", String(16), nullable=False),
    Column("status", String(8), nullable=False),  # open | done
    Column("due_on", String(10), nullable=False),
    Column("result", String(8), nullable=True),  # passed | failed
    Column("done_by", String(MAX_DONE_BY), nullable=True),
    Column("done_on", String(10), nullable=True),
    Column("note", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("commitment_hash", "task_key", name="method_tasks_commitment_key"),
)


def _create_v1(connection: Connection) -> None:
    metadata.create_all(connection, tables=[method_tasks])


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _create_v1}


class TaskError(RecordsError):
    """A task that is not there, not this department's, or done already."""


@dataclass(frozen=True)
class TaskRow:
    """One check a person makes for one commitment, and what they found."""

    commitment_hash: Hash32
    key: str
    department: str
    matter_code: str
    kind: str
    description: str
    assist_department: str | None
    on_fail: Literal["mismatch", "false"]
    status: TaskStatus
    due_on: date
    result: TaskResult | None
    done_by: str | None
    done_on: date | None
    note: str | None

    def to_report(self) -> dict[str, str]:
        """The task as a signed report lists it (plain strings; empty parts left out)."""
        body = {
            "key": self.key,
            "kind": self.kind,
            "description": self.description,
            "status": self.status,
            "due_on": self.due_on.isoformat(),
        }
        if self.assist_department is not None:
            body["assist_department"] = self.assist_department
        if self.result is not None:
            body["result"] = self.result
        if self.done_by is not None:
            body["done_by"] = self.done_by
        if self.done_on is not None:
            body["done_on"] = self.done_on.isoformat()
        if self.note:
            body["note"] = self.note
        return body

    def to_json_obj(self) -> dict[str, object]:
        """The task as the work list shows it."""
        return {
            "commitment_hash": hex32(self.commitment_hash),
            "matter_code": self.matter_code,
            "department": self.department,
            "on_fail": self.on_fail,
            **self.to_report(),
        }


@dataclass(frozen=True)
class TaskPage:
    """One page of a work list, and how many tasks the filters match in all."""

    tasks: tuple[TaskRow, ...]
    total: int
    offset: int
    limit: int


def _row(row: Any) -> TaskRow:
    return TaskRow(
        commitment_hash=Hash32(bytes(row.commitment_hash)),
        key=row.task_key,
        department=row.department,
        matter_code=row.matter_code,
        kind=row.kind,
        description=row.description,
        assist_department=row.assist_department,
        on_fail=row.on_fail,
        status=row.status,
        due_on=date.fromisoformat(row.due_on),
        result=row.result,
        done_by=row.done_by,
        done_on=None if row.done_on is None else date.fromisoformat(row.done_on),
        note=row.note,
    )


def _in_order(rows: list[TaskRow], tasks: Sequence[Task]) -> list[TaskRow]:
    """A commitment's tasks in the order its matter lists them (others after, as opened)."""
    order = {task.key: index for index, task in enumerate(tasks)}
    return sorted(rows, key=lambda row: order.get(row.key, len(order)))


class TaskRecords:
    """The tasks table's reads and writes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._engine: Engine = store.engine
        self._writer = store.engine.execution_options(immediate=True)
        with self._writer.begin() as connection:
            migrate(connection)  # the verifications the work list and `all_done` join
            apply_migrations(connection, task_migrations, MIGRATIONS)

    def open_tasks(
        self,
        commitment: Hash32,
        department: str,
        matter_code: str,
        tasks: Sequence[Task],
        on: date,
        now: float | None = None,
    ) -> list[TaskRow]:
        """Open the tasks not opened yet for a commitment (due `task.due_days` after `on`);
        every task of the commitment, in the order of `tasks`."""
        opened = self.open_many([(commitment, matter_code, tasks)], department, on, now)
        return opened[bytes(commitment)]

    def open_many(
        self,
        items: Sequence[tuple[Hash32, str, Sequence[Task]]],
        department: str,
        on: date,
        now: float | None = None,
    ) -> dict[bytes, list[TaskRow]]:
        """`open_tasks` of many commitments (commitment, matter, tasks) in one transaction
        per chunk: a run opens a chunk's tasks at once. Commitment -> its tasks in order."""
        stamp = time.time() if now is None else now
        found: dict[bytes, list[TaskRow]] = {}
        for start in range(0, len(items), _IN_CHUNK):
            chunk = items[start : start + _IN_CHUNK]
            hashes = [bytes(commitment) for commitment, _, _ in chunk]
            known = {(bytes(row.commitment_hash), row.key) for row in self._rows_of(hashes)}
            rows = [
                {
                    "commitment_hash": commitment,
                    "task_key": task.key,
                    "department": department,
                    "matter_code": matter_code,
                    "kind": task.kind,
                    "description": task.description,
                    "assist_department": task.assist_department,
                    "on_fail": task.on_fail,
                    "status": "open",
                    "due_on": date.fromordinal(on.toordinal() + task.due_days).isoformat(),
                    "created_at": stamp,
                    "updated_at": stamp,
                }
                for commitment, matter_code, tasks in chunk
                for task in tasks
                if (bytes(commitment), task.key) not in known
            ]
            if rows:
                try:
                    with self._writer.begin() as connection:
                        connection.execute(method_tasks.insert(), rows)
                except IntegrityError:
                    self._insert_one_by_one(rows)  # another process opened some meanwhile
            for row in self._rows_of(hashes):
                found.setdefault(bytes(row.commitment_hash), []).append(row)
            for commitment, _, tasks in chunk:
                found[bytes(commitment)] = _in_order(found.get(bytes(commitment), []), tasks)
        return found

    def _insert_one_by_one(self, rows: Sequence[dict[str, Any]]) -> None:
        for row in rows:
            try:
                with self._writer.begin() as connection:
                    connection.execute(method_tasks.insert(), [row])
            except IntegrityError:
                pass  # opened by another process: theirs stand

    def _rows_of(self, hashes: Sequence[bytes]) -> list[TaskRow]:
        query = (
            select(method_tasks)
            .where(method_tasks.c.commitment_hash.in_(hashes))
            .order_by(method_tasks.c.id)
        )
        with self._engine.connect() as connection:
            return [_row(row) for row in connection.execute(query)]

    def tasks_of(self, commitment: Hash32) -> list[TaskRow]:
        """Every task of a commitment, in the order they were opened."""
        query = (
            select(method_tasks)
            .where(method_tasks.c.commitment_hash == commitment)
            .order_by(method_tasks.c.id)
        )
        with self._engine.connect() as connection:
            return [_row(row) for row in connection.execute(query)]

    def complete(
        self,
        commitment: Hash32,
        key: str,
        department: str,
        result: TaskResult,
        by: str,
        note: str,
        on: date,
        now: float | None = None,
    ) -> TaskRow:
        """Record a task's result. Only the commitment's department, or the department an
        assistance request asked, may; a task done already is not done again."""
        if result not in ("passed", "failed"):
            raise TaskError(f"a task's result is passed or failed, not {result!r}")
        if not by or len(by) > MAX_DONE_BY:
            raise TaskError(f"who did the task: 1 to {MAX_DONE_BY} characters")
        if len(note) > MAX_TASK_NOTE:
            raise TaskError(f"the evidence note is over {MAX_TASK_NOTE} characters")
        stamp = time.time() if now is None else now
        where = (method_tasks.c.commitment_hash == commitment) & (method_tasks.c.task_key == key)
        with self._writer.begin() as connection:
            row = connection.execute(select(method_tasks).where(where)).first()
            if row is None:
                raise TaskError(f"no task {key!r} for {hex32(commitment)}")
            if department not in (row.department, row.assist_department):
                raise TaskError(
                    f"task {key!r} of {hex32(commitment)} is not {department}'s to complete"
                )
            if row.status != "open":
                raise TaskError(f"task {key!r} of {hex32(commitment)} is done already")
            connection.execute(
                update(method_tasks)
                .where(where, method_tasks.c.status == "open")
                .values(
                    status="done",
                    result=result,
                    done_by=by,
                    done_on=on.isoformat(),
                    note=note,
                    updated_at=stamp,
                )
            )
            done = connection.execute(select(method_tasks).where(where)).one()
        return _row(done)

    def work_list(
        self,
        department: str,
        *,
        kind: str | None = None,
        due_before: date | None = None,
        status: TaskStatus = "open",
        offset: int = 0,
        limit: int = 50,
    ) -> TaskPage:
        """A department's tasks (its own, and assistance requests it was asked), earliest
        due first; `due_before`: due on a day before it."""
        if not 1 <= limit <= MAX_TASK_PAGE or offset < 0:
            raise TaskError(f"a page is 1 to {MAX_TASK_PAGE} tasks from an offset of 0 or more")
        mine = or_(
            method_tasks.c.department == department,
            method_tasks.c.assist_department == department,
        )
        table = verifications_table
        decided = (
            select(table.c.commitment_hash)
            .where(table.c.state.in_(_DECIDED))
            .where(table.c.commitment_hash == method_tasks.c.commitment_hash)
            .exists()
        )
        conditions = [mine, method_tasks.c.status == status]
        if status == "open":
            conditions.append(~decided)
        if kind is not None:
            conditions.append(method_tasks.c.kind == kind)
        if due_before is not None:
            conditions.append(method_tasks.c.due_on < due_before.isoformat())
        query = (
            select(method_tasks)
            .where(*conditions)
            .order_by(method_tasks.c.due_on, method_tasks.c.id)
            .offset(offset)
            .limit(limit)
        )
        counting = select(func.count()).select_from(method_tasks).where(*conditions)
        with self._engine.connect() as connection:
            rows = tuple(_row(row) for row in connection.execute(query))
            total = int(connection.execute(counting).scalar_one())
        return TaskPage(rows, total, offset, limit)

    def all_done(self, department: str, limit: int = 1_000) -> list[Hash32]:
        """The department's commitments whose tasks were all done after their outcome was
        last recorded, the outcome still one the tasks' results may move (manual, mismatch):
        a run decides them (the department asked may have answered the last one)."""
        table = verifications_table
        open_count = func.sum(case((method_tasks.c.status == "open", 1), else_=0))
        query = (
            select(method_tasks.c.commitment_hash)
            .join(table, table.c.commitment_hash == method_tasks.c.commitment_hash)
            .where(method_tasks.c.department == department)
            .where(table.c.state.in_(("manual", "mismatch")))
            .group_by(method_tasks.c.commitment_hash, table.c.updated_at)
            .having(open_count == 0)
            .having(func.max(method_tasks.c.updated_at) > table.c.updated_at)
            .limit(limit)
        )
        with self._engine.connect() as connection:
            return [Hash32(bytes(h)) for h in connection.execute(query).scalars()]

    def postpone(self, commitment: Hash32, day: date, now: float | None = None) -> bool:
        """A verification awaiting a future obligation: its deadline becomes `day` if that is
        later (it is not overdue while it waits). True if it moved."""
        table = verifications_table
        stamp = time.time() if now is None else now
        with self._writer.begin() as connection:
            moved = connection.execute(
                update(table)
                .where(
                    table.c.commitment_hash == commitment,
                    table.c.state == "due",
                    table.c.due_on < day.isoformat(),
                )
                .values(due_on=day.isoformat(), updated_at=stamp)
            )
        return bool(moved.rowcount)

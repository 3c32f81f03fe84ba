"""A department's work list: the checks its people make (document review, on-site
inspection) and the requests for assistance other departments sent it, and recording a
check's result. The commitment's outcome waits for every task; the last one decides it.

A token sees its own department's tasks and the assistance requests addressed to it, and
completes only those; another department's task is a 403, changing nothing.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.service.context import ServiceContext
from api.service.deps import ContextDep, DepartmentDep, HashDep, StoreDep, VerifierDep
from api.service.engines import department_actions, engine_refusals
from api.service.problems import (
    ACTION_REFUSED,
    INVALID_REQUEST,
    NOT_FOUND,
    OTHER_DEPARTMENT,
    ProblemError,
    problem_responses,
)
from api.service.tokens import Principal
from ledger import Hash32, Store, hex32
from verifier.engine import TaskDesk
from verifier.records import MAX_TASK_NOTE, MAX_TASK_PAGE, TaskError, TaskRecords, TaskRow

router = APIRouter(prefix="/v1/tasks", tags=["departments"])

_REFUSALS = problem_responses(400, 401, 403, 404, 409, 422, 503)
_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TaskView(BaseModel):
    """One check a person makes for one commitment, and what they found."""

    commitment_hash: str
    matter_code: str
    department: str = Field(description="The commitment's department")
    key: str
    kind: str = Field(description="document_review, on_site_check or assistance_request")
    description: str
    status: Literal["open", "done"]
    due_on: str
    on_fail: Literal["mismatch", "false"]
    assist_department: str | None = None
    result: Literal["passed", "failed"] | None = None
    done_by: str | None = None
    done_on: str | None = None
    note: str | None = None


class TaskList(BaseModel):
    """One page of a department's work list, earliest due first."""

    department: str
    total: int
    offset: int
    limit: int
    tasks: list[TaskView]


class TaskResultRequest(BaseModel):
    """What the person found: passed or failed, and the evidence note."""

    model_config = _STRICT

    result: Literal["passed", "failed"]
    note: str = Field(min_length=1, max_length=MAX_TASK_NOTE, description="What was checked")


class TaskDone(BaseModel):
    """The task as recorded, and the outcome it decided, if it was the commitment's last."""

    task: TaskView
    outcome: str | None = Field(description="The outcome recorded now, if any")


def _view(row: TaskRow) -> TaskView:
    return TaskView(
        commitment_hash=hex32(row.commitment_hash),
        matter_code=row.matter_code,
        department=row.department,
        key=row.key,
        kind=row.kind,
        description=row.description,
        status=row.status,
        due_on=row.due_on.isoformat(),
        on_fail=row.on_fail,
        assist_department=row.assist_department,
        result=row.result,
        done_by=row.done_by,
        done_on=None if row.done_on is None else row.done_on.isoformat(),
        note=row.note,
    )


def _work_list(
    store: Store,
    principal: Principal,
    kind: str | None,
    due_before: date | None,
    status: Literal["open", "done"],
    offset: int,
    limit: int,
) -> TaskList:
    records = TaskRecords(store)
    page = records.work_list(
        principal.department,
        kind=kind,
        due_before=due_before,
        status=status,
        offset=offset,
        limit=limit,
    )
    return TaskList(
        department=principal.department,
        total=page.total,
        offset=page.offset,
        limit=page.limit,
        tasks=[_view(row) for row in page.tasks],
    )


_FILTERS = ("kind", "due_before", "status", "offset", "limit")


async def _known_query(request: Request) -> None:
    """422 for a query parameter the work list does not take: a misspelt filter must not
    list everything."""
    unknown = sorted(set(request.query_params) - set(_FILTERS))
    if unknown:
        raise ProblemError(
            INVALID_REQUEST,
            f"query.{unknown[0][:40]}: not a parameter of this list ({', '.join(_FILTERS)})",
            errors=[{"location": ["query", unknown[0][:40]], "message": "unknown parameter"}],
        )


@router.get(
    "",
    summary="A department's work list of checks",
    responses=_REFUSALS,
    dependencies=[Depends(_known_query)],
)
async def list_tasks(
    principal: DepartmentDep,
    store: StoreDep,
    kind: Literal["document_review", "on_site_check", "assistance_request"] | None = None,
    due_before: Annotated[date | None, Query(description="Due on a day before this")] = None,
    status: Literal["open", "done"] = "open",
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_TASK_PAGE)] = 50,
) -> TaskList:
    """The token's department's tasks and the assistance requests addressed to it."""
    return await run_in_threadpool(
        _work_list, store, principal, kind, due_before, status, offset, limit
    )


def _decided_by(principal: Principal) -> str:
    return f"{principal.department} {principal.role} (token {principal.token_id})"


def _complete(
    context: ServiceContext,
    digest: Hash32,
    key: str,
    principal: Principal,
    body: TaskResultRequest,
) -> TaskDone:
    records = TaskRecords(context.store)
    found = [row for row in records.tasks_of(digest) if row.key == key]
    if not found:
        raise ProblemError(NOT_FOUND, f"no task {key!r} for {hex32(digest)}")
    [row] = found
    if principal.department not in (row.department, row.assist_department):
        raise ProblemError(
            OTHER_DEPARTMENT,
            f"this task belongs to {row.department}; this token is for {principal.department}",
        )
    on = context.today()
    try:
        task = records.complete(
            digest, key, principal.department, body.result, _decided_by(principal), body.note, on
        )
    except TaskError as exc:
        raise ProblemError(ACTION_REFUSED, str(exc)) from None
    # The commitment's own department decides it, whoever answered the last task.
    with department_actions(context, row.department) as actions, engine_refusals():
        outcome = TaskDesk(actions, records).settle(digest, on)
    return TaskDone(task=_view(task), outcome=outcome)


@router.post("/{hash}/{key}", summary="Record a check's result", responses=_REFUSALS)
async def complete_task(
    digest: HashDep,
    principal: VerifierDep,
    context: ContextDep,
    body: TaskResultRequest,
    key: Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")],
) -> TaskDone:
    """For a verifier of the commitment's department (or of the department an assistance
    request asked): the result and the evidence note; the last open task decides the
    commitment with every task's result in its signed report."""
    return await run_in_threadpool(_complete, context, digest, key, principal, body)

"""`commitledger tasks list|complete`: a department's work list of checks a person makes
(document review, on-site inspection, requests for assistance it was asked), and recording
a check's result. The commitment's outcome waits for every task; the last one decides it.

They use what the service uses (settings, master key, deployment, the department's keys).
Refusals exit as the rest of the command line: 2 for a bad option, 1 for the rest (no such
task, another department's, done already).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from api.cli.config import ConfigOpt, DataDirOpt
from api.output import (
    EXIT_BAD_INPUT,
    EXIT_CHECK_FAILED,
    emit_json,
    fail,
    reporting_errors,
    stdout,
)

if TYPE_CHECKING:
    from api.service import ServiceContext

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
DepartmentOpt = Annotated[str, typer.Option("--department", help="The officer's department.")]
_KINDS = ("document_review", "on_site_check", "assistance_request")
_RESULTS = ("passed", "failed")


def register(app: typer.Typer) -> None:
    """Add the `tasks` group to the command line."""
    tasks_app = typer.Typer(
        help="Checks a person makes (document review, on-site inspection, 部门协查).",
        no_args_is_help=True,
    )
    tasks_app.command("list")(tasks_list)
    tasks_app.command("complete")(tasks_complete)
    app.add_typer(tasks_app, name="tasks")


@contextmanager
def _service(data_dir: Any, config: Any, as_json: bool) -> Iterator[ServiceContext]:
    """The service's context for one command; its problems as the command line's errors."""
    from api.service import ProblemError, ServiceContext, Settings

    with reporting_errors(as_json):
        settings = Settings.load({"data_dir": data_dir}, config=config)
        context = ServiceContext.open(settings)
    try:
        yield context
    except ProblemError as exc:
        code = EXIT_BAD_INPUT if exc.kind.status in (400, 422) else EXIT_CHECK_FAILED
        fail(exc.detail, as_json=as_json, code=code, kind=exc.kind.slug)
    finally:
        context.close()


def _line(task: dict[str, Any]) -> str:
    done = (
        f" {task['result']} by {task['done_by']} on {task['done_on']}" if task.get("result") else ""
    )
    asked = f" (asked of {task['assist_department']})" if task.get("assist_department") else ""
    return (
        f"{task['commitment_hash']} {task['key']} {task['kind']}{asked} {task['status']} "
        f"due {task['due_on']}{done}: {task['description']}"
    )


def tasks_list(
    department: DepartmentOpt,
    kind: Annotated[
        str | None, typer.Option("--kind", help="document_review, on_site_check, ...")
    ] = None,
    due_before: Annotated[
        str | None, typer.Option("--due-before", help="Due before this day (YYYY-MM-DD).")
    ] = None,
    done: Annotated[bool, typer.Option("--done", help="Done ones instead of open.")] = False,
    offset: Annotated[
        int, typer.Option("--offset", min=0, help="Tasks to skip (the page's start).")
    ] = 0,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=200, help="Tasks on the page (at most 200).")
    ] = 50,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The department's tasks and the assistance requests addressed to it, earliest due first."""
    from verifier.records import TaskRecords

    if kind is not None and kind not in _KINDS:
        fail(f"--kind is one of {', '.join(_KINDS)}, not {kind!r}", as_json=as_json)
    before = None
    if due_before is not None:
        try:
            before = date.fromisoformat(due_before)
        except ValueError:
            fail(f"--due-before is a day like 2026-12-31, not {due_before!r}", as_json=as_json)
    with _service(data_dir, config, as_json) as context:
        page = TaskRecords(context.store).work_list(
            department,
            kind=kind,
            due_before=before,
            status="done" if done else "open",
            offset=offset,
            limit=limit,
        )
    rows = [task.to_json_obj() for task in page.tasks]
    if as_json:
        emit_json({"ok": True, "department": department, "total": page.total, "tasks": rows})
        return
    for row in rows:
        stdout.print(_line(row), markup=False)
    stdout.print(f"{len(rows)} of {page.total} from {offset}", markup=False)


def tasks_complete(
    commitment: Annotated[str, typer.Argument(help="The commitment's hash (0x...).")],
    key: Annotated[str, typer.Argument(help="The task's key.")],
    department: DepartmentOpt,
    result: Annotated[str, typer.Option("--result", help="passed or failed.")],
    note: Annotated[str, typer.Option("--note", help="What was checked (the evidence).")],
    by: Annotated[str, typer.Option("--by", help="Who did the check.")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a check's result; the commitment's last open task decides its outcome."""
    from api.service import department_actions
    from ledger import InvalidHashError, to_hash32
    from verifier import VerificationError
    from verifier.engine import TaskDesk
    from verifier.records import MAX_TASK_NOTE, TaskError, TaskRecords

    if result not in _RESULTS:
        fail(f"--result is passed or failed, not {result!r}", as_json=as_json)
    checked: Literal["passed", "failed"] = "passed" if result == "passed" else "failed"
    if not note.strip() or len(note) > MAX_TASK_NOTE:
        fail(f"--note: 1 to {MAX_TASK_NOTE} characters", as_json=as_json)
    try:
        digest = to_hash32(commitment)
    except InvalidHashError:
        fail(f"{commitment!r} is not a commitment hash", as_json=as_json)
    with _service(data_dir, config, as_json) as context:
        records = TaskRecords(context.store)
        on = context.today()
        try:
            task = records.complete(digest, key, department, checked, by, note, on)
        except TaskError as exc:
            fail(str(exc), as_json=as_json, code=EXIT_CHECK_FAILED, kind="task-refused")
        # The commitment's own department decides it, whoever answered the last task.
        try:
            with department_actions(context, task.department) as actions:
                outcome = TaskDesk(actions, records).settle(digest, on)
        except VerificationError as exc:
            fail(str(exc), as_json=as_json, code=EXIT_CHECK_FAILED, kind="action-refused")
    body = task.to_json_obj()
    if as_json:
        emit_json({"ok": True, "task": body, "outcome": outcome})
        return
    stdout.print(_line(body), markup=False)
    if outcome is not None:
        stdout.print(f"the commitment's outcome: {outcome}", markup=False)

"""`commitledger objection file|decide|list` and `commitledger repair apply|decide|list`: a
department's officer files an objection (异议申诉) or a repair application (信用修复) for
the applicant, lists the department's own, and decides them with reasons.

They use what the service uses (settings, master key, deployment, the department's
`verifier.json` and `report.pem`). Refusals exit as the rest of the command line: 2 for a
text that is blank or too long, 1 for the rest (unknown, too early, already open, another
department's). The texts are personal data: they are sealed in the store, never printed
except by the detail the department asks for (`list --texts`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

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
DepartmentOpt = Annotated[
    str, typer.Option("--department", help="The officer's department (the record's).")
]
EvidenceOpt = Annotated[
    list[str] | None,
    typer.Option("--evidence", help="An item of evidence (repeat for more; at most 10)."),
]
ByOpt = Annotated[
    str,
    typer.Option(
        "--by", help="Who files: officer (on the applicant's behalf) or applicant (in person)."
    ),
]
ReasonsOpt = Annotated[str, typer.Option("--reasons", help="The decision's reasons (kept).")]
StateOpt = Annotated[
    str | None,
    typer.Option("--state", help="Only those in this state (open, upheld, rejected, ...)."),
]
TextsOpt = Annotated[bool, typer.Option("--texts", help="With what was written (personal data).")]
_STATES = ("open", "upheld", "rejected", "granted", "refused")
_FILERS = ("officer", "applicant")


def register(app: typer.Typer) -> None:
    """Add the `objection` and `repair` groups to the command line."""
    objection_app = typer.Typer(
        help="Objections (异议申诉) to published breach records.", no_args_is_help=True
    )
    objection_app.command("file")(objection_file)
    objection_app.command("decide")(objection_decide)
    objection_app.command("list")(objection_list)
    app.add_typer(objection_app, name="objection")
    repair_app = typer.Typer(
        help="Repair on application (信用修复) of published breach records.",
        no_args_is_help=True,
    )
    repair_app.command("apply")(repair_apply)
    repair_app.command("decide")(repair_decide)
    repair_app.command("list")(repair_list)
    app.add_typer(repair_app, name="repair")


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
        fail(
            exc.detail,
            as_json=as_json,
            code=code,
            kind=exc.kind.slug,
            details=exc.extensions or None,
        )
    finally:
        context.close()


def _filer(by: str, as_json: bool) -> Literal["officer", "applicant"]:
    if by == "officer":
        return "officer"
    if by == "applicant":
        return "applicant"
    fail(f"--by is officer or applicant, not {by!r}", as_json=as_json)


def _state(state: str | None, as_json: bool) -> Any:
    if state is not None and state not in _STATES:
        fail(f"--state is one of {', '.join(_STATES)}, not {state!r}", as_json=as_json)
    return state


def _report(appeal: Any, as_json: bool) -> None:
    body = appeal.to_json_obj()
    if as_json:
        emit_json({"ok": True, "appeal": body})
        return
    what = "objection" if body["kind"] == "objection" else "repair application"
    decided = f" on {body['decided_on']}" if body["decided_on"] else ""
    stdout.print(
        f"{what} {body['id']} to {body['record_id']}: {body['state']}{decided} "
        f"(decide by {body['decide_by']})",
        markup=False,
    )


Kind = Literal["objection", "repair"]


def _own(
    context: ServiceContext, appeal_id: str, kind: Kind, department: str, as_json: bool
) -> None:
    """Refuse (exit 1) an appeal that is not the department's, before its keys are used."""
    from api.service import appeal_records

    appeal = appeal_records(context).get(appeal_id)
    if appeal is None or appeal.kind != kind:
        fail(f"no {kind} {appeal_id}", as_json=as_json, code=EXIT_CHECK_FAILED, kind="not-found")
    if appeal.department != department:
        fail(
            f"{appeal_id} belongs to another department, not {department}",
            as_json=as_json,
            code=EXIT_CHECK_FAILED,
            kind="other-department",
        )


def _listing(
    kind: Kind, department: str, state: Any, texts: bool, context: ServiceContext, as_json: bool
) -> None:
    from api.service import appeal_records

    found = appeal_records(context, sealing=texts).listed(department, kind, state, 500)
    rows = []
    for appeal in found:
        row = appeal.to_json_obj()
        if texts:
            written = appeal_records(context, sealing=True).texts(appeal.id)
            row.update(text=written.text, evidence=list(written.evidence), reasons=written.reasons)
        rows.append(row)
    if as_json:
        emit_json({"ok": True, "department": department, "appeals": rows})
        return
    for row in rows:
        overdue = " OVERDUE" if row["overdue"] else ""
        stdout.print(
            f"{row['id']} {row['record_id']} {row['state']} filed {row['filed_on']} by "
            f"{row['filed_by']}, decide by {row['decide_by']}{overdue}",
            markup=False,
        )


# ---------------------------------------------------------------------- objections


def objection_file(
    record_id: Annotated[str, typer.Argument(help="The breach record's id (BR-...).")],
    department: DepartmentOpt,
    reason: Annotated[str, typer.Option("--reason", help="Why the record is wrong.")],
    evidence: EvidenceOpt = None,
    by: ByOpt = "officer",
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Put a published breach record under objection (异议处理中) until the department
    decides (within objection_decision_days working days)."""
    from api.service import file_objection

    filer = _filer(by, as_json)
    with _service(data_dir, config, as_json) as context:
        appeal = file_objection(
            context, record_id, by=filer, reason=reason, evidence=evidence or [],
            department=department,
        )  # fmt: skip
    _report(appeal, as_json)


def objection_decide(
    appeal_id: Annotated[str, typer.Argument(help="The objection's id (OB-...).")],
    department: DepartmentOpt,
    outcome: Annotated[str, typer.Option("--outcome", help="upheld or rejected.")],
    reasons: ReasonsOpt,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decide an objection: upheld corrects the record (Corrected on chain, withdrawn from
    public view, the applicant readmitted); rejected leaves it and removes the mark."""
    from api.service import decide_objection

    if outcome not in ("upheld", "rejected"):
        fail(f"--outcome is upheld or rejected, not {outcome!r}", as_json=as_json)
    with _service(data_dir, config, as_json) as context:
        _own(context, appeal_id, "objection", department, as_json)
        appeal = decide_objection(
            context, appeal_id, cast(Literal["upheld", "rejected"], outcome), department=department,
            decided_by=f"{department} verifier (command line)", reasons=reasons,
        )  # fmt: skip
    _report(appeal, as_json)


def objection_list(
    department: DepartmentOpt,
    state: StateOpt = None,
    texts: TextsOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The department's objections, oldest first; OVERDUE once past their limit."""
    chosen = _state(state, as_json)
    with _service(data_dir, config, as_json) as context:
        _listing("objection", department, chosen, texts, context, as_json)


# ---------------------------------------------------------------------- repair


def repair_apply(
    record_id: Annotated[str, typer.Argument(help="The breach record's id (BR-...).")],
    department: DepartmentOpt,
    evidence_text: Annotated[
        str, typer.Option("--evidence-text", help="How the breach was put right.")
    ],
    evidence: EvidenceOpt = None,
    by: ByOpt = "officer",
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Apply for credit repair of a published record once its minimum period has passed
    (refused before it, naming the earliest day)."""
    from api.service import apply_for_repair

    filer = _filer(by, as_json)
    with _service(data_dir, config, as_json) as context:
        appeal = apply_for_repair(
            context, record_id, evidence_text, by=filer, evidence=evidence or [],
            department=department,
        )  # fmt: skip
    _report(appeal, as_json)


def repair_decide(
    appeal_id: Annotated[str, typer.Argument(help="The application's id (RA-...).")],
    department: DepartmentOpt,
    outcome: Annotated[str, typer.Option("--outcome", help="granted or refused.")],
    reasons: ReasonsOpt,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decide a repair application: granted repairs the record (Repaired on chain, off
    public view, the exclusion lifted); refused leaves it."""
    from api.service import decide_repair

    if outcome not in ("granted", "refused"):
        fail(f"--outcome is granted or refused, not {outcome!r}", as_json=as_json)
    with _service(data_dir, config, as_json) as context:
        _own(context, appeal_id, "repair", department, as_json)
        appeal = decide_repair(
            context, appeal_id, cast(Literal["granted", "refused"], outcome), department=department,
            decided_by=f"{department} verifier (command line)", reasons=reasons,
        )  # fmt: skip
    _report(appeal, as_json)


def repair_list(
    department: DepartmentOpt,
    state: StateOpt = None,
    texts: TextsOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The department's repair applications, oldest first; OVERDUE once past their limit."""
    chosen = _state(state, as_json)
    with _service(data_dir, config, as_json) as context:
        _listing("repair", department, chosen, texts, context, as_json)

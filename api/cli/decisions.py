"""`commitledger decide HASH --result approved|refused`: a department's officer records the
decision on the application made under a commitment (审批决定), once, and sees when it was
due under the half-day rule and whether it was late; `commitledger decision HASH` shows it.

They use what the service uses (settings, store, office hours). `--by` names the officer's
account (an account id, never a person's name); the record is anchored with the
department's next batch. Refusals exit 1 (unknown, another department's, decided already).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from api.cli.appeals import DepartmentOpt, JsonOpt
from api.cli.appeals import _service as service  # the same context and refusals
from api.cli.config import ConfigOpt, DataDirOpt
from api.output import EXIT_CHECK_FAILED, emit_json, fail, fail_with, stdout

_RESULTS = ("approved", "refused")

HashArg = Annotated[str, typer.Argument(help="The commitment's hash (0x and 64 hex digits).")]


def register(app: typer.Typer) -> None:
    """Add `decide` and `decision` to the command line."""
    app.command("decide")(decide)
    app.command("decision")(decision)


def _print(shown: dict[str, Any]) -> None:
    late = "LATE" if shown["late"] else "on time"
    stdout.print(
        f"{shown['commitment']} {shown['result']} by {shown['decided_by']} at "
        f"{shown['decided_at']} ({shown['channel']}, received {shown['received_at']}, due "
        f"{shown['due_at']}): {late}",
        markup=False,
    )
    anchoring = shown["anchoring"]
    where = f", batch {anchoring['batch_id']} {anchoring['state']}" if anchoring else ""
    stdout.print(f"record {shown['record_hash']}: {shown['state']}{where}", markup=False)


def decide(
    commitment: HashArg,
    department: DepartmentOpt,
    result: Annotated[str, typer.Option("--result", help="approved or refused.")],
    by: Annotated[
        str,
        typer.Option("--by", help="The officer's account id (letters, digits, _ . : -)."),
    ],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decide the application made under a commitment: due half a working day of office
    time after an online receipt, by the end of the office period at the counter."""
    from ledger import LedgerError, to_hash32

    if result not in _RESULTS:
        fail(f"--result is approved or refused, not {result!r}", as_json=as_json)
    try:
        digest = to_hash32(commitment)
    except LedgerError as exc:
        fail_with(exc, as_json=as_json)
    with service(data_dir, config, as_json) as context:
        desk = context.decision_desk()
        try:
            desk.decide(digest, result, by, department)  # type: ignore[arg-type]
        except LedgerError as exc:
            fail_with(exc, as_json=as_json)
        shown = desk.view(digest)
    if shown is None:  # pragma: no cover - stored just above
        fail("the decision was not stored", as_json=as_json, code=EXIT_CHECK_FAILED)
    if as_json:
        emit_json({"ok": True, "decision": shown})
        return
    _print(shown)


def decision(
    commitment: HashArg,
    department: DepartmentOpt,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The decision on a commitment's application: times, late or not, its anchoring."""
    from ledger import LedgerError, to_hash32

    try:
        digest = to_hash32(commitment)
    except LedgerError as exc:
        fail_with(exc, as_json=as_json)
    with service(data_dir, config, as_json) as context:
        stored = context.store.get(digest)
        if stored is None or stored.department != department:
            fail(
                f"no commitment {commitment} of {department}",
                as_json=as_json,
                code=EXIT_CHECK_FAILED,
            )
        shown = context.decision_desk().view(digest)
    if shown is None:
        fail(f"{commitment} is not decided yet", as_json=as_json, code=EXIT_CHECK_FAILED)
    if as_json:
        emit_json({"ok": True, "decision": shown})
        return
    _print(shown)

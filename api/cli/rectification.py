"""`commitledger rectification list|decide`: a department's officer lists the rectification
evidence (整改材料) filed during its mismatches' windows and decides it: accepted is the
department's rectify action (the mismatch kept, the filing's id in the note).

They use what the service uses (settings, master key, deployment, the department's keys).
The texts are personal data: sealed in the store, printed only with `list --texts`.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from api.cli.appeals import DepartmentOpt, JsonOpt, TextsOpt
from api.cli.appeals import _service as service  # the same context and refusals
from api.cli.config import ConfigOpt, DataDirOpt
from api.output import emit_json, fail, stdout

_STATES = ("open", "accepted", "rejected")


def register(app: typer.Typer) -> None:
    """Add the `rectification` group to the command line."""
    group = typer.Typer(
        help="Rectification evidence (整改材料) filed for mismatches.", no_args_is_help=True
    )
    group.command("list")(rectification_list)
    group.command("decide")(rectification_decide)
    app.add_typer(group, name="rectification")


def _print(row: dict[str, Any]) -> None:
    decided = f" on {row['decided_on']}" if row["decided_on"] else ""
    stdout.print(
        f"{row['id']} {row['commitment']} {row['state']}{decided}: filed {row['filed_on']} "
        f"by {row['filed_by']}, rectify by {row['rectify_by']}",
        markup=False,
    )
    if "text" in row:  # asked for with --texts
        stdout.print(f"  {row['text']}", markup=False)


def rectification_list(
    department: DepartmentOpt,
    state: Annotated[
        str | None, typer.Option("--state", help="open, accepted or rejected.")
    ] = None,
    texts: TextsOpt = False,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The department's rectification evidence, oldest first."""
    from api.service import rectification_records

    if state is not None and state not in _STATES:
        fail(f"--state is one of {', '.join(_STATES)}, not {state!r}", as_json=as_json)
    with service(data_dir, config, as_json) as context:
        records = rectification_records(context, sealing=texts)
        rows = []
        for filing in records.listed(department, state, 500):  # type: ignore[arg-type]
            row = filing.to_json_obj()
            if texts:
                row["text"] = records.text(filing.id)
            rows.append(row)
    if as_json:
        emit_json({"ok": True, "department": department, "rectifications": rows})
        return
    for row in rows:
        _print(row)


def rectification_decide(
    filing_id: Annotated[str, typer.Argument(help="The filing's id (RE-...).")],
    department: DepartmentOpt,
    outcome: Annotated[str, typer.Option("--outcome", help="accepted or rejected.")],
    note: Annotated[str, typer.Option("--note", help="Why (kept with the decision).")],
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Decide rectification evidence: accepted keeps the mismatch (on chain, with the
    department's verifier account), refused past the window; rejected leaves it open."""
    from api.service import decide_rectification

    if outcome not in ("accepted", "rejected"):
        fail(f"--outcome is accepted or rejected, not {outcome!r}", as_json=as_json)
    with service(data_dir, config, as_json) as context:
        decided = decide_rectification(
            context, filing_id, accepted=outcome == "accepted", department=department,
            decided_by=f"{department} verifier (command line)", note=note[:500],
        )  # fmt: skip
    row = decided.to_json_obj()
    if as_json:
        emit_json({"ok": True, "rectification": row})
        return
    _print(row)

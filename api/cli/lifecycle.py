"""`commitledger lifecycle run`: the departments' lifecycle job for those who run it by cron
(the service runs it itself, on start and daily): provisional deadlines counted again,
overdue rectifications made breaches, ended publications expired on chain and in the store.

It uses what the service uses: the settings (data directory, configuration file,
environment), the master key, the deployment file and `<keys_dir>/<D>/verifier.json` and
`report.pem`. A rerun, or a run after one that was killed, records nothing twice. It takes the
service's lease `lifecycle` first (`api.cli.leased`), so it never runs beside an instance's.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import typer

from api.cli.config import ConfigOpt, DataDirOpt
from api.cli.leased import WaitOpt, leased_job
from api.output import EXIT_CHECK_FAILED, emit_json, fail, reporting_errors, stdout

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
OnOpt = Annotated[
    str | None, typer.Option("--on", metavar="YYYY-MM-DD", help="The day (default: today).")
]
DepartmentOpt = Annotated[
    str | None,
    typer.Option(
        "--department",
        help="One department (default: each whose verifier and report keys "
        "are in the keys directory).",
    ),
]


def register(app: typer.Typer) -> None:
    """Add `lifecycle run` to the command line."""
    lifecycle_app = typer.Typer(
        help="The lifecycle of commitments and breaches on schedule.", no_args_is_help=True
    )
    lifecycle_app.command("run")(lifecycle_run)
    app.add_typer(lifecycle_app, name="lifecycle")


def lifecycle_run(
    department: DepartmentOpt = None,
    on: OnOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    wait: WaitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the lifecycle job of each department (or one) as of a day: deadlines, overdue
    rectifications, expiries. Under the lease `lifecycle`, as `serve` runs it: while an
    instance holds it, waits for it (`--wait`), then refuses."""
    from api import run_start
    from api.cli.verify import parse_day
    from api.service import (
        LIFECYCLE_LEASE,
        ProblemError,
        ServiceContext,
        Settings,
        lifecycle_departments,
        run_lifecycles,
    )

    day = parse_day(on, as_json=as_json)
    today = run_start.today()
    if day > today:
        fail(f"the lifecycle runs for today ({today}) or a day past, not {day}", as_json=as_json)
    with reporting_errors(as_json):
        settings = Settings.load({"data_dir": data_dir}, config=config)
        context = ServiceContext.open(settings)
    try:
        if context.intake is None:
            fail("the lifecycle needs the master key (COMMITLEDGER_MASTER_KEY)", as_json=as_json)
        held = lifecycle_departments(context)
        if department is not None and department not in held:
            fail(
                f"no verifier.json and report.pem for {department!r} in "
                f"{settings.resolved_keys_dir}",
                as_json=as_json,
            )
        chosen = [department] if department is not None else held
        if not chosen:
            fail(f"no department's keys in {settings.resolved_keys_dir}", as_json=as_json)
        summaries = []
        try:
            with (
                reporting_errors(as_json),
                leased_job(
                    context.store,
                    [LIFECYCLE_LEASE],
                    wait=wait,
                    ttl=settings.lease_ttl_seconds,
                    poll=settings.lease_poll_seconds,
                ) as job,
            ):
                for chosen_department in chosen:
                    job.check()  # as the service's step: only while the lease is held
                    summaries += run_lifecycles(context, day, [chosen_department])
        except ProblemError as exc:
            fail(exc.detail, as_json=as_json, code=EXIT_CHECK_FAILED, kind="LifecycleFailed")
    finally:
        context.close()
    result: dict[str, Any] = {
        "ok": True,
        "on": day.isoformat(),
        "departments": [s.to_json_obj() for s in summaries],
    }
    if as_json:
        emit_json(result)
        return
    for summary in summaries:
        stdout.print(_line(summary.to_json_obj(), day), markup=False)


def _line(summary: dict[str, Any], day: date) -> str:
    return (
        f"{summary['department']} {day}: {len(summary['expired'])} expired, "
        f"{summary['overdue']} overdue rectifications decided, "
        f"{summary['deadlines_moved']} provisional deadlines counted again, "
        f"{summary.get('objections_overdue', 0)} objections and "
        f"{summary.get('repairs_overdue', 0)} repair applications past their limit flagged"
    )

"""`commitledger stats`: counts and rates per department, matter and day, week or month from
the store's counters; `--check-chain` counts the outcomes again from the contract's events
and exits 1, naming each difference, when they do not agree; `--rebuild` counts every
counter again (a store written before the counters were kept, or counters found wrong)."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli import store as cli_store
from api.cli.feed import ConfirmationsOpt, DeploymentOpt, JsonOpt, _ledger
from api.files import DEFAULT_DEPLOYMENT
from api.output import EXIT_BAD_INPUT, EXIT_CHECK_FAILED, emit_json, fail, reporting_errors, stdout

# The columns people read first (a terminal of 100 columns); --json and --csv carry all.
SHOWN = {
    "verified": "verified",
    "kept": "kept",
    "mismatch": "mism.",
    "breach": "breach",
    "decided": "decided",
    "decided_late": "late",
}


def register(app: typer.Typer) -> None:
    """Add `stats` to the command line."""
    app.command("stats")(stats)


def _day(text: str | None, name: str, as_json: bool) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{name} {text[:40]!r}: expected YYYY-MM-DD", as_json=as_json)


def stats(
    department: Annotated[
        str | None, typer.Option("--department", help="One department (default: all).")
    ] = None,
    matter: Annotated[str | None, typer.Option("--matter", help="One matter's code.")] = None,
    period: Annotated[str, typer.Option("--period", help="day, week (ISO) or month.")] = "day",
    by: Annotated[
        str, typer.Option("--by", help="A row per matter, or per department (matters added up).")
    ] = "matter",
    start: Annotated[str | None, typer.Option("--start", help="First day, YYYY-MM-DD.")] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Last day, YYYY-MM-DD (default: today).")
    ] = None,
    store: cli_store.StoreOpt = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print the rows as CSV.")] = False,
    check_chain: Annotated[
        bool,
        typer.Option(
            "--check-chain",
            help="Count the outcomes again from the chain's events; exit 1 on a difference.",
        ),
    ] = False,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Count every counter again: outcomes from the chain's events, decisions and "
            "received from the store (for counters missing or found wrong).",
        ),
    ] = False,
    deployment: DeploymentOpt = DEFAULT_DEPLOYMENT,
    confirmations: ConfirmationsOpt = 0,
    from_block: Annotated[
        int | None,
        typer.Option("--from-block", min=0, help="First block read (default: the deployment's)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Counts and rates (kept = kept / verified, breach = breach / verified, late =
    decided late / decided) per department, matter and period, from the counters the
    service keeps as outcomes land. With --check-chain, the outcome counters are compared
    with a count rebuilt from the contract's OutcomeRecorded events instead."""
    from verifier.records import PERIODS, VerifierRecords

    if period not in PERIODS:
        fail(f"--period {period[:20]!r}: one of {', '.join(PERIODS)}", as_json=as_json)
    first, last = _day(start, "--start", as_json), _day(end, "--end", as_json)
    with reporting_errors(as_json):
        the_store = cli_store.open_store(store)
        try:
            VerifierRecords(the_store)  # opening migrates: the counters exist
            if check_chain or rebuild:
                chain = (deployment, confirmations, from_block)
                _check_chain(the_store, chain, as_json, rebuild=rebuild)
                return
            _show(the_store, (department, matter, by), period, (first, last), as_json, as_csv)
        finally:
            the_store.close()


def _show(
    the_store: Any,
    which: tuple[str | None, str | None, Any],
    period: Any,
    days: tuple[date | None, date | None],
    as_json: bool,
    as_csv: bool,
) -> None:
    from verifier import RecordsError
    from verifier.records import StatsQuery, bounded_range, stats_csv

    try:
        first, last = bounded_range(period, *days)
        department, matter, by = which
        rows = StatsQuery(the_store).counts(department, matter, period, first, last, by=by)
    except RecordsError as exc:
        fail(str(exc), as_json=as_json, code=EXIT_BAD_INPUT)
    shown = [row.to_json_obj() for row in rows]
    if as_csv:
        sys.stdout.write(stats_csv(rows))  # with its BOM: redirected for a spreadsheet
        return
    if as_json:
        emit_json({"period": period, "start": str(first), "end": str(last), "rows": shown})
        return
    if not shown:
        stdout.print(f"nothing counted per {period} from {first} to {last}", markup=False)
        return
    table = Table(title=f"Statistics per {period}, {first} to {last}")
    for header in (period, "department", "matter"):
        table.add_column(header, no_wrap=True)
    for header in (*SHOWN.values(), "kept %", "breach %", "late %"):
        table.add_column(header, justify="right")
    for row in shown:
        rates = row["rates"]
        table.add_row(
            row["label"],
            row["department"],
            row["matter_code"],
            *(f"{row['counts'][m]:,}" for m in SHOWN),
            *(_percent(rates.get(r)) for r in ("kept_rate", "breach_rate", "late_rate")),
        )
    stdout.print(table)


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}"


def _check_chain(
    the_store: Any, chain: tuple[Path, int, int | None], as_json: bool, *, rebuild: bool
) -> None:
    from api.files import read_deployment
    from verifier import default_catalog
    from verifier.feed import department_codes
    from verifier.records import check_stats_chain, rebuild_counters

    deployment, confirmations, from_block = chain
    record = read_deployment(cli_store.in_data_dir(deployment))
    start = from_block if from_block is not None else int(record.get("deployed_at_block", 0))
    ledger = _ledger(deployment, confirmations)
    names = department_codes(default_catalog().departments())
    if rebuild:
        done = rebuild_counters(
            ledger, the_store, names, from_block=start, confirmations=confirmations
        )
        if not as_json:
            stdout.print(
                f"{done.events} outcome events to block {done.head} counted again, with the "
                "store's decisions and commitments",
                markup=False,
            )
    report = check_stats_chain(
        ledger, the_store, names, from_block=start, confirmations=confirmations
    )
    if as_json:
        emit_json(report.to_json_obj())
    else:
        for difference in report.differences:
            stdout.print(difference.describe(), markup=False)
        verdict = "agree" if report.ok else f"DISAGREE for {len(report.differences)}"
        stdout.print(
            f"{report.events} outcome events to block {report.head} counted; "
            f"{report.compared} counters compared with them: {verdict}",
            markup=False,
        )
    if not report.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)

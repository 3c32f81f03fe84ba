"""`commitledger verify run` and `verify breaches`: verification against department data."""

from __future__ import annotations

import os
import unicodedata
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from api.cli import store as cli_store
from api.cli.keys import PassphraseFileOpt
from api.files import DEFAULT_DEPLOYMENT, read_deployment
from api.output import EXIT_CHECK_FAILED, console, emit_json, fail, reporting_errors, stdout

if TYPE_CHECKING:  # imported inside the commands: they are slow to load
    from verifier import BreachRecord, DataSource
    from verifier.engine import RunSummary, VerificationEngine

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
# verifier.records.facade's (a test checks they agree): importing it loads SQLAlchemy.
MAX_PAGE_SIZE = 100  # verifier.records.MAX_PAGE_SIZE, kept here so that --help imports no SQL
OnOpt = Annotated[
    str | None, typer.Option("--on", metavar="YYYY-MM-DD", help="The day (default: today).")
]
RunOnOpt = Annotated[
    str | None,
    typer.Option(
        "--on",
        metavar="YYYY-MM-DD",
        help="The as-of day: today (Beijing), the chain's day; no other is accepted.",
    ),
]


def register(app: typer.Typer) -> None:
    """Add `verify run` and `verify breaches` to the command line."""
    verify_app = typer.Typer(
        help="Verify commitments against department data; the public breach list.",
        no_args_is_help=True,
    )
    verify_app.command("run")(verify_run)
    verify_app.command("breaches")(verify_breaches)
    verify_app.command("accesses")(verify_accesses)
    app.add_typer(verify_app, name="verify")


# ---------------------------------------------------------------------- shared pieces


def parse_day(text: str | None, *, as_json: bool, option: str = "--on") -> date:
    """An ISO date from the command line (today if not given); exit 2 when malformed."""
    if text is None:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r} is not a date: use YYYY-MM-DD", as_json=as_json)


def progress_bar(disabled: bool) -> Progress:
    """A progress bar on stderr (stdout carries only the result)."""
    return Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=disabled,
        transient=False,
    )


def summary_json(department: str, on: date, summary: RunSummary) -> dict[str, Any]:
    """A run's summary as the command prints it with --json."""
    return {
        # An integrity failure is a stored document that no longer matches its anchor.
        "ok": not summary.outcomes.get("integrity_failure"),
        "department": department,
        "on": on.isoformat(),
        "examined": summary.examined,
        "outcomes": dict(sorted(summary.outcomes.items())),
        "transactions": summary.transactions,
        "gas_used": summary.gas_used,
        "recorded_on_chain": summary.recorded,
        "breaches": list(summary.breaches),
        "proposed": list(summary.proposed),
        "overdue_flagged": summary.overdue_flagged,
    }


def breach_row(record: BreachRecord) -> dict[str, Any]:
    """One line of the public breach list: masked party, matter, dates, on-chain evidence."""
    return {
        "id": record.id,
        "party_name": record.party_name,
        "party_code": record.party_code,
        "matter_code": record.matter_code,
        "matter_name": record.matter_name,
        "department": record.department,
        "severity": record.severity,
        "decision_date": record.decision_date.isoformat(),
        "publication_end": record.publication_end.isoformat(),
        "transaction": record.evidence.transaction,
        "block": record.evidence.block,
    }


_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def terminal_safe(value: object) -> Text:
    """A value as a terminal should show it: control and invisible formatting characters
    written as escapes (an ESC or CR in a stored name must not reach the operator's
    terminal, a U+202E must not turn the line around), and no Rich markup."""
    text = "".join(
        f"\\u{ord(char):04x}" if unicodedata.category(char) in _UNPRINTABLE else char
        for char in str(value)
    )
    return Text(text)


def breach_table(rows: list[dict[str, Any]], title: str, *, compact: bool = False) -> Table:
    """The public breach list as people read it (`compact`: matter codes, short hashes)."""
    table = Table(title=title)
    for column in ("party", "code", "matter", "department", "severity", "decided", "listed until"):
        table.add_column(column, no_wrap=compact)
    table.add_column("transaction", no_wrap=compact, overflow="fold")
    for row in rows:
        transaction = row["transaction"]
        cells = (
            row["party_name"],
            row["party_code"],
            row["matter_code"] if compact else f"{row['matter_code']} {row['matter_name']}",
            row["department"],
            row["severity"],
            row["decision_date"],
            row["publication_end"],
            f"{transaction[:10]}…{transaction[-8:]}" if compact else transaction,
        )
        table.add_row(*(terminal_safe(cell) for cell in cells))
    return table


# ---------------------------------------------------------------------- verify run


def verify_run(
    key: Annotated[
        Path, typer.Option("--key", help="The department verifier's account key (JSON).")
    ],
    report_key: Annotated[
        Path,
        typer.Option(
            "--report-key",
            help="The encrypted PEM key (Ed25519) that signs verification reports.",
        ),
    ],
    department: Annotated[
        str | None,
        typer.Option("--department", help="Department code (default: the deployment's)."),
    ] = None,
    on: RunOnOpt = None,
    store: cli_store.StoreOpt = None,
    master_key_file: cli_store.MasterKeyOpt = None,
    deployment: Annotated[
        Path, typer.Option("--deployment", help="The deployment file `deploy` wrote.")
    ] = DEFAULT_DEPLOYMENT,
    sources_url: Annotated[
        str | None,
        typer.Option("--sources-url", help="Base URL of the department data service."),
    ] = None,
    sources_token_file: Annotated[
        Path | None,
        typer.Option("--sources-token-file", help="File holding the data service's token."),
    ] = None,
    sources_key_file: Annotated[
        Path | None,
        typer.Option(
            "--sources-key-file",
            help="The department's Ed25519 public key (PEM, or base64 of the raw 32 bytes): "
            "every answer must be signed with it, or its claims are undecidable.",
        ),
    ] = None,
    all_manual: Annotated[
        bool,
        typer.Option(
            "--all-manual",
            help="Without data sources: record every commitment due NEEDS_MANUAL on chain.",
        ),
    ] = False,
    passphrase_file: PassphraseFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify a department's commitments; record outcomes and overdue breaches on chain."""
    from api import run_start
    from api.keyfiles import KeyUnlock, load_account, load_report_key
    from ledger import (
        VERIFIER_ROLE,
        Chain,
        Intake,
        InvalidDocumentError,
        LedgerContract,
        department_id,
    )
    from verifier import SourceKey, default_catalog, http_sources
    from verifier.engine import Department, engine_for

    asked = parse_day(on, as_json=as_json)  # without --on: the platform's today, below
    with reporting_errors(as_json):
        run_start.require_sources(sources_url is not None, all_manual, flag="--all-manual")
    if (sources_url is None) != (sources_token_file is None):
        fail("--sources-url and --sources-token-file go together", as_json=as_json)
    if sources_url is not None and not sources_url.startswith(("http://", "https://")):
        fail(f"--sources-url {sources_url!r} is not an http(s) URL", as_json=as_json)
    catalog = default_catalog()
    with reporting_errors(as_json):
        record = read_deployment(cli_store.in_data_dir(deployment))
        dept = department or record.get("department")
        if not dept:
            raise InvalidDocumentError(
                f"no department: give --department (the deployment {deployment} names none)"
            )
        if dept not in catalog.departments():
            raise InvalidDocumentError(
                f"unknown department {dept!r}; the catalog knows {', '.join(catalog.departments())}"
            )
        unlock = KeyUnlock.from_env(passphrase_file=passphrase_file)  # before the store
        verifier = load_account(key, unlock)
        signer = load_report_key(report_key, unlock)
        day = _run_day(store, str(dept), asked if on is not None else None)  # before any node
        token = _read_token(sources_token_file) if sources_token_file is not None else None
        try:
            source_key = SourceKey.from_file(sources_key_file) if sources_key_file else None
        except ValueError as exc:
            raise InvalidDocumentError(f"--sources-key-file {exc}") from None
        vault = cli_store.open_vault(master_key_file, passphrase_file)
        chain = Chain.connect(str(record["rpc"]))
        ledger = LedgerContract(chain, str(record["contract"]))
        bound = ledger.department_of(verifier.address)
        if not ledger.has_role(VERIFIER_ROLE, verifier.address) or bound != department_id(dept):
            raise InvalidDocumentError(
                f"account {verifier.address} is not a verifier of {dept} on {ledger.address}: "
                "ask the governing office to grant the role"
            )
        # The blocks that record the outcomes date them on chain and in the feed: the
        # run's records must show the same day. Asked of the node, before anything is stored.
        run_start.check_chain_day(day, run_start.chain_day(ledger))
        the_store = cli_store.open_store(store)
        intake = Intake(the_store, vault, cli_store.catalog_terms(catalog))
        sources: dict[str, DataSource] = {}
        if sources_url is not None and token is not None:
            sources = http_sources(catalog, sources_url, token, key=source_key)
        elif not as_json:
            console.print(
                "--all-manual: nothing is compared, every commitment due is recorded NEEDS_MANUAL",
                markup=False,
            )
        engine = engine_for(
            Department(str(dept), verifier=verifier, report_key=signer),
            store=the_store,
            intake=intake,
            ledger=ledger,
            catalog=catalog,
            sources=sources,
            workers=min(2, os.cpu_count() or 1),  # documents are checked in worker processes
        )
        try:
            summary = _run_with_progress(engine, day, disabled=as_json)
        finally:
            engine.close()
            the_store.close()
    result = summary_json(str(dept), day, summary)
    if as_json:
        emit_json(result)
    else:
        stdout.print(_summary_table(result))
    if not result["ok"]:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _run_day(store: str | None, department: str, asked: date | None) -> date:
    """The run's as-of day, today unless `asked`: RunRefusedError for any other day, and
    for one before a commitment the run would decide (see api.run_start)."""
    from api import run_start

    the_store = cli_store.open_store(store)
    try:
        today = run_start.today()
        day = today if asked is None else asked
        run_start.check_run_day(
            day,
            today,
            run_start.earliest_commitment_day(the_store, department),
            run_start.latest_undecided_day(the_store, department),
        )
    finally:
        the_store.close()
    return day


def _read_token(path: Path) -> str:
    from ledger import InvalidDocumentError

    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise InvalidDocumentError(f"cannot read token {path}: {exc.strerror}") from None
    if not token or any(c.isspace() for c in token):
        raise InvalidDocumentError(f"{path} does not hold a token (one line, no spaces)")
    return token


def _run_with_progress(engine: VerificationEngine, day: date, *, disabled: bool) -> RunSummary:
    engine.schedule(day)  # run() schedules too; done first so the bar knows the total
    total = len(engine.records.overdue_unverified(date.max, engine.department))
    with progress_bar(disabled) as progress:
        task = progress.add_task(f"verify {engine.department}", total=total)

        def advance(n: int) -> None:
            progress.advance(task, n)

        summary = engine.run(day, progress=advance)
        progress.update(task, completed=total)
    return summary


def _summary_table(result: dict[str, Any]) -> Table:
    table = Table(title=f"Verification of {result['department']} on {result['on']}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("examined", f"{result['examined']:,}")
    for outcome, n in result["outcomes"].items():
        table.add_row(f"  {outcome}", f"{n:,}")
    table.add_row("recorded on chain", f"{result['recorded_on_chain']:,}")
    table.add_row("transactions", f"{result['transactions']:,}")
    table.add_row("gas used", f"{result['gas_used']:,}")
    table.add_row("breaches proposed (notified)", f"{len(result['proposed']):,}")
    table.add_row("breaches published", f"{len(result['breaches']):,}")
    table.add_row("flagged overdue", f"{result['overdue_flagged']:,}")
    return table


# ---------------------------------------------------------------------- verify breaches


def verify_breaches(
    on: OnOpt = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Part of the party's name as shown (masked).")
    ] = None,
    credit_code: Annotated[
        str | None,
        typer.Option(
            "--credit-code",
            help="An organisation's unified social credit code, or a masked ID as shown.",
        ),
    ] = None,
    matter: Annotated[str | None, typer.Option("--matter", help="Matter code.")] = None,
    department: Annotated[
        str | None, typer.Option("--department", help="Department code, e.g. BJ-SAMR.")
    ] = None,
    page: Annotated[int, typer.Option("--page", min=1, help="Which page (from 1).")] = 1,
    page_size: Annotated[
        int, typer.Option("--page-size", min=1, max=MAX_PAGE_SIZE, help="Records per page.")
    ] = 20,
    store: cli_store.StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The public breach list on a day: masked names, matter, dates, on-chain transaction."""
    from verifier.records import VerifierRecords

    day = parse_day(on, as_json=as_json)
    if store is None and not cli_store.default_store_exists():
        fail("no store here: give --store (or set COMMITLEDGER_STORE)", as_json=as_json)
    with reporting_errors(as_json):
        the_store = cli_store.open_store(store)
        try:
            found = VerifierRecords(the_store).search_breaches(
                day,
                name=name,
                credit_code=credit_code,
                matter=matter,
                department=department,
                page=page,
                page_size=page_size,
            )
        finally:
            the_store.close()
    rows = [breach_row(record) for record in found.records]
    if as_json:
        emit_json(
            {
                "ok": True,
                "on": day.isoformat(),
                "total": found.total,
                "page": found.page,
                "page_size": found.page_size,
                "records": rows,
            }
        )
        return
    shown = f"{len(rows)} of {found.total}" if found.total > len(rows) else f"{found.total}"
    stdout.print(breach_table(rows, f"Public breach list on {day.isoformat()} ({shown})"))


def verify_accesses(
    department: Annotated[str, typer.Option("--department", help="Department code.")],
    commitment: Annotated[
        str | None, typer.Option("--commitment", help="Only this commitment (0x hash).")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", metavar="YYYY-MM-DD", help="From this day (UTC).")
    ] = None,
    store: cli_store.StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every lookup of department data the department made, newest first (at most 1000):
    when, which commitment, who asked (a run or an officer), which source, why."""
    from datetime import UTC, datetime

    from ledger import InvalidDocumentError, hex32, to_hash32
    from verifier.records import AccessLog

    day = parse_day(since, as_json=as_json, option="--since") if since else None
    if store is None and not cli_store.default_store_exists():
        fail("no store here: give --store (or set COMMITLEDGER_STORE)", as_json=as_json)
    with reporting_errors(as_json):
        try:
            digest = to_hash32(commitment) if commitment else None
        except ValueError:
            raise InvalidDocumentError("--commitment is 0x and 64 hex digits") from None
        start = None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)
        the_store = cli_store.open_store(store)
        try:
            found = AccessLog(the_store).of_department(
                department,
                commitment=digest,
                since=None if start is None else start.timestamp(),
            )
        finally:
            the_store.close()
    rows = [a.to_json_obj() for a in found]
    if as_json:
        emit_json({"ok": True, "department": department, "accesses": rows})
        return
    table = Table(title=f"Lookups of department data by {department} ({len(rows)})")
    for column in ("when (UTC)", "commitment", "asked by", "source", "purpose"):
        table.add_column(column)
    for a, row in zip(found, rows, strict=True):
        when = datetime.fromtimestamp(a.accessed_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            when,
            hex32(a.commitment_hash),
            terminal_safe(row["requested_by"]),
            terminal_safe(row["source"]),
            row["purpose"],
        )
    stdout.print(table)

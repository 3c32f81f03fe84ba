"""`commitledger chain check`: every commitment's state replayed from the contract's events,
compared with `statusOf` and with the store."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from api.cli import store as cli_store
from api.cli.feed import ConfirmationsOpt, DeploymentOpt, JsonOpt, _ledger
from api.files import DEFAULT_DEPLOYMENT
from api.output import EXIT_CHECK_FAILED, console, emit_json, reporting_errors, stdout


def register(app: typer.Typer) -> None:
    """Add `chain check` to the command line."""
    chain_app = typer.Typer(help="The contract's history against its state.", no_args_is_help=True)
    chain_app.command("check")(chain_check)
    app.add_typer(chain_app, name="chain")


def chain_check(
    store: cli_store.StoreOpt = None,
    deployment: DeploymentOpt = DEFAULT_DEPLOYMENT,
    confirmations: ConfirmationsOpt = 0,
    from_block: Annotated[
        int | None,
        typer.Option(
            "--from-block", min=0, help="First block to replay (default: the deployment's)."
        ),
    ] = None,
    no_store: Annotated[
        bool, typer.Option("--no-store", help="Compare the events with the contract only.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Replay every state event of the contract (anchors, batches, outcomes) up to the
    confirmed head and compare each commitment's state with `statusOf` and with the store;
    exit 1 on any difference, such as a storage change without an event."""
    from rich.progress import Progress

    from api.files import read_deployment
    from verifier import default_catalog
    from verifier.feed import department_codes
    from verifier.records import check_chain

    with reporting_errors(as_json):
        path = cli_store.in_data_dir(deployment)
        record = read_deployment(path)
        start = from_block if from_block is not None else int(record.get("deployed_at_block", 0))
        ledger = _ledger(deployment, confirmations)
        the_store = None
        if not no_store and (store is not None or cli_store.default_store_exists()):
            the_store = cli_store.open_store(store)
        names = department_codes(default_catalog().departments())
        try:
            with Progress(console=console, disable=as_json, transient=True) as bar:
                tasks: dict[str, Any] = {}

                def shown(stage: str, done: int, total: int) -> None:
                    if stage not in tasks:
                        tasks[stage] = bar.add_task(stage, total=total)
                    bar.update(tasks[stage], completed=done, total=total)

                report = check_chain(
                    ledger,
                    the_store,
                    names,
                    from_block=start,
                    confirmations=confirmations,
                    progress=shown,
                )
        finally:
            if the_store is not None:
                the_store.close()
    if as_json:
        emit_json({**report.to_json_obj(), "store": the_store is not None})
    else:
        _print(report, compared_with_store=the_store is not None)
    if not report.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)


def _print(report: Any, *, compared_with_store: bool) -> None:
    for d in report.differences:
        store = "" if d.store is None else f", store {d.store}"
        stdout.print(
            f"{d.kind}: {d.commitment} {d.department}: replayed {d.replayed}, "
            f"chain {d.chain}{store} ({d.detail})",
            markup=False,
        )
    for c in report.conflicts:
        stdout.print(
            f"conflict recorded: {c.commitment_hash} {c.department}: chain {c.chain_status} "
            f"(tx {c.transaction}, block {c.block}), store {c.store_state}: {c.detail}",
            markup=False,
        )
    against = "statusOf and the store" if compared_with_store else "statusOf"
    verdict = "agree" if report.ok else f"DISAGREE for {len(report.differences)}"
    stdout.print(
        f"{report.events} events to block {report.head} replayed; {report.commitments} "
        f"commitments compared with {against}: {verdict}",
        markup=False,
    )

"""Commands over the durable store: submit, the anchoring pipeline, status, erase."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.keys import PassphraseFileOpt
from api.cli.leased import WaitOpt
from api.files import DEFAULT_DEPLOYMENT
from api.output import EXIT_CHECK_FAILED, console, emit_json, reporting_errors, stdout
from ledger import InvalidDocumentError, LedgerError

if TYPE_CHECKING:  # the commands import these inside themselves: SQLAlchemy, web3 are slow
    from sqlalchemy import Connection

    from ledger import Hash32, MatterTerms, Store, Vault
    from verifier import Catalog

MASTER_KEY_ENV = "COMMITLEDGER_MASTER_KEY"  # ledger.vault's

STORE_ENV = "COMMITLEDGER_STORE"

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store", help=f"Store URL (default ${STORE_ENV} or ledger.db in the data directory)."
    ),
]
MasterKeyOpt = Annotated[
    Path | None,
    typer.Option("--master-key-file", help=f"Master key file (default: ${MASTER_KEY_ENV})."),
]


def open_store(url: str | None) -> Store:
    """The store at `url`, or the settings' (`$COMMITLEDGER_STORE`, or the SQLite file in
    the data directory, as `serve` finds it)."""
    from api.service import Settings
    from ledger import Store

    return Store(url or Settings.load().resolved_store_url)


def default_store_exists() -> bool:
    """Whether the store the settings name is there to look in."""
    from api.service import Settings

    url = Settings.load().resolved_store_url
    return not url.startswith("sqlite:///") or Path(url.removeprefix("sqlite:///")).exists()


def in_data_dir(given: Path) -> Path:
    """A path option left at its `data/...` default, found in the settings' data directory
    instead (where `serve` and `init` put things); any other path as given."""
    from api.files import DEFAULT_PROOFS
    from api.service import Settings

    if given == DEFAULT_DEPLOYMENT:
        return Settings.load().resolved_deployment_file
    if given == DEFAULT_PROOFS:
        return Settings.load().data_dir / DEFAULT_PROOFS.name
    return given


def open_vault(path: Path | None, passphrase_file: Path | None = None) -> Vault:
    """The vault from a master key file, the settings' (`--master-key-file`'s variable,
    or the data directory's master.key), or `$COMMITLEDGER_MASTER_KEY`. A file is a master
    keystore opened with the passphrase of `passphrase_file` or the environment; a clear
    one is refused (only `serve --demo` takes it), naming `commitledger keys encrypt`."""
    from api.keyfiles import KeyUnlock, load_master_key
    from api.service import Settings
    from ledger import Vault

    if path is None:
        path = Settings.load().master_key_file
        if path is None:
            return Vault.from_environment()
    return load_master_key(path, KeyUnlock.from_env(passphrase_file=passphrase_file))


def catalog_departments(catalog: Catalog | None = None) -> dict[str, str]:
    """Matter code -> responsible department, from `catalog` (default: the shipped one).

    Names the departments only: intake binds a commitment to its matter's full terms,
    `catalog_terms`."""
    from verifier import default_catalog

    return (catalog or default_catalog()).matter_departments()


def catalog_terms(catalog: Catalog | None = None) -> dict[str, MatterTerms]:
    """Matter code -> the terms intake binds a commitment to (department, notice versions,
    claims), from `catalog` (default: the shipped one)."""
    from verifier import default_catalog

    return (catalog or default_catalog()).intake_terms()


def register(app: typer.Typer) -> None:
    """Add the store commands to the command line."""
    app.command()(submit)
    app.command()(status)
    app.command()(erase)
    pipeline_app = typer.Typer(help="The anchoring pipeline.", no_args_is_help=True)
    pipeline_app.command("run")(pipeline_run)
    app.add_typer(pipeline_app, name="pipeline")


def submit(
    files: Annotated[list[Path], typer.Argument(help="Signed commitment files.")],
    store: StoreOpt = None,
    master_key_file: MasterKeyOpt = None,
    passphrase_file: PassphraseFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Accept signed commitments into the store; each is acknowledged once it is durable.
    The master key file is opened with `--passphrase-file` (or the environment's)."""
    from api.files import read_json_file
    from ledger import Acknowledgement, Intake, hex32

    with reporting_errors(as_json):
        vault = open_vault(master_key_file, passphrase_file)
        intake = Intake(open_store(store), vault, catalog_terms())
        results: list[dict[str, Any]] = []
        for path in files:
            try:
                ack: Acknowledgement | LedgerError = intake.submit(read_json_file(path))
            except LedgerError as exc:
                ack = exc
            if isinstance(ack, Acknowledgement):
                item = {"file": str(path), "hash": hex32(ack.hash), "new": ack.new}
                if not as_json:  # printed as it happens: an acknowledgement is a promise
                    again = "" if ack.new else " (already accepted before)"
                    stdout.print(f"accepted {item['hash']} {path}{again}", markup=False)
            else:
                # A file's own errors start with its name already: named once, here.
                error = str(ack).removeprefix(f"{path}: ")
                item = {"file": str(path), "error": error, "type": type(ack).__name__}
                if not as_json:
                    console.print(f"refused {path}: {error}", markup=False)
            results.append(item)
    refused = sum("error" in r for r in results)
    if as_json:
        emit_json({"ok": refused == 0, "accepted": len(results) - refused, "results": results})
    if refused:
        raise typer.Exit(EXIT_CHECK_FAILED if refused < len(results) else 2)


def status(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """Show the anchoring backlog, the oldest pending age and the last anchored block."""
    with reporting_errors(as_json):
        figures = open_store(store).status()
    result = {"ok": True, **figures.__dict__}
    if as_json:
        emit_json(result)
        return
    age = figures.oldest_pending_age
    stdout.print(
        f"pending {figures.pending}  in flight {figures.in_flight} "
        f"({figures.batches_in_flight} batches)  anchored {figures.anchored}\n"
        f"oldest pending {'-' if age is None else f'{age:.1f}s'}  "
        f"last anchored block {figures.last_anchored_block or '-'}",
        markup=False,
    )


def erase(
    commitment: Annotated[str, typer.Argument(help="The commitment hash.")],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Erase a commitment's personal data for good: its data key and the applicant's
    fingerprint are destroyed, its breach records lose the name and code. Refused (exit 1)
    while the applicant has an unrepaired published breach: the law requires keeping it.
    A commitment erased before is reported as already erased (exit 0)."""
    from ledger import hex32, to_hash32
    from verifier.records import AppealRecords, RectificationRecords, VerifierRecords

    with reporting_errors(as_json):
        digest = to_hash32(commitment)
        the_store = open_store(store)
        try:
            stored = the_store.get(digest)
            already = stored is not None and stored.erased
            erased = already
            if stored is not None and not already:
                records = VerifierRecords(the_store)  # opening migrates: its tables are there

                def forget(connection: Connection, erasing: Hash32) -> None:
                    records.forget_applicant(connection, erasing)
                    AppealRecords.forget_texts(connection, erasing)  # objections, repairs
                    RectificationRecords.forget_texts(connection, erasing)  # its evidence

                erased = the_store.erase(digest, also=forget)
        finally:
            the_store.close()
        if not erased:
            raise InvalidDocumentError(f"no commitment {hex32(digest)} in the store")
    if as_json:
        emit_json({"ok": True, "hash": hex32(digest), "erased": True, "already": already})
    elif already:
        stdout.print(f"already erased: the personal data of {hex32(digest)} are gone")
    else:
        stdout.print(f"erased the personal data of {hex32(digest)}; its hash and proof remain")


def pipeline_run(
    key: Annotated[Path, typer.Option("--key", help="The department registrar's account key.")],
    store: StoreOpt = None,
    deployment: Annotated[
        Path, typer.Option("--deployment", help="The deployment file `deploy` wrote.")
    ] = DEFAULT_DEPLOYMENT,
    department: Annotated[
        str | None, typer.Option("--department", help="Default: the deployment's.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=100_000, help="Most per batch.")
    ] = 1000,
    max_age: Annotated[
        float, typer.Option("--max-age", min=0.0, help="Seconds a pending one waits.")
    ] = 2.0,
    confirmations: Annotated[
        int, typer.Option("--confirmations", min=0, help="Blocks before final.")
    ] = 0,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Stop once nothing is pending or in flight.")
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="With --until-idle.")] = 600.0,
    passphrase_file: PassphraseFileOpt = None,
    wait: WaitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Anchor the store's pending commitments; resumes whatever a previous run left (the
    key a keystore: a clear key file is refused before the store is opened). Takes the
    department's anchoring lease first, as `serve` does: while an instance holds it, waits
    for it (`--wait`), then refuses."""
    from api.cli.leased import lease_times, leased_job
    from api.files import read_deployment
    from api.keyfiles import KeyUnlock, load_account
    from api.service import anchor_lease
    from ledger import Anchorer, Chain, LedgerContract, PipelineConfig

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    with reporting_errors(as_json):
        registrar = load_account(key, KeyUnlock.from_env(passphrase_file=passphrase_file))
        record = read_deployment(in_data_dir(deployment))
        dept = department or record.get("department")
        if not dept:
            raise InvalidDocumentError("no department: give --department")
        the_store = open_store(store)
        lease = anchor_lease(str(dept))
        ttl, poll = lease_times()
        with leased_job(the_store, [lease], wait=wait, ttl=ttl, poll=poll) as job:
            chain = Chain.connect(str(record["rpc"]), confirmations=confirmations)
            ledger = LedgerContract(chain, str(record["contract"]))
            config = PipelineConfig(
                batch_size=batch_size, max_age=max_age, confirmations=confirmations
            )
            anchorer = Anchorer(the_store, ledger, {str(dept): registrar}, config)
            anchorer.fences = {str(dept): job.fence(lease)}  # as the service's anchoring
            stop = threading.Event()

            def on_signal(_signum: int, _frame: FrameType | None) -> None:
                stop.set()

            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
            with job.stopping(stop):
                if until_idle:
                    idle = anchorer.drain(timeout, stop)
                else:
                    anchorer.run(stop)
                    idle = True
            job.check()
        figures = the_store.status()
    if as_json:
        emit_json({"ok": idle, **figures.__dict__})
    else:
        stdout.print(f"anchored {figures.anchored}, pending {figures.pending}", markup=False)
    if not idle:
        raise typer.Exit(EXIT_CHECK_FAILED)

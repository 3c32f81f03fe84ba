"""The `commitledger` command line: keys, signing, hashing, deploying, anchoring, proving.

Over 400 lines: the top-level commands (keys, sign, hash, canonical, new wiring, deploy,
anchor, proof, verify-proof, contract verify, demo) and the registration of the groups; each
command imports what it needs inside itself so that start-up stays quick.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from api.cli import admin as cli_admin
from api.cli import appeals as cli_appeals
from api.cli import applicant as cli_applicant
from api.cli import catalog as cli_catalog
from api.cli import chain as cli_chain
from api.cli import config as cli_config
from api.cli import decisions as cli_decisions
from api.cli import feed as cli_feed
from api.cli import keys as cli_keys
from api.cli import lifecycle as cli_lifecycle
from api.cli import new as cli_new
from api.cli import notices as cli_notices
from api.cli import rectification as cli_rectification
from api.cli import serve as cli_serve
from api.cli import sharing as cli_sharing
from api.cli import stats as cli_stats
from api.cli import store as cli_store
from api.cli import tasks as cli_tasks
from api.cli import verify as cli_verify
from api.cli import worklists as cli_worklists
from api.files import DEFAULT_DEPLOYMENT, DEFAULT_PROOFS
from api.output import (
    EXIT_CHECK_FAILED,
    CommandGroup,
    attempting,
    console,
    emit_json,
    fail,
    human,
    reporting_errors,
    stdout,
)

if TYPE_CHECKING:
    from ledger import Hash32, ProofBundle

# Each command imports what it needs inside itself: web3, eth_account, the service and
# SQLAlchemy take seconds to load, and `hash FILE` or `--help` need none of them.

app = typer.Typer(
    name="commitledger",
    help="Anchor signed notification-commitment documents on a chain and check them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=CommandGroup,
    context_settings={"max_content_width": 120},
)
keys_app = typer.Typer(help="Make keys.", no_args_is_help=True)
contract_app = typer.Typer(help="Check the deployed contract.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(contract_app, name="contract")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
RpcOpt = Annotated[str, typer.Option("--rpc", help="JSON-RPC URL of a node of the chain.")]
DeploymentOpt = Annotated[
    Path, typer.Option("--deployment", help="The deployment file `deploy` wrote.")
]
ProofsDirOpt = Annotated[
    Path, typer.Option("--proofs-dir", help="Where `anchor` writes proof bundles.")
]


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        stdout.print(f"commitledger {version('commitment-ledger')}", markup=False)
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", is_eager=True, callback=_show_version
        ),
    ] = False,
) -> None:
    """Anchor signed notification-commitment documents on a chain and check them."""


# ---------------------------------------------------------------------- keys and documents


@app.command()
def sign(
    files: Annotated[list[Path], typer.Argument(help="Commitment documents (JSON).")],
    key: Annotated[Path, typer.Option("--key", help="The applicant's PEM signing key.")],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="With one FILE only; default: FILE.signed.json beside it."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign commitment documents; each signature travels beside its document, outside the
    hash, in FILE.signed.json."""
    if out is not None and len(files) > 1:
        fail("--out names one file: sign one FILE with it, or leave it out", as_json=as_json)
    from rich.progress import Progress

    results = []
    with Progress(console=console, disable=as_json or len(files) < 2, transient=True) as bar:
        task = bar.add_task("signing", total=len(files))
        for file in files:
            results.append(_sign_one(file, key, out, as_json=as_json))
            bar.advance(task)
    if as_json:
        if len(results) == 1:  # as before many files were taken: no "file"
            emit_json({k: v for k, v in results[0].items() if k != "file"})
        else:
            emit_json({"ok": True, "signed": results})
    else:
        for result in results:
            stdout.print(f"signed {result['file']} -> {result['signed']}\nhash {result['hash']}")


def _sign_one(file: Path, key: Path, out: Path | None, *, as_json: bool) -> dict[str, Any]:
    from api.files import read_commitment
    from api.keyfiles import load_signing_key
    from ledger import SignedCommitment, hex32, sign_commitment

    with reporting_errors(as_json):
        document = read_commitment(file)
        if isinstance(document, SignedCommitment):
            document = document.document
        signed = sign_commitment(document, load_signing_key(key))
        target = out or file.with_suffix(".signed.json")
        target.write_text(json.dumps(signed.to_json_obj(), ensure_ascii=False, indent=2) + "\n")
    return {"ok": True, "file": str(file), "hash": hex32(signed.hash()), "signed": str(target)}


@app.command("hash")
def hash_command(
    file: Annotated[Path, typer.Argument(help="A commitment document, signed or not.")],
    as_json: JsonOpt = False,
) -> None:
    """Print the commitment hash: keccak256 of the document's canonical bytes."""
    from api.files import read_commitment
    from ledger import hex32

    with reporting_errors(as_json):
        digest = hex32(read_commitment(file).hash())
    if as_json:
        emit_json({"ok": True, "file": str(file), "hash": digest})
    else:
        stdout.print(digest)


@app.command()
def canonical(
    file: Annotated[Path, typer.Argument(help="Any JSON file.")],
    as_json: JsonOpt = False,
) -> None:
    """Print the exact RFC 8785 canonical bytes of a JSON file (what is hashed and signed)."""
    from api.files import read_json_file
    from ledger import canonical_bytes, hex32, keccak256

    with reporting_errors(as_json):
        data = canonical_bytes(read_json_file(file))
    if as_json:
        emit_json(
            {"ok": True, "canonical": data.decode("utf-8"), "keccak256": hex32(keccak256(data))}
        )
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()


# ---------------------------------------------------------------------- chain


@app.command()
def deploy(
    rpc: RpcOpt,
    admin_key: Annotated[
        Path, typer.Option("--admin-key", help="The governing office's account key.")
    ],
    department: Annotated[
        str | None, typer.Option("--department", help="Department code, e.g. BJ-HRSS.")
    ] = None,
    registrar_key: Annotated[
        Path | None,
        typer.Option("--registrar-key", help="The department's registrar account (anchors)."),
    ] = None,
    verifier_key: Annotated[
        Path | None,
        typer.Option("--verifier-key", help="The department's verifier account (outcomes)."),
    ] = None,
    fund: Annotated[
        bool, typer.Option("--fund", help="Fund the keys from the node (dev chains).")
    ] = False,
    out: Annotated[
        Path, typer.Option("--out", help="Deployment file to write.")
    ] = DEFAULT_DEPLOYMENT,
    passphrase_file: cli_keys.PassphraseFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deploy CommitmentLedger and grant a department's registrar and verifier roles (the
    keys are keystores; a clear key file is refused, nothing deployed)."""
    out = cli_store.in_data_dir(out)
    if (registrar_key or verifier_key) and not department:
        fail("--registrar-key and --verifier-key need --department", as_json=as_json)
    from api.keyfiles import KeyUnlock, load_account
    from ledger import REGISTRAR_ROLE, VERIFIER_ROLE, Chain, LedgerContract, department_id

    with reporting_errors(as_json):
        unlock = KeyUnlock.from_env(passphrase_file=passphrase_file)
        admin = load_account(admin_key, unlock)
        roles = [(REGISTRAR_ROLE, registrar_key), (VERIFIER_ROLE, verifier_key)]
        accounts = [(role, load_account(path, unlock)) for role, path in roles if path is not None]
        chain = Chain.connect(rpc, kind="anvil" if fund else "rpc")
        if fund:
            for account in [admin, *(a for _, a in accounts)]:
                chain.fund(account.address)
        ledger = LedgerContract.deploy(chain, admin)
        for role, account in accounts:
            assert department is not None
            granting = f"granting {department}'s role to {account.address} as {admin.address}"
            with attempting(granting):
                ledger.grant_department_role(
                    admin, role, account.address, department_id(department)
                )
        record = {
            "rpc": rpc,
            "chain_id": chain.chain_id,
            "contract": ledger.address,
            "deployed_at_block": chain.block_number(),
            "department": department,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=2) + "\n")
    if as_json:
        emit_json({"ok": True, **record, "deployment": str(out)})
    else:
        stdout.print(
            f"deployed CommitmentLedger at {ledger.address} on chain {chain.chain_id}; wrote {out}"
        )


@app.command()
def anchor(
    files: Annotated[list[Path], typer.Argument(help="Signed commitment files.")],
    key: Annotated[Path, typer.Option("--key", help="The department registrar's account key.")],
    deployment: DeploymentOpt = DEFAULT_DEPLOYMENT,
    single: Annotated[
        bool, typer.Option("--single", help="One transaction per commitment.")
    ] = False,
    proofs_dir: ProofsDirOpt = DEFAULT_PROOFS,
    passphrase_file: cli_keys.PassphraseFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Anchor signed commitments (one Merkle batch by default) and write their proof bundles."""
    deployment, proofs_dir = cli_store.in_data_dir(deployment), cli_store.in_data_dir(proofs_dir)
    from api.files import read_deployment, read_signed
    from api.keyfiles import KeyUnlock, load_account
    from ledger import (
        AnchorReceipt,
        Chain,
        InvalidDocumentError,
        LedgerContract,
        SignatureError,
        anchor_batch,
        anchor_singly,
        check_and_hash,
        hex32,
    )

    with reporting_errors(as_json):
        registrar = load_account(key, KeyUnlock.from_env(passphrase_file=passphrase_file))
        documents = [read_signed(path) for path in files]
        hashes = []
        for path, document in zip(files, documents, strict=True):
            try:  # every signature is checked before anything is sent
                hashes.extend(check_and_hash([document]))
            except SignatureError as exc:
                raise SignatureError(f"{path}: {exc}") from None
        repeated = {h for h in hashes if hashes.count(h) > 1}
        if repeated:
            raise InvalidDocumentError(
                f"the same document is given twice ({hex32(next(iter(repeated)))})"
            )
        record = read_deployment(deployment)
        chain = Chain.connect(str(record["rpc"]))
        ledger = LedgerContract(chain, str(record["contract"]))

        def keep(receipt: AnchorReceipt) -> None:
            proofs_dir.mkdir(parents=True, exist_ok=True)
            for bundle in receipt.bundles:
                (proofs_dir / f"{hex32(bundle.commitment)}.json").write_text(
                    json.dumps(bundle.to_json_obj(), indent=2) + "\n"
                )

        what = f"anchoring {len(hashes)} commitment(s) as {registrar.address}"
        with attempting(what):
            if single:
                receipts = anchor_singly(ledger, registrar, hashes, on_receipt=keep)
            else:
                receipts = [anchor_batch(ledger, registrar, hashes)]
                keep(receipts[0])
        bundles = [b for r in receipts for b in r.bundles]
    items = [
        {"file": str(path), "hash": hex32(b.commitment), "proof": [hex32(p) for p in b.proof]}
        for path, b in zip(files, bundles, strict=True)
    ]
    result: dict[str, Any] = {
        "ok": True,
        "mode": "single" if single else "batch",
        "root": None if single else hex32(receipts[0].root),
        "transactions": [hex32(r.tx_hash) for r in receipts],
        "gas_used": sum(r.gas_used for r in receipts),
        "commitments": items,
    }
    if as_json:
        emit_json(result)
        return
    if not single:
        stdout.print(
            f"root {result['root']}  ({len(items)} commitments, tx {result['transactions'][0]})"
        )
    for item in items:
        stdout.print(f"{item['hash']}  {item['file']}  proof[{len(item['proof'])}]")


@app.command()
def proof(
    commitment: Annotated[str, typer.Argument(help="The commitment hash (0x + 64 hex).")],
    proofs_dir: ProofsDirOpt = DEFAULT_PROOFS,
    store: Annotated[
        str | None, typer.Option("--store", help="Also look in this store (pipeline anchors).")
    ] = None,
    deployment: DeploymentOpt = DEFAULT_DEPLOYMENT,
    as_json: JsonOpt = False,
) -> None:
    """Print the proof bundle of an anchored commitment (from `anchor` or the pipeline)."""
    deployment, proofs_dir = cli_store.in_data_dir(deployment), cli_store.in_data_dir(proofs_dir)
    from api.files import read_json_file
    from ledger import ProofBundle, hex32, to_hash32

    with reporting_errors(as_json):
        digest = to_hash32(commitment)
        path = proofs_dir / f"{hex32(digest)}.json"
        if path.exists():
            bundle = ProofBundle.from_json_obj(read_json_file(path))
        else:
            found = _bundle_from_store(digest, store, deployment)
            if found is None:
                fail(
                    f"no proof for {hex32(digest)}: not anchored from here (looked in "
                    f"{proofs_dir} and the store)",
                    as_json=as_json,
                    code=EXIT_CHECK_FAILED,
                    kind="NotFound",
                )
            bundle = found
    emit_json(bundle.to_json_obj())


def _bundle_from_store(digest: Hash32, url: str | None, deployment: Path) -> ProofBundle | None:
    from api.files import read_deployment
    from ledger import stored_bundle

    if url is None and not cli_store.default_store_exists():
        return None
    the_store = cli_store.open_store(url)
    try:
        anchoring = the_store.anchoring_of(digest)
    finally:
        the_store.close()
    if anchoring is None:
        return None
    record = read_deployment(deployment)
    return stored_bundle(
        digest, anchoring, chain_id=int(record["chain_id"]), contract=str(record["contract"])
    )


@app.command("verify-proof")
def verify_proof_command(
    bundle_file: Annotated[Path, typer.Argument(metavar="BUNDLE", help="A proof bundle (JSON).")],
    rpc: RpcOpt,
    contract: Annotated[
        str | None,
        typer.Option(
            "--contract",
            help="Your trust anchor: the ledger's address as its department publishes it "
            "(never the bundle's own). Required.",
        ),
    ] = None,
    chain_id: Annotated[
        int | None,
        typer.Option("--chain-id", help="Your trust anchor: the chain's id. Required."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a proof bundle against any node of the chain and your pinned contract and chain:
    the code there must be the committed artifact's, the bundle must name that contract."""
    from api.files import read_json_file
    from ledger import Chain, ProofBundle, check_bundle, checksum_address, hex32

    with reporting_errors(as_json):
        bundle = ProofBundle.from_json_obj(read_json_file(bundle_file))
    if contract is None or chain_id is None:
        fail(
            "pin the ledger you trust: --contract ADDRESS --chain-id ID, as the department "
            "publishes them; a bundle's own contract proves nothing",
            as_json=as_json,
        )
    if checksum_address(contract) is None:
        fail(f"not an address: {contract!r}", as_json=as_json)
    with reporting_errors(as_json):
        report = check_bundle(bundle, Chain.connect(rpc), contract=contract, chain_id=chain_id)
    if as_json:
        emit_json({"commitment": hex32(bundle.commitment), **report.to_json_obj()})
    else:
        table = Table(title=f"proof of {hex32(bundle.commitment)}")
        for column in ("check", "result", "detail"):
            table.add_column(column)
        for check in report.checks:
            table.add_row(
                check.name, "[green]ok[/]" if check.ok else "[red]FAILED[/]", check.detail
            )
        stdout.print(table)
        stdout.print("[bold green]verified[/]" if report.ok else "[bold red]NOT verified[/]")
    if not report.ok:
        raise typer.Exit(EXIT_CHECK_FAILED)


@contract_app.command("verify")
def contract_verify(
    rpc: RpcOpt,
    address: Annotated[str, typer.Option("--address", help="The contract's address.")],
    as_json: JsonOpt = False,
) -> None:
    """Check that the code deployed at ADDRESS is exactly the committed artifact's."""
    from ledger import Chain, checksum_address, load_artifact, runtime_code_check

    checksummed = checksum_address(address)
    if checksummed is None:
        fail(f"not an address: {address!r}", as_json=as_json)
    with reporting_errors(as_json):
        same, deployed, expected = runtime_code_check(Chain.connect(rpc), address)
    artifact = load_artifact()
    result = {
        "ok": same,
        "address": checksummed,
        "deployed_bytes": len(deployed),
        "expected_bytes": len(expected),
        "sources_hash": artifact["sourcesHash"],
    }
    if as_json:
        emit_json(result)
    else:
        verdict = (
            "matches the committed artifact" if same else "DIFFERS from the committed artifact"
        )
        stdout.print(f"code at {result['address']} {verdict} ({len(deployed)} bytes)")
    if not same:
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command()
def demo(
    count: Annotated[
        int, typer.Option("--count", min=1, max=100_000, help="How many commitments.")
    ] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """The whole story on the embedded chain: anchor, prove, tamper, verify, breach, repair."""
    from api.demo import run_demo

    with reporting_errors(as_json):
        summary = run_demo(count, quiet=as_json)
    if as_json:
        emit_json(summary)
    if not summary["ok"]:
        raise typer.Exit(EXIT_CHECK_FAILED)
    human(lambda: console.print("[bold green]demo finished[/]"), as_json=as_json)


cli_keys.register(keys_app)
cli_new.register(app)
cli_store.register(app)
cli_verify.register(app)
cli_serve.register(app)
cli_feed.register(app)
cli_sharing.register(app)  # into the feed group: after it
cli_config.register(app)
cli_lifecycle.register(app)
cli_chain.register(app)
cli_applicant.register(app)
cli_worklists.register(app)
cli_appeals.register(app)
cli_rectification.register(app)
cli_decisions.register(app)
cli_tasks.register(app)
cli_catalog.register(app)
cli_notices.register(app)
cli_stats.register(app)
cli_admin.register(app)


def main() -> None:
    """Entry point of the `commitledger` script."""
    app()


if __name__ == "__main__":
    main()

"""`commitledger serve` (the HTTP service, on loopback) and `commitledger tokens issue`."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer

from api.cli import store as cli_store
from api.output import console, emit_json, fail, reporting_errors, stdout
from ledger import InvalidDocumentError

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
LOOPBACK_ONLY = (
    "the service listens on loopback only (127.0.0.1): put a reverse proxy in front of it "
    "to serve others"
)


def register(app: typer.Typer) -> None:
    """Add `serve` and `tokens issue` to the command line."""
    app.command()(serve)
    tokens_app = typer.Typer(help="Department tokens for the HTTP service.", no_args_is_help=True)
    tokens_app.command("issue")(tokens_issue)
    app.add_typer(tokens_app, name="tokens")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(
    host: Annotated[str, typer.Option("--host", help="Loopback address to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 8000,
    chain: Annotated[
        str | None,
        typer.Option(
            "--chain",
            help="anvil (managed, state in the data directory; the default), embedded "
            "(ephemeral) or an http(s) JSON-RPC URL.",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="The data directory (default: data).")
    ] = None,
    store: cli_store.StoreOpt = None,
    deployment: Annotated[
        Path | None,
        typer.Option("--deployment", help="Deployment file (default: data/deployment.json)."),
    ] = None,
    master_key_file: cli_store.MasterKeyOpt = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Fill an empty data directory with keys and anchored, verified sample "
            "commitments; print a registrar and a verifier token.",
        ),
    ] = False,
) -> None:
    """Run the HTTP service (API under /v1, lookup page at /) on 127.0.0.1."""
    from api.serving import run_service

    if not _loopback(host):
        fail(f"{host!r}: {LOOPBACK_ONLY}", as_json=False)
    given = {
        "chain": chain,
        "data_dir": data_dir,
        "store_url": store,
        "deployment_file": deployment,
        "master_key_file": master_key_file,
    }
    run_service(host, port, {k: v for k, v in given.items() if v is not None}, demo=demo)


def tokens_issue(
    role: Annotated[str, typer.Option("--role", help="registrar, verifier or feed.")],
    department: Annotated[
        str | None,
        typer.Option(
            "--department",
            help="Department code, e.g. BJ-HRSS (a feed token: the consumer, default FEED).",
        ),
    ] = None,
    scope: Annotated[
        str | None,
        typer.Option("--scope", help="A feed token's scope: public, restricted or all."),
    ] = None,
    store: cli_store.StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue a department or feed token: printed once; the store keeps only its SHA-256."""
    from api.service.tokens import FEED_CONSUMER, TokenStore

    with reporting_errors(as_json):
        if role == "feed":
            department = department or FEED_CONSUMER
        else:
            known = sorted(set(cli_store.catalog_departments().values()))
            if department not in known:
                raise InvalidDocumentError(
                    f"unknown department {department!r}; the catalog's departments: "
                    f"{', '.join(known)}"
                )
        issued = TokenStore(cli_store.open_store(store)).issue(department, role, scope=scope)
    facts = {
        "department": issued.principal.department,
        "role": issued.principal.role,
        "token_id": issued.principal.token_id,
        **({"scope": scope} if scope is not None else {}),
    }
    if as_json:
        emit_json({"ok": True, "token": issued.token, **facts})
        return
    stdout.print(issued.token, markup=False)
    console.print(
        f"{role} token {facts['token_id']} for {department}: shown once, keep it secret "
        "(the store keeps only its hash)",
        markup=False,
    )

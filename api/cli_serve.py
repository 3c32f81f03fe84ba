"""`commitledger serve` (the HTTP service, on loopback) and `commitledger tokens issue`."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.engine import make_url

from ledger import InvalidDocumentError

from . import cli_store
from .output import console, emit_json, fail, reporting_errors, stdout

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
    store: cli_store.StoreOpt = None,
    deployment: Annotated[
        Path | None,
        typer.Option("--deployment", help="Deployment file (default: data/deployment.json)."),
    ] = None,
    master_key_file: cli_store.MasterKeyOpt = None,
) -> None:
    """Run the HTTP service (API under /v1, lookup page at /) on 127.0.0.1."""
    import uvicorn

    from .service import ServiceContext, Settings, create_app
    from .service.logs import configure_logging

    if not _loopback(host):
        fail(f"{host!r}: {LOOPBACK_ONLY}", as_json=False)
    overrides: dict[str, Any] = {}
    if store is not None:
        overrides["store_url"] = store
    if deployment is not None:
        overrides["deployment_file"] = deployment
    if master_key_file is not None:
        overrides["master_key_file"] = master_key_file
    configure_logging()
    with reporting_errors(as_json=False):
        settings = Settings(**overrides)
        context = ServiceContext.open(settings)
    deployment_facts = context.chain.deployment
    chain = (
        f"chain {deployment_facts.chain_id}, contract {deployment_facts.contract}"
        if deployment_facts
        else f"no deployment file at {settings.resolved_deployment_file}: proofs unavailable"
    )
    shown_store = make_url(settings.resolved_store_url).render_as_string(hide_password=True)
    console.print(
        f"serving on http://{host}:{port} (store {shown_store}; {chain}; "
        f"intake {'open' if context.intake else 'closed: no master key'})",
        markup=False,
    )
    uvicorn.run(
        create_app(settings, context=context),
        host=host,
        port=port,
        log_config=None,
        access_log=False,  # its lines hold query strings, which can hold names
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        server_header=False,
    )


def tokens_issue(
    department: Annotated[str, typer.Option("--department", help="Department code, e.g. BJ-HRSS.")],
    role: Annotated[str, typer.Option("--role", help="registrar or verifier.")],
    store: cli_store.StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue a department token: printed once; the store keeps only its SHA-256."""
    from .service.tokens import TokenStore

    with reporting_errors(as_json):
        known = sorted(set(cli_store.catalog_departments().values()))
        if department not in known:
            raise InvalidDocumentError(
                f"unknown department {department!r}; the catalog's departments: {', '.join(known)}"
            )
        issued = TokenStore(cli_store.open_store(store)).issue(department, role)
    facts = {
        "department": issued.principal.department,
        "role": issued.principal.role,
        "token_id": issued.principal.token_id,
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

"""`commitledger serve` (the HTTP service, on loopback) and `commitledger tokens`: issue,
list, revoke and rotate the service's bearer tokens."""

from __future__ import annotations

import ipaddress
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.cli import store as cli_store
from api.output import console, emit_json, fail, reporting_errors, stdout
from ledger import InvalidDocumentError

if TYPE_CHECKING:
    from api.service import IssuedToken

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
LOOPBACK_ONLY = (
    "the service listens on loopback only (127.0.0.1): put a reverse proxy in front of it "
    "to serve others"
)


def register(app: typer.Typer) -> None:
    """Add `serve` and `tokens issue|list|revoke|rotate` to the command line."""
    app.command()(serve)
    tokens_app = typer.Typer(help="Bearer tokens for the HTTP service.", no_args_is_help=True)
    tokens_app.command("issue")(tokens_issue)
    tokens_app.command("list")(tokens_list)
    tokens_app.command("revoke")(tokens_revoke)
    tokens_app.command("rotate")(tokens_rotate)
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
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="TCP port on 127.0.0.1.")
    ] = 8000,
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
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Settings file (default: the data directory's commitledger.toml)."
        ),
    ] = None,
    store: cli_store.StoreOpt = None,
    deployment: Annotated[
        Path | None,
        typer.Option("--deployment", help="Deployment file (default: data/deployment.json)."),
    ] = None,
    master_key_file: cli_store.MasterKeyOpt = None,
    department: Annotated[
        str | None,
        typer.Option(
            "--department",
            help="Run as this department's instance: load only its keys (from "
            "<keys_dir>/<D>/), take only its writes (another department's answer 403).",
        ),
    ] = None,
    passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--passphrase-file",
            help="The file holding the key files' passphrase (or COMMITLEDGER_KEY_PASSPHRASE).",
        ),
    ] = None,
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
    from api.cli.serving import run_service

    if not _loopback(host):
        fail(f"{host!r}: {LOOPBACK_ONLY}", as_json=False)
    if demo and department is not None:
        fail(
            "--demo runs one instance holding every department's keys: drop --department",
            as_json=False,
        )
    given = {
        "chain": chain,
        "data_dir": data_dir,
        "store_url": store,
        "deployment_file": deployment,
        "master_key_file": master_key_file,
        "department": department,
        "key_passphrase_file": passphrase_file,
        "config": config,
    }
    run_service(host, port, {k: v for k, v in given.items() if v is not None}, demo=demo)


def tokens_issue(
    role: Annotated[
        str, typer.Option("--role", help="registrar, verifier, feed, operator or supervisor.")
    ],
    department: Annotated[
        str | None,
        typer.Option(
            "--department",
            help="Department code, e.g. BJ-HRSS (a feed token: the consumer, default FEED).",
        ),
    ] = None,
    scope: Annotated[
        str | None,
        typer.Option(
            "--scope", help="A feed token's scope: public, restricted, all or government."
        ),
    ] = None,
    expires_in: Annotated[
        float | None,
        typer.Option(
            "--expires-in", help="Days the token is valid (default: until revoked).", min=0
        ),
    ] = None,
    store: cli_store.StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue a department, feed, operator or supervisor token (an operator's reads /readyz
    in full; a supervisor's, the reform office's, reads every department's work lists and
    statistics and changes nothing): printed once; the store keeps only its SHA-256."""
    from api.service import FEED_CONSUMER, OPERATOR, SUPERVISOR, TokenStore

    with reporting_errors(as_json):
        if role == "feed":
            department = department or FEED_CONSUMER
        elif role == "operator":
            department = department or OPERATOR
        elif role == "supervisor":
            department = department or SUPERVISOR
        else:
            known = sorted(set(cli_store.catalog_departments().values()))
            if department not in known:
                raise InvalidDocumentError(
                    f"unknown department {department!r}; the catalog's departments: "
                    f"{', '.join(known)}"
                )
        issued = TokenStore(cli_store.open_store(store)).issue(
            department, role, scope=scope, expires_in_days=expires_in
        )
    _print_issued(issued, as_json)


def _print_issued(issued: IssuedToken, as_json: bool, replaced: str | None = None) -> None:
    principal = issued.principal
    facts = {
        "department": principal.department,
        "role": principal.role,
        "token_id": principal.token_id,
        **({"scope": principal.scope} if principal.scope is not None else {}),
        **({"revoked": replaced} if replaced is not None else {}),
    }
    if as_json:
        emit_json({"ok": True, "token": issued.token, **facts})
        return
    stdout.print(issued.token, markup=False)
    instead = f", replacing {replaced} (revoked)" if replaced else ""
    console.print(
        f"{principal.role} token {principal.token_id} for {principal.department}{instead}: "
        "shown once, keep it secret (the store keeps only its hash)",
        markup=False,
    )


TokenIdArg = Annotated[str, typer.Argument(help="The token's id, as `tokens list` shows it.")]


def tokens_list(
    department: Annotated[
        str | None,
        typer.Option(
            "--department",
            help="Only the tokens with this department column (e.g. BJ-HRSS, SUPERVISOR).",
        ),
    ] = None,
    store: cli_store.StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every token the store knows (ids, never the tokens): role, department, issued,
    expiry, revoked."""
    from api.service import TokenStore

    with reporting_errors(as_json):
        listed = TokenStore(cli_store.open_store(store)).listing()
    if department is not None:
        listed = [t for t in listed if t.department == department]
    now = time.time()
    rows = [
        {
            "token_id": t.token_id,
            "department": t.department,
            "role": t.role,
            "issued_at": _when(t.issued_at),
            "expires_at": _when(t.expires_at),
            "revoked_at": _when(t.revoked_at),
            "state": "revoked"
            if t.revoked_at is not None
            else "expired"
            if t.expires_at is not None and t.expires_at <= now
            else "live",
        }
        for t in listed
    ]
    if as_json:
        emit_json({"ok": True, "tokens": rows})
        return
    for row in rows:
        stdout.print(
            f"{row['token_id']}  {row['state']:<7}  {row['role']:<17}  {row['department']:<12}"
            f"  issued {row['issued_at']}  expires {row['expires_at'] or 'never'}",
            markup=False,
        )
    console.print(f"{len(rows)} tokens", markup=False)


def tokens_revoke(
    token_id: TokenIdArg, store: cli_store.StoreOpt = None, as_json: JsonOpt = False
) -> None:
    """Revoke a token by its id: refused with 401 from now on."""
    from api.service import TokenStore

    with reporting_errors(as_json):
        revoked = TokenStore(cli_store.open_store(store)).revoke_id(token_id)
    if as_json:
        emit_json({"ok": True, "token_id": revoked.token_id, "revoked": True})
        return
    console.print(
        f"{revoked.role} token {revoked.token_id} of {revoked.department} revoked", markup=False
    )


def tokens_rotate(
    token_id: TokenIdArg, store: cli_store.StoreOpt = None, as_json: JsonOpt = False
) -> None:
    """A new token for the same department, role and scope; the old one revoked at once."""
    from api.service import TokenStore

    with reporting_errors(as_json):
        issued = TokenStore(cli_store.open_store(store)).rotate(token_id)
    _print_issued(issued, as_json, replaced=token_id.lower())


def _when(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds")

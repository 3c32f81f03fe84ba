"""What `commitledger serve` does: the chain, the demo data if asked, then uvicorn on loopback."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

from sqlalchemy.engine import make_url

from api.cli.config import missing_for_serving
from api.demo import load_demo, prepare_keys
from api.managed_chain import SUPERVISE_INTERVAL_S, ServedChain, served_chain
from api.output import console, reporting_errors, stdout
from api.service import (
    ServiceContext,
    Settings,
    configure_logging,
    create_app,
    header_deadline_protocol,
)

EPHEMERAL_WARNING = (
    "warning: the embedded chain lives in this process only: everything anchored on it is "
    "lost when the service stops, and the store then points at a chain that is gone"
)


def _describe(served: ServedChain, context: ServiceContext) -> str:
    deployment = context.chain.deployment
    where = {"anvil": f"managed anvil at {served.rpc_url}", "embedded": "embedded chain"}.get(
        served.kind, f"node {served.rpc_url}"
    )
    if deployment is None:
        return f"{where}; no deployment file at {served.deployment_file}: proofs unavailable"
    deployed = " (deployed now)" if served.deployed_now else ""
    return f"{where}, chain {deployment.chain_id}, contract {deployment.contract}{deployed}"


def run_service(host: str, port: int, overrides: dict[str, Any], *, demo: bool) -> None:
    """Start the chain (and the demo data), serve until interrupted, stop what was started."""
    import uvicorn

    configure_logging()
    with ExitStack() as stack:
        with reporting_errors(as_json=False):
            settings = Settings.load(overrides)
            if demo:  # the demo's keys are made here, in clear: development only
                settings = prepare_keys(settings.for_demo())
            else:  # an empty data directory: say what it lacks and how to make it
                for note in missing_for_serving(settings):
                    console.print(f"note: {note}", markup=False)
            served = stack.enter_context(served_chain(settings))
        if served.kind == "embedded":
            console.print(EPHEMERAL_WARNING, markup=False)
        settings = settings.model_copy(
            update={
                "deployment_file": served.deployment_file,
                "chain_rpc_url": None if served.kind == "embedded" else served.rpc_url,
                "public_base_url": settings.public_base_url or f"http://{host}:{port}",
            }
        )
        with reporting_errors(as_json=False):
            if demo:
                facts = load_demo(settings, served.chain)
                _print_demo(facts.commitments, facts.breaches)
                kept = " (as before)" if facts.tokens_kept else ""
                stdout.print(f"registrar token ({facts.department}): {facts.registrar_token}{kept}")
                stdout.print(f"verifier token ({facts.department}): {facts.verifier_token}{kept}")
            context = ServiceContext.open(settings, chain=served.chain)
            held = _unlock_keys(context)
        if served.supervisor is not None:
            context.background.add("anvil", served.supervisor.check, SUPERVISE_INTERVAL_S)
        shown_store = make_url(settings.resolved_store_url).render_as_string(hide_password=True)
        console.print(
            f"serving on http://{host}:{port} (store {shown_store}; "
            f"{_describe(served, context)}; "
            f"intake {'open' if context.intake else 'closed: no master key'}; {held})",
            markup=False,
        )
        uvicorn.run(create_app(settings, context=context), **uvicorn_options(settings, host, port))


def _unlock_keys(context: ServiceContext) -> str:
    """Open every key the instance holds now (a wrong passphrase or a refused clear file
    stops the start, nothing loaded); what it holds, in words."""
    keys = context.keys
    try:
        opened = keys.unlock_all()
    except BaseException:
        context.close()
        raise
    whose = f"{keys.only}'s instance" if keys.only else "every department"
    if not opened:
        return f"{whose}: no department keys, public routes only"
    return f"{whose}: {len(opened)} keys"


def uvicorn_options(settings: Settings, host: str, port: int) -> dict[str, Any]:
    """uvicorn's arguments: forwarding headers believed only from the configured proxies
    (every client of a loopback service is 127.0.0.1, so trusting it would let anyone
    choose its own address), and a deadline on each request's headers."""
    proxies = settings.trusted_proxy_list
    return {
        "host": host,
        "port": port,
        "log_config": None,
        "access_log": False,  # its lines hold query strings, which can hold names
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies,
        "server_header": False,
        "http": header_deadline_protocol(settings.header_timeout_seconds),
    }


def _print_demo(commitments: int, breaches: int) -> None:
    if commitments:
        console.print(
            f"demo data: {commitments} sample commitments anchored and verified, "
            f"{breaches} breaches published",
            markup=False,
        )
    else:
        console.print("demo data: the data directory holds data already; kept as it is")

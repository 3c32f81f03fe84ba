"""Figures of several service instances on one PostgreSQL (`bench.py --consortium N`):
intake-to-anchored throughput with one, two and three `commitledger serve` processes.

A throwaway PostgreSQL cluster (the tests' own, tests/support/postgres.py) and an anvil node;
every instance holds every department's registrar key, so the anchoring leases
(`anchor:<D>`) go to whichever instance takes them first and pass on as the ledger's leases
allow. N signed commitments are POSTed round-robin over the instances by 8 client threads
(`wait=false`, answered once durable; one keep-alive connection per client
thread and instance); the clock stops when the store holds all N anchored.
On two cores the instances share the CPU: the figure shows what coordination costs, not a
speed-up. Not a test: speed is measured here, never asserted.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from api.demo import sample_commitments
from api.keyfiles import KeyUnlock, keystore_bytes, new_key
from api.service import TokenStore
from ledger import (
    REGISTRAR_ROLE,
    AnvilNode,
    Chain,
    Leases,
    LedgerContract,
    SigningKey,
    Store,
    department_id,
    free_port,
    sign_commitment,
)

ROOT = Path(__file__).resolve().parent.parent
COMMITLEDGER = Path(sys.executable).parent / "commitledger"
CLIENTS = 8
INSTANCES = (1, 2, 3)
READY_DEADLINE_S = 120.0
ANCHOR_DEADLINE_S = 600.0


@contextmanager
def _postgres() -> Iterator[Any]:
    """The tests' throwaway PostgreSQL cluster, started for the benchmark."""
    sys.path.insert(0, str(ROOT / "tests"))
    from support.postgres import (  # type: ignore[import-not-found]
        PG_USER,
        find_bindir,
        running_cluster,
    )

    bindir = find_bindir()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (no initdb/pg_ctl)")
    run_as = PG_USER if os.geteuid() == 0 else None
    with running_cluster(bindir, run_as, "commitledger-bench-pg-") as cluster:
        yield cluster


def _deploy(chain: Chain, departments: list[str]) -> tuple[LedgerContract, dict[str, LocalAccount]]:
    admin = Account.create()
    registrars = {name: Account.create() for name in departments}
    for account in (admin, *registrars.values()):
        chain.fund(account.address)
    ledger = LedgerContract.deploy(chain, admin)
    for name, account in registrars.items():
        ledger.grant_department_role(admin, REGISTRAR_ROLE, account.address, department_id(name))
    return ledger, registrars


def _write_keys(keys_dir: Path, registrars: dict[str, LocalAccount]) -> str:
    """The registrars as keystores (standard cost: instances take encrypted keys only);
    their passphrase, for the instances' environment."""
    passphrase = secrets.token_urlsafe(16)
    for department, account in registrars.items():
        folder = keys_dir / department
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "registrar.json").write_bytes(keystore_bytes(account, KeyUnlock(passphrase)))
        (folder / "registrar.json").chmod(0o600)
    return passphrase


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _one_run(
    instances: int, url: str, common: list[str], env: dict[str, str], workdir: Path,
    documents: list[tuple[str, bytes]],
) -> dict[str, Any]:  # fmt: skip
    store = Store(url)
    issued = TokenStore(store)
    tokens = {d: issued.issue(d, "registrar").token for d in {d for d, _ in documents}}
    processes: list[subprocess.Popen[bytes]] = []
    bases: list[str] = []
    try:
        for n in range(instances):
            port = free_port()
            data_dir = workdir / f"run{instances}-i{n}"
            data_dir.mkdir(parents=True)
            with (data_dir / "serve.log").open("ab") as log:
                command = [str(COMMITLEDGER), "serve", "--data-dir", str(data_dir), *common]
                command += ["--port", str(port)]
                processes.append(subprocess.Popen(command, stdout=log, stderr=log, env=env))
            bases.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + READY_DEADLINE_S
        while not all(_ready(b) for b in bases):
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"the instances did not start (logs under {workdir})")
            time.sleep(0.1)
        turn = itertools.count()
        lock = threading.Lock()
        # One keep-alive client per client thread, as real clients hold their connections:
        # a bare httpx.post builds a new Client (an SSL context, ~20 ms of CPU) and a new TCP
        # connection per request, which capped the figure at ~47/s on the client's side.
        local = threading.local()
        sessions: list[httpx.Client] = []

        def post(item: tuple[str, bytes]) -> None:
            department, body = item
            with lock:
                base = bases[next(turn) % len(bases)]
                if not hasattr(local, "client"):
                    local.client = httpx.Client(timeout=60)
                    sessions.append(local.client)
            headers = {"Authorization": f"Bearer {tokens[department]}"}
            answer = local.client.post(f"{base}/v1/commitments", content=body, headers=headers)
            if answer.status_code not in (200, 202):
                raise RuntimeError(f"intake answered {answer.status_code}: {answer.text[:200]}")

        started = time.perf_counter()
        try:
            with ThreadPoolExecutor(CLIENTS) as clients:
                list(clients.map(post, documents))
        finally:
            for session in sessions:
                session.close()
        intake_s = time.perf_counter() - started
        deadline = time.monotonic() + ANCHOR_DEADLINE_S
        while store.status().anchored < len(documents):
            if time.monotonic() > deadline:
                raise RuntimeError("not every commitment was anchored in time")
            time.sleep(0.05)
        total_s = time.perf_counter() - started
        anchoring_holders = {r.holder for r in Leases(store).all() if r.name.startswith("anchor:")}
        return {
            "instances": instances,
            "commitments": len(documents),
            "intake_per_second": round(len(documents) / intake_s, 1),
            "intake_to_anchored_per_second": round(len(documents) / total_s, 1),
            "batches": len(store.batches_in("anchored")),
            "instances_anchoring": len(anchoring_holders),
        }
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        store.close()


def consortium_figures(count: int) -> dict[str, Any]:
    """Intake to anchored with one, two and three instances on one PostgreSQL and anvil."""
    key = SigningKey.generate("ed25519")
    # Fresh documents for each run: the chain is the same, and a root anchored by an
    # earlier run would be adopted, not sent.
    runs = {
        instances: [
            (s.document.department, json.dumps(s.to_json_obj()).encode())
            for s in (sign_commitment(c, key) for c in sample_commitments(count, seed=instances))
        ]
        for instances in INSTANCES
    }
    departments = sorted({d for documents in runs.values() for d, _ in documents})
    workdir = Path(tempfile.mkdtemp(prefix="commitledger-bench-consortium-"))
    figures: dict[str, Any] = {"clients": CLIENTS}
    try:
        with _postgres() as cluster, AnvilNode() as node:
            chain = Chain.connect(node.url, kind="anvil")
            ledger, registrars = _deploy(chain, departments)
            passphrase = _write_keys(workdir / "keys", registrars)
            new_key("master", workdir / "master.key", KeyUnlock(passphrase))  # encrypted
            deployment = workdir / "deployment.json"
            deployment.write_text(json.dumps(
                {"rpc": node.url, "chain_id": chain.chain_id, "contract": ledger.address}
            ))  # fmt: skip
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("COMMITLEDGER_")},
                "COMMITLEDGER_KEY_PASSPHRASE": passphrase,
                "COMMITLEDGER_KEYS_DIR": str(workdir / "keys"),
                "COMMITLEDGER_FEED": "false",
                "COMMITLEDGER_LIFECYCLE": "false",
                "COMMITLEDGER_RATE_LIMIT_BURST": "1000000",
                "COMMITLEDGER_RATE_LIMIT_PER_SECOND": "1000000",
            }
            for instances in INSTANCES:
                url = cluster.url(cluster.create_database())
                common = ["--chain", node.url, "--store", url, "--deployment", str(deployment),
                          "--master-key-file", str(workdir / "master.key")]  # fmt: skip
                run = _one_run(instances, url, common, env, workdir, runs[instances])
                figures[f"{instances}_instances"] = run
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


if __name__ == "__main__":
    print(json.dumps(consortium_figures(int(sys.argv[1]) if len(sys.argv) > 1 else 1000), indent=2))

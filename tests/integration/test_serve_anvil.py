"""`commitledger serve --chain anvil` as a real process: it starts its own anvil, deploys,
anchors what is submitted, and after a SIGKILL and a restart nothing is lost."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from support.deployment import HRSS
from support.service_keys import CHEAP_UNLOCK, write_department_keys

from api.demo import sample_commitments
from api.keyfiles import new_key
from api.managed_chain import AnvilSupervisor
from api.service import TokenStore
from ledger import SigningKey, Store, free_port, hex32, sign_commitment

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("anvil_binary"),
]

COMMITLEDGER = Path(sys.executable).parent / "commitledger"
START_DEADLINE_S = 60.0
_ANVIL_URL = re.compile(r"managed anvil at (http://127\.0\.0\.1:\d+)")


def until(condition: Callable[[], bool], what: str, timeout: float = START_DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.1)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def node_answers(url: str) -> bool:
    body = {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
    try:
        return httpx.post(url, json=body, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def serving(data_dir: Path, log: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`commitledger serve --chain anvil` on a free port, ready; stopped (if alive) after."""
    port = free_port()
    with log.open("ab") as output:
        process = subprocess.Popen(
            [
                str(COMMITLEDGER),
                "serve",
                "--chain",
                "anvil",
                "--data-dir",
                str(data_dir),
                "--master-key-file",
                str(data_dir / "master.key"),
                "--port",
                str(port),
            ],
            stdout=output,
            stderr=output,
            env={**os.environ, "COMMITLEDGER_ANCHOR_MAX_AGE": "0.1"},
        )
    base = f"http://127.0.0.1:{port}"
    try:
        until(lambda: process.poll() is not None or answers(f"{base}/readyz"), "the service ready")
        assert process.poll() is None, log.read_text()
        yield base, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def test_serve_on_a_managed_anvil_loses_nothing_when_killed(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    new_key("master", data_dir / "master.key", CHEAP_UNLOCK)
    write_department_keys(data_dir / "keys", HRSS, Account.create(), Account.create())
    store = Store(f"sqlite:///{data_dir / 'ledger.db'}")
    token = TokenStore(store).issue(HRSS, "registrar").token
    operator = TokenStore(store).issue("OPERATOR", "operator").token
    store.close()
    headers = {"Authorization": f"Bearer {token}"}
    applicant = SigningKey.generate("ed25519")
    first, second = (sign_commitment(c, applicant) for c in sample_commitments(2, department=HRSS))
    log = tmp_path / "serve.log"

    with serving(data_dir, log) as (base, process):
        response = httpx.post(
            f"{base}/v1/commitments?wait=true&timeout=30",
            content=json.dumps(first.to_json_obj()).encode(),
            headers=headers,
            timeout=40,
        )
        assert response.status_code == 201, response.text
        batch = response.json()["batch"]
        match = _ANVIL_URL.search(log.read_text())
        assert match is not None, log.read_text()
        node = match.group(1)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        # The node goes with its supervisor, saving its state on the way out.
        until(lambda: not node_answers(node), "the managed anvil gone with the service")

    with serving(data_dir, log) as (base, _):
        audit = httpx.get(f"{base}/v1/audit/commitments/{hex32(first.hash())}", timeout=10)
        assert audit.status_code == 200, audit.text
        body = audit.json()
        assert body["state"] == "anchored"
        assert body["anchor"]["transaction"] == batch["transaction"]
        assert body["on_chain"] == {**body["on_chain"], "reachable": True, "anchored": True}
        proof = httpx.get(f"{base}/v1/audit/commitments/{hex32(first.hash())}/proof", timeout=10)
        assert proof.status_code == 200, proof.text
        # The restarted service anchors again, on the same contract.
        again = httpx.post(
            f"{base}/v1/commitments?wait=true&timeout=30",
            content=json.dumps(second.to_json_obj()).encode(),
            headers=headers,
            timeout=40,
        )
        assert again.status_code == 201, again.text
        assert again.json()["batch"]["block_number"] > batch["block_number"]
        ready = httpx.get(
            f"{base}/readyz", headers={"Authorization": f"Bearer {operator}"}, timeout=10
        ).json()
        assert ready["checks"]["chain"]["contract"] == proof.json()["contract"]
        assert ready["anchoring"]["anchored"] == 2
        assert "any local process can rewrite" in ready["development_chain"]  # managed anvil


def test_the_supervisor_restarts_a_dead_node_on_the_same_address(tmp_path: Path) -> None:
    supervisor = AnvilSupervisor(tmp_path)
    supervisor.start()
    try:
        url = supervisor.url
        assert supervisor.check() is False  # alive: nothing to do
        supervisor.node.kill()
        assert not node_answers(url)
        assert supervisor.check() is True
        assert node_answers(url)
        assert (supervisor.url, supervisor.restarts) == (url, 1)
    finally:
        supervisor.stop()
    assert not node_answers(url)
    assert (tmp_path / "anvil-state.json").exists()  # saved on the way out

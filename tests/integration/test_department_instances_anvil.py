"""Two department instances (`serve --department`) on one PostgreSQL and one anvil, each
holding only its own encrypted keys: each anchors its department's commitments with its own
registrar, and refuses to act for the other."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from hexbytes import HexBytes
from support.department_machines import PASSPHRASES, answers, department_dir, share_master_key
from support.deployment import HRSS, MARKET, Deployment, deploy
from support.service_world import write_deployment_file

from api.demo import sample_commitments
from api.service import TokenStore
from ledger import AnvilNode, Chain, SigningKey, Store, free_port, sign_commitment

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("anvil_binary")]

COMMITLEDGER = Path(sys.executable).parent / "commitledger"
START_DEADLINE_S = 60.0


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + START_DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {START_DEADLINE_S} s: {what}")
        time.sleep(0.1)


@contextmanager
def instance(
    data_dir: Path, department: str, common: list[str], env: dict[str, str]
) -> Iterator[str]:
    """`commitledger serve --department D` on a free port, ready; stopped after."""
    port = free_port()
    log = data_dir / "serve.log"
    command = [str(COMMITLEDGER), "serve", "--data-dir", str(data_dir), *common]
    command += ["--department", department, "--passphrase-file", str(data_dir / "passphrase")]
    with log.open("ab") as output:
        process = subprocess.Popen(
            [*command, "--port", str(port)],
            stdout=output,
            stderr=output,
            env=env,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        until(lambda: process.poll() is not None or answers(f"{base}/readyz"), "ready")
        assert process.poll() is None, log.read_text()
        yield base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        assert PASSPHRASES[department] not in log.read_text()


@pytest.fixture
def anvil_deployment(anvil: AnvilNode) -> Deployment:
    return deploy(Chain.connect(anvil.url, kind="anvil"))


def test_each_department_instance_anchors_its_own_and_refuses_the_other(
    tmp_path: Path, anvil: AnvilNode, anvil_deployment: Deployment, postgres_url: str
) -> None:
    d = anvil_deployment
    hrss_dir = department_dir(tmp_path, HRSS, d.registrar, d.verifier)
    market_dir = department_dir(tmp_path, MARKET, d.other_registrar, d.other_verifier)
    share_master_key(tmp_path, hrss_dir, market_dir)  # the store's, a copy on each machine
    deployment_file = write_deployment_file(tmp_path / "deployment.json", d, anvil.url)
    store = Store(postgres_url)
    tokens = {dep: TokenStore(store).issue(dep, "registrar").token for dep in (HRSS, MARKET)}
    store.close()
    common = ["--chain", anvil.url, "--store", postgres_url, "--deployment", str(deployment_file)]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMITLEDGER_")},
        "COMMITLEDGER_ANCHOR_MAX_AGE": "0.1",
        "COMMITLEDGER_FEED": "false",
        "COMMITLEDGER_LIFECYCLE": "false",
    }  # no COMMITLEDGER_KEY_PASSPHRASE: each instance reads its own passphrase file
    applicant = SigningKey.generate("ed25519")
    [hrss_doc] = sample_commitments(1, department=HRSS)
    [market_doc] = sample_commitments(1, seed=9, department=MARKET)

    def submit(base: str, document: object, department: str) -> httpx.Response:
        signed = sign_commitment(document, applicant)  # type: ignore[arg-type]
        return httpx.post(
            f"{base}/v1/commitments?wait=true&timeout=30",
            content=json.dumps(signed.to_json_obj()).encode(),
            headers={"Authorization": f"Bearer {tokens[department]}"},
            timeout=40,
        )

    def sender(response: httpx.Response) -> str:
        transaction = response.json()["batch"]["transaction"]
        return str(d.chain.w3.eth.get_transaction(HexBytes(transaction))["from"])

    with ExitStack() as stack:
        hrss = stack.enter_context(instance(hrss_dir, HRSS, common, env))
        market = stack.enter_context(instance(market_dir, MARKET, common, env))

        refused = submit(hrss, market_doc, MARKET)
        assert refused.status_code == 403, refused.text
        assert refused.json()["type"].endswith("/other-department")
        assert f"acts for {HRSS} only" in refused.json()["detail"]

        own = submit(hrss, hrss_doc, HRSS)
        assert own.status_code == 201, own.text
        assert sender(own) == d.registrar.address  # anchored with HRSS's own account

        other = submit(market, market_doc, MARKET)
        assert other.status_code == 201, other.text
        assert sender(other) == d.other_registrar.address

"""The anchoring pipeline against a real anvil node: every acknowledged commitment ends
anchored exactly once, whatever dies on the way.

kill -9 of `commitledger pipeline run` (at start, between sent and anchored, while waiting
for confirmations) and of `commitledger submit`; anvil stopped and restarted with its state;
anvil restarted without it (the contract redeployed at the same address); a reorg before the
confirmation depth (evm_snapshot / evm_revert).
"""

from __future__ import annotations

import logging
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from support.deployment import HRSS_ID, deploy
from support.pipeline import (
    COMMITLEDGER,
    DEPARTMENT,
    PipelineThread,
    check_exactly_once,
    new_intake,
    rpc,
    run,
    signed_documents,
    spawn,
    store_is_idle,
    submit_count,
    wait_for,
    write_account_key,
    write_deployment,
    write_signed_files,
)
from support.service_keys import open_master_key

from ledger import (
    REGISTRAR_ROLE,
    Anchorer,
    AnvilNode,
    Chain,
    Hash32,
    LedgerContract,
    PipelineConfig,
    Store,
    department_id,
    hex32,
    to_hash32,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("anvil_binary"),
]


@pytest.fixture(autouse=True)
def short_leases(monkeypatch: pytest.MonkeyPatch) -> None:
    """A `pipeline run` killed with -9 leaves its lease (`anchor:<D>`) to run out before the
    next run takes it (issue 18): 3 s here rather than the default 15 s."""
    monkeypatch.setenv("COMMITLEDGER_LEASE_TTL_SECONDS", "3")
    monkeypatch.setenv("COMMITLEDGER_LEASE_POLL_SECONDS", "0.5")


@dataclass
class Env:
    """A ledger on a running anvil node, a store, and the files the CLI needs."""

    dir: Path
    node: AnvilNode
    chain: Chain
    ledger: LedgerContract
    registrar: LocalAccount
    store: Store
    store_url: str
    key_file: Path
    deployment_file: Path

    def pipeline_args(self, *extra: object) -> list[object]:
        return [
            "pipeline", "run", "--key", self.key_file, "--deployment", self.deployment_file,
            "--store", self.store_url, *extra,
        ]  # fmt: skip

    def anchorer(self, **config: float) -> Anchorer:
        """An in-process anchorer with its own connection to the node."""
        chain = Chain.connect(self.node.url, kind="anvil")
        ledger = LedgerContract(chain, self.ledger.address)
        return Anchorer(
            self.store,
            ledger,
            {DEPARTMENT: self.registrar},
            PipelineConfig(**config),  # type: ignore[arg-type]
        )


def make_env(tmp_path: Path, node: AnvilNode) -> Env:
    chain = Chain.connect(node.url, kind="anvil")
    deployment = deploy(chain)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    return Env(
        dir=tmp_path,
        node=node,
        chain=chain,
        ledger=deployment.ledger,
        registrar=deployment.registrar,
        store=Store(url),
        store_url=url,
        key_file=write_account_key(tmp_path / "registrar.json", deployment.registrar),
        deployment_file=write_deployment(tmp_path / "deployment.json", node.url, deployment.ledger),
    )


@pytest.fixture
def env(tmp_path: Path, anvil: AnvilNode) -> Iterator[Env]:
    made = make_env(tmp_path, anvil)
    yield made
    made.store.close()


def finish(env: Env, name: str, *extra: object) -> None:
    """`pipeline run --until-idle` must end with nothing pending or in flight."""
    done = run(env.dir, name, *env.pipeline_args("--until-idle", "--timeout", 120, *extra))
    assert done.popen.returncode == 0, done.output()


# ---------------------------------------------------------------------- intake to anchored


def test_intake_to_anchored_exactly_once_while_intake_goes_on(env: Env) -> None:
    pipeline = PipelineThread(env.anchorer(batch_size=8, max_age=0.2)).start()
    hashes: list[Hash32] = []
    try:
        for _ in range(5):  # intake goes on while batches are cut and anchored
            done = len(env.store.batches_in("anchored"))
            hashes += submit_count(env.store, 13)

            def one_more(done: int = done) -> bool:
                return pipeline.alive() and len(env.store.batches_in("anchored")) > done

            wait_for(one_more, "one more batch anchored")
        wait_for(lambda: store_is_idle(env.store) and pipeline.alive(), "everything anchored")
    finally:
        pipeline.stop()
    assert check_exactly_once(env.store, env.ledger, hashes) >= 9  # 65 at 8 a batch


# ---------------------------------------------------------------------- kill -9 of the pipeline


@pytest.mark.parametrize("while_down", ["mined", "dropped"])
def test_kill9_between_sent_and_anchored_then_restart(env: Env, while_down: str) -> None:
    """Transactions wait in the pool (automine off) when the pipeline is killed; while it is
    dead they are either mined (the restart must find them, not resend) or dropped (the
    restart must send again)."""
    hashes = submit_count(env.store, 40)
    rpc(env.ledger, "evm_setAutomine", False)
    process = spawn(env.dir, "run1", *env.pipeline_args("--batch-size", 5, "--max-age", 0))
    try:
        wait_for(lambda: len(env.store.batches_in("sent")) >= 3, "three batches sent", 60)
    finally:
        process.kill9()
    assert process.popen.returncode == -signal.SIGKILL, process.output()
    sent = env.store.batches_in("sent")
    assert len(sent) >= 3
    assert env.store.batches_in("anchored") == []
    pooled = {b.id for b in sent if b.tx_hash and env.chain.transaction_known(b.tx_hash)}
    # batches are sent one by one: only the last may have died between mark_sent and broadcast
    assert {b.id for b in sent[:-1]} <= pooled

    if while_down == "mined":
        rpc(env.ledger, "evm_mine")
        assert all(
            env.ledger.batch_of(HRSS_ID, b.root).size == b.size for b in sent if b.id in pooled
        )
    else:
        rpc(env.ledger, "anvil_dropAllTransactions")
        assert not any(env.chain.transaction_known(b.tx_hash) for b in sent if b.tx_hash)
    rpc(env.ledger, "evm_setAutomine", True)

    finish(env, "run2", "--batch-size", 5)
    check_exactly_once(env.store, env.ledger, hashes)
    assert len(env.store.batches_in("anchored")) == 8
    for before in sent:
        after = env.store.batch(before.id)
        if before.id in pooled and while_down == "mined":  # found by its receipt, not resent
            assert (after.tx_hash, after.attempts) == (before.tx_hash, before.attempts)
        else:
            assert after.attempts == before.attempts + 1


def test_kill9_at_several_points_then_restart(env: Env) -> None:
    """Killed right after start, as soon as it forms a batch, and once some are anchored."""
    hashes = submit_count(env.store, 150)
    args = env.pipeline_args("--batch-size", 5, "--max-age", 0)

    at_once = spawn(env.dir, "at-once", *args)
    at_once.kill9()

    first = spawn(env.dir, "first-batch", *args)
    try:
        wait_for(lambda: env.store.batches_in("built", "sent", "anchored"), "a batch", 60)
    finally:
        first.kill9()
    done_before = len(env.store.batches_in("anchored"))
    assert done_before < 30

    middle = spawn(env.dir, "middle", *args)
    try:
        wait_for(lambda: len(env.store.batches_in("anchored")) > done_before, "one more", 60)
    finally:
        middle.kill9()
    assert len(env.store.batches_in("anchored")) < 30, "the middle run was not killed part way"

    finish(env, "last", "--batch-size", 5)
    check_exactly_once(env.store, env.ledger, hashes)
    assert len(env.store.batches_in("anchored")) == 30


def test_kill9_while_waiting_for_confirmations_then_restart(env: Env) -> None:
    """A block every second, --confirmations 2: killed with batches mined but not deep enough."""
    hashes = submit_count(env.store, 15)
    rpc(env.ledger, "evm_setIntervalMining", 1)
    args = env.pipeline_args("--batch-size", 5, "--max-age", 0, "--confirmations", 2)
    process = spawn(env.dir, "run1", *args)

    def mined_not_deep() -> bool:
        return any(
            (receipt := env.chain.receipt(b.tx_hash)) is not None
            and env.chain.block_number() - int(receipt["blockNumber"]) < 2
            for b in env.store.batches_in("sent")
            if b.tx_hash
        )

    try:
        wait_for(mined_not_deep, "a batch mined but not yet 2 blocks deep", 60)
    finally:
        process.kill9()
    assert len(env.store.batches_in("anchored")) < 3

    finish(env, "run2", "--batch-size", 5, "--confirmations", 2)
    check_exactly_once(env.store, env.ledger, hashes)
    for batch in env.store.batches_in("anchored"):
        assert batch.anchored_at is not None
        assert batch.block_number is not None
    assert (
        env.chain.block_number()
        - max(b.block_number or 0 for b in env.store.batches_in("anchored"))
        >= 2
    )


# ---------------------------------------------------------------------- kill -9 of intake


def test_kill9_of_intake_loses_no_acknowledged_commitment(env: Env) -> None:
    master = env.dir / "master.key"
    made = run(env.dir, "keys", "keys", "new", "--kind", "master", "--out", master)
    assert made.popen.returncode == 0, made.output()
    files = write_signed_files(env.dir / "docs", signed_documents(300))
    argv = [
        str(COMMITLEDGER), "submit", *map(str, files), "--store", env.store_url,
        "--master-key-file", str(master),
    ]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdout is not None
    printed: list[str] = []
    try:
        while len(printed) < 20:
            raw = process.stdout.readline()
            assert raw, f"submit ended after {len(printed)} acknowledgements"
            printed.append(raw.decode())
    finally:
        process.send_signal(signal.SIGKILL)
        rest, _ = process.communicate(timeout=10)
    printed += rest.decode().splitlines(keepends=True)
    complete = [line for line in printed if line.endswith("\n")]
    pattern = re.compile(r"^accepted (0x[0-9a-f]{64}) (\S+)\n$")
    acknowledged = []
    for line in complete:
        match = pattern.match(line)
        assert match, line
        acknowledged.append(to_hash32(match.group(1)))
    assert 20 <= len(acknowledged) < len(files), "the kill did not land part way"

    vault = open_master_key(master)
    intake = new_intake(env.store, vault)
    for digest in acknowledged:  # acknowledged => durable, and its sealed document opens
        assert env.store.get(digest) is not None, f"{hex32(digest)} acknowledged but lost"
        opened = intake.open_document(digest)
        assert opened is not None
        assert opened.document.hash() == digest

    assert env.anchorer(batch_size=50).drain(timeout=60)
    check_exactly_once(env.store, env.ledger, acknowledged)


# ---------------------------------------------------------------------- anvil down


def retry_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    pattern = re.compile(r"chain unavailable \(\w+\); retrying in ([0-9.]+)s")
    return [
        float(match.group(1))
        for record in list(caplog.records)
        if (match := pattern.search(record.getMessage()))
    ]


def test_anvil_stopped_then_restarted_with_its_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="commitledger.pipeline")
    state = tmp_path / "anvil-state.json"
    node = AnvilNode(state_file=state).start()
    try:
        env = make_env(tmp_path, node)
        anchorer = env.anchorer(
            batch_size=10, max_age=0.1, resend_grace=0.5, backoff_initial=0.1, backoff_max=0.8
        )
        pipeline = PipelineThread(anchorer).start()
        try:
            hashes = submit_count(env.store, 25)
            wait_for(lambda: store_is_idle(env.store), "the first commitments anchored")

            node.stop()  # saves its state
            hashes += submit_count(env.store, 17)  # intake goes on while the chain is down
            wait_for(lambda: len(retry_delays(caplog)) >= 5, "the pipeline retrying", 30)
            assert pipeline.alive()
            delays = retry_delays(caplog)
            assert delays[:4] == [0.1, 0.2, 0.4, 0.8]  # backing off, capped
            assert max(delays) == 0.8
            assert env.store.status().anchored == 25
            hashes += submit_count(env.store, 8)

            node = AnvilNode(port=node.port, state_file=state).start()
            wait_for(lambda: store_is_idle(env.store) and pipeline.alive(), "all anchored", 60)
        finally:
            pipeline.stop()
        check_exactly_once(env.store, env.ledger, hashes)
        assert env.store.status().anchored == 50
    finally:
        node.stop()


def deploy_at_nonce_zero(
    chain: Chain, admin: LocalAccount, registrar: LocalAccount
) -> LedgerContract:
    """Deploy from an admin that never sent anything: the address depends on it alone.
    Funding comes from the node's own account, so the admin's nonce stays 0."""
    chain.fund(admin.address)
    ledger = LedgerContract.deploy(chain, admin)
    ledger.grant_department_role(
        admin, REGISTRAR_ROLE, registrar.address, department_id(DEPARTMENT)
    )
    chain.fund(registrar.address)
    return ledger


def env_at_nonce_zero(tmp_path: Path, node: AnvilNode) -> tuple[Env, LocalAccount]:
    """An Env whose ledger was deployed by a fresh admin (returned, to redeploy it)."""
    chain = Chain.connect(node.url, kind="anvil")
    admin, registrar = Account.create(), Account.create()
    ledger = deploy_at_nonce_zero(chain, admin, registrar)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = Env(
        tmp_path, node, chain, ledger, registrar, Store(url), url,
        write_account_key(tmp_path / "registrar.json", registrar),
        write_deployment(tmp_path / "deployment.json", node.url, ledger),
    )  # fmt: skip
    return env, admin


def test_anvil_restarted_without_state_resends_vanished_batches(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Three batches wait in the pool when anvil dies with its whole chain. A fresh node comes
    up on the same port; for a while the contract is not there (the pipeline must keep
    retrying, not die); then the contract is redeployed at the same address and every batch
    is anchored exactly once."""
    caplog.set_level(logging.WARNING, logger="commitledger.pipeline")
    node = AnvilNode().start()
    try:
        env, admin = env_at_nonce_zero(tmp_path, node)
        hashes = submit_count(env.store, 30)
        rpc(env.ledger, "evm_setAutomine", False)  # the transactions wait in the pool
        anchorer = env.anchorer(batch_size=10, max_age=0.1, resend_grace=0.2, backoff_max=0.4)
        pipeline = PipelineThread(anchorer).start()
        try:
            wait_for(lambda: len(env.store.batches_in("sent")) == 3, "three batches sent")
            sent = env.store.batches_in("sent")

            node.kill()  # the pool and the whole chain are gone
            node = AnvilNode(port=node.port).start()
            fresh = Chain.connect(node.url, kind="anvil")
            fresh.fund(env.registrar.address)  # it could send, but there is no contract yet
            hashes += submit_count(env.store, 5)  # intake goes on
            wait_for(
                lambda: pipeline.alive() and "BadFunctionCallOutput" in caplog.text,
                "the pipeline finding no contract there",
            )
            assert pipeline.alive()
            assert env.store.batches_in("anchored") == []

            redeployed = deploy_at_nonce_zero(fresh, admin, env.registrar)
            assert redeployed.address == env.ledger.address
            wait_for(lambda: store_is_idle(env.store) and pipeline.alive(), "all anchored", 60)
        finally:
            pipeline.stop()
        check_exactly_once(env.store, redeployed, hashes)
        for before in sent:  # sent again (the very same bytes, when the nonce is the same)
            assert env.store.batch(before.id).attempts >= 2
        env.store.close()
    finally:
        node.stop()


def test_anvil_restarted_without_state_while_idle_new_commitments_are_anchored(
    tmp_path: Path,
) -> None:
    """Everything was anchored when anvil lost its chain. The pipeline, idle, never saw the
    node go; the next batch must not wait forever behind a nonce the fresh chain never had,
    and the batches anchored before (confirmations 0), gone with the old chain, are found
    missing by their roots and anchored again.
    """
    node = AnvilNode().start()
    try:
        env, admin = env_at_nonce_zero(tmp_path, node)
        pipeline = PipelineThread(env.anchorer(batch_size=5, max_age=0.1, resend_grace=0.2))
        pipeline.start()
        try:
            first = submit_count(env.store, 15)
            wait_for(lambda: store_is_idle(env.store), "the first batches anchored")
            before = {b.id for b in env.store.batches_in("anchored")}
            assert len(before) == 3

            node.kill()
            node = AnvilNode(port=node.port).start()
            redeployed = deploy_at_nonce_zero(
                Chain.connect(node.url, kind="anvil"), admin, env.registrar
            )
            assert redeployed.address == env.ledger.address
            hashes = submit_count(env.store, 10)

            def all_anchored_again() -> bool:
                resent = all(env.store.batch(b).attempts >= 2 for b in before)
                return resent and store_is_idle(env.store) and pipeline.alive()

            wait_for(all_anchored_again, "new ones and the lost ones anchored", 30)
        finally:
            pipeline.stop()
        check_exactly_once(env.store, redeployed, [*first, *hashes])
        for batch_id in before:  # the lost ones went out again
            assert env.store.batch(batch_id).attempts >= 2
        env.store.close()
    finally:
        node.stop()


# ---------------------------------------------------------------------- a reorg


def test_reorg_before_the_confirmation_depth_is_anchored_again(env: Env) -> None:
    anchorer = env.anchorer(batch_size=6, max_age=3600, confirmations=3, resend_grace=0.0)
    chain = anchorer.chain
    hashes = submit_count(env.store, 6)
    snapshot = rpc(env.ledger, "evm_snapshot")

    anchorer.step()  # cuts
    anchorer.step()  # sends; anvil mines it at once
    [batch] = env.store.batches_in("sent")
    assert batch.tx_hash is not None
    receipt = chain.receipt(batch.tx_hash)
    assert receipt is not None
    assert receipt["status"] == 1
    rpc(env.ledger, "anvil_mine", 1)
    assert anchorer.step() == 0  # 1 block deep of 3: not anchored yet
    assert env.store.batch(batch.id).state == "sent"
    assert env.ledger.batch_of(HRSS_ID, batch.root).size == batch.size

    assert rpc(env.ledger, "evm_revert", snapshot) is True  # the block and the tx are gone
    assert chain.receipt(batch.tx_hash) is None
    assert env.ledger.batch_of(HRSS_ID, batch.root).size == 0

    anchorer.follow_in_flight()  # vanished: back to built (and cached nonces forgotten)
    assert env.store.batch(batch.id).state == "built"
    anchorer.send_built()  # sent again, with the account's nonce as it is now
    again = env.store.batch(batch.id)
    assert again.state == "sent"
    assert again.attempts == 2
    assert again.tx_hash is not None
    assert chain.receipt(again.tx_hash) is not None

    def settled() -> bool:
        rpc(env.ledger, "anvil_mine", 1)
        anchorer.step()
        return env.store.batch(batch.id).state == "anchored"

    wait_for(settled, "the batch 3 blocks deep and anchored", 30)
    check_exactly_once(env.store, env.ledger, hashes)
    anchored = env.store.batch(batch.id)
    assert anchored.tx_hash == again.tx_hash
    assert chain.block_number() - (anchored.block_number or 0) >= 3

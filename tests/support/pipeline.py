"""Helpers for the anchoring pipeline tests: signed documents, intake, the exactly-once check,
polling with a deadline, and `commitledger` processes to kill."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count as counter
from pathlib import Path
from typing import Any, TypeVar

from eth_account.signers.local import LocalAccount
from sqlalchemy import select

from api.demo import sample_commitments
from ledger import (
    Acknowledgement,
    Anchorer,
    Hash32,
    Intake,
    LedgerContract,
    MatterTerms,
    SignedCommitment,
    SigningKey,
    Store,
    Vault,
    decisions_table,
    department_id,
    sign_commitment,
)
from support.service_keys import write_account
from verifier import default_catalog

DEPARTMENT = "BJ-HRSS"
COMMITLEDGER = Path(sys.executable).parent / "commitledger"

T = TypeVar("T")


# ---------------------------------------------------------------------- waiting


def wait_for(
    predicate: Callable[[], T], what: str, timeout: float = 30.0, interval: float = 0.02
) -> T:
    """Poll `predicate` until it returns something truthy (returned); fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------------- documents and intake

FIRST_DAY = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
_CALLS = counter()


def signed_documents(count: int, *, seed: int = 11) -> list[SignedCommitment]:
    """`count` signed BJ-HRSS commitments (fresh salts: distinct hashes on every call; each
    call a day earlier than the last: distinct codes, which intake wants)."""
    key = SigningKey.generate("ed25519")
    start = FIRST_DAY - timedelta(days=next(_CALLS))
    return [
        sign_commitment(document, key)
        for document in sample_commitments(count, seed=seed, department=DEPARTMENT, start=start)
    ]


def write_signed_files(directory: Path, documents: Iterable[SignedCommitment]) -> list[Path]:
    """Write each signed document as JSON; return the paths in order."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, signed in enumerate(documents):
        path = directory / f"signed{i:04d}.json"
        path.write_text(json.dumps(signed.to_json_obj(), ensure_ascii=False), encoding="utf-8")
        paths.append(path)
    return paths


def matters() -> dict[str, MatterTerms]:
    """Matter code -> the terms intake binds a commitment to, from the shipped catalog
    (as every production intake does)."""
    return default_catalog().intake_terms()


def new_intake(store: Store, vault: Vault | None = None) -> Intake:
    """An in-process intake over `store` with a fresh master key unless one is given."""
    return Intake(store, vault or Vault(secrets.token_bytes(32)), matters())


def submit_all(intake: Intake, documents: Sequence[SignedCommitment]) -> list[Hash32]:
    """Submit documents; every one must be acknowledged as new. Return their hashes."""
    acks = intake.submit_many(documents)
    hashes = []
    for ack in acks:
        assert isinstance(ack, Acknowledgement), ack
        assert ack.new
        hashes.append(ack.hash)
    return hashes


def submit_count(store: Store, count: int) -> list[Hash32]:
    """Submit `count` fresh commitments through a new intake."""
    return submit_all(new_intake(store), signed_documents(count))


# ---------------------------------------------------------------------- the exactly-once check


def store_is_idle(store: Store) -> bool:
    """Nothing pending and no batch built or sent."""
    figures = store.status()
    return figures.pending == 0 and figures.in_flight == 0 and figures.batches_in_flight == 0


def check_exactly_once(
    store: Store,
    ledger: LedgerContract,
    acknowledged: Iterable[Hash32],
    lost_batches: Collection[int] = (),
) -> int:
    """Every acknowledged commitment is anchored exactly once; return the anchored batches.

    For every batch the store holds as anchored: the contract holds its root with its size
    and department, its recorded transaction is mined in the recorded canonical block, and
    every member's stored proof verifies on chain. The roots of the chain's BatchAnchored
    events are exactly the store's anchored roots (no orphan: nothing anchored twice, nothing
    anchored behind the store's back). Every acknowledged hash is a member of exactly one
    anchored batch, and nothing in the store is left pending or in flight.

    `lost_batches` were anchored on a chain that has since been lost (a node restarted without
    its state): they are left out of the comparison with the chain.
    """
    chain = ledger.chain
    records = decision_leaves(store)
    everything = store.batches_in("anchored")
    anchored = [batch for batch in everything if batch.id not in lost_batches]
    roots = [batch.root for batch in anchored]
    assert len(set(roots)) == len(roots), "two anchored batches share a root"
    membership: Counter[bytes] = Counter()
    for batch in anchored:
        info = ledger.batch_of(department_id(batch.department), batch.root)
        assert info.size == batch.size, f"batch {batch.id}: root on chain with size {info.size}"
        assert info.department == department_id(batch.department)
        assert batch.tx_hash is not None
        assert batch.block_number is not None
        receipt = chain.receipt(batch.tx_hash)
        assert receipt is not None, f"batch {batch.id}: recorded transaction is not mined"
        assert receipt["status"] == 1
        assert int(receipt["blockNumber"]) == batch.block_number
        assert chain.block_hash(batch.block_number) == batch.block_hash, (
            f"batch {batch.id}: recorded block is not canonical"
        )
        members = store.batch_members(batch.id)
        assert len(members) == batch.size
        for member in members:
            if member in records:  # a decision record's hash, a leaf beside the commitments
                found = store.decision_anchoring(records[member])
            else:
                found = store.anchoring_of(member)
            assert found is not None
            assert found[0].id == batch.id
            assert ledger.is_anchored(
                department_id(batch.department), member, batch.root, found[1]
            ), f"proof of {member.hex()} does not verify on chain"
            membership[member] += 1
    # Only our departments' batches: another department's batch of a root is its own.
    ours = {department_id(batch.department) for batch in everything}
    events = [e for e in ledger.events("BatchAnchored") if bytes(e["args"]["department"]) in ours]
    event_roots = [bytes(event["args"]["root"]) for event in events]
    assert len(set(event_roots)) == len(event_roots), "a root was anchored twice"
    assert set(event_roots) == set(roots), (
        f"{len(set(event_roots) - set(roots))} roots on chain the store does not hold as "
        f"anchored; {len(set(roots) - set(event_roots))} anchored roots without an event"
    )
    by_root = {bytes(event["args"]["root"]): int(event["args"]["size"]) for event in events}
    assert all(by_root[batch.root] == batch.size for batch in anchored)
    wanted = list(acknowledged)
    assert len(set(wanted)) == len(wanted)
    missing = [h for h in wanted if membership[h] != 1]
    assert not missing, f"{len(missing)} acknowledged commitments not anchored exactly once"
    figures = store.status()
    assert figures.pending == 0
    assert store.pending_decisions() == 0
    assert figures.in_flight == 0
    assert figures.batches_in_flight == 0
    decided = [store.decision_of(commitment) for commitment in records.values()]
    anchored_records = sum(1 for d in decided if d is not None and d.state == "anchored")
    assert figures.anchored + anchored_records == sum(batch.size for batch in everything)
    assert sum(batch.size for batch in anchored) == sum(membership.values()) >= len(wanted)
    if anchored and not lost_batches:
        assert figures.last_anchored_block == max(b.block_number or 0 for b in anchored)
    return len(anchored)


def decision_leaves(store: Store) -> dict[bytes, Hash32]:
    """Record hash -> commitment hash of every decision record the store holds."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(decisions_table.c.record_hash, decisions_table.c.commitment_hash)
        ).all()
    return {bytes(row.record_hash): Hash32(bytes(row.commitment_hash)) for row in rows}


# ---------------------------------------------------------------------- in-process pipeline


@dataclass
class PipelineThread:
    """An Anchorer's `run` loop in a thread; an exception that escapes it is kept."""

    anchorer: Anchorer
    stop_event: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    thread: threading.Thread | None = None

    def start(self) -> PipelineThread:
        def target() -> None:
            try:
                self.anchorer.run(self.stop_event, idle_wait=0.02)
            except BaseException as exc:  # kept for the test to report
                self.error = exc

        self.thread = threading.Thread(target=target, name="anchorer", daemon=True)
        self.thread.start()
        return self

    def alive(self) -> bool:
        """The loop still runs (it did not die of an unexpected exception)."""
        assert self.error is None, f"the pipeline loop died: {self.error!r}"
        return self.thread is not None and self.thread.is_alive()

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the loop to stop and wait for it; fail if it died or hangs."""
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout)
            assert not self.thread.is_alive(), "the pipeline loop did not stop"
        assert self.error is None, f"the pipeline loop died: {self.error!r}"


# ---------------------------------------------------------------------- files for the CLI


def write_account_key(path: Path, account: LocalAccount) -> Path:
    """A keystore as `commitledger keys new --kind ethereum` writes it (the suite's
    passphrase, a cheap scrypt cost)."""
    return write_account(path, account)


def write_deployment(path: Path, rpc: str, ledger: LedgerContract) -> Path:
    """A deployment file as `commitledger deploy` writes it."""
    record = {
        "rpc": rpc,
        "chain_id": ledger.chain.chain_id,
        "contract": ledger.address,
        "department": DEPARTMENT,
    }
    path.write_text(json.dumps(record) + "\n")
    return path


def rpc(ledger: LedgerContract, method: str, *params: Any) -> Any:
    """A raw JSON-RPC call on the ledger's node (anvil's evm_* / anvil_* methods)."""
    response = ledger.chain.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
    assert "error" not in response, response
    return response.get("result")


# ---------------------------------------------------------------------- processes


@dataclass
class Process:
    """A `commitledger` process whose output goes to files (no pipe to fill up)."""

    popen: subprocess.Popen[bytes]
    out: Path
    err: Path

    def kill9(self) -> None:
        """SIGKILL, as a crash would; wait until it is gone."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def output(self) -> str:
        """What it printed on both streams (for failure messages)."""
        return f"stdout:\n{self.out.read_text()}\nstderr:\n{self.err.read_text()[-4000:]}"


def spawn(directory: Path, name: str, *args: object) -> Process:
    """Start `commitledger ARGS` with its output in `directory/name.{out,err}`."""
    out, err = directory / f"{name}.out", directory / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        popen = subprocess.Popen(
            [str(COMMITLEDGER), *(str(a) for a in args)], stdout=stdout, stderr=stderr
        )
    return Process(popen, out, err)


def run(directory: Path, name: str, *args: object, timeout: float = 150.0) -> Process:
    """Run `commitledger ARGS` to the end (or kill it after `timeout`)."""
    process = spawn(directory, name, *args)
    try:
        process.popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill9()
        raise AssertionError(
            f"commitledger {args} ran over {timeout}s\n{process.output()}"
        ) from None
    return process

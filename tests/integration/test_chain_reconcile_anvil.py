"""The registry reconciled with the chain, on a real anvil node: outcomes recorded with the
department's key outside this store are taken up with their evidence, a store state the chain
contradicts is a conflict, and `chain check` finds a storage change without an event."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.cli import one_json, unreachable_rpc
from support.feed_world import make_changes
from support.verifier_world import DAY, HRSS, World, open_world
from typer.testing import CliRunner

from api.cli import app as cli_app
from api.demo import sample_commitments
from ledger import (
    AnvilNode,
    Chain,
    EventIndexer,
    Hash32,
    LedgerContract,
    Sent,
    SigningKey,
    Status,
    department_id,
    hex32,
    keccak256,
)
from verifier.engine import EngineConfig
from verifier.feed import FeedFollower
from verifier.records import (
    ChainReconciler,
    VerifierRecords,
    reconciliation_counts,
    reconciliations,
)

pytestmark = pytest.mark.integration

RECORDS_SLOT = 4  # CommitmentLedger._records (forge inspect CommitmentLedger storageLayout)


@pytest.fixture
def world(tmp_path: Path, anvil: AnvilNode) -> Iterator[World]:
    with open_world(Chain.connect(anvil.url, kind="anvil"), tmp_path) as opened:
        yield opened


def out_of_band(world: World, commitment: Hash32, outcome: Status, note: bytes) -> Sent:
    """Another instance's outcome: the department's verifier key, straight to the contract
    over a connection of its own; nothing of it goes through this store."""
    assert world.chain.url is not None
    other = LedgerContract(Chain.connect(world.chain.url, kind="anvil"), world.ledger.address)
    anchoring = world.store.anchoring_of(commitment)
    assert anchoring is not None
    batch, proof = anchoring
    if outcome == Status.BREACHED:  # Breached only from Proposed: the notice first (issue #14)
        other.record_outcome(
            world.deployment.verifier, commitment, Status.PROPOSED, keccak256(b"notice"),
            batch.root, proof,
        )  # fmt: skip
    return other.record_outcome(
        world.deployment.verifier, commitment, outcome, keccak256(note), batch.root, proof
    )


def follow(world: World) -> None:
    """One pass of the follower the service runs: index confirmed events, reconcile, feed."""
    keys = {HRSS: SigningKey.generate("ed25519")}
    follower = FeedFollower(world.store, world.ledger, world.catalog, world.vault, keys.get)
    try:
        follower.advance()
    finally:
        follower.close()


def beijing_today() -> datetime:
    return datetime.now(UTC) + timedelta(hours=8)


def test_outcomes_recorded_out_of_band_are_taken_up_with_their_evidence(world: World) -> None:
    breached, _ = world.commit_kind("false")
    kept, _ = world.commit_kind("agree")
    sent_breach = out_of_band(world, breached, Status.BREACHED, b"another instance: false")
    sent_kept = out_of_band(world, kept, Status.KEPT, b"another instance: kept")

    follow(world)

    records = VerifierRecords(world.store)
    verification = records.verification(kept)
    assert verification is not None
    assert verification.state == "kept"
    assert verification.evidence == keccak256(b"another instance: kept")
    assert verification.tx_hash == sent_kept.tx_hash
    assert verification.block_number == sent_kept.block_number
    on_breach = records.verification(breached)
    assert on_breach is not None and on_breach.state == "breached"
    # The public list shows the chain's breach, with the chain's transaction as its evidence.
    listed = records.search_breaches(beijing_today().date()).records
    assert [r.commitment_hash for r in listed] == [hex32(breached)]
    evidence = listed[0].evidence
    assert evidence.transaction == hex32(Hash32(sent_breach.tx_hash))
    assert evidence.block == sent_breach.block_number
    assert evidence.contract == world.ledger.address
    taken = reconciliations(world.store, "taken_up")
    assert {t.commitment_hash for t in taken} == {hex32(breached), hex32(kept)}
    assert reconciliation_counts(world.store) == {"taken_up": 2, "conflicts": 0}
    follow(world)  # a second pass finds the store in step: nothing twice
    assert reconciliation_counts(world.store) == {"taken_up": 2, "conflicts": 0}


def test_this_store_s_own_outcomes_are_neither_taken_up_nor_conflicts(world: World) -> None:
    make_changes(world)  # kept, mismatch, breach then repaired, needs-manual, withdrawal
    follow(world)
    assert reconciliation_counts(world.store) == {"taken_up": 0, "conflicts": 0}


def test_a_follower_beside_a_verification_run_takes_up_nothing_of_its_own(
    tmp_path: Path, anvil: AnvilNode
) -> None:
    small = EngineConfig(chunk=10, outcomes_per_transaction=5)  # many transactions
    chain = Chain.connect(anvil.url, kind="anvil")
    with open_world(chain, tmp_path, config=small) as world:
        world.commit(*sample_commitments(40, seed=21, department=HRSS))
        keys = {HRSS: SigningKey.generate("ed25519")}
        follower = FeedFollower(world.store, world.ledger, world.catalog, world.vault, keys.get)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                world.engine.run(DAY)
            except BaseException as exc:  # reported below
                errors.append(exc)

        runner = threading.Thread(target=run)
        runner.start()
        while runner.is_alive():
            follower.advance()  # as the service's feed task does, between the run's writes
        follower.advance()
        follower.close()
        assert not errors
        assert reconciliation_counts(world.store) == {"taken_up": 0, "conflicts": 0}
        assert len(world.ledger.events("OutcomeRecorded")) == 40  # the run recorded them all


def test_a_breach_annulled_out_of_band_leaves_the_list_once_settled(world: World) -> None:
    commitment, _ = world.commit_kind("false")
    world.engine.run(DAY)
    world.publish(DAY)  # proposed, then published (issue #14)
    records = VerifierRecords(world.store)
    [published] = records.search_breaches(DAY).records
    assert published.commitment_hash == hex32(commitment)
    assert world.chain.url is not None
    other = LedgerContract(Chain.connect(world.chain.url, kind="anvil"), world.ledger.address)
    other.record_outcome(
        world.deployment.verifier, commitment, Status.CORRECTED, keccak256(b"objection upheld")
    )
    EventIndexer(world.store, world.ledger).sync()
    now = [0.0]
    reconciler = ChainReconciler(
        world.store, world.ledger, world.catalog, world.vault, clock=lambda: now[0]
    )
    # Just seen: the process that annulled it on chain may be about to annul it here too.
    assert reconciler.reconcile() == 0
    assert records.search_breaches(DAY).records == [published]
    now[0] = 60.0  # a minute later: settled
    assert reconciler.reconcile() == 1
    assert records.search_breaches(DAY).records == []
    stored = records.breach(published.id)
    assert stored is not None and stored.status == "corrected"
    assert reconciliation_counts(world.store) == {"taken_up": 1, "conflicts": 0}


def test_a_store_state_the_chain_contradicts_is_a_conflict_reported_without_personal_data(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    commitment, document = world.commit_kind("false")
    world.engine.schedule(DAY)
    records = VerifierRecords(world.store)
    # This store believes the promise kept (a backup restored from another branch, say) ...
    records.record_outcome(
        commitment,
        "kept",
        outcome_status=int(Status.KEPT),
        evidence=keccak256(b"this store's own belief"),
        report=None,
        tx_hash=bytes(32),
        block_number=1,
    )
    # ... while the department's key recorded a breach on chain.
    sent = out_of_band(world, commitment, Status.BREACHED, b"another instance: false")

    with caplog.at_level(logging.WARNING, logger="commitledger.reconcile"):
        follow(world)

    [conflict] = reconciliations(world.store, "conflict")
    assert conflict.commitment_hash == hex32(commitment)
    assert conflict.chain_status == "Breached"
    assert conflict.store_state == "kept"
    assert conflict.transaction == hex32(Hash32(sent.tx_hash))
    assert reconciliation_counts(world.store)["conflicts"] == 1
    logged = [r.getMessage() for r in caplog.records if r.name == "commitledger.reconcile"]
    assert any(hex32(commitment) in line and "conflict" in line for line in logged)
    for line in logged:
        assert document.applicant.name not in line
        assert document.applicant.id_number not in line
    # The store's own state stays as it was: a conflict is reported, never resolved silently.
    verification = records.verification(commitment)
    assert verification is not None and verification.state == "kept"
    # chain check names the difference and lists the conflict recorded.
    code, found, output = chain_check(tmp_path, world)
    assert code == 1, output
    assert found is not None
    [difference] = found["differences"]
    assert (difference["kind"], difference["commitment"]) == ("store", hex32(commitment))
    assert (difference["chain"], difference["store"]) == ("Breached", "kept")
    assert [c["commitment_hash"] for c in found["conflicts"]] == [hex32(commitment)]
    assert any(
        line.startswith("conflict recorded:") and hex32(commitment) in line
        for line in output.splitlines()
    )


def record_slot(department: bytes, commitment: Hash32) -> str:
    """The storage slot of `_records[department][commitment]` (status in its lowest byte)."""
    inner = keccak256(department + RECORDS_SLOT.to_bytes(32, "big"))
    return "0x" + keccak256(commitment + inner).hex()


def chain_check(
    tmp_path: Path, world: World, rpc: str | None = None
) -> tuple[int, dict[str, Any] | None, str]:
    """`chain check` with --json and without: its exit code, JSON document and text."""
    deployment = tmp_path / "deployment.json"
    deployment.write_text(
        json.dumps(
            {
                "rpc": rpc or world.chain.url,
                "chain_id": world.chain.chain_id,
                "contract": world.ledger.address,
            }
        )
    )
    store = f"sqlite:///{world.db_path}"
    args = ["chain", "check", "--deployment", str(deployment), "--store", store]
    result = CliRunner().invoke(cli_app, [*args, "--json"])
    human = CliRunner().invoke(cli_app, args)
    assert human.exit_code == result.exit_code, human.output
    document = one_json(result.stdout) if result.exit_code in (0, 1) else None
    return result.exit_code, document, human.output


def test_chain_check_finds_a_breach_turned_kept_without_an_event(
    world: World, tmp_path: Path
) -> None:
    commitment, _ = world.commit_kind("false")
    world.engine.run(DAY)
    world.publish(DAY)  # proposed, then published (issue #14)
    department = department_id(HRSS)
    assert world.ledger.status_of(department, commitment).status == Status.BREACHED

    code, clean, output = chain_check(tmp_path, world)
    assert code == 0, output
    assert clean is not None and clean["ok"] is True and clean["differences"] == []
    assert clean["commitments"] >= 1
    assert "agree" in output.splitlines()[-1]

    slot = record_slot(department, commitment)
    w3 = world.chain.w3
    word = bytes(w3.eth.get_storage_at(world.ledger.address, slot))  # type: ignore[arg-type]
    assert word[-1] == Status.BREACHED
    flipped = word[:-1] + bytes([Status.KEPT])
    w3.provider.make_request(
        "anvil_setStorageAt", [world.ledger.address, slot, "0x" + flipped.hex()]
    )  # type: ignore[arg-type]
    assert world.ledger.status_of(department, commitment).status == Status.KEPT

    code, found, output = chain_check(tmp_path, world)
    assert code == 1, output
    assert found is not None and found["ok"] is False
    [difference] = found["differences"]
    assert difference["commitment"] == hex32(commitment)
    assert (difference["department"], difference["replayed"], difference["chain"]) == (
        HRSS,
        "Breached",
        "Kept",
    )
    assert difference["store"] == "breached (published)"
    line = next(x for x in output.splitlines() if x.startswith("no_event:"))
    assert hex32(commitment) in line and HRSS in line
    assert "replayed Breached" in line and "chain Kept" in line and "breached" in line


def test_chain_check_exits_3_when_no_node_answers(world: World, tmp_path: Path) -> None:
    code, _, output = chain_check(tmp_path, world, rpc=unreachable_rpc())
    assert code == 3, output

"""Decision records anchored on a real anvil node, on SQLite and PostgreSQL stores: each
record's hash is a leaf of its department's next batch beside its commitments (or alone),
proven on chain by the contract's isAnchored; a changed record is not. The batch is
re-formed under a fresh root, or anchored again after its block is lost, with its decision
leaves still proven.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from support.deployment import HRSS_ID, Deployment, deploy
from support.pipeline import DEPARTMENT, check_exactly_once, rpc, submit_count, wait_for

from ledger import (
    Anchorer,
    AnvilNode,
    BatchRow,
    Chain,
    DecisionRecord,
    Hash32,
    LedgerContract,
    PipelineConfig,
    Store,
    verify_proof,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("anvil_binary")]

DRAIN_TIMEOUT = 60.0


@pytest.fixture
def deployment_on_anvil(anvil: AnvilNode) -> Deployment:
    return deploy(Chain.connect(anvil.url, kind="anvil"))


@pytest.fixture
def anchorer(store: Store, deployment_on_anvil: Deployment) -> Anchorer:
    d = deployment_on_anvil
    chain = Chain.connect(d.chain.url or "", kind="anvil")
    config = PipelineConfig(batch_size=4, max_age=3600, resend_grace=0.0, recheck_every=0.0)
    return Anchorer(
        store, LedgerContract(chain, d.ledger.address), {DEPARTMENT: d.registrar}, config
    )


def decide(store: Store, commitment: Hash32, *, late: bool) -> DecisionRecord:
    """Record a decision on `commitment` (past its due time when `late`)."""
    stored = store.get(commitment)
    assert stored is not None and stored.channel in ("counter", "online")
    received = datetime.fromtimestamp(stored.received_at, UTC)
    decision = DecisionRecord(
        commitment=commitment,
        department=stored.department,
        matter_code=stored.matter_code,
        channel=stored.channel,  # type: ignore[arg-type]  # checked just above
        received_at=received,
        due_at=received + timedelta(hours=4),
        decided_at=received + timedelta(hours=5 if late else 1),
        decided_by="tok_clerk.01",
        result="approved",
    )
    assert store.record_decision(decision)
    return decision


def drained(anchorer: Anchorer) -> None:
    assert anchorer.drain(DRAIN_TIMEOUT), "the pipeline did not drain"


def proven_on_chain(
    store: Store, ledger: LedgerContract, decision: DecisionRecord
) -> tuple[BatchRow, tuple[Hash32, ...]]:
    """The decision's record hash is proven in its anchored batch, in Python and by the
    contract; return the batch and the proof."""
    stored = store.decision_of(decision.commitment)
    assert stored is not None
    assert stored.hash == decision.hash() and stored.state == "anchored"
    found = store.decision_anchoring(decision.commitment)
    assert found is not None
    batch, proof = found
    assert batch.state == "anchored" and batch.id == stored.batch_id
    assert verify_proof(batch.root, stored.hash, proof)
    assert ledger.is_anchored(HRSS_ID, stored.hash, batch.root, proof)
    return batch, proof


def test_decisions_are_anchored_beside_commitments_and_alone(
    store: Store, anchorer: Anchorer, deployment_on_anvil: Deployment
) -> None:
    ledger = deployment_on_anvil.ledger
    hashes = submit_count(store, 3)
    drained(anchorer)
    [first] = store.batches_in("anchored")
    assert first.size == 3

    on_time = decide(store, hashes[0], late=False)
    late = decide(store, hashes[1], late=True)
    assert late.late and not on_time.late
    hashes += submit_count(store, 1)
    drained(anchorer)
    batch, _ = proven_on_chain(store, ledger, on_time)
    assert proven_on_chain(store, ledger, late)[0].id == batch.id
    assert batch.size == 3  # one commitment and two decision records
    assert store.batch_members(batch.id) == [hashes[3], on_time.hash(), late.hash()]

    # A record changed afterwards (the late decision moved back within the limit) is not
    # what was anchored: its hash fails the stored proof on chain.
    moved = dataclasses.replace(late, decided_at=late.due_at)
    late_proof = store.decision_anchoring(late.commitment)
    assert late_proof is not None
    assert not moved.late and moved.hash() != late.hash()
    assert not ledger.is_anchored(HRSS_ID, moved.hash(), batch.root, late_proof[1])

    alone = decide(store, hashes[2], late=False)
    drained(anchorer)
    only, _ = proven_on_chain(store, ledger, alone)
    assert only.size == 1 and store.batch_members(only.id) == [alone.hash()]
    check_exactly_once(store, ledger, hashes)


def test_a_batch_re_formed_under_a_fresh_root_keeps_its_decisions_proven(
    store: Store, anchorer: Anchorer, deployment_on_anvil: Deployment
) -> None:
    """Our registrar key, used elsewhere, anchors the batch's root with a wrong size first:
    the batch (a commitment and decision records) is re-formed and anchored again."""
    d = deployment_on_anvil
    hashes = submit_count(store, 2)
    drained(anchorer)
    decisions = [decide(store, h, late=n == 1) for n, h in enumerate(hashes)]
    hashes += submit_count(store, 1)
    assert anchorer.cut_due_batches(force=True) == 1
    [built] = store.batches_in("built")
    assert built.size == 3
    d.chain.forget_nonces()
    d.ledger.anchor_batch(d.registrar, built.root, 100)

    def anchored() -> bool:
        anchorer.step()
        return store.batch(built.id).state == "anchored"

    wait_for(anchored, "the re-formed batch anchored", DRAIN_TIMEOUT)
    batch = store.batch(built.id)
    assert batch.root != built.root and batch.size == 4  # its leaves and the extra one
    assert store.reformed_batches() == 1
    assert len(store.batch_members(batch.id)) == 3
    for decision in decisions:
        assert proven_on_chain(store, d.ledger, decision)[0].root == batch.root
    anchoring = store.anchoring_of(hashes[2])
    assert anchoring is not None and anchoring[0].root == batch.root
    assert d.ledger.is_anchored(HRSS_ID, hashes[2], batch.root, anchoring[1])


def test_a_lost_anchoring_is_anchored_again_with_its_decisions(
    store: Store, anchorer: Anchorer, deployment_on_anvil: Deployment
) -> None:
    """The block that anchored a batch of decisions is lost (the chain reverted under it):
    the recheck finds the root gone, the batch is sent again, and proven again."""
    d = deployment_on_anvil
    hashes = submit_count(store, 2)
    drained(anchorer)
    decisions = [decide(store, h, late=False) for h in hashes]
    snapshot = rpc(d.ledger, "evm_snapshot")
    drained(anchorer)
    lost, _ = proven_on_chain(store, d.ledger, decisions[0])
    assert rpc(d.ledger, "evm_revert", snapshot) is True
    assert d.ledger.batch_of(HRSS_ID, lost.root).size == 0

    assert anchorer.recheck_anchored(force=True) == 1
    states = {store.decision_of(h).state for h in hashes}  # type: ignore[union-attr]
    assert states == {"batched"}
    drained(anchorer)
    again, _ = proven_on_chain(store, d.ledger, decisions[1])
    assert again.id == lost.id and again.root == lost.root
    assert again.tx_hash != lost.tx_hash or again.block_hash != lost.block_hash
    check_exactly_once(store, d.ledger, hashes)

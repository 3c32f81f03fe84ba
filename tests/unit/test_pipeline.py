"""The anchoring pipeline on the embedded chain: when batches are cut, how many are in flight,
adoption of a root already on chain, resending an unknown transaction, confirmations, status."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import pytest
from eth_account import Account
from support.deployment import HRSS_ID, Deployment, deploy
from support.pipeline import (
    DEPARTMENT,
    check_exactly_once,
    new_intake,
    signed_documents,
    submit_all,
    submit_count,
)

from ledger import (
    Anchorer,
    Chain,
    Hash32,
    LedgerContract,
    MerkleTree,
    PipelineConfig,
    Store,
    build_tree,
    verify_proof,
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(embedded_chain: Chain) -> Deployment:
    return deploy(embedded_chain)


def anchorer(
    store: Store,
    setup: Deployment,
    clock: Callable[[], float] | None = None,
    **config: float,
) -> Anchorer:
    settings: dict[str, float] = {"batch_size": 4, "max_age": 3600.0} | config
    return Anchorer(
        store,
        setup.ledger,
        {DEPARTMENT: setup.registrar},
        PipelineConfig(**settings),  # type: ignore[arg-type]
        clock=clock or Clock(),
    )


def states(store: Store) -> list[str]:
    return [b.state for b in store.batches_in("built", "sent", "anchored")]


def mine(chain: Chain, blocks: int) -> None:
    chain.w3.provider.ethereum_tester.mine_blocks(blocks)  # type: ignore[attr-defined]


def test_build_tree_gives_the_root_and_a_proof_per_member() -> None:
    hashes = [Hash32(secrets.token_bytes(32)) for _ in range(5)]
    root, proofs = build_tree(hashes)
    assert root == MerkleTree.build(hashes).root
    assert set(proofs) == set(hashes)
    assert all(verify_proof(root, h, proofs[h]) for h in hashes)


def test_a_full_batch_is_cut_at_once_and_a_partial_one_waits(
    store: Store, setup: Deployment
) -> None:
    pipeline = anchorer(store, setup, batch_size=4)
    submit_count(store, 3)
    assert pipeline.step() == 0  # 3 < batch_size and far from max_age
    assert store.batches_in("built", "sent", "anchored") == []
    assert store.status().pending == 3

    submit_count(store, 6)  # 9 pending: two full batches at once, one left over
    assert pipeline.cut_due_batches() == 2
    built = store.batches_in("built")
    assert [b.size for b in built] == [4, 4]
    assert store.status().pending == 1
    assert pipeline.cut_due_batches() == 0  # the single leftover is not due


def test_a_partial_batch_is_cut_when_its_oldest_member_is_max_age_old(
    store: Store, setup: Deployment
) -> None:
    clock = Clock()
    pipeline = anchorer(store, setup, clock, batch_size=100, max_age=5.0)
    hashes = submit_count(store, 3)
    [(_, count, oldest)] = store.pending_by_department()
    assert count == 3

    clock.now = oldest + 4.99
    assert pipeline.cut_due_batches() == 0
    clock.now = oldest + 5.0
    assert pipeline.cut_due_batches() == 1
    [batch] = store.batches_in("built")
    assert batch.size == 3
    assert batch.created_at == clock.now
    assert set(store.batch_members(batch.id)) == set(hashes)


def test_max_in_flight_is_respected(store: Store, setup: Deployment) -> None:
    pipeline = anchorer(store, setup, batch_size=2, max_in_flight=2)
    hashes = submit_count(store, 11)
    assert pipeline.cut_due_batches() == 2
    assert len(store.batches_in("built")) == 2
    assert pipeline.cut_due_batches() == 0  # two built: no room
    assert pipeline.send_built() == 2
    assert pipeline.cut_due_batches() == 0  # two sent (mined, not yet followed): still none
    worst = 0
    for _ in range(100):
        pipeline.step()
        worst = max(worst, len(store.batches_in("built", "sent")))
        if store.status().pending == 0 and not store.batches_in("built", "sent"):
            break
    assert worst == 2
    # the last, odd one waits for its age; drain forces it
    assert pipeline.drain(timeout=30)
    assert sorted(b.size for b in store.batches_in("anchored")) == [1, 2, 2, 2, 2, 2]
    check_exactly_once(store, setup.ledger, hashes)


def test_a_root_already_on_chain_is_adopted_not_resent(store: Store, setup: Deployment) -> None:
    pipeline = anchorer(store, setup, batch_size=4)
    hashes = submit_count(store, 4)
    assert pipeline.cut_due_batches() == 1
    [batch] = store.batches_in("built")
    earlier = setup.ledger.anchor_batch(setup.registrar, batch.root, batch.size)
    nonce_before = setup.chain.w3.eth.get_transaction_count(setup.registrar.address)

    assert pipeline.send_built() == 1  # the send finds BatchAlreadyAnchored: adopt
    adopted = store.batch(batch.id)
    assert adopted.state == "anchored"
    assert adopted.attempts == 0  # nothing was sent
    assert adopted.tx_hash == earlier.tx_hash
    assert adopted.block_number == earlier.block_number
    assert setup.chain.w3.eth.get_transaction_count(setup.registrar.address) == nonce_before
    assert len(setup.ledger.events("BatchAnchored")) == 1
    check_exactly_once(store, setup.ledger, hashes)


def test_a_sent_batch_whose_transaction_is_unknown_is_resent_after_the_grace(
    store: Store, setup: Deployment
) -> None:
    clock = Clock()
    pipeline = anchorer(store, setup, clock, batch_size=4, resend_grace=2.0)
    hashes = submit_count(store, 4)
    pipeline.cut_due_batches()
    [batch] = store.batches_in("built")
    # as if a process marked it sent and died before the broadcast
    store.mark_sent(batch.id, secrets.token_bytes(32), now=clock.now)

    clock.now += 1.9
    assert pipeline.step() == 0
    assert store.batch(batch.id).state == "sent"
    assert setup.ledger.batch_of(HRSS_ID, batch.root).size == 0

    clock.now += 0.2
    pipeline.follow_in_flight()  # vanished: back to built
    assert store.batch(batch.id).state == "built"
    pipeline.send_built()
    pipeline.follow_in_flight()
    resent = store.batch(batch.id)
    assert resent.state == "anchored"
    assert resent.attempts == 2
    check_exactly_once(store, setup.ledger, hashes)


def test_a_batch_counts_as_anchored_only_at_the_confirmation_depth(
    store: Store, setup: Deployment
) -> None:
    pipeline = anchorer(store, setup, batch_size=4, confirmations=3)
    hashes = submit_count(store, 4)
    pipeline.cut_due_batches()
    pipeline.send_built()
    [batch] = store.batches_in("sent")
    for _ in range(2):
        mine(setup.chain, 1)
        assert pipeline.follow_in_flight() == 0
        assert store.batch(batch.id).state == "sent"
    mine(setup.chain, 1)
    assert pipeline.follow_in_flight() == 1
    assert store.batch(batch.id).state == "anchored"
    check_exactly_once(store, setup.ledger, hashes)


def test_a_transaction_that_anchors_nothing_is_never_counted_as_anchored(
    store: Store, setup: Deployment
) -> None:
    """Sent where no contract is (a wrong deployment file, a node that lost its chain), the
    transaction succeeds and anchors nothing: the batch stays in flight, the loop survives."""
    nowhere = LedgerContract(setup.chain, Account.create().address)
    config = PipelineConfig(batch_size=4, max_age=3600.0, backoff_initial=0.05)
    pipeline = Anchorer(store, nowhere, {DEPARTMENT: setup.registrar}, config)
    submit_count(store, 4)
    assert not pipeline.drain(timeout=1.0)
    [batch] = store.batches_in("sent")
    assert batch.tx_hash is not None
    receipt = setup.chain.receipt(batch.tx_hash)
    assert receipt is not None
    assert receipt["status"] == 1
    assert store.batches_in("anchored") == []
    assert store.status().anchored == 0


def test_commitments_of_a_department_without_a_registrar_are_left_alone(
    store: Store, setup: Deployment
) -> None:
    pipeline = anchorer(store, setup, batch_size=1)
    submit_count(store, 2)
    market = Anchorer(store, setup.ledger, {"BJ-SAMR": setup.other_registrar})
    assert market.cut_due_batches(force=True) == 0
    assert store.status().pending == 2
    assert pipeline.drain(timeout=30)


def test_status_figures_before_and_after_drain(store: Store, setup: Deployment) -> None:
    pipeline = anchorer(store, setup, time.time, batch_size=4)
    intake = new_intake(store)
    before = time.time()
    hashes = submit_all(intake, signed_documents(10))
    after = time.time()
    figures = store.status(now=before + 100)
    assert figures.pending == 10
    assert figures.in_flight == figures.anchored == figures.batches_in_flight == 0
    assert figures.oldest_pending_age is not None
    assert before + 100 - after <= figures.oldest_pending_age <= 100
    assert figures.last_anchored_block is None

    pipeline.cut_due_batches()
    figures = store.status()
    assert (figures.pending, figures.in_flight, figures.batches_in_flight) == (2, 8, 2)

    assert pipeline.drain(timeout=30)
    figures = store.status()
    assert figures.pending == figures.in_flight == figures.batches_in_flight == 0
    assert figures.anchored == 10
    assert figures.oldest_pending_age is None
    blocks = [b.block_number or 0 for b in store.batches_in("anchored")]
    assert len(blocks) == 3
    assert figures.last_anchored_block == max(blocks) == setup.chain.block_number()
    assert check_exactly_once(store, setup.ledger, hashes) == 3
    latencies = store.anchoring_latencies()
    assert len(latencies) == 10
    assert all(latency >= 0 for latency in latencies)

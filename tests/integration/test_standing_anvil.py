"""The auditors' question to the contract on a real anvil node: one batched JSON-RPC POST
answers as web3.py's three calls do (the audit route over a node that goes away: in
tests/unit/test_service_audit_node.py)."""

from __future__ import annotations

from support.deployment import HRSS_ID, Deployment, deploy

from ledger import Chain, Hash32, LedgerContract, MerkleTree, StandingNow, Status, keccak256


def h(text: str) -> Hash32:
    return Hash32(keccak256(text.encode()))


def by_web3(
    ledger: LedgerContract, commitment: Hash32, root: Hash32, proof: list[Hash32]
) -> StandingNow:
    return StandingNow(
        ledger.chain.block_number(),
        ledger.is_anchored(HRSS_ID, commitment, root, proof),
        ledger.status_of(HRSS_ID, commitment),
    )


def test_the_batched_answer_is_web3s_on_anvil(anvil_chain: Chain) -> None:
    d: Deployment = deploy(anvil_chain)
    values = [h(f"member-{i}") for i in range(7)]
    tree = MerkleTree.build(values)
    d.ledger.anchor_batch(d.registrar, tree.root, len(tree))
    breached, kept = values[3], values[5]
    d.ledger.record_outcome(
        d.verifier, breached, Status.PROPOSED, h("e0"), tree.root, tree.proof(breached)
    )
    d.ledger.record_outcome(d.verifier, breached, Status.BREACHED, h("e1"))
    d.ledger.record_outcome(d.verifier, kept, Status.KEPT, h("e2"), tree.root, tree.proof(kept))
    cases = [
        (breached, tree.root, tree.proof(breached)),
        (kept, tree.root, tree.proof(kept)),
        (values[0], tree.root, tree.proof(values[0])),
        (values[0], tree.root, tree.proof(values[1])),  # a proof of another member
        (h("unknown"), tree.root, []),
    ]
    answers = [d.ledger.standing_now(HRSS_ID, c, (r, p)) for c, r, p in cases]
    assert d.ledger._rpc is not None  # asked in a batch, not through web3.py
    assert answers == [by_web3(d.ledger, c, r, p) for c, r, p in cases]
    assert [a.anchored for a in answers] == [True, True, True, False, False]
    assert [a.standing.status for a in answers[:3]] == [Status.BREACHED, Status.KEPT, Status.NONE]
    assert (
        answers[0].standing.department
        == d.ledger.status_of(HRSS_ID, breached).department
        != bytes(32)
    )
    unasked = d.ledger.standing_now(HRSS_ID, breached)
    assert (unasked.anchored, unasked.standing.status) == (None, Status.BREACHED)

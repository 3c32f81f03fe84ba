"""Issue #12 on a real anvil node: one department cannot squat or front-run another's
commitments (findings 2 and 3), a proof bundle is checked against the auditor's pinned
contract and the committed code (finding 4), and stored evidence follows a reorg that mines
the same anchoring transactions again (finding 7).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
from support.deployment import HRSS_ID, MARKET_ID, Deployment, deploy
from support.pipeline import DEPARTMENT, check_exactly_once, rpc, submit_count, wait_for
from web3.types import TxParams

from ledger import (
    Anchorer,
    AnvilNode,
    BatchConflictError,
    BatchRow,
    Chain,
    Hash32,
    LedgerContract,
    MerkleTree,
    PipelineConfig,
    ProofBundle,
    Status,
    Store,
    check_bundle,
    keccak256,
    stored_bundle,
    verify_proof,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("anvil_binary")]


@dataclass
class World:
    """A ledger of two departments on anvil, and a store whose department is HRSS's."""

    d: Deployment
    store: Store

    def anchorer(self, **config: float) -> Anchorer:
        chain = Chain.connect(self.d.chain.url or "", kind="anvil")
        ledger = LedgerContract(chain, self.d.ledger.address)
        settings = PipelineConfig(**{"max_age": 3600, "resend_grace": 0.0, **config})  # type: ignore[arg-type]
        return Anchorer(self.store, ledger, {DEPARTMENT: self.d.registrar}, settings)


@pytest.fixture
def world(tmp_path: Path, anvil: AnvilNode) -> Iterator[World]:
    d = deploy(Chain.connect(anvil.url, kind="anvil"))
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield World(d, store)
    store.close()


def _anchored(world: World, anchorer: Anchorer, batch_id: int) -> BatchRow:
    def done() -> bool:
        anchorer.step()
        return world.store.batch(batch_id).state == "anchored"

    wait_for(done, f"batch {batch_id} anchored", 30)
    return world.store.batch(batch_id)


# ---------------------------------------------------------------------- findings 2 and 3


def test_a_front_run_root_is_anchored_again_as_ours(world: World) -> None:
    """Another department anchors our batch's root first, with another size: the pipeline
    anchors it as ours beside it, never adopts theirs, and every proof verifies."""
    d = world.d
    anchorer = world.anchorer(batch_size=4)
    hashes = submit_count(world.store, 4)
    assert anchorer.cut_due_batches(force=True) == 1
    [built] = world.store.batches_in("built")
    d.ledger.anchor_batch(d.other_registrar, built.root, 9)  # the front-run, mined first
    assert d.ledger.batch_of(MARKET_ID, built.root).size == 9

    batch = _anchored(world, anchorer, built.id)
    receipt = d.chain.receipt(batch.tx_hash or b"")
    assert receipt is not None
    assert receipt["from"] == d.registrar.address  # our own transaction, not theirs adopted
    info = d.ledger.batch_of(HRSS_ID, built.root)
    assert (info.department, info.size) == (HRSS_ID, 4)
    check_exactly_once(world.store, d.ledger, hashes)


def test_a_squatted_member_is_still_decided_by_its_department(world: World) -> None:
    """Another department anchors a member of our batch singly and breaches it: our record
    is untouched, our decision on it goes through, and our later outcomes are not blocked."""
    d = world.d
    anchorer = world.anchorer(batch_size=3)
    hashes = submit_count(world.store, 3)
    anchorer.cut_due_batches(force=True)
    [built] = world.store.batches_in("built")
    batch = _anchored(world, anchorer, built.id)
    member = hashes[0]
    d.ledger.anchor(d.other_registrar, member)
    d.ledger.record_outcome(d.other_verifier, member, Status.PROPOSED, keccak256(b"notice"))
    d.ledger.record_outcome(d.other_verifier, member, Status.BREACHED, keccak256(b"theirs"))
    assert d.ledger.status_of(MARKET_ID, member).status is Status.BREACHED
    assert d.ledger.status_of(HRSS_ID, member).status is Status.NONE

    anchoring = world.store.anchoring_of(member)
    assert anchoring is not None
    d.ledger.record_outcome(
        d.verifier, member, Status.KEPT, keccak256(b"ours"), batch.root, anchoring[1]
    )
    assert d.ledger.status_of(HRSS_ID, member).status is Status.KEPT
    other = world.store.anchoring_of(hashes[1])
    assert other is not None
    d.ledger.record_outcome(
        d.verifier, hashes[1], Status.KEPT, keccak256(b"later"), batch.root, other[1]
    )
    assert d.ledger.status_of(HRSS_ID, hashes[1]).status is Status.KEPT


def _take(world: World, root: bytes, size: int) -> None:
    """Our registrar key, used by another process, anchors `root` with `size` first."""
    world.d.chain.forget_nonces()  # the pipeline's client sent with the same key meanwhile
    world.d.ledger.anchor_batch(world.d.registrar, Hash32(root), size)


def _verified_under_a_fresh_root(
    world: World, batch_id: int, taken: bytes, hashes: list[Hash32]
) -> BatchRow:
    """The batch is anchored under a root other than `taken`, one leaf more than its
    members; every member's stored proof verifies in Python, on chain and as a bundle."""
    d = world.d
    batch = world.store.batch(batch_id)
    assert batch.state == "anchored"
    assert batch.root != taken
    assert batch.size == len(hashes) + 1  # the members and the re-forming's extra leaf
    info = d.ledger.batch_of(HRSS_ID, batch.root)
    assert (info.department, info.size) == (HRSS_ID, batch.size)
    receipt = d.chain.receipt(batch.tx_hash or b"")
    assert receipt is not None and receipt["status"] == 1
    assert receipt["from"] == d.registrar.address
    for member in hashes:
        anchoring = world.store.anchoring_of(member)
        assert anchoring is not None
        assert anchoring[0].id == batch_id
        assert verify_proof(batch.root, member, anchoring[1])
        assert d.ledger.is_anchored(HRSS_ID, member, batch.root, anchoring[1])
        bundle = stored_bundle(
            member, anchoring, chain_id=d.chain.chain_id, contract=d.ledger.address
        )
        report = check_bundle(bundle, d.chain, contract=d.ledger.address, chain_id=d.chain.chain_id)
        assert report.ok, report.to_json_obj()
    return batch


def test_our_root_anchored_with_another_size_is_re_formed_under_a_fresh_root(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Our own department's batch of the root with a wrong size (our registrar key used
    elsewhere) would make every proof fail the length check: never adopted, the batch is
    re-formed under a fresh root, anchored, and the pipeline says so."""
    d = world.d
    anchorer = world.anchorer(batch_size=4)
    hashes = submit_count(world.store, 4)
    anchorer.cut_due_batches(force=True)
    [built] = world.store.batches_in("built")
    d.ledger.anchor_batch(d.registrar, built.root, 100)
    with caplog.at_level(logging.WARNING, "commitledger.pipeline"):
        _anchored(world, anchorer, built.id)
    _verified_under_a_fresh_root(world, built.id, built.root, hashes)
    assert d.ledger.batch_of(HRSS_ID, built.root).size == 100  # theirs stays, not ours
    assert "re-formed under the fresh root" in caplog.text
    assert world.store.reformed_batches() == 1


def test_a_front_run_with_our_key_and_another_size_is_re_formed(world: World) -> None:
    """A real front-run in the pool: another process holding our registrar key replaces our
    pending anchorBatch (same nonce, higher fee) by one of the same root with a wrong size.
    Our transaction never lands; the batch is re-formed under a fresh root and anchored."""
    d = world.d
    anchorer = world.anchorer(batch_size=3)
    hashes = submit_count(world.store, 3)
    anchorer.cut_due_batches(force=True)
    [built] = world.store.batches_in("built")
    rpc(d.ledger, "evm_setAutomine", False)
    try:
        assert anchorer.send_built() == 1
        ours = world.store.batch(built.id).tx_hash or b""
        pending = d.chain.w3.eth.get_transaction(ours)
        fee = 3 * int(pending["maxFeePerGas"])
        theirs = d.ledger.builder("anchorBatch", built.root, 7)(
            {
                "from": d.registrar.address,
                "chainId": d.chain.chain_id,
                "gas": 200_000,
                "nonce": pending["nonce"],
            }
        )
        theirs = {**theirs, "maxFeePerGas": fee, "maxPriorityFeePerGas": fee}
        raw = d.registrar.sign_transaction(theirs).raw_transaction
        d.chain.w3.eth.send_raw_transaction(raw)
        rpc(d.ledger, "evm_mine")
    finally:
        rpc(d.ledger, "evm_setAutomine", True)
    assert d.chain.receipt(ours) is None  # replaced in the pool
    assert d.ledger.batch_of(HRSS_ID, built.root).size == 7

    _anchored(world, anchorer, built.id)
    _verified_under_a_fresh_root(world, built.id, built.root, hashes)


def test_a_reorg_that_puts_our_keys_other_size_in_place_of_ours_re_forms_the_batch(
    world: World,
) -> None:
    """Our batch is anchored; a reorg mines, in place of our transaction, one of the same
    nonce by our registrar key used elsewhere: the same root with a wrong size. The recheck
    finds it and re-forms the batch under a fresh root, which is anchored and verifies."""
    d = world.d
    anchorer = world.anchorer(batch_size=2, recheck_every=0.0)
    hashes = submit_count(world.store, 2)
    anchorer.cut_due_batches(force=True)
    [built] = world.store.batches_in("built")
    ours = _anchored(world, anchorer, built.id)
    mined = d.chain.w3.eth.get_transaction(ours.tx_hash or b"")
    fee = 3 * int(mined["maxFeePerGas"])
    theirs = d.ledger.builder("anchorBatch", ours.root, 9)(
        {"from": d.registrar.address, "chainId": d.chain.chain_id, "gas": 200_000}
    )
    theirs = {
        **theirs,
        "nonce": mined["nonce"],
        "maxFeePerGas": fee,
        "maxPriorityFeePerGas": fee,
    }
    raw = d.registrar.sign_transaction(theirs).raw_transaction
    assert ours.block_number is not None
    depth = d.chain.block_number() - ours.block_number + 1
    rpc(d.ledger, "anvil_reorg", depth, [["0x" + bytes(raw).hex(), 0]])
    assert d.chain.receipt(ours.tx_hash or b"") is None
    assert d.ledger.batch_of(HRSS_ID, ours.root).size == 9

    assert anchorer.recheck_anchored(force=True) == 1
    assert world.store.batch(built.id).state == "built"
    _anchored(world, anchorer, built.id)
    _verified_under_a_fresh_root(world, built.id, ours.root, hashes)
    assert world.store.reformed_batches() == 1


def test_a_re_formed_root_taken_again_is_re_formed_again(world: World) -> None:
    """The fresh root is taken too, with a wrong size: another fresh root, and so on, until
    `max_reforms` in a row, when the pipeline stops on it (BatchConflictError)."""
    d = world.d
    anchorer = world.anchorer(batch_size=2)
    hashes = submit_count(world.store, 2)
    anchorer.cut_due_batches(force=True)
    [built] = world.store.batches_in("built")
    taken = [built.root]
    d.ledger.anchor_batch(d.registrar, built.root, 9)
    anchorer.send_built()  # re-formed: a fresh root, not sent yet
    fresh = world.store.batch(built.id)
    assert fresh.state == "built" and fresh.root != built.root
    _take(world, fresh.root, 9)
    taken.append(fresh.root)
    _anchored(world, anchorer, built.id)
    batch = _verified_under_a_fresh_root(world, built.id, built.root, hashes)
    assert batch.root not in taken
    assert world.store.reformed_batches() == 2

    more = submit_count(world.store, 2)
    anchorer.cut_due_batches(force=True)
    [stubborn] = world.store.batches_in("built")
    for _ in range(PipelineConfig().max_reforms):
        _take(world, world.store.batch(stubborn.id).root, 9)
        assert anchorer.send_built() == 1  # re-formed, not sent
    _take(world, world.store.batch(stubborn.id).root, 9)
    with pytest.raises(BatchConflictError, match="registrar key is used elsewhere"):
        anchorer.send_built()
    assert world.store.batch(stubborn.id).state == "built"
    assert all(world.store.anchoring_of(h) is None for h in more)


# ---------------------------------------------------------------------- finding 4

# Emits BatchAnchored(calldata[4:36], calldata[36:68], 0, 0) for any call and returns true.
_TOPIC = keccak256(b"BatchAnchored(bytes32,bytes32,uint32,address)")
_FORGED_RUNTIME = (
    bytes.fromhex("6024356004357f") + _TOPIC + bytes.fromhex("60406000a3600160005260206000f3")
)
_FORGED_CREATION = (
    bytes.fromhex("60")
    + bytes([len(_FORGED_RUNTIME)])
    + bytes.fromhex("80600b6000396000f3")
    + _FORGED_RUNTIME
)


def test_a_bundle_of_a_forged_contract_is_not_verified(world: World) -> None:
    d = world.d
    chain = d.chain
    fee = 2 * int(chain.w3.eth.get_block("latest").get("baseFeePerGas", 0)) + 10**9
    created = chain.transact(
        d.outsider,
        lambda p: cast(
            TxParams,
            {
                **p,
                "data": "0x" + _FORGED_CREATION.hex(),
                "gas": 200_000,
                "maxFeePerGas": fee,
                "maxPriorityFeePerGas": 10**9,
            },
        ),
    )
    forged = LedgerContract(chain, str(created["contractAddress"]))
    assert chain.code_at(forged.address) == _FORGED_RUNTIME
    commitment = keccak256(b"never anchored anywhere")
    tree = MerkleTree.build([commitment])
    sent = forged.anchor_batch(d.outsider, tree.root, 1)
    block = chain.w3.eth.get_block(sent.block_number)
    bundle = ProofBundle(
        commitment=commitment,
        root=tree.root,
        proof=(),
        chain_id=chain.chain_id,
        contract=forged.address,
        transaction=sent.tx_hash,
        block_number=sent.block_number,
        block_hash=bytes(block["hash"]),
    )
    # pinned to the real ledger: the bundle names another contract
    report = check_bundle(bundle, chain, contract=d.ledger.address, chain_id=chain.chain_id)
    assert not report.ok
    assert [c.name for c in report.checks if not c.ok] == ["trust anchor"]
    # pinned to the forgery itself: its code is not the committed artifact's
    report = check_bundle(bundle, chain, contract=forged.address, chain_id=chain.chain_id)
    assert not report.ok
    failed = [c for c in report.checks if not c.ok]
    assert [c.name for c in failed] == ["contract"]
    assert "NOT the committed CommitmentLedger artifact" in failed[0].detail


def test_verify_proof_needs_and_checks_the_pinned_contract(world: World, tmp_path: Path) -> None:
    """The CLI: exit 1 with the reason when the bundle names another contract; exit 2
    without a trust anchor; exit 0 for a real bundle pinned to the real ledger."""
    import json

    from support.verify_cli import cli

    d = world.d
    anchorer = world.anchorer(batch_size=2)
    hashes = submit_count(world.store, 2)
    anchorer.cut_due_batches(force=True)
    [built] = world.store.batches_in("built")
    _anchored(world, anchorer, built.id)
    anchoring = world.store.anchoring_of(hashes[0])
    assert anchoring is not None
    bundle = stored_bundle(
        hashes[0], anchoring, chain_id=d.chain.chain_id, contract=d.ledger.address
    )
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle.to_json_obj()))
    rpc_url = d.chain.url or ""
    pin = ["--contract", d.ledger.address, "--chain-id", str(d.chain.chain_id)]
    ok = cli("verify-proof", path, "--rpc", rpc_url, *pin, "--json")
    assert ok.exit_code == 0, ok.output
    unpinned = cli("verify-proof", path, "--rpc", rpc_url, "--json")
    assert unpinned.exit_code == 2, unpinned.output
    assert "--contract" in unpinned.output
    elsewhere = ["--contract", d.outsider.address, "--chain-id", str(d.chain.chain_id)]
    other = cli("verify-proof", path, "--rpc", rpc_url, *elsewhere, "--json")
    assert other.exit_code == 1, other.output
    report = json.loads(other.stdout)
    assert [c["name"] for c in report["checks"] if not c["ok"]] == ["trust anchor"]


# ---------------------------------------------------------------------- finding 7


def test_evidence_follows_a_reorg_that_mines_the_same_transactions_again(
    world: World,
) -> None:
    """Three batches; a reorg puts the second's and third's transactions back one block
    later: after the recheck, every stored transaction, block number and hash is the
    chain's again, and the bundles of the middle batch verify."""
    d = world.d
    anchorer = world.anchorer(batch_size=2, recheck_every=0.0)
    hashes: list[Hash32] = []
    batches: list[BatchRow] = []
    for _ in range(3):
        hashes += submit_count(world.store, 2)
        anchorer.cut_due_batches(force=True)
        [built] = world.store.batches_in("built")
        batches.append(_anchored(world, anchorer, built.id))
    first, middle, last = batches
    assert middle.block_number is not None and last.block_number is not None
    rpc(d.ledger, "anvil_mine", 2)
    head = d.chain.block_number()
    depth = head - middle.block_number + 1
    raw = [
        rpc(d.ledger, "eth_getRawTransactionByHash", "0x" + (b.tx_hash or b"").hex())
        for b in (middle, last)
    ]
    offset = last.block_number - middle.block_number
    rpc(d.ledger, "anvil_reorg", depth, [[raw[0], 1], [raw[1], offset + 1]])
    moved = d.chain.receipt(middle.tx_hash or b"")
    assert moved is not None
    assert int(moved["blockNumber"]) == middle.block_number + 1
    assert world.store.batch(middle.id).block_number == middle.block_number  # stale

    assert anchorer.recheck_anchored() == 2
    for batch in (middle, last):
        now = world.store.batch(batch.id)
        receipt = d.chain.receipt(batch.tx_hash or b"")
        assert receipt is not None
        assert now.state == "anchored"
        assert now.tx_hash == batch.tx_hash
        assert (now.block_number, now.block_hash) == (
            int(receipt["blockNumber"]),
            bytes(receipt["blockHash"]),
        )
    assert world.store.batch(first.id) == first
    check_exactly_once(world.store, d.ledger, hashes)
    anchoring = world.store.anchoring_of(hashes[2])
    assert anchoring is not None
    bundle = stored_bundle(
        hashes[2], anchoring, chain_id=d.chain.chain_id, contract=d.ledger.address
    )
    report = check_bundle(bundle, d.chain, contract=d.ledger.address, chain_id=d.chain.chain_id)
    assert report.ok, report.to_json_obj()

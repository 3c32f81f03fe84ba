"""The event index on a real anvil node: a reorg (snapshot, revert, a new branch) is undone."""

from __future__ import annotations

from pathlib import Path

from support.deployment import deploy

from ledger import Chain, EventIndexer, Store, keccak256


def test_a_reorg_is_undone(anvil_chain: Chain, tmp_path: Path) -> None:
    d = deploy(anvil_chain)
    store = Store(f"sqlite:///{tmp_path / 'index.db'}")
    indexer = EventIndexer(store, d.ledger)
    indexer.sync()
    snapshot = anvil_chain.w3.provider.make_request("evm_snapshot", [])["result"]
    gone = keccak256(b"reorged away")
    d.ledger.anchor(d.registrar, gone)
    indexer.sync()
    assert store.events("CommitmentAnchored", subject=gone)
    anvil_chain.w3.provider.make_request("evm_revert", [snapshot])
    anvil_chain.forget_nonces()
    kept = keccak256(b"on the new branch")
    d.ledger.anchor(d.registrar, kept)
    indexer.sync()
    assert not store.events("CommitmentAnchored", subject=gone)
    assert store.events("CommitmentAnchored", subject=kept)

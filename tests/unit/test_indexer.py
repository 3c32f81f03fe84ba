"""The event index: every contract event copied once, confirmed blocks only (reorgs:
tests/integration/test_indexer_anvil.py)."""

from __future__ import annotations

import json
from pathlib import Path

from support.deployment import Deployment

from ledger import EventIndexer, MerkleTree, Status, Store, keccak256


def _store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'index.db'}")


def _activity(d: Deployment) -> bytes:
    tree = MerkleTree.build([keccak256(bytes([i])) for i in range(5)])
    d.ledger.anchor_batch(d.registrar, tree.root, len(tree))
    single = keccak256(b"single")
    d.ledger.anchor(d.registrar, single)
    d.ledger.record_outcome(d.verifier, single, Status.PROPOSED, keccak256(b"notice"))
    d.ledger.record_outcome(d.verifier, single, Status.BREACHED, keccak256(b"report"))
    return single


def test_every_event_is_indexed_once(embedded_deployment: Deployment, tmp_path: Path) -> None:
    store = _store(tmp_path)
    single = _activity(embedded_deployment)
    indexer = EventIndexer(store, embedded_deployment.ledger)
    added = indexer.sync()
    assert added == len(store.events()) > 0
    assert indexer.sync() == 0  # nothing new: nothing twice
    names = [e["name"] for e in store.events()]
    assert names.count("BatchAnchored") == 1
    assert names.count("DepartmentBound") == 4
    breach = store.events("BreachRecorded")
    assert len(breach) == 1
    assert breach[0]["subject"] == single
    assert json.loads(breach[0]["args"])["commitment"] == "0x" + single.hex()
    positions = [(e["block_number"], e["log_index"]) for e in store.events()]
    assert positions == sorted(positions)


def test_only_confirmed_blocks_are_indexed(embedded_deployment: Deployment, tmp_path: Path) -> None:
    store = _store(tmp_path)
    indexer = EventIndexer(store, embedded_deployment.ledger, confirmations=2)
    indexer.sync()
    before = len(store.events())
    _activity(embedded_deployment)  # four more blocks
    indexer.sync()
    names = [e["name"] for e in store.events()[before:]]
    assert "BatchAnchored" in names and "CommitmentAnchored" in names
    # the last two blocks (the proposal, then the breach) are not deep enough yet
    assert "OutcomeRecorded" not in names
    assert "BreachRecorded" not in names

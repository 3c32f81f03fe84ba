"""Proof bundles made from the store's record of a batch: its fields, and a batch not yet sent."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ledger import (
    BatchRow,
    Hash32,
    MerkleTree,
    ProofBundle,
    ProofBundleError,
    check_bundle_offline,
    keccak256,
    stored_bundle,
)

CONTRACT = "0x" + "12" * 20


def _anchored(values: list[Hash32]) -> tuple[MerkleTree, BatchRow]:
    tree = MerkleTree.build(values)
    row = BatchRow(
        id=1,
        root=tree.root,
        size=len(tree),
        department="BJ-HRSS",
        state="anchored",
        created_at=0.0,
        tx_hash=keccak256(b"tx"),
        sent_at=1.0,
        attempts=1,
        block_number=7,
        block_hash=keccak256(b"block"),
        anchored_at=2.0,
    )
    return tree, row


def test_a_stored_bundle_carries_the_batch_and_its_proof_checks() -> None:
    values = [keccak256(bytes([i])) for i in range(5)]
    tree, row = _anchored(values)
    bundle = stored_bundle(
        values[2], (row, tuple(tree.proof(values[2]))), chain_id=31337, contract=CONTRACT
    )
    assert (bundle.root, bundle.transaction, bundle.block_number) == (tree.root, row.tx_hash, 7)
    assert check_bundle_offline(bundle).ok
    assert ProofBundle.from_json_obj(bundle.to_json_obj()) == bundle


def test_a_batch_without_its_transaction_gives_no_bundle() -> None:
    values = [keccak256(bytes([i])) for i in range(3)]
    tree, row = _anchored(values)
    pending = replace(row, state="pending", tx_hash=None, block_number=None, block_hash=None)
    with pytest.raises(ProofBundleError, match="not anchored yet"):
        stored_bundle(
            values[0], (pending, tuple(tree.proof(values[0]))), chain_id=1, contract=CONTRACT
        )

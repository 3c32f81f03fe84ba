"""Proof bundles made from the store's record of a batch: its fields, and a batch not yet sent;
version 2's size and strict proof string, and version 1 bundles still read."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from web3 import Web3

from ledger import (
    BatchRow,
    Hash32,
    MerkleTree,
    ProofBundle,
    ProofBundleError,
    check_bundle_offline,
    decode_proof,
    hex32,
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


# ---------------------------------------------------------------------- version 2 and version 1


def _bundle_at_depth(depth: int) -> ProofBundle:
    """A bundle with a `depth`-node proof and the largest realistic numbers."""
    return ProofBundle(
        commitment=keccak256(b"commitment"),
        root=keccak256(b"root"),
        proof=tuple(keccak256(bytes([i])) for i in range(depth)),
        chain_id=11_155_111,  # Sepolia: longer than most chain ids
        contract=Web3.to_checksum_address("0x" + "ab" * 20),
        transaction=keccak256(b"tx"),
        block_number=99_999_999,
    )


def test_a_depth_17_bundle_is_at_most_1200_bytes_in_every_json_form() -> None:
    obj = _bundle_at_depth(17).to_json_obj()  # 100,000 leaves: proofs of 16 or 17 nodes
    assert obj["version"] == 2
    for text in (
        json.dumps(obj, separators=(",", ":")),  # as the service answers
        json.dumps(obj, indent=2),  # as `anchor` writes and `proof` prints
    ):
        assert len(text.encode()) <= 1200, len(text.encode())


def test_version_2_round_trips_and_names_no_derivable_field() -> None:
    bundle = _bundle_at_depth(5)
    obj = bundle.to_json_obj()
    assert set(obj) == {
        "version",
        "commitment",
        "root",
        "proof",
        "chain_id",
        "contract",
        "transaction",
        "block_number",
    }
    assert decode_proof(obj["proof"]) == bundle.proof
    assert ProofBundle.from_json_obj(json.loads(json.dumps(obj))) == bundle
    single = replace(bundle, root=Hash32(bytes(32)), proof=())
    assert single.to_json_obj()["proof"] == ""
    assert ProofBundle.from_json_obj(single.to_json_obj()) == single


def _version_1(bundle: ProofBundle, block_hash: bytes) -> dict[str, object]:
    """The bundle as version 1 wrote it (given out before version 2)."""
    return {
        "version": 1,
        "commitment": hex32(bundle.commitment),
        "leaf": hex32(bundle.leaf),
        "root": hex32(bundle.root),
        "proof": [hex32(p) for p in bundle.proof],
        "chain_id": bundle.chain_id,
        "contract": bundle.contract,
        "transaction": hex32(bundle.transaction),
        "block_number": bundle.block_number,
        "block_hash": hex32(block_hash),
    }


def test_a_version_1_bundle_is_still_read_with_its_block_hash() -> None:
    values = [keccak256(bytes([i])) for i in range(9)]
    tree, row = _anchored(values)
    bundle = stored_bundle(
        values[4], (row, tuple(tree.proof(values[4]))), chain_id=31337, contract=CONTRACT
    )
    old = ProofBundle.from_json_obj(_version_1(bundle, keccak256(b"block")))
    assert old == replace(bundle, block_hash=keccak256(b"block"))
    assert check_bundle_offline(old).ok
    wrong_leaf = {**_version_1(bundle, keccak256(b"block")), "leaf": hex32(bundle.commitment)}
    with pytest.raises(ProofBundleError, match="leaf is not the leaf"):
        ProofBundle.from_json_obj(wrong_leaf)
    with pytest.raises(ProofBundleError, match="lacks field"):  # v1 needs its block hash
        ProofBundle.from_json_obj({**bundle.to_json_obj(), "version": 1})
    with pytest.raises(ProofBundleError, match="unknown field"):  # v2 has no leaf
        ProofBundle.from_json_obj({**bundle.to_json_obj(), "leaf": hex32(bundle.leaf)})


@pytest.mark.parametrize(
    ("proof", "why"),
    [
        ("A" * 43 + "=", "base64url"),  # padding
        ("+/" + "A" * 41, "base64url"),  # the other alphabet
        ("A" * 42, "whole 32-byte nodes"),  # 31.5 bytes
        ("A" * 42 + "B", "whole 32-byte nodes"),  # stray bits after the last byte
        ("A" * (43 * 33), "more than 32"),
        (["0x" + "00" * 32], "base64url"),  # version 1's list in a version 2 bundle
    ],
)
def test_a_malformed_version_2_proof_is_refused(proof: object, why: str) -> None:
    obj = {**_bundle_at_depth(1).to_json_obj(), "proof": proof}
    with pytest.raises(ProofBundleError, match=why):
        ProofBundle.from_json_obj(obj)


@pytest.mark.parametrize("version", [0, 3, "2", True, None])
def test_an_unknown_version_is_refused(version: object) -> None:
    with pytest.raises(ProofBundleError, match="version must be one of 1, 2"):
        ProofBundle.from_json_obj({**_bundle_at_depth(1).to_json_obj(), "version": version})

"""The proof bundle of a 100,000-leaf batch: at most 1,200 bytes of JSON, and it verifies on a
real anvil node (the contract's isAnchored for the department of the anchoring event), as does
the same anchoring written as a version 1 bundle given out before."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.deployment import Deployment, deploy

from ledger import (
    ZERO_HASH,
    Chain,
    Hash32,
    MerkleTree,
    ProofBundle,
    check_bundle,
    hex32,
    keccak256,
)
from ledger.proofs import receipt_bundle

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("anvil_binary")]

LEAVES = 100_000


@pytest.fixture(scope="module")
def tree() -> MerkleTree:
    """A 100,000-leaf StandardMerkleTree (built once: about 3 s)."""
    return MerkleTree.build([keccak256(i.to_bytes(4, "big")) for i in range(LEAVES)])


def _anchored(deployment: Deployment, tree: MerkleTree, member: Hash32) -> ProofBundle:
    sent = deployment.ledger.anchor_batch(deployment.registrar, tree.root, len(tree))
    receipt = deployment.chain.w3.eth.get_transaction_receipt(hex32(sent.tx_hash))
    return receipt_bundle(deployment.ledger, member, tree.root, tree.proof(member), receipt)


def _check(deployment: Deployment, obj: dict[str, Any]) -> dict[str, Any]:
    bundle = ProofBundle.from_json_obj(json.loads(json.dumps(obj)))
    chain = deployment.chain
    return check_bundle(
        bundle, chain, contract=deployment.ledger.address, chain_id=chain.chain_id
    ).to_json_obj()


def test_a_100000_leaf_bundle_is_small_and_verifies(anvil_chain: Chain, tree: MerkleTree) -> None:
    deployment = deploy(anvil_chain)
    # most members of a 100,000-leaf tree sit 17 levels deep (the rest 16): take the first
    member = next(
        value
        for value in (keccak256(i.to_bytes(4, "big")) for i in range(LEAVES))
        if len(tree.proof(value)) == 17
    )
    bundle = _anchored(deployment, tree, member)
    assert len(bundle.proof) == 17
    obj = bundle.to_json_obj()
    compact = json.dumps(obj, separators=(",", ":")).encode()
    indented = json.dumps(obj, indent=2).encode()
    assert len(compact) <= 1200 and len(indented) <= 1200, (len(compact), len(indented))
    report = _check(deployment, obj)
    assert report["ok"] is True, report
    anchored = next(c for c in report["checks"] if c["name"] == "anchored")
    assert "isAnchored" in anchored["detail"]

    # one flipped bit of one sibling: the proof no longer folds, nor does isAnchored agree
    raw = bytearray(b"".join(bundle.proof))
    raw[5 * 32] ^= 1
    broken = ProofBundle(
        **{
            **bundle.__dict__,
            "proof": tuple(Hash32(bytes(raw[i : i + 32])) for i in range(0, len(raw), 32)),
        }
    )
    report = _check(deployment, broken.to_json_obj())
    assert report["ok"] is False
    assert {c["name"]: c["ok"] for c in report["checks"]}["merkle"] is False


def test_a_version_1_bundle_still_verifies(anvil_chain: Chain, tree: MerkleTree) -> None:
    deployment = deploy(anvil_chain)
    member = keccak256((12_345).to_bytes(4, "big"))
    bundle = _anchored(deployment, tree, member)
    receipt = deployment.chain.w3.eth.get_transaction_receipt(hex32(bundle.transaction))
    version_1 = {
        "version": 1,
        "commitment": hex32(bundle.commitment),
        "leaf": hex32(bundle.leaf),
        "root": hex32(bundle.root),
        "proof": [hex32(p) for p in bundle.proof],
        "chain_id": bundle.chain_id,
        "contract": bundle.contract,
        "transaction": hex32(bundle.transaction),
        "block_number": bundle.block_number,
        "block_hash": hex32(bytes(receipt["blockHash"])),
    }
    report = _check(deployment, version_1)
    assert report["ok"] is True, report
    # version 1's block hash is still checked: another block's hash fails the block check
    report = _check(deployment, {**version_1, "block_hash": hex32(keccak256(b"another"))})
    assert {c["name"]: c["ok"] for c in report["checks"]}["block"] is False
    assert report["ok"] is False


def _readme_check_bundle() -> Callable[..., None]:
    """The README's 'Checking a proof bundle' Python code, run: its check_bundle."""
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("## Checking a proof bundle", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, re.S)
    names: dict[str, Any] = {}
    exec(compile(code, "README.md#checking-a-proof-bundle", "exec"), names)
    check: Callable[..., None] = names["check_bundle"]
    return check


def test_the_readme_snippet_checks_both_versions_and_refuses_a_forgery(
    anvil_chain: Chain, tree: MerkleTree
) -> None:
    check = _readme_check_bundle()
    deployment = deploy(anvil_chain)
    w3, address, chain_id = anvil_chain.w3, deployment.ledger.address, anvil_chain.chain_id
    member = keccak256((777).to_bytes(4, "big"))
    bundle = _anchored(deployment, tree, member)
    receipt = w3.eth.get_transaction_receipt(hex32(bundle.transaction))
    version_2 = json.loads(json.dumps(bundle.to_json_obj()))
    check(version_2, w3, address, chain_id)
    version_1 = {
        **{k: v for k, v in version_2.items() if k != "version"},
        "version": 1,
        "leaf": hex32(bundle.leaf),
        "proof": [hex32(p) for p in bundle.proof],
        "block_hash": hex32(bytes(receipt["blockHash"])),
    }
    check(version_1, w3, address, chain_id)

    single = keccak256(b"anchored alone")
    deployment.ledger.anchor(deployment.registrar, single)
    one = _single_bundle(deployment, single)
    check(one.to_json_obj(), w3, address, chain_id)

    other = keccak256(b"never anchored")
    elsewhere = "0x" + "11" * 20
    forgeries = [
        ({**version_2, "commitment": hex32(other)}, address, "does not lead"),
        (version_2, elsewhere, "another chain or contract"),
        ({**version_1, "block_hash": hex32(keccak256(b"x"))}, address, "another block"),
        ({**one.to_json_obj(), "commitment": hex32(other)}, address, "no CommitmentAnchored"),
    ]
    for forged, pinned, why in forgeries:
        with pytest.raises(ValueError, match=why):
            check(forged, w3, pinned, chain_id)


def _single_bundle(deployment: Deployment, commitment: Hash32) -> ProofBundle:
    """The bundle of a commitment anchored singly, from its CommitmentAnchored log."""
    logs = deployment.chain.w3.eth.get_logs(
        {"address": deployment.ledger.address, "fromBlock": 0, "toBlock": "latest"}
    )
    [log] = [entry for entry in logs if bytes(entry["topics"][1]) == commitment]
    receipt = deployment.chain.w3.eth.get_transaction_receipt(log["transactionHash"])
    return receipt_bundle(deployment.ledger, commitment, ZERO_HASH, (), receipt)

"""The portable vectors in tests/vectors: up to date, and ledger agrees with every one of them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ledger import (
    Commitment,
    Hash32,
    MerkleError,
    MerkleTree,
    canonical_bytes,
    commitment_hash,
    leaf_hash,
    verify_proof,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
GENERATOR = ROOT / "scripts" / "make_vectors.py"


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text("utf-8"))


def _bytes(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def _hash(text: str) -> Hash32:
    return Hash32(_bytes(text))


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_vectors", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


COMMITMENTS = _load("commitments.json")["commitments"]
MERKLE = _load("merkle.json")


def test_committed_files_are_what_the_generator_makes_today() -> None:
    for name, text in _generator().vector_files().items():
        committed = (VECTORS / name).read_text("utf-8")
        assert committed == text, f"{name} is stale: run scripts/make_vectors.py"


# ------------------------------------------------------------------------- commitments


@pytest.mark.parametrize("vector", COMMITMENTS, ids=[v["name"] for v in COMMITMENTS])
def test_commitment_canonical_bytes_and_hash(vector: dict[str, Any]) -> None:
    canonical = bytes.fromhex(vector["canonical_hex"])
    assert canonical == vector["canonical"].encode("utf-8")
    document = json.loads(vector["input_json"])
    commitment = Commitment.from_json_obj(document)
    assert canonical_bytes(document) == canonical
    assert commitment.canonical() == canonical
    assert commitment.hash() == _hash(vector["hash"])
    assert commitment_hash(document) == _hash(vector["hash"])
    # The canonical text is itself a document that canonicalises to itself.
    assert canonical_bytes(json.loads(canonical)) == canonical


def test_commitment_vectors_exercise_escapes_and_non_ascii() -> None:
    texts = [vector["canonical"] for vector in COMMITMENTS]
    assert any('\\"' in text and "\\\\" in text for text in texts)
    assert any(any(ord(char) > 0xFFFF for char in text) for text in texts)
    assert all(
        vector["input_json"].encode() != vector["canonical"].encode() for vector in COMMITMENTS
    )


# ------------------------------------------------------------------------- Merkle trees


@pytest.mark.parametrize(
    "tree", MERKLE["trees"], ids=[f"size-{t['size']}" for t in MERKLE["trees"]]
)
def test_tree_root_leaves_and_every_proof(tree: dict[str, Any]) -> None:
    values = [_hash(value) for value in tree["values"]]
    built = MerkleTree.build(values)
    assert len(built) == tree["size"] == len(tree["proofs"])
    assert built.root == _hash(tree["root"])
    assert sorted("0x" + leaf_hash(value).hex() for value in values) == tree["sorted_leaves"]
    for entry in tree["proofs"]:
        value = _hash(entry["value"])
        proof = [_hash(node) for node in entry["proof"]]
        assert leaf_hash(value) == _hash(entry["leaf"])
        assert built.proof(value) == proof
        assert verify_proof(built.root, value, proof)


def test_sizes_cover_single_even_odd_and_power_of_two() -> None:
    sizes = {tree["size"] for tree in MERKLE["trees"]}
    assert {1, 2, 3, 5, 8, 13} <= sizes


@pytest.mark.parametrize("case", MERKLE["cases"], ids=[c["name"] for c in MERKLE["cases"]])
def test_case_verdict(case: dict[str, Any]) -> None:
    proof = [_hash(node) for node in case["proof"]]
    verdict = verify_proof(_hash(case["root"]), _hash(case["value"]), proof)
    assert verdict is case["valid"]


def test_cases_hold_every_kind_of_broken_proof() -> None:
    assert MERKLE["case_count"] == len(MERKLE["cases"])
    broken = {case["name"].rsplit("/", 1)[1] for case in MERKLE["cases"] if not case["valid"]}
    wanted = {
        "wrong-index",
        "wrong-value",
        "wrong-root",
        "flipped-bit-in-value",
        "flipped-bit-in-root",
        "flipped-bit-in-sibling-0",
        "sibling-dropped-first",
        "sibling-dropped-last",
        "extra-sibling-appended",
        "garbage-before",
        "garbage-after",
        "proof-from-other-tree",
        "empty-proof",
        "leaf-as-value",
        "inner-node-as-value",
    }
    assert wanted <= broken, wanted - broken
    good = [case for case in MERKLE["cases"] if case["valid"]]
    assert len(good) == sum(tree["size"] for tree in MERKLE["trees"])


@pytest.mark.parametrize("case", MERKLE["malformed"], ids=[c["name"] for c in MERKLE["malformed"]])
def test_malformed_case_is_refused(case: dict[str, Any]) -> None:
    proof = [Hash32(_bytes(node)) for node in case["proof"]]
    with pytest.raises(MerkleError, match="must be 32 bytes"):
        verify_proof(Hash32(_bytes(case["root"])), Hash32(_bytes(case["value"])), proof)

"""Our Merkle trees against @openzeppelin/merkle-tree itself: same root, same proof per value."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from ledger import Hash32, MerkleTree, hex32, keccak256, to_hash32

REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "node_modules" / "@openzeppelin" / "merkle-tree"

# Reads hex bytes32 values on stdin, prints {root, proofs} with proofs in input order.
OPENZEPPELIN_SCRIPT = """
const { StandardMerkleTree } = require("@openzeppelin/merkle-tree");
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const values = JSON.parse(input);
  const tree = StandardMerkleTree.of(values.map((v) => [v]), ["bytes32"]);
  const proofs = values.map((_, i) => tree.getProof(i));
  process.stdout.write(JSON.stringify({ root: tree.root, proofs }));
});
"""


@pytest.fixture(autouse=True)
def _library() -> None:
    """Fails (never skips) without the library: make test installs it with node_modules."""
    if not LIBRARY.is_dir():
        pytest.fail(f"{LIBRARY} is missing: run `npm ci` (make test does)")


def openzeppelin_tree(values: list[Hash32]) -> tuple[Hash32, list[list[Hash32]]]:
    node = shutil.which("node")
    assert node, "node_modules is present but `node` is not on PATH"
    result = subprocess.run(
        [node, "-e", OPENZEPPELIN_SCRIPT],
        input=json.dumps([hex32(v) for v in values]),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    proofs = [[to_hash32(node) for node in proof] for proof in answer["proofs"]]
    return to_hash32(answer["root"]), proofs


@pytest.mark.parametrize("count", [1, 2, 3, 7, 100, 1000])
def test_root_and_every_proof_match_openzeppelin(count: int) -> None:
    values = [keccak256(f"openzeppelin {count}/{i}".encode()) for i in range(count)]
    ours = MerkleTree.build(values)
    root, proofs = openzeppelin_tree(values)
    assert ours.root == root
    assert list(ours.proofs().values()) == proofs


def test_values_that_sort_differently_from_their_leaves_match_openzeppelin() -> None:
    # Small words and all-ones words: value order and leaf-hash order disagree.
    values = [Hash32(i.to_bytes(32, "big")) for i in range(1, 6)]
    values += [Hash32(bytes([0xFF] * 31 + [i])) for i in range(5)]
    ours = MerkleTree.build(values)
    root, proofs = openzeppelin_tree(values)
    assert ours.root == root
    assert list(ours.proofs().values()) == proofs

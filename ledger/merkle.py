"""Merkle batches laid out exactly as OpenZeppelin's StandardMerkleTree with leaf type bytes32.

Same root and proofs as ``StandardMerkleTree.of(values.map(v => [v]), ["bytes32"])`` in
@openzeppelin/merkle-tree 1.x, and proofs that OpenZeppelin's MerkleProof.verify accepts:
- leaf = keccak256(keccak256(abi.encode(bytes32 value))); abi.encode of a bytes32 is
  the 32 bytes themselves. Hashing twice keeps a leaf from passing for an inner node.
- inner node = keccak256 of its two children, the smaller first (commutative hash).
- the array holds 2n-1 nodes, node i has children 2i+1 and 2i+2, tree[0] is the root;
  leaves sorted by hash ascending fill the end of the array in reverse order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ledger.canonical import keccak256
from ledger.errors import MerkleError
from ledger.keccak import keccak_digest
from ledger.types import Hash32, hex32

__all__ = [
    "BatchProofVerifier",
    "MerkleTree",
    "TreeProofs",
    "leaf_hash",
    "process_proof",
    "proof_in_nodes",
    "verify_proof",
]


def leaf_hash(value: Hash32) -> Hash32:
    """Return the leaf a bytes32 value becomes: keccak256(keccak256(value))."""
    _check_node(value, "value")
    return keccak256(keccak256(value))


def process_proof(
    leaf: Hash32, proof: Sequence[Hash32], parents: dict[bytes, bytes] | None = None
) -> Hash32:
    """Fold a proof into the root it implies, as MerkleProof.processProof does.

    ``parents`` remembers each pair of nodes hashed (sorted pair -> parent) across calls:
    proofs in one batch share their upper nodes, so each pair is then hashed once.
    """
    _check_node(leaf, "leaf")
    node: bytes = leaf
    for step, sibling in enumerate(proof):
        if not isinstance(sibling, bytes) or len(sibling) != 32:
            _check_node(sibling, f"proof element {step}")
        pair = node + sibling if node <= sibling else sibling + node  # sorted, as OZ does
        if parents is None:
            node = keccak_digest(pair)
            continue
        parent = parents.get(pair)
        if parent is None:
            parent = parents[pair] = keccak_digest(pair)
        node = parent
    return Hash32(node)


def verify_proof(
    root: Hash32, value: Hash32, proof: Sequence[Hash32], parents: dict[bytes, bytes] | None = None
) -> bool:
    """Tell whether ``proof`` shows ``value`` under ``root``; raise MerkleError if malformed.

    The one Merkle proof verifier in Python; ``parents`` as for ``process_proof``.
    """
    _check_node(root, "root")
    return process_proof(leaf_hash(value), proof, parents) == root


class BatchProofVerifier:
    """``verify_proof`` for the many commitments of a few batches, as the verifier checks them.

    Their paths share the upper nodes of their trees: each pair of nodes is hashed once, not
    once per commitment (a proof of a 1,000-leaf batch is 10 hashes, 300 of them need about
    1,000, not 3,000). Memory grows with the pairs seen: use one per chunk of work.
    """

    __slots__ = ("_parents",)

    def __init__(self) -> None:
        self._parents: dict[bytes, bytes] = {}

    def __call__(self, root: Hash32, value: Hash32, proof: Sequence[Hash32]) -> bool:
        """Whether ``proof`` shows ``value`` under ``root``; MerkleError if it is malformed."""
        return verify_proof(root, value, proof, self._parents)


class MerkleTree:
    """An immutable tree over distinct bytes32 values; build it with ``MerkleTree.build``."""

    __slots__ = ("_nodes", "_positions")

    def __init__(self, nodes: list[Hash32], positions: dict[bytes, int]) -> None:
        # positions maps each value, in the order given, to its leaf's index in nodes.
        self._nodes = nodes
        self._positions = positions

    @classmethod
    def build(cls, values: Sequence[Hash32]) -> MerkleTree:
        """Build the tree; raise MerkleError if there are no values, or repeated ones."""
        if not values:
            raise MerkleError("a Merkle tree needs at least one value")
        leaves = [leaf_hash(value) for value in values]
        _reject_repeats(values)
        order = sorted(range(len(values)), key=leaves.__getitem__)
        size = 2 * len(values) - 1
        nodes: list[Hash32] = [Hash32(b"")] * size
        positions: dict[bytes, int] = dict.fromkeys(values, 0)
        for rank, value_index in enumerate(order):
            nodes[size - 1 - rank] = leaves[value_index]
            positions[values[value_index]] = size - 1 - rank
        for i in range(len(values) - 2, -1, -1):
            nodes[i] = _node_hash(nodes[2 * i + 1], nodes[2 * i + 2])
        return cls(nodes, positions)

    @property
    def root(self) -> Hash32:
        """The root anchored on chain; for a single value, its leaf hash."""
        return self._nodes[0]

    def __len__(self) -> int:
        return len(self._positions)

    def __contains__(self, value: object) -> bool:
        return value in self._positions

    def __iter__(self) -> Iterator[Hash32]:
        """Yield the values in the order they were given."""
        return (Hash32(value) for value in self._positions)

    @staticmethod
    def leaf_hash(value: Hash32) -> Hash32:
        """Return the leaf a value becomes (same as the module-level ``leaf_hash``)."""
        return leaf_hash(value)

    def proof(self, value: Hash32) -> list[Hash32]:
        """Return the sibling hashes from the value's leaf up to the root."""
        position = self._positions.get(value)
        if position is None:
            raise MerkleError(f"value {_show(value)} is not in this tree")
        return self._path(position)

    def proofs(self) -> TreeProofs:
        """Return every value's proof, in the order the values were given: O(n log n);
        the mapping also carries the tree's nodes (`TreeProofs.nodes`)."""
        proofs = TreeProofs(
            (Hash32(value), self._path(position)) for value, position in self._positions.items()
        )
        proofs.nodes = b"".join(self._nodes)
        return proofs

    @property
    def nodes(self) -> bytes:
        """The tree's 2n-1 nodes, 32 bytes each, in OpenZeppelin's array order (root first):
        what a store keeps once per batch to give each value's proof (`proof_in_nodes`)."""
        return b"".join(self._nodes)

    def _path(self, position: int) -> list[Hash32]:
        nodes = self._nodes
        path: list[Hash32] = []
        while position > 0:
            # An odd index is a left child, its sibling on the right; even, the reverse.
            path.append(nodes[position + 1 if position % 2 else position - 1])
            position = (position - 1) // 2
        return path


class TreeProofs(dict[Hash32, list[Hash32]]):
    """Each value's proof (`MerkleTree.proofs`), with the tree's nodes as `MerkleTree.nodes`
    gives them (b"" when the mapping was made otherwise)."""

    nodes: bytes = b""


def proof_in_nodes(
    nodes: bytes, value: Hash32, leaf: Hash32 | None = None
) -> tuple[Hash32, ...] | None:
    """The proof of `value` in the tree whose nodes `MerkleTree.nodes` gave (the same as
    `MerkleTree.proof`), or None when the value is not one of its leaves.

    The leaves fill the array's end sorted by hash, largest first: the value's leaf is found
    by bisection, then the path is read upwards, without hashing beyond the leaf's two.
    `leaf`: `leaf_hash(value)`, when the caller has it already (to check the proof, say)."""
    count = len(nodes) // 32
    if count == 0 or len(nodes) % 32 or count % 2 == 0:
        raise MerkleError(f"a tree's nodes are 2n-1 times 32 bytes, got {len(nodes)} bytes")
    if leaf is None:
        leaf = leaf_hash(value)
    first = count // 2  # the first leaf's index: the array holds n-1 inner nodes, then n leaves
    low, high = first, count - 1  # nodes[low..high] descend
    while low <= high:
        middle = (low + high) // 2
        node = nodes[middle * 32 : middle * 32 + 32]
        if node == leaf:
            break
        if node > leaf:
            low = middle + 1
        else:
            high = middle - 1
    else:
        return None
    path: list[Hash32] = []
    position = middle
    while position > 0:
        sibling = position + 1 if position % 2 else position - 1
        path.append(Hash32(nodes[sibling * 32 : sibling * 32 + 32]))
        position = (position - 1) // 2
    return tuple(path)


def _node_hash(a: bytes, b: bytes) -> Hash32:
    return keccak256(a + b if a <= b else b + a)


def _check_node(node: object, what: str) -> None:
    if not isinstance(node, bytes) or len(node) != 32:
        raise MerkleError(f"{what} must be 32 bytes, got {_show(node)}")


def _reject_repeats(values: Sequence[Hash32]) -> None:
    # Repeats would anchor one commitment twice and give two proofs for one value.
    seen: set[bytes] = set()
    for value in values:
        if value in seen:
            raise MerkleError(f"value {hex32(value)} appears more than once")
        seen.add(value)


def _show(value: object) -> str:
    if isinstance(value, bytes):
        return f"{len(value)} bytes 0x{value.hex()}" if len(value) != 32 else hex32(value)
    return type(value).__name__

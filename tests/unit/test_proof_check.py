"""The shared-path proof verifier (BatchProofVerifier) agrees with `verify_proof` on every proof."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import BatchProofVerifier, Hash32, MerkleError, MerkleTree, keccak256, verify_proof

VALUES = st.lists(
    st.binary(min_size=32, max_size=32).map(Hash32), min_size=1, max_size=40, unique=True
)


@pytest.mark.property
@settings(max_examples=150, deadline=None)
@given(VALUES, VALUES, st.data())
def test_agrees_with_verify_proof_for_good_and_broken_proofs(
    first: list[Hash32], second: list[Hash32], data: st.DataObject
) -> None:
    proves = (
        BatchProofVerifier()
    )  # one for every check below: cached pairs must not leak between them
    trees = [MerkleTree.build(first), MerkleTree.build(list(set(second) - set(first)) or first)]
    for tree in trees:
        for value, proof in tree.proofs().items():
            assert proves(tree.root, value, proof) is True
            other = trees[1] if tree is trees[0] else trees[0]
            assert proves(other.root, value, proof) == verify_proof(other.root, value, proof)
            if proof:
                step = data.draw(st.integers(0, len(proof) - 1))
                flipped = bytes([proof[step][0] ^ 1]) + proof[step][1:]
                broken = [*proof[:step], Hash32(flipped), *proof[step + 1 :]]
                assert proves(tree.root, value, broken) is False
                assert proves(tree.root, value, proof[:-1]) is False
                assert proves(tree.root, value, [*proof, proof[-1]]) is False
            assert proves(tree.root, keccak256(b"not a member" + value), proof) is False


def test_a_malformed_proof_is_an_error_as_for_verify_proof() -> None:
    tree = MerkleTree.build([keccak256(bytes([i])) for i in range(5)])
    value = keccak256(bytes([3]))
    proof = tree.proof(value)
    short = [*proof[:-1], Hash32(proof[-1][:31])]
    for check in (BatchProofVerifier(), verify_proof):
        with pytest.raises(MerkleError):
            check(tree.root, value, short)

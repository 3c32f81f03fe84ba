// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice OpenZeppelin's StandardMerkleTree (JavaScript @openzeppelin/merkle-tree) over
/// bytes32 values, rebuilt in Solidity so tests get the same roots and proofs:
/// leaf = keccak256(bytes.concat(keccak256(abi.encode(value)))); leaves sorted ascending;
/// array layout tree[2n-1] with sorted leaf i at tree[2n-2-i]; parent i of 2i+1 and 2i+2 is
/// the commutative keccak of its children; a proof is the siblings from the leaf upwards.
library StandardMerkle {
    struct Tree {
        bytes32[] nodes; // the 2n-1 node array, root at 0
        bytes32[] sortedLeaves; // leaf hashes, ascending (sorted leaf i sits at nodes[len-1-i])
    }

    function leafHash(bytes32 value) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(value))));
    }

    function hashPair(bytes32 a, bytes32 b) internal pure returns (bytes32 result) {
        (bytes32 lo, bytes32 hi) = a < b ? (a, b) : (b, a);
        assembly ("memory-safe") {
            mstore(0x00, lo)
            mstore(0x20, hi)
            result := keccak256(0x00, 0x40)
        }
    }

    /// @dev Builds the tree of `values` (non-empty; duplicates are the caller's business).
    function build(bytes32[] memory values) internal pure returns (Tree memory tree) {
        uint256 n = values.length;
        require(n > 0, "StandardMerkle: empty tree");
        bytes32[] memory leaves = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) leaves[i] = leafHash(values[i]);
        _sort(leaves);
        bytes32[] memory nodes = new bytes32[](2 * n - 1);
        uint256 last = nodes.length - 1;
        for (uint256 i = 0; i < n; ++i) nodes[last - i] = leaves[i];
        for (uint256 j = nodes.length - n; j > 0; --j) {
            uint256 i = j - 1;
            nodes[i] = hashPair(nodes[2 * i + 1], nodes[2 * i + 2]);
        }
        tree.nodes = nodes;
        tree.sortedLeaves = leaves;
    }

    function root(Tree memory tree) internal pure returns (bytes32) {
        return tree.nodes[0];
    }

    function size(Tree memory tree) internal pure returns (uint256) {
        return tree.sortedLeaves.length;
    }

    /// @dev Proof of the sorted leaf number `sortedIndex`.
    function proofAt(Tree memory tree, uint256 sortedIndex) internal pure returns (bytes32[] memory path) {
        uint256 index = tree.nodes.length - 1 - sortedIndex;
        uint256 depth = 0;
        for (uint256 i = index; i > 0; i = (i - 1) / 2) ++depth;
        path = new bytes32[](depth);
        for (uint256 k = 0; k < depth; ++k) {
            uint256 sibling = index % 2 == 1 ? index + 1 : index - 1;
            path[k] = tree.nodes[sibling];
            index = (index - 1) / 2;
        }
    }

    /// @dev Proof of `value`; reverts when the value is not in the tree.
    function proof(Tree memory tree, bytes32 value) internal pure returns (bytes32[] memory) {
        (bool found, uint256 sortedIndex) = indexOf(tree, value);
        require(found, "StandardMerkle: value not in tree");
        return proofAt(tree, sortedIndex);
    }

    /// @dev Binary search of the value's leaf among the sorted leaves.
    function indexOf(Tree memory tree, bytes32 value) internal pure returns (bool found, uint256 sortedIndex) {
        bytes32 leaf = leafHash(value);
        bytes32[] memory leaves = tree.sortedLeaves;
        uint256 lo = 0;
        uint256 hi = leaves.length;
        while (lo < hi) {
            uint256 mid = (lo + hi) / 2;
            if (leaves[mid] < leaf) lo = mid + 1;
            else hi = mid;
        }
        found = lo < leaves.length && leaves[lo] == leaf;
        sortedIndex = lo;
    }

    /// @dev The root a proof leads to from a value (what MerkleProof.processProof computes).
    function processProof(bytes32 value, bytes32[] memory proof_) internal pure returns (bytes32 computed) {
        computed = leafHash(value);
        for (uint256 i = 0; i < proof_.length; ++i) computed = hashPair(computed, proof_[i]);
    }

    // ------------------------------------------------------------------ sorting

    /// @dev In-place ascending sort: quicksort (middle element as pivot; leaves are hashes, so
    /// that is as good as a random pivot), recursing into the smaller part so the depth stays
    /// O(log n), insertion sort for short ranges.
    function _sort(bytes32[] memory a) private pure {
        if (a.length > 1) _quickSort(a, 0, a.length - 1);
    }

    function _quickSort(bytes32[] memory a, uint256 lo, uint256 hi) private pure {
        while (lo < hi) {
            if (hi - lo < 16) {
                _insertionSort(a, lo, hi);
                return;
            }
            uint256 mid = lo + (hi - lo) / 2;
            (a[mid], a[hi]) = (a[hi], a[mid]);
            bytes32 pivot = a[hi];
            uint256 store = lo;
            for (uint256 i = lo; i < hi; ++i) {
                if (a[i] < pivot) {
                    (a[i], a[store]) = (a[store], a[i]);
                    ++store;
                }
            }
            (a[store], a[hi]) = (a[hi], a[store]);
            // the pivot is at `store`: sort [lo, store - 1] and [store + 1, hi]
            if (store - lo < hi - store) {
                if (store > lo) _quickSort(a, lo, store - 1);
                lo = store + 1;
            } else {
                if (store < hi) _quickSort(a, store + 1, hi);
                hi = store - 1; // store > lo here, so no underflow
            }
        }
    }

    function _insertionSort(bytes32[] memory a, uint256 lo, uint256 hi) private pure {
        for (uint256 i = lo + 1; i <= hi; ++i) {
            bytes32 key = a[i];
            uint256 j = i;
            while (j > lo && a[j - 1] > key) {
                a[j] = a[j - 1];
                --j;
            }
            a[j] = key;
        }
    }
}

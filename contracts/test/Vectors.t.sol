// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Strings} from "@openzeppelin/contracts/utils/Strings.sol";
import {TestBase} from "./TestBase.sol";
import {StandardMerkle} from "./StandardMerkle.sol";

/// @notice The portable Merkle vectors (tests/vectors/merkle.json, written by
/// scripts/make_vectors.py from ledger/merkle.py) against OpenZeppelin's MerkleProof, as
/// CommitmentLedger uses it: every good proof is accepted, every broken one rejected, and the
/// Solidity StandardMerkle helper builds the same roots and proofs as the Python code.
contract VectorsTest is TestBase {
    using StandardMerkle for StandardMerkle.Tree;

    string internal constant MERKLE_VECTORS = "tests/vectors/merkle.json";
    /// @dev Fewer would mean the file lost cases: 32 good proofs and 60-odd broken ones.
    uint256 internal constant MIN_CASES = 80;

    string internal json;

    function setUp() public {
        json = vm.readFile(string.concat(vm.projectRoot(), "/", MERKLE_VECTORS));
    }

    /// @dev MerkleProof's calldata variant (the one the contract calls) needs an external call.
    function verifyCalldata(bytes32[] calldata proof, bytes32 root, bytes32 leaf) external pure returns (bool) {
        return MerkleProof.verifyCalldata(proof, root, leaf);
    }

    function test_everyCaseGetsItsVerdict() public view {
        uint256 count = vm.parseJsonUint(json, ".case_count");
        assertTrue(count >= MIN_CASES, "too few Merkle cases in the vectors");
        uint256 good;
        uint256 broken;
        for (uint256 i = 0; i < count; ++i) {
            string memory key = string.concat(".cases[", Strings.toString(i), "]");
            string memory name = vm.parseJsonString(json, string.concat(key, ".name"));
            bytes32 root = vm.parseJsonBytes32(json, string.concat(key, ".root"));
            bytes32 value = vm.parseJsonBytes32(json, string.concat(key, ".value"));
            bytes32[] memory proof = _proof(string.concat(key, ".proof"));
            bool valid = vm.parseJsonBool(json, string.concat(key, ".valid"));
            bytes32 leaf = StandardMerkle.leafHash(value);
            assertEq(MerkleProof.verify(proof, root, leaf), valid, name);
            assertEq(this.verifyCalldata(proof, root, leaf), valid, name);
            if (valid) ++good;
            else ++broken;
        }
        assertTrue(good > 0 && broken > 0, "the vectors need good and broken proofs");
    }

    function test_solidityTreesMatchThePythonTrees() public view {
        for (uint256 t = 0; vm.keyExistsJson(json, _tree(t)); ++t) {
            string memory key = _tree(t);
            bytes32[] memory values = vm.parseJsonBytes32Array(json, string.concat(key, ".values"));
            StandardMerkle.Tree memory tree = StandardMerkle.build(values);
            assertEq(tree.root(), vm.parseJsonBytes32(json, string.concat(key, ".root")), key);
            for (uint256 i = 0; i < values.length; ++i) {
                string memory entry = string.concat(key, ".proofs[", Strings.toString(i), "]");
                bytes32[] memory want = _proof(string.concat(entry, ".proof"));
                bytes32[] memory got = tree.proof(values[i]);
                assertEq(got.length, want.length, entry);
                for (uint256 k = 0; k < got.length; ++k) assertEq(got[k], want[k], entry);
            }
        }
    }

    function _tree(uint256 index) private pure returns (string memory) {
        return string.concat(".trees[", Strings.toString(index), "]");
    }

    /// @dev A proof array; forge's JSON reader cannot type an empty array, so [] is read as such.
    function _proof(string memory key) private view returns (bytes32[] memory) {
        if (!vm.keyExistsJson(json, string.concat(key, "[0]"))) return new bytes32[](0);
        return vm.parseJsonBytes32Array(json, key);
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {CommitmentLedger} from "../CommitmentLedger.sol";
import {StandardMerkle} from "./StandardMerkle.sol";
import {LedgerFixture} from "./LedgerFixture.sol";
import {Vm} from "./Vm.sol";

/// @notice Gas per commitment: `anchor` for one, `anchorBatch` for 100 / 1,000 / 10,000
/// leaves, and `recordOutcome` with a real proof at depths 7, 10, 14 (real trees) and 17, 20
/// (paths computed from random siblings: the contract only hashes the path, so the cost is
/// the same as for a real tree of that size). Run with -vv to see the figures.
///
/// Each measurement cools the ledger's storage first (vm.cool), so every slot is cold as in a
/// transaction of its own. Three figures per call:
///   `<name> call gas`    gasleft() before minus after, seen from this contract (includes the
///                        CALL's own cost: a cold account access and argument copying);
///   `<name> callee gas`  vm.lastCallGas().gasTotalUsed, the execution inside the ledger;
///   `<name> tx gas`      callee gas + 21,000 + calldata (16 per non-zero byte, 4 per zero
///                        byte): what the same call costs as a transaction of its own.
contract GasPerCommitmentTest is LedgerFixture {
    using StandardMerkle for StandardMerkle.Tree;

    /// @dev Gas per `anchorBatch` transaction that issue #19 sets as the goal.
    uint256 internal constant ANCHOR_BATCH_GAS_GOAL = 50_000;

    struct Measured {
        uint256 call;
        uint256 callee;
        uint256 txGas;
    }

    // ================================================================== anchor

    function test_gas_anchor_single() public {
        Measured memory m = _anchorOne(_c("gas single"));
        _log("anchor", m);
        // a steady state: the average over 20 more, each in a cold state
        uint256 sum = 0;
        for (uint256 i = 0; i < 20; ++i) sum += _anchorOne(_c(i)).txGas;
        emit log_named_uint("anchor tx gas, average of 20", sum / 20);
        emit log_named_uint("anchor tx gas per commitment", m.txGas);
    }

    function _anchorOne(bytes32 c) private returns (Measured memory m) {
        vm.cool(address(ledger));
        vm.prank(registrarA);
        uint256 g0 = gasleft();
        ledger.anchor(c);
        m.call = g0 - gasleft();
        m = _finish(m, abi.encodeCall(CommitmentLedger.anchor, (c)));
    }

    // ================================================================== anchorBatch

    function test_gas_anchorBatch_100() public {
        _anchorBatchOf(100, true);
    }

    function test_gas_anchorBatch_1000() public {
        _anchorBatchOf(1000, true);
    }

    /// @dev The root of a real 10,000-leaf tree (built with gas metering paused).
    function test_gas_anchorBatch_10000() public {
        _anchorBatchOf(10_000, true);
    }

    /// @dev The contract never looks inside the tree, so any non-zero root costs the same.
    function test_gas_anchorBatch_10000_anyRoot() public {
        _anchorBatchOf(10_000, false);
    }

    function _anchorBatchOf(uint256 n, bool realTree) private {
        bytes32 root;
        if (realTree) {
            vm.pauseGasMetering();
            root = StandardMerkle.build(_values(n, n)).root();
            vm.resumeGasMetering();
        } else {
            root = keccak256(abi.encode("any root", n));
        }
        uint32 size = SafeCast.toUint32(n);
        vm.cool(address(ledger));
        vm.prank(registrarA);
        uint256 g0 = gasleft();
        ledger.anchorBatch(root, size);
        Measured memory m;
        m.call = g0 - gasleft();
        m = _finish(m, abi.encodeCall(CommitmentLedger.anchorBatch, (root, size)));
        string memory name = string.concat("anchorBatch(", _str(n), ")");
        _log(name, m);
        emit log_named_uint(string.concat(name, " tx gas per commitment"), m.txGas / n);
        emit log_named_uint(string.concat(name, " tx gas per commitment x1000"), (m.txGas * 1000) / n);
        assertEq(uint256(ledger.batchOf(DEPT_A, root).size), n, "anchored");
        // issue #19's goal, with the role, binding, zero, size and once-only checks all kept
        assertLe(m.txGas, ANCHOR_BATCH_GAS_GOAL, "anchorBatch tx gas within the goal");
    }

    // ================================================================== recordOutcome with proofs

    function test_gas_recordOutcome_depth7_realTree128() public {
        _recordInRealTree(128, 7);
    }

    function test_gas_recordOutcome_depth10_realTree1024() public {
        _recordInRealTree(1024, 10);
    }

    function test_gas_recordOutcome_depth14_realTree16384() public {
        _recordInRealTree(16_384, 14);
    }

    function test_gas_recordOutcome_depth14_computedPath() public {
        _recordOnComputedPath(14);
    }

    function test_gas_recordOutcome_depth17_computedPath() public {
        _recordOnComputedPath(17);
    }

    function test_gas_recordOutcome_depth20_computedPath() public {
        _recordOnComputedPath(20);
    }

    /// @dev For comparison: a singly anchored commitment (no proof at all), and a batch member's
    /// second outcome (its record exists; no proof needed).
    function test_gas_recordOutcome_noProof() public {
        bytes32 c = _c("single for outcome");
        _anchor(c);
        Measured memory m = _recordOne(c, CommitmentLedger.Status.Mismatch, bytes32(0), _none());
        _log("recordOutcome single (no proof)", m);
        m = _recordOne(c, CommitmentLedger.Status.Kept, bytes32(0), _none());
        _log("recordOutcome second outcome (record exists)", m);
        bytes32 b = _c("single for breach");
        _anchor(b);
        m = _recordOne(b, CommitmentLedger.Status.Proposed, bytes32(0), _none());
        _log("recordOutcome Proposed single (no proof)", m);
        m = _recordOne(b, CommitmentLedger.Status.Breached, bytes32(0), _none());
        _log("recordOutcome Breached from Proposed (no proof)", m);
        vm.cool(address(ledger));
        vm.prank(verifierA);
        uint256 g0 = gasleft();
        ledger.repair(b, DECISION);
        m.call = g0 - gasleft();
        m = _finish(m, abi.encodeCall(CommitmentLedger.repair, (b, DECISION)));
        _log("repair", m);
    }

    /// @dev recordOutcomes: 50 members of a 1,024-leaf tree (depth 10) in one call.
    function test_gas_recordOutcomes_50_depth10() public {
        vm.pauseGasMetering();
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(1024, 1024);
        CommitmentLedger.OutcomeInput[] memory items = new CommitmentLedger.OutcomeInput[](50);
        for (uint256 i = 0; i < items.length; ++i) {
            bytes32 c = values[i * 20];
            items[i] = CommitmentLedger.OutcomeInput(c, uint8(CommitmentLedger.Status.Kept), EVIDENCE, tree.root(), tree.proof(c));
        }
        vm.resumeGasMetering();
        vm.cool(address(ledger));
        vm.prank(verifierA);
        uint256 g0 = gasleft();
        ledger.recordOutcomes(items);
        Measured memory m;
        m.call = g0 - gasleft();
        m = _finish(m, abi.encodeCall(CommitmentLedger.recordOutcomes, (items)));
        _log("recordOutcomes(50 at depth 10)", m);
        emit log_named_uint("recordOutcomes(50 at depth 10) tx gas per commitment", m.txGas / items.length);
    }

    function _recordInRealTree(uint256 n, uint256 depth) private {
        vm.pauseGasMetering();
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(n, n);
        bytes32 c = values[n / 3];
        bytes32[] memory proof = tree.proof(c);
        bytes32 root = tree.root();
        vm.resumeGasMetering();
        assertEq(proof.length, depth, "proof depth");
        Measured memory m = _recordOne(c, CommitmentLedger.Status.Kept, root, proof);
        _log(string.concat("recordOutcome depth ", _str(depth), " (real tree of ", _str(n), ")"), m);
        _assertStatus(c, CommitmentLedger.Status.Kept, "recorded");
    }

    /// @dev A path of `depth` random siblings from a commitment's leaf gives a root; a batch of
    /// 2^depth leaves anchored under it admits exactly that proof length.
    function _recordOnComputedPath(uint256 depth) private {
        bytes32 c = keccak256(abi.encode("computed path", depth));
        bytes32[] memory proof = new bytes32[](depth);
        for (uint256 i = 0; i < depth; ++i) proof[i] = keccak256(abi.encode("sibling", depth, i));
        bytes32 root = StandardMerkle.processProof(c, proof);
        vm.prank(registrarA);
        ledger.anchorBatch(root, SafeCast.toUint32(2 ** depth));
        assertTrue(ledger.isAnchored(DEPT_A, c, root, proof), "path proves");
        Measured memory m = _recordOne(c, CommitmentLedger.Status.Kept, root, proof);
        _log(string.concat("recordOutcome depth ", _str(depth), " (computed path, 2^", _str(depth), " leaves)"), m);
        _assertStatus(c, CommitmentLedger.Status.Kept, "recorded");
    }

    function _recordOne(
        bytes32 c,
        CommitmentLedger.Status to,
        bytes32 root,
        bytes32[] memory proof
    ) private returns (Measured memory m) {
        vm.cool(address(ledger));
        vm.prank(verifierA);
        uint256 g0 = gasleft();
        ledger.recordOutcome(c, uint8(to), EVIDENCE, root, proof);
        m.call = g0 - gasleft();
        m = _finish(m, abi.encodeCall(CommitmentLedger.recordOutcome, (c, uint8(to), EVIDENCE, root, proof)));
    }

    // ================================================================== helpers

    function _finish(Measured memory m, bytes memory callData) private view returns (Measured memory) {
        Vm.Gas memory g = vm.lastCallGas();
        m.callee = g.gasTotalUsed;
        m.txGas = 21_000 + _calldataGas(callData) + m.callee;
        return m;
    }

    function _calldataGas(bytes memory data) private pure returns (uint256 gas) {
        for (uint256 i = 0; i < data.length; ++i) gas += data[i] == 0 ? 4 : 16;
    }

    function _log(string memory name, Measured memory m) private {
        emit log_named_uint(string.concat(name, " call gas"), m.call);
        emit log_named_uint(string.concat(name, " callee gas"), m.callee);
        emit log_named_uint(string.concat(name, " tx gas"), m.txGas);
    }

    function _str(uint256 v) private pure returns (string memory) {
        if (v == 0) return "0";
        bytes memory b;
        while (v > 0) {
            b = abi.encodePacked(bytes1(uint8(48 + (v % 10))), b);
            v /= 10;
        }
        return string(b);
    }
}

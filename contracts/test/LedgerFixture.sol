// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {CommitmentLedger} from "../CommitmentLedger.sol";
import {TestBase} from "./TestBase.sol";
import {StandardMerkle} from "./StandardMerkle.sol";

/// @notice A deployed ledger with two departments, each with a registrar and a verifier,
/// plus helpers shared by the unit, fuzz and gas tests.
abstract contract LedgerFixture is TestBase {
    using StandardMerkle for StandardMerkle.Tree;

    CommitmentLedger internal ledger;

    bytes32 internal constant DEPT_A = keccak256("DEPT-A");
    bytes32 internal constant DEPT_B = keccak256("DEPT-B");
    bytes32 internal constant EVIDENCE = keccak256("signed verification report");
    bytes32 internal constant DECISION = keccak256("repair decision");

    bytes32 internal REGISTRAR;
    bytes32 internal VERIFIER;
    bytes32 internal constant ADMIN_ROLE = 0x00;

    address internal admin = vm.addr(0xAD);
    address internal registrarA = vm.addr(0xA1);
    address internal verifierA = vm.addr(0xA2);
    address internal registrarB = vm.addr(0xB1);
    address internal verifierB = vm.addr(0xB2);
    address internal outsider = vm.addr(0x0DD);

    uint64 internal constant T0 = 1_700_000_000;
    uint256 internal constant B0 = 19_000_000;

    function setUp() public virtual {
        vm.warp(T0);
        vm.roll(B0);
        ledger = new CommitmentLedger(admin);
        REGISTRAR = ledger.REGISTRAR_ROLE();
        VERIFIER = ledger.VERIFIER_ROLE();
        vm.startPrank(admin);
        ledger.grantDepartmentRole(REGISTRAR, registrarA, DEPT_A);
        ledger.grantDepartmentRole(VERIFIER, verifierA, DEPT_A);
        ledger.grantDepartmentRole(REGISTRAR, registrarB, DEPT_B);
        ledger.grantDepartmentRole(VERIFIER, verifierB, DEPT_B);
        vm.stopPrank();
        vm.label(address(ledger), "ledger");
        vm.label(admin, "admin");
        vm.label(registrarA, "registrarA");
        vm.label(verifierA, "verifierA");
        vm.label(registrarB, "registrarB");
        vm.label(verifierB, "verifierB");
        vm.label(outsider, "outsider");
    }

    // ------------------------------------------------------------------ values and trees

    function _c(string memory name) internal pure returns (bytes32) {
        return keccak256(abi.encode("commitment", name));
    }

    function _c(uint256 i) internal pure returns (bytes32) {
        return keccak256(abi.encode("commitment", i));
    }

    /// @dev n distinct pseudo-random values from `seed`.
    function _values(uint256 seed, uint256 n) internal pure returns (bytes32[] memory values) {
        values = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) values[i] = keccak256(abi.encode("member", seed, i));
    }

    /// @dev Builds a tree of n values from `seed` and anchors its root as registrarA.
    function _anchorTree(
        uint256 seed,
        uint256 n
    ) internal returns (StandardMerkle.Tree memory tree, bytes32[] memory values) {
        values = _values(seed, n);
        tree = StandardMerkle.build(values);
        vm.prank(registrarA);
        ledger.anchorBatch(tree.root(), SafeCast.toUint32(n));
    }

    function _none() internal pure returns (bytes32[] memory) {
        return new bytes32[](0);
    }

    // ------------------------------------------------------------------ actions

    function _anchor(bytes32 commitment) internal {
        vm.prank(registrarA);
        ledger.anchor(commitment);
    }

    function _record(bytes32 commitment, CommitmentLedger.Status to) internal {
        vm.prank(verifierA);
        ledger.recordOutcome(commitment, uint8(to), EVIDENCE, bytes32(0), _none());
    }

    /// @dev Anchors `commitment` singly (department A) and walks it to `target` along allowed moves.
    function _reach(bytes32 commitment, CommitmentLedger.Status target) internal {
        if (target == CommitmentLedger.Status.None) return;
        _anchor(commitment);
        if (target == CommitmentLedger.Status.Anchored) return;
        if (target == CommitmentLedger.Status.Withdrawn) {
            vm.prank(registrarA);
            ledger.withdraw(commitment, EVIDENCE, bytes32(0), _none());
            return;
        }
        if (
            target == CommitmentLedger.Status.Kept ||
            target == CommitmentLedger.Status.Mismatch ||
            target == CommitmentLedger.Status.NeedsManual ||
            target == CommitmentLedger.Status.Proposed
        ) {
            _record(commitment, target);
            return;
        }
        _record(commitment, CommitmentLedger.Status.Proposed);
        if (target == CommitmentLedger.Status.Breached) {
            _record(commitment, target);
            return;
        }
        _record(commitment, CommitmentLedger.Status.Breached);
        if (target == CommitmentLedger.Status.Repaired) {
            vm.prank(verifierA);
            ledger.repair(commitment, DECISION);
        } else {
            _record(commitment, target); // Expired or Corrected
        }
    }

    // ------------------------------------------------------------------ views

    function _status(bytes32 commitment) internal view returns (CommitmentLedger.Status) {
        return ledger.statusOf(DEPT_A, commitment).status;
    }

    function _assertStatus(bytes32 commitment, CommitmentLedger.Status expected, string memory message) internal view {
        assertEq(uint256(_status(commitment)), uint256(expected), message);
    }

    function _assertStanding(
        bytes32 commitment,
        CommitmentLedger.Status status,
        bytes32 department,
        uint256 anchoredAt,
        uint256 updatedAt
    ) internal view {
        CommitmentLedger.Standing memory s = ledger.statusOf(DEPT_A, commitment);
        assertEq(uint256(s.status), uint256(status), "standing.status");
        assertEq(s.department, department, "standing.department");
        assertEq(uint256(s.anchoredAt), anchoredAt, "standing.anchoredAt");
        assertEq(uint256(s.updatedAt), updatedAt, "standing.updatedAt");
    }

    function _assertBreaches(uint256 open, uint256 total) internal view {
        assertEq(ledger.openBreaches(), open, "openBreaches");
        assertEq(ledger.totalBreaches(), total, "totalBreaches");
    }

    /// @dev Records a commitment as a proposed breach, then publishes it (Proposed -> Breached).
    function _publish(bytes32 commitment) internal {
        _record(commitment, CommitmentLedger.Status.Proposed);
        _record(commitment, CommitmentLedger.Status.Breached);
    }

    /// @dev The status machine, written independently of the contract (the issue's table).
    function _allowed(uint256 from, uint256 to) internal pure returns (bool) {
        // Anchored(1) -> Withdrawn(2) Kept(3) Mismatch(4) NeedsManual(5) Proposed(10)
        // Mismatch(4) -> Kept NeedsManual Proposed; NeedsManual(5) -> Kept Mismatch Proposed
        // Proposed(10) -> Breached(6) Kept NeedsManual Corrected(9): Breached only from Proposed
        // Breached(6) -> Repaired(7) Expired(8) Corrected(9); everything else is final.
        uint16[11] memory table = [
            uint16(0), // None
            (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5) | (1 << 10), // Anchored
            0, // Withdrawn
            0, // Kept
            (1 << 3) | (1 << 5) | (1 << 10), // Mismatch
            (1 << 3) | (1 << 4) | (1 << 10), // NeedsManual
            (1 << 7) | (1 << 8) | (1 << 9), // Breached
            0, // Repaired
            0, // Expired
            0, // Corrected
            (1 << 6) | (1 << 3) | (1 << 5) | (1 << 9) // Proposed
        ];
        if (from >= 11 || to >= 11) return false;
        return (table[from] >> to) & 1 == 1;
    }
}

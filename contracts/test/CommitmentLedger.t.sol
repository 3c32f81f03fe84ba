// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {CommitmentLedger} from "../CommitmentLedger.sol";
import {StandardMerkle} from "./StandardMerkle.sol";
import {LedgerFixture} from "./LedgerFixture.sol";
import {Vm} from "./Vm.sol";

/// @notice Unit tests: every function, every revert path (with the state checked unchanged
/// afterwards), and an expected event for every change.
contract CommitmentLedgerTest is LedgerFixture {
    using StandardMerkle for StandardMerkle.Tree;

    // ================================================================== administration

    function test_constructor_grantsAdminOnly() public view {
        assertTrue(ledger.hasRole(ADMIN_ROLE, admin), "admin has DEFAULT_ADMIN_ROLE");
        assertEq(ledger.departmentOf(admin), bytes32(0), "admin is not bound");
        assertEq(ledger.getRoleAdmin(REGISTRAR), ADMIN_ROLE, "registrar role admin");
        assertEq(ledger.getRoleAdmin(VERIFIER), ADMIN_ROLE, "verifier role admin");
        assertEq(REGISTRAR, keccak256("REGISTRAR_ROLE"), "REGISTRAR_ROLE");
        assertEq(VERIFIER, keccak256("VERIFIER_ROLE"), "VERIFIER_ROLE");
        _assertBreaches(0, 0);
    }

    function test_constructor_roleGrantedEvent() public {
        vm.expectEmit(true, true, true, true);
        emit IAccessControl.RoleGranted(ADMIN_ROLE, admin, address(this));
        new CommitmentLedger(admin);
    }

    function test_grantDepartmentRole_bindsAccountAndGrantsRole() public {
        address account = vm.addr(0x1234);
        bytes32 dept = keccak256("DEPT-C");
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.DepartmentBound(account, dept);
        vm.expectEmit(true, true, true, true, address(ledger));
        emit IAccessControl.RoleGranted(REGISTRAR, account, admin);
        vm.prank(admin);
        ledger.grantDepartmentRole(REGISTRAR, account, dept);
        assertEq(ledger.departmentOf(account), dept, "bound");
        assertTrue(ledger.hasRole(REGISTRAR, account), "has role");
        assertFalse(ledger.hasRole(VERIFIER, account), "no other role");
    }

    function test_grantDepartmentRole_secondRoleSameDepartment_noRebind() public {
        vm.recordLogs();
        vm.prank(admin);
        ledger.grantDepartmentRole(VERIFIER, registrarA, DEPT_A);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1, "only RoleGranted");
        assertEq(logs[0].topics[0], IAccessControl.RoleGranted.selector, "RoleGranted");
        assertTrue(ledger.hasRole(VERIFIER, registrarA), "has verifier role");
        assertTrue(ledger.hasRole(REGISTRAR, registrarA), "keeps registrar role");
        assertEq(ledger.departmentOf(registrarA), DEPT_A, "still A");
    }

    function test_grantDepartmentRole_regrantSameRole_noEvents() public {
        vm.recordLogs();
        vm.prank(admin);
        ledger.grantDepartmentRole(REGISTRAR, registrarA, DEPT_A);
        assertEq(vm.getRecordedLogs().length, 0, "no events for a no-op");
    }

    function test_grantDepartmentRole_twoAccountsShareADepartment() public {
        address second = vm.addr(0xA3);
        vm.prank(admin);
        ledger.grantDepartmentRole(VERIFIER, second, DEPT_A);
        assertEq(ledger.departmentOf(second), DEPT_A, "same department id");
        bytes32 c = _c("shared");
        _anchor(c);
        vm.prank(second);
        ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Kept), EVIDENCE, bytes32(0), _none());
        _assertStatus(c, CommitmentLedger.Status.Kept, "second verifier of A acts for A");
    }

    function test_grantDepartmentRole_revertsZeroDepartment() public {
        address account = vm.addr(0x1234);
        vm.expectRevert(CommitmentLedger.ZeroHash.selector);
        vm.prank(admin);
        ledger.grantDepartmentRole(REGISTRAR, account, bytes32(0));
        assertEq(ledger.departmentOf(account), bytes32(0), "unbound");
        assertFalse(ledger.hasRole(REGISTRAR, account), "no role");
    }

    function test_grantDepartmentRole_revertsAccountBoundElsewhere() public {
        vm.expectRevert(
            abi.encodeWithSelector(CommitmentLedger.AccountBoundElsewhere.selector, registrarA, DEPT_A)
        );
        vm.prank(admin);
        ledger.grantDepartmentRole(VERIFIER, registrarA, DEPT_B);
        assertEq(ledger.departmentOf(registrarA), DEPT_A, "still bound to A");
        assertFalse(ledger.hasRole(VERIFIER, registrarA), "no verifier role");
    }

    function test_grantDepartmentRole_revertsForNonAdmin() public {
        address account = vm.addr(0x1234);
        address[3] memory callers = [registrarA, verifierA, outsider];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, callers[i], ADMIN_ROLE)
            );
            vm.prank(callers[i]);
            ledger.grantDepartmentRole(REGISTRAR, account, DEPT_A);
        }
        assertEq(ledger.departmentOf(account), bytes32(0), "unbound");
        assertFalse(ledger.hasRole(REGISTRAR, account), "no role");
    }

    function test_grantRole_departmentRoleToUnboundAccount_revertsAccountNotBound() public {
        address account = vm.addr(0x1234);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.AccountNotBound.selector, account));
        vm.prank(admin);
        ledger.grantRole(REGISTRAR, account);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.AccountNotBound.selector, account));
        vm.prank(admin);
        ledger.grantRole(VERIFIER, account);
        assertFalse(ledger.hasRole(REGISTRAR, account), "no registrar role");
        assertFalse(ledger.hasRole(VERIFIER, account), "no verifier role");
    }

    function test_grantRole_otherRolesNeedNoDepartment() public {
        address account = vm.addr(0x1234);
        vm.prank(admin);
        ledger.grantRole(ADMIN_ROLE, account);
        assertTrue(ledger.hasRole(ADMIN_ROLE, account), "second admin");
        assertEq(ledger.departmentOf(account), bytes32(0), "still unbound");
    }

    function test_grantRole_departmentRoleToBoundAccount() public {
        vm.prank(admin);
        ledger.grantRole(VERIFIER, registrarA);
        assertTrue(ledger.hasRole(VERIFIER, registrarA), "granted through grantRole");
    }

    function test_revoke_keepsBindingAndRemovesPower() public {
        vm.prank(admin);
        ledger.revokeRole(REGISTRAR, registrarA);
        assertEq(ledger.departmentOf(registrarA), DEPT_A, "binding is for life");
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, registrarA, REGISTRAR)
        );
        vm.prank(registrarA);
        ledger.anchor(_c("x"));
        // re-granting for another department is still refused
        vm.expectRevert(
            abi.encodeWithSelector(CommitmentLedger.AccountBoundElsewhere.selector, registrarA, DEPT_A)
        );
        vm.prank(admin);
        ledger.grantDepartmentRole(REGISTRAR, registrarA, DEPT_B);
    }

    /// @dev Every department entry point checks the role and the binding with one read of the
    /// caller's acting department; revoking, renouncing and granting again keep it in step.
    function test_revoke_everyDepartmentCallRefusedThenRegrantRestores() public {
        bytes32 c = _c("revoked");
        _anchor(c);
        vm.startPrank(admin);
        ledger.revokeRole(REGISTRAR, registrarA);
        ledger.revokeRole(VERIFIER, verifierA);
        vm.stopPrank();
        bytes memory noRegistrar = abi.encodeWithSelector(
            IAccessControl.AccessControlUnauthorizedAccount.selector, registrarA, REGISTRAR
        );
        bytes memory noVerifier = abi.encodeWithSelector(
            IAccessControl.AccessControlUnauthorizedAccount.selector, verifierA, VERIFIER
        );
        vm.startPrank(registrarA);
        vm.expectRevert(noRegistrar);
        ledger.anchorBatch(keccak256("root"), 4);
        vm.expectRevert(noRegistrar);
        ledger.withdraw(c, EVIDENCE, bytes32(0), _none());
        vm.stopPrank();
        vm.startPrank(verifierA);
        vm.expectRevert(noVerifier);
        ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Kept), EVIDENCE, bytes32(0), _none());
        vm.expectRevert(noVerifier);
        ledger.recordOutcomes(new CommitmentLedger.OutcomeInput[](0));
        vm.expectRevert(noVerifier);
        ledger.repair(c, DECISION);
        vm.stopPrank();
        assertEq(uint256(ledger.batchOf(DEPT_A, keccak256("root")).size), 0, "no batch");
        _assertStatus(c, CommitmentLedger.Status.Anchored, "unchanged");
        vm.prank(admin);
        ledger.grantRole(REGISTRAR, registrarA);
        vm.prank(registrarA);
        ledger.anchorBatch(keccak256("root"), 4);
        assertEq(ledger.batchOf(DEPT_A, keccak256("root")).department, DEPT_A, "acts for A again");
    }

    function test_renounce_endsActingForTheDepartment() public {
        vm.prank(registrarB);
        ledger.renounceRole(REGISTRAR, registrarB);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, registrarB, REGISTRAR)
        );
        vm.prank(registrarB);
        ledger.anchorBatch(keccak256("root"), 4);
        assertEq(ledger.departmentOf(registrarB), DEPT_B, "binding is for life");
    }

    /// @dev A role's acting department is its own: a registrar is not a verifier by being bound.
    function test_actingDepartment_isPerRole() public {
        bytes32 c = _c("per role");
        _anchor(c);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, registrarA, VERIFIER)
        );
        vm.prank(registrarA);
        ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Kept), EVIDENCE, bytes32(0), _none());
    }

    function test_departmentOf() public view {
        assertEq(ledger.departmentOf(registrarA), DEPT_A, "registrarA");
        assertEq(ledger.departmentOf(verifierA), DEPT_A, "verifierA");
        assertEq(ledger.departmentOf(registrarB), DEPT_B, "registrarB");
        assertEq(ledger.departmentOf(verifierB), DEPT_B, "verifierB");
        assertEq(ledger.departmentOf(outsider), bytes32(0), "outsider");
        assertEq(ledger.departmentOf(address(0)), bytes32(0), "zero address");
    }

    // ================================================================== anchor

    function test_anchor_recordsAndEmits() public {
        bytes32 c = _c("single");
        vm.warp(T0 + 100);
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.CommitmentAnchored(c, DEPT_A, registrarA);
        _anchor(c);
        _assertStanding(c, CommitmentLedger.Status.Anchored, DEPT_A, T0 + 100, T0 + 100);
        assertTrue(ledger.isAnchored(DEPT_A, c, bytes32(0), _none()), "isAnchored");
    }

    function test_anchor_revertsZeroHash() public {
        vm.expectRevert(CommitmentLedger.ZeroHash.selector);
        vm.prank(registrarA);
        ledger.anchor(bytes32(0));
        _assertStanding(bytes32(0), CommitmentLedger.Status.None, bytes32(0), 0, 0);
    }

    function test_anchor_revertsAlreadyAnchored() public {
        bytes32 c = _c("twice");
        _anchor(c);
        vm.warp(T0 + 50);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.AlreadyAnchored.selector, c));
        vm.prank(registrarA);
        ledger.anchor(c);
        // another department anchoring the same hash makes only its own record
        vm.prank(registrarB);
        ledger.anchor(c);
        assertEq(ledger.statusOf(DEPT_B, c).anchoredAt, T0 + 50, "B's own record");
        _assertStanding(c, CommitmentLedger.Status.Anchored, DEPT_A, T0, T0);
    }

    function test_anchor_revertsAlreadyAnchored_inAnyStatus() public {
        for (uint8 s = 1; s <= 10; ++s) {
            bytes32 c = _c(1000 + s);
            _reach(c, CommitmentLedger.Status(s));
            vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.AlreadyAnchored.selector, c));
            vm.prank(registrarA);
            ledger.anchor(c);
            _assertStatus(c, CommitmentLedger.Status(s), "status unchanged");
        }
    }

    function test_anchor_revertsAlreadyAnchored_materialisedBatchMember() public {
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(1, 4);
        vm.prank(verifierA);
        ledger.recordOutcome(
            values[2],
            uint8(CommitmentLedger.Status.Mismatch),
            EVIDENCE,
            tree.root(),
            tree.proof(values[2])
        );
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.AlreadyAnchored.selector, values[2]));
        vm.prank(registrarA);
        ledger.anchor(values[2]);
        _assertStanding(values[2], CommitmentLedger.Status.Mismatch, DEPT_A, T0, T0);
    }

    /// @dev Finding 2 of issue #12: a registrar of department B anchoring A's unmaterialised
    /// batch member singly creates only B's own record; A's record, its outcome and the
    /// public breach count of A are untouched, and B's breach is on B's record alone.
    function test_anchor_otherDepartmentCannotTakeOverABatchMember() public {
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(2, 4);
        bytes32 root = tree.root();
        bytes32[] memory proof = tree.proof(values[0]);
        vm.prank(registrarB);
        ledger.anchor(values[0]);
        vm.startPrank(verifierB);
        ledger.recordOutcome(values[0], uint8(CommitmentLedger.Status.Proposed), EVIDENCE, bytes32(0), _none());
        ledger.recordOutcome(values[0], uint8(CommitmentLedger.Status.Breached), EVIDENCE, bytes32(0), _none());
        vm.stopPrank();
        assertEq(uint256(ledger.statusOf(DEPT_B, values[0]).status), uint256(CommitmentLedger.Status.Breached), "B's own");
        _assertStanding(values[0], CommitmentLedger.Status.None, bytes32(0), 0, 0);
        assertTrue(ledger.isAnchored(DEPT_A, values[0], root, proof), "still A's batch member");
        vm.prank(verifierA);
        ledger.recordOutcome(values[0], uint8(CommitmentLedger.Status.Kept), EVIDENCE, root, proof);
        _assertStanding(values[0], CommitmentLedger.Status.Kept, DEPT_A, T0, T0);
        assertEq(uint256(ledger.statusOf(DEPT_B, values[0]).status), uint256(CommitmentLedger.Status.Breached), "B's kept apart");
    }

    /// @dev Finding 3 of issue #12: B anchoring A's root first (a front-run) makes B's batch,
    /// not A's: A's own anchorBatch of the root still succeeds and the batch is A's.
    function test_anchorBatch_frontRunByOtherDepartmentDoesNotTakeTheRoot() public {
        bytes32[] memory values = _values(3, 5);
        StandardMerkle.Tree memory tree = StandardMerkle.build(values);
        bytes32 root = tree.root();
        vm.prank(registrarB);
        ledger.anchorBatch(root, 7);
        assertEq(uint256(ledger.batchOf(DEPT_A, root).size), 0, "A has no batch yet");
        vm.prank(registrarA);
        ledger.anchorBatch(root, 5);
        CommitmentLedger.Batch memory a = ledger.batchOf(DEPT_A, root);
        assertEq(a.department, DEPT_A, "A's batch");
        assertEq(uint256(a.size), 5, "A's size");
        assertEq(uint256(ledger.batchOf(DEPT_B, root).size), 7, "B's apart");
        vm.prank(verifierA);
        ledger.recordOutcome(values[1], uint8(CommitmentLedger.Status.Kept), EVIDENCE, root, tree.proof(values[1]));
        _assertStanding(values[1], CommitmentLedger.Status.Kept, DEPT_A, T0, T0);
    }

    function test_anchor_revertsWithoutRegistrarRole() public {
        bytes32 c = _c("unauthorised");
        address[4] memory callers = [verifierA, verifierB, outsider, admin];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, callers[i], REGISTRAR)
            );
            vm.prank(callers[i]);
            ledger.anchor(c);
        }
        _assertStanding(c, CommitmentLedger.Status.None, bytes32(0), 0, 0);
    }

    // ================================================================== anchorBatch

    function test_anchorBatch_recordsAndEmits() public {
        bytes32 root = keccak256("root");
        vm.warp(T0 + 7);
        vm.roll(B0 + 3);
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.BatchAnchored(root, DEPT_B, 1000, registrarB);
        vm.prank(registrarB);
        ledger.anchorBatch(root, 1000);
        assertEq(ledger.batchOf(DEPT_A, root).department, bytes32(0), "not A's");
        CommitmentLedger.Batch memory b = ledger.batchOf(DEPT_B, root);
        assertEq(b.department, DEPT_B, "department");
        assertEq(uint256(b.size), 1000, "size");
        assertEq(uint256(b.anchoredAt), T0 + 7, "anchoredAt");
        assertEq(uint256(b.blockNumber), B0 + 3, "blockNumber");
        // the root itself is not a commitment
        _assertStatus(root, CommitmentLedger.Status.None, "root is no commitment");
    }

    function test_anchorBatch_maxSize() public {
        bytes32 root = keccak256("big root");
        vm.prank(registrarA);
        ledger.anchorBatch(root, type(uint32).max);
        assertEq(uint256(ledger.batchOf(DEPT_A, root).size), type(uint32).max, "size");
    }

    function test_batchOf_unknownRoot() public view {
        CommitmentLedger.Batch memory b = ledger.batchOf(DEPT_A, keccak256("never"));
        assertEq(b.department, bytes32(0), "department");
        assertEq(uint256(b.size), 0, "size");
        assertEq(uint256(b.anchoredAt), 0, "anchoredAt");
        assertEq(uint256(b.blockNumber), 0, "blockNumber");
    }

    function test_anchorBatch_revertsZeroHash() public {
        vm.expectRevert(CommitmentLedger.ZeroHash.selector);
        vm.prank(registrarA);
        ledger.anchorBatch(bytes32(0), 10);
        assertEq(uint256(ledger.batchOf(DEPT_A, bytes32(0)).size), 0, "nothing stored");
    }

    function test_anchorBatch_revertsEmptyBatch() public {
        bytes32 root = keccak256("empty");
        vm.expectRevert(CommitmentLedger.EmptyBatch.selector);
        vm.prank(registrarA);
        ledger.anchorBatch(root, 0);
        assertEq(uint256(ledger.batchOf(DEPT_A, root).size), 0, "nothing stored");
    }

    function test_anchorBatch_revertsBatchAlreadyAnchored() public {
        bytes32 root = keccak256("again");
        vm.prank(registrarA);
        ledger.anchorBatch(root, 5);
        vm.warp(T0 + 99);
        vm.roll(B0 + 99);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.BatchAlreadyAnchored.selector, root));
        vm.prank(registrarA);
        ledger.anchorBatch(root, 6);
        vm.prank(registrarB); // another department's batch of the same root is its own
        ledger.anchorBatch(root, 5);
        assertEq(ledger.batchOf(DEPT_B, root).department, DEPT_B, "B's own");
        CommitmentLedger.Batch memory b = ledger.batchOf(DEPT_A, root);
        assertEq(b.department, DEPT_A, "department unchanged");
        assertEq(uint256(b.size), 5, "size unchanged");
        assertEq(uint256(b.anchoredAt), T0, "time unchanged");
        assertEq(uint256(b.blockNumber), B0, "block unchanged");
    }

    function test_anchorBatch_revertsWithoutRegistrarRole() public {
        bytes32 root = keccak256("unauthorised root");
        address[4] memory callers = [verifierA, verifierB, outsider, admin];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, callers[i], REGISTRAR)
            );
            vm.prank(callers[i]);
            ledger.anchorBatch(root, 3);
        }
        assertEq(uint256(ledger.batchOf(DEPT_A, root).size), 0, "nothing stored");
    }

    // ================================================================== isAnchored

    function test_isAnchored_single() public {
        bytes32 c = _c("single");
        assertFalse(ledger.isAnchored(DEPT_A, c, bytes32(0), _none()), "not yet");
        _anchor(c);
        assertTrue(ledger.isAnchored(DEPT_A, c, bytes32(0), _none()), "anchored");
        assertFalse(ledger.isAnchored(DEPT_A, _c("other"), bytes32(0), _none()), "other not anchored");
        assertFalse(ledger.isAnchored(DEPT_A, bytes32(0), bytes32(0), _none()), "zero");
    }

    function test_isAnchored_batchMembers() public {
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(3, 7);
        for (uint256 i = 0; i < values.length; ++i) {
            assertTrue(ledger.isAnchored(DEPT_A, values[i], tree.root(), tree.proof(values[i])), "member");
            // not materialised: unknown without the proof
            assertFalse(ledger.isAnchored(DEPT_A, values[i], bytes32(0), _none()), "member without proof");
        }
        assertFalse(ledger.isAnchored(DEPT_A, _c("stranger"), tree.root(), tree.proof(values[0])), "non-member");
    }

    function test_isAnchored_materialisedMemberWithoutProof() public {
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(4, 3);
        vm.prank(verifierA);
        ledger.recordOutcome(values[1], uint8(CommitmentLedger.Status.Kept), EVIDENCE, tree.root(), tree.proof(values[1]));
        assertTrue(ledger.isAnchored(DEPT_A, values[1], bytes32(0), _none()), "known after materialisation");
        assertFalse(ledger.isAnchored(DEPT_A, values[0], bytes32(0), _none()), "others still need a proof");
    }

    function test_isAnchored_singleLeafBatch() public {
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(5, 1);
        assertEq(tree.root(), StandardMerkle.leafHash(values[0]), "root is the leaf");
        assertTrue(ledger.isAnchored(DEPT_A, values[0], tree.root(), _none()), "empty proof");
        bytes32[] memory tooLong = new bytes32[](1);
        tooLong[0] = keccak256("x");
        assertFalse(ledger.isAnchored(DEPT_A, values[0], tree.root(), tooLong), "proof too long");
    }

    function test_isAnchored_falseCases() public {
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(6, 8);
        (StandardMerkle.Tree memory other, bytes32[] memory otherValues) = _anchorTree(7, 8);
        bytes32[] memory proof = tree.proof(values[3]);
        // unknown root (a real tree that was never anchored)
        StandardMerkle.Tree memory unanchored = StandardMerkle.build(_values(8, 8));
        assertFalse(ledger.isAnchored(DEPT_A, values[3], unanchored.root(), proof), "unknown root");
        // proof for another (anchored) root
        assertFalse(ledger.isAnchored(DEPT_A, values[3], other.root(), proof), "proof for another root");
        assertFalse(ledger.isAnchored(DEPT_A, otherValues[0], tree.root(), other.proof(otherValues[0])), "other tree's member");
        // flipped bit
        bytes32[] memory flipped = tree.proof(values[3]);
        flipped[1] ^= bytes32(uint256(1) << 17);
        assertFalse(ledger.isAnchored(DEPT_A, values[3], tree.root(), flipped), "flipped bit");
        // another leaf's proof
        assertFalse(ledger.isAnchored(DEPT_A, values[3], tree.root(), tree.proof(values[4])), "other leaf's proof");
        // wrong lengths: size 8 needs exactly 3 nodes
        bytes32[] memory shorter = new bytes32[](2);
        shorter[0] = proof[0];
        shorter[1] = proof[1];
        assertFalse(ledger.isAnchored(DEPT_A, values[3], tree.root(), shorter), "too short");
        bytes32[] memory longer = new bytes32[](4);
        for (uint256 i = 0; i < 3; ++i) longer[i] = proof[i];
        longer[3] = keccak256("extra");
        assertFalse(ledger.isAnchored(DEPT_A, values[3], tree.root(), longer), "too long");
        // the inner node of the tree is not a member (leaves are double-hashed)
        assertFalse(ledger.isAnchored(DEPT_A, tree.nodes[1], tree.root(), _one(tree.nodes[2])), "inner node");
    }

    // ================================================================== recordOutcome

    function test_recordOutcome_single_keptEmitsAndUpdates() public {
        bytes32 c = _c("kept");
        _anchor(c);
        vm.warp(T0 + 1000);
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.OutcomeRecorded(
            c,
            DEPT_A,
            CommitmentLedger.Status.Anchored,
            CommitmentLedger.Status.Kept,
            EVIDENCE,
            bytes32(0)
        );
        _record(c, CommitmentLedger.Status.Kept);
        _assertStanding(c, CommitmentLedger.Status.Kept, DEPT_A, T0, T0 + 1000);
        _assertBreaches(0, 0);
    }

    function test_recordOutcome_batchMember_materialisesThenNeedsNoProof() public {
        vm.warp(T0 + 5);
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(9, 13);
        bytes32 c = values[6];
        bytes32 root = tree.root();
        bytes32[] memory proof = tree.proof(c);
        vm.warp(T0 + 500);
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.OutcomeRecorded(
            c,
            DEPT_A,
            CommitmentLedger.Status.Anchored,
            CommitmentLedger.Status.Mismatch,
            EVIDENCE,
            root
        );
        vm.prank(verifierA);
        ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Mismatch), EVIDENCE, root, proof);
        _assertStanding(c, CommitmentLedger.Status.Mismatch, DEPT_A, T0 + 5, T0 + 500);
        // second outcome: the record exists, no proof needed
        vm.warp(T0 + 600);
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.OutcomeRecorded(
            c,
            DEPT_A,
            CommitmentLedger.Status.Mismatch,
            CommitmentLedger.Status.Kept,
            EVIDENCE,
            bytes32(0)
        );
        _record(c, CommitmentLedger.Status.Kept);
        _assertStanding(c, CommitmentLedger.Status.Kept, DEPT_A, T0 + 5, T0 + 600);
        // other members are untouched
        _assertStatus(values[5], CommitmentLedger.Status.None, "other member untouched");
    }

    function test_recordOutcome_eventCarriesOnlyACheckedRoot() public {
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(4, 21);
        bytes32 c = values[1];
        vm.prank(verifierA);
        ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Mismatch), EVIDENCE, tree.root(), tree.proof(c));
        // the record exists now: a root passed along is not checked, so the event must not carry it
        bytes32 garbage = keccak256("not a batch of this commitment");
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.OutcomeRecorded(
            c,
            DEPT_A,
            CommitmentLedger.Status.Mismatch,
            CommitmentLedger.Status.Kept,
            EVIDENCE,
            bytes32(0)
        );
        vm.prank(verifierA);
        ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Kept), EVIDENCE, garbage, _none());
    }

    function test_recordOutcome_everyMemberOfABatch() public {
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(10, 21);
        for (uint256 i = 0; i < values.length; ++i) {
            vm.prank(verifierA);
            ledger.recordOutcome(values[i], uint8(CommitmentLedger.Status.Kept), EVIDENCE, tree.root(), tree.proof(values[i]));
            _assertStatus(values[i], CommitmentLedger.Status.Kept, "member kept");
        }
    }

    function test_recordOutcome_breachedEmitsBreachRecorded() public {
        bytes32 c = _c("breach");
        _anchor(c);
        vm.warp(T0 + 7);
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.OutcomeRecorded(
            c,
            DEPT_A,
            CommitmentLedger.Status.Anchored,
            CommitmentLedger.Status.Proposed,
            EVIDENCE,
            bytes32(0)
        );
        _record(c, CommitmentLedger.Status.Proposed);
        _assertBreaches(0, 0);
        _assertStanding(c, CommitmentLedger.Status.Proposed, DEPT_A, T0, T0 + 7);
        vm.warp(T0 + 42);
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.OutcomeRecorded(
            c,
            DEPT_A,
            CommitmentLedger.Status.Proposed,
            CommitmentLedger.Status.Breached,
            EVIDENCE,
            bytes32(0)
        );
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.BreachRecorded(c, DEPT_A, EVIDENCE, T0 + 42);
        _record(c, CommitmentLedger.Status.Breached);
        _assertBreaches(1, 1);
        _assertStanding(c, CommitmentLedger.Status.Breached, DEPT_A, T0, T0 + 42);
    }

    function test_recordOutcome_breachViaMismatchAndNeedsManual() public {
        bytes32 c = _c("slow breach");
        _anchor(c);
        _record(c, CommitmentLedger.Status.Mismatch);
        _record(c, CommitmentLedger.Status.NeedsManual);
        _record(c, CommitmentLedger.Status.Mismatch);
        _publish(c);
        _assertBreaches(1, 1);
    }

    /// @dev Issue #14: nobody is published who was not told first. Breached is refused from
    /// every status but Proposed, and Anchored -> Breached in particular.
    function test_recordOutcome_breachedOnlyFromProposed() public {
        bytes32 c = _c("unannounced");
        _anchor(c);
        vm.expectRevert(
            abi.encodeWithSelector(
                CommitmentLedger.TransitionNotAllowed.selector,
                c,
                CommitmentLedger.Status.Anchored,
                CommitmentLedger.Status.Breached
            )
        );
        _record(c, CommitmentLedger.Status.Breached);
        _assertBreaches(0, 0);
        for (uint8 s = 1; s <= 10; ++s) {
            if (s == uint8(CommitmentLedger.Status.Breached)) continue;
            bytes32 other = _c(900 + s);
            _reach(other, CommitmentLedger.Status(s));
            bool allowed = s == uint8(CommitmentLedger.Status.Proposed);
            assertEq(
                ledger.transitionAllowed(CommitmentLedger.Status(s), CommitmentLedger.Status.Breached),
                allowed,
                "Breached only from Proposed"
            );
            if (!allowed) vm.expectRevert();
            _record(other, CommitmentLedger.Status.Breached);
        }
        _assertBreaches(1, 4); // Repaired, Expired and Corrected were reached through a breach
    }

    /// @dev A successful defence leaves no breach: Proposed -> Kept, NeedsManual or Corrected.
    function test_recordOutcome_proposedDefenceSucceeds() public {
        CommitmentLedger.Status[3] memory outcomes = [
            CommitmentLedger.Status.Kept,
            CommitmentLedger.Status.NeedsManual,
            CommitmentLedger.Status.Corrected
        ];
        for (uint256 i = 0; i < outcomes.length; ++i) {
            bytes32 c = _c(950 + i);
            _reach(c, CommitmentLedger.Status.Proposed);
            _record(c, outcomes[i]);
            _assertStatus(c, outcomes[i], "defence succeeded");
        }
        _assertBreaches(0, 0);
    }

    function test_recordOutcome_expiredAndCorrectedCloseBreach() public {
        CommitmentLedger.Status[2] memory closers = [CommitmentLedger.Status.Expired, CommitmentLedger.Status.Corrected];
        for (uint64 i = 0; i < 2; ++i) {
            bytes32 c = _c(500 + i);
            _reach(c, CommitmentLedger.Status.Breached);
            vm.warp(T0 + 10 + i);
            vm.expectEmit(true, true, true, true, address(ledger));
            emit CommitmentLedger.OutcomeRecorded(
                c,
                DEPT_A,
                CommitmentLedger.Status.Breached,
                closers[i],
                EVIDENCE,
                bytes32(0)
            );
            vm.expectEmit(true, true, true, true, address(ledger));
            emit CommitmentLedger.BreachClosed(c, DEPT_A, closers[i], EVIDENCE, T0 + 10 + i);
            _record(c, closers[i]);
            _assertStatus(c, closers[i], "closed");
            _assertBreaches(0, i + 1);
        }
    }

    function test_recordOutcome_revertsUnknownOutcome() public {
        bytes32 c = _c("unknown outcome");
        _anchor(c);
        uint8[3] memory codes = [uint8(11), 12, 255];
        for (uint256 i = 0; i < codes.length; ++i) {
            vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.UnknownOutcome.selector, codes[i]));
            vm.prank(verifierA);
            ledger.recordOutcome(c, codes[i], EVIDENCE, bytes32(0), _none());
        }
        _assertStanding(c, CommitmentLedger.Status.Anchored, DEPT_A, T0, T0);
    }

    function test_recordOutcome_revertsZeroEvidence() public {
        bytes32 c = _c("zero evidence");
        _anchor(c);
        vm.expectRevert(CommitmentLedger.ZeroHash.selector);
        vm.prank(verifierA);
        ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Kept), bytes32(0), bytes32(0), _none());
        _assertStanding(c, CommitmentLedger.Status.Anchored, DEPT_A, T0, T0);
    }

    function test_recordOutcome_revertsZeroCommitment() public {
        vm.expectRevert(CommitmentLedger.ZeroHash.selector);
        vm.prank(verifierA);
        ledger.recordOutcome(bytes32(0), uint8(CommitmentLedger.Status.Kept), EVIDENCE, bytes32(0), _none());
        _assertStatus(bytes32(0), CommitmentLedger.Status.None, "zero untouched");
    }

    function test_recordOutcome_revertsNotAnchored() public {
        bytes32 c = _c("never anchored");
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.NotAnchored.selector, c));
        vm.prank(verifierA);
        ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Kept), EVIDENCE, bytes32(0), _none());
        _assertStanding(c, CommitmentLedger.Status.None, bytes32(0), 0, 0);
    }

    function test_recordOutcome_revertsNotAnchored_batchMemberWithoutRoot() public {
        (, bytes32[] memory values) = _anchorTree(11, 4);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.NotAnchored.selector, values[0]));
        vm.prank(verifierA);
        ledger.recordOutcome(values[0], uint8(CommitmentLedger.Status.Kept), EVIDENCE, bytes32(0), _none());
        _assertStatus(values[0], CommitmentLedger.Status.None, "not materialised");
    }

    function test_recordOutcome_revertsUnknownBatch() public {
        StandardMerkle.Tree memory tree = StandardMerkle.build(_values(12, 4));
        bytes32 c = _values(12, 4)[1];
        bytes32 root = tree.root();
        bytes32[] memory proof = tree.proof(c);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.UnknownBatch.selector, root));
        vm.prank(verifierA);
        ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Kept), EVIDENCE, root, proof);
        _assertStatus(c, CommitmentLedger.Status.None, "not materialised");
    }

    function test_recordOutcome_revertsInvalidProofLength() public {
        // size 13: proofs have floor(log2 13) = 3 or ceil(log2 13) = 4 nodes
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(13, 13);
        bytes32 c = values[0];
        bytes32 root = tree.root();
        uint256[4] memory lengths = [uint256(0), 2, 5, 9];
        for (uint256 i = 0; i < lengths.length; ++i) {
            bytes32[] memory proof = new bytes32[](lengths[i]);
            for (uint256 k = 0; k < proof.length; ++k) proof[k] = keccak256(abi.encode(k));
            vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.InvalidProofLength.selector, lengths[i], 3, 4));
            vm.prank(verifierA);
            ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Kept), EVIDENCE, root, proof);
        }
        _assertStatus(c, CommitmentLedger.Status.None, "not materialised");
    }

    function test_recordOutcome_proofLengthBoundsFollowBatchSize() public {
        // a declared size of 1 admits only the empty proof; of 2^k exactly k nodes
        bytes32 root = keccak256("declared size 16");
        vm.prank(registrarA);
        ledger.anchorBatch(root, 16);
        bytes32[] memory proof = new bytes32[](5);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.InvalidProofLength.selector, 5, 4, 4));
        vm.prank(verifierA);
        ledger.recordOutcome(_c("x"), uint8(CommitmentLedger.Status.Kept), EVIDENCE, root, proof);
        bytes32 root1 = keccak256("declared size 1");
        vm.prank(registrarA);
        ledger.anchorBatch(root1, 1);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.InvalidProofLength.selector, 1, 0, 0));
        vm.prank(verifierA);
        ledger.recordOutcome(_c("x"), uint8(CommitmentLedger.Status.Kept), EVIDENCE, root1, _one(root));
    }

    function test_recordOutcome_revertsInvalidProof_proofForAnotherRoot() public {
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(14, 8);
        (StandardMerkle.Tree memory other, ) = _anchorTree(15, 8);
        bytes32 c = values[2];
        bytes32 otherRoot = other.root();
        bytes32[] memory proof = tree.proof(c);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.InvalidProof.selector, c, otherRoot));
        vm.prank(verifierA);
        ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Kept), EVIDENCE, otherRoot, proof);
        _assertStatus(c, CommitmentLedger.Status.None, "not materialised");
    }

    function test_recordOutcome_revertsInvalidProof_flippedBit() public {
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(16, 8);
        bytes32 c = values[5];
        bytes32 root = tree.root();
        for (uint256 k = 0; k < 3; ++k) {
            bytes32[] memory proof = tree.proof(c);
            proof[k] ^= bytes32(uint256(1) << (k * 85));
            vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.InvalidProof.selector, c, root));
            vm.prank(verifierA);
            ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Kept), EVIDENCE, root, proof);
        }
        // a flipped bit in the commitment itself
        bytes32 flippedC = c ^ bytes32(uint256(1));
        bytes32[] memory good = tree.proof(c);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.InvalidProof.selector, flippedC, root));
        vm.prank(verifierA);
        ledger.recordOutcome(flippedC, uint8(CommitmentLedger.Status.Kept), EVIDENCE, root, good);
        _assertStatus(c, CommitmentLedger.Status.None, "not materialised");
        _assertStatus(flippedC, CommitmentLedger.Status.None, "not materialised");
    }

    function test_recordOutcome_revertsInvalidProof_otherLeafsProof() public {
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(17, 8);
        bytes32 root = tree.root();
        bytes32[] memory proof = tree.proof(values[1]);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.InvalidProof.selector, values[0], root));
        vm.prank(verifierA);
        ledger.recordOutcome(values[0], uint8(CommitmentLedger.Status.Kept), EVIDENCE, root, proof);
        _assertStatus(values[0], CommitmentLedger.Status.None, "not materialised");
        _assertStatus(values[1], CommitmentLedger.Status.None, "not materialised");
    }

    function test_recordOutcome_revertsInvalidProof_nonMember() public {
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(18, 8);
        bytes32 stranger = _c("stranger");
        bytes32 root = tree.root();
        bytes32[] memory proof = tree.proof(values[0]);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.InvalidProof.selector, stranger, root));
        vm.prank(verifierA);
        ledger.recordOutcome(stranger, uint8(CommitmentLedger.Status.Kept), EVIDENCE, root, proof);
        _assertStatus(stranger, CommitmentLedger.Status.None, "not materialised");
    }

    function test_recordOutcome_revertsTransitionNotAllowed_withdrawnAndRepairedNotViaRecordOutcome() public {
        bytes32 c = _c("special moves");
        _anchor(c);
        vm.expectRevert(
            abi.encodeWithSelector(
                CommitmentLedger.TransitionNotAllowed.selector,
                c,
                CommitmentLedger.Status.Anchored,
                CommitmentLedger.Status.Withdrawn
            )
        );
        _record(c, CommitmentLedger.Status.Withdrawn);
        _publish(c);
        vm.expectRevert(
            abi.encodeWithSelector(
                CommitmentLedger.TransitionNotAllowed.selector,
                c,
                CommitmentLedger.Status.Breached,
                CommitmentLedger.Status.Repaired
            )
        );
        _record(c, CommitmentLedger.Status.Repaired);
        _assertStanding(c, CommitmentLedger.Status.Breached, DEPT_A, T0, T0);
        _assertBreaches(1, 1);
        // also for an unmaterialised batch member: rejected before the proof is looked at
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(19, 2);
        bytes32[] memory proof = tree.proof(values[0]);
        bytes32 root = tree.root();
        vm.expectRevert(
            abi.encodeWithSelector(
                CommitmentLedger.TransitionNotAllowed.selector,
                values[0],
                CommitmentLedger.Status.None,
                CommitmentLedger.Status.Withdrawn
            )
        );
        vm.prank(verifierA);
        ledger.recordOutcome(values[0], uint8(CommitmentLedger.Status.Withdrawn), EVIDENCE, root, proof);
    }

    function test_recordOutcome_revertsTransitionNotAllowed_nothingAfterWithdrawn() public {
        bytes32 c = _c("withdrawn");
        _reach(c, CommitmentLedger.Status.Withdrawn);
        for (uint8 to = 0; to <= 10; ++to) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    CommitmentLedger.TransitionNotAllowed.selector,
                    c,
                    CommitmentLedger.Status.Withdrawn,
                    CommitmentLedger.Status(to)
                )
            );
            _record(c, CommitmentLedger.Status(to));
        }
        _assertStanding(c, CommitmentLedger.Status.Withdrawn, DEPT_A, T0, T0);
    }

    function test_recordOutcome_revertsTransitionNotAllowed_noBreachOnceKept() public {
        bytes32 c = _c("kept then breach");
        _reach(c, CommitmentLedger.Status.Kept);
        vm.warp(T0 + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                CommitmentLedger.TransitionNotAllowed.selector,
                c,
                CommitmentLedger.Status.Kept,
                CommitmentLedger.Status.Breached
            )
        );
        _record(c, CommitmentLedger.Status.Breached);
        _assertStanding(c, CommitmentLedger.Status.Kept, DEPT_A, T0, T0);
        _assertBreaches(0, 0);
    }

    function test_recordOutcome_revertsTransitionNotAllowed_noneAndAnchoredAreNotOutcomes() public {
        bytes32 c = _c("back to start");
        _reach(c, CommitmentLedger.Status.Mismatch);
        for (uint8 to = 0; to <= 1; ++to) {
            vm.expectRevert(
                abi.encodeWithSelector(
                    CommitmentLedger.TransitionNotAllowed.selector,
                    c,
                    CommitmentLedger.Status.Mismatch,
                    CommitmentLedger.Status(to)
                )
            );
            _record(c, CommitmentLedger.Status(to));
        }
        _assertStatus(c, CommitmentLedger.Status.Mismatch, "unchanged");
    }

    /// @dev Every (from, outcome) pair through recordOutcome: succeeds exactly when the
    /// independent table allows it and it is not Withdrawn/Repaired; otherwise reverts with
    /// TransitionNotAllowed and changes nothing.
    function test_recordOutcome_everyTransition() public {
        for (uint8 from = 1; from <= 10; ++from) {
            for (uint8 to = 0; to <= 10; ++to) {
                bytes32 c = keccak256(abi.encode("pair", from, to));
                _reach(c, CommitmentLedger.Status(from));
                uint256 open = ledger.openBreaches();
                uint256 total = ledger.totalBreaches();
                bool ok = _allowed(from, to) && to != uint8(CommitmentLedger.Status.Withdrawn) &&
                    to != uint8(CommitmentLedger.Status.Repaired);
                if (!ok) {
                    vm.expectRevert(
                        abi.encodeWithSelector(
                            CommitmentLedger.TransitionNotAllowed.selector,
                            c,
                            CommitmentLedger.Status(from),
                            CommitmentLedger.Status(to)
                        )
                    );
                }
                _record(c, CommitmentLedger.Status(to));
                _assertStatus(c, CommitmentLedger.Status(ok ? to : from), "status after");
                uint256 expectOpen = open;
                uint256 expectTotal = total;
                if (ok && to == uint8(CommitmentLedger.Status.Breached)) {
                    ++expectOpen;
                    ++expectTotal;
                }
                if (ok && from == uint8(CommitmentLedger.Status.Breached)) --expectOpen;
                _assertBreaches(expectOpen, expectTotal);
            }
        }
    }

    function test_transitionAllowed_matchesTable() public view {
        for (uint8 from = 0; from <= 10; ++from) {
            for (uint8 to = 0; to <= 10; ++to) {
                assertEq(
                    ledger.transitionAllowed(CommitmentLedger.Status(from), CommitmentLedger.Status(to)),
                    _allowed(from, to),
                    string.concat("transition ", _digit(from), "->", _digit(to))
                );
            }
        }
    }

    function test_recordOutcome_otherDepartmentHasNoRecord_single() public {
        bytes32 c = _c("A's single");
        _anchor(c);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.NotAnchored.selector, c));
        vm.prank(verifierB);
        ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Breached), EVIDENCE, bytes32(0), _none());
        _assertStanding(c, CommitmentLedger.Status.Anchored, DEPT_A, T0, T0);
        _assertBreaches(0, 0);
    }

    function test_recordOutcome_otherDepartmentHasNoBatch_memberNotMaterialised() public {
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(20, 5);
        bytes32 root = tree.root();
        bytes32[] memory proof = tree.proof(values[3]);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.UnknownBatch.selector, root));
        vm.prank(verifierB);
        ledger.recordOutcome(values[3], uint8(CommitmentLedger.Status.Kept), EVIDENCE, root, proof);
        _assertStanding(values[3], CommitmentLedger.Status.None, bytes32(0), 0, 0);
    }

    function test_recordOutcome_revertsWithoutVerifierRole() public {
        bytes32 c = _c("unauthorised outcome");
        _anchor(c);
        address[4] memory callers = [registrarA, registrarB, outsider, admin];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, callers[i], VERIFIER)
            );
            vm.prank(callers[i]);
            ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Kept), EVIDENCE, bytes32(0), _none());
        }
        _assertStanding(c, CommitmentLedger.Status.Anchored, DEPT_A, T0, T0);
    }

    // ================================================================== recordOutcomes

    function test_recordOutcomes_revertsNoOutcomes() public {
        vm.expectRevert(CommitmentLedger.NoOutcomes.selector);
        vm.prank(verifierA);
        ledger.recordOutcomes(new CommitmentLedger.OutcomeInput[](0));
    }

    function test_recordOutcomes_revertsWithoutVerifierRole() public {
        bytes32 c = _c("unauthorised batch");
        _anchor(c);
        CommitmentLedger.OutcomeInput[] memory items = new CommitmentLedger.OutcomeInput[](1);
        items[0] = _item(c, CommitmentLedger.Status.Kept, bytes32(0), _none());
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, registrarA, VERIFIER)
        );
        vm.prank(registrarA);
        ledger.recordOutcomes(items);
        _assertStatus(c, CommitmentLedger.Status.Anchored, "unchanged");
    }

    function test_recordOutcomes_recordsAllAndEmitsInOrder() public {
        bytes32 single = _c("in batch call");
        _anchor(single);
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(21, 6);
        bytes32 root = tree.root();
        _record(single, CommitmentLedger.Status.Proposed);
        CommitmentLedger.OutcomeInput[] memory items = new CommitmentLedger.OutcomeInput[](5);
        items[0] = _item(single, CommitmentLedger.Status.Breached, bytes32(0), _none());
        items[1] = _item(values[0], CommitmentLedger.Status.Kept, root, tree.proof(values[0]));
        items[2] = _item(values[1], CommitmentLedger.Status.Mismatch, root, tree.proof(values[1]));
        items[3] = _item(values[1], CommitmentLedger.Status.Proposed, bytes32(0), _none()); // same one again
        items[4] = _item(values[1], CommitmentLedger.Status.Breached, bytes32(0), _none()); // and again
        vm.warp(T0 + 77);
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.OutcomeRecorded(
            single,
            DEPT_A,
            CommitmentLedger.Status.Proposed,
            CommitmentLedger.Status.Breached,
            EVIDENCE,
            bytes32(0)
        );
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.BreachRecorded(single, DEPT_A, EVIDENCE, T0 + 77);
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.OutcomeRecorded(
            values[0],
            DEPT_A,
            CommitmentLedger.Status.Anchored,
            CommitmentLedger.Status.Kept,
            EVIDENCE,
            root
        );
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.OutcomeRecorded(
            values[1],
            DEPT_A,
            CommitmentLedger.Status.Anchored,
            CommitmentLedger.Status.Mismatch,
            EVIDENCE,
            root
        );
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.OutcomeRecorded(
            values[1],
            DEPT_A,
            CommitmentLedger.Status.Mismatch,
            CommitmentLedger.Status.Proposed,
            EVIDENCE,
            bytes32(0)
        );
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.OutcomeRecorded(
            values[1],
            DEPT_A,
            CommitmentLedger.Status.Proposed,
            CommitmentLedger.Status.Breached,
            EVIDENCE,
            bytes32(0)
        );
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.BreachRecorded(values[1], DEPT_A, EVIDENCE, T0 + 77);
        vm.prank(verifierA);
        ledger.recordOutcomes(items);
        _assertStatus(single, CommitmentLedger.Status.Breached, "single");
        _assertStatus(values[0], CommitmentLedger.Status.Kept, "member 0");
        _assertStatus(values[1], CommitmentLedger.Status.Breached, "member 1");
        _assertBreaches(2, 2);
    }

    function test_recordOutcomes_allOrNothing() public {
        bytes32 single = _c("first item");
        _anchor(single);
        bytes32 breached = _c("breached item");
        _reach(breached, CommitmentLedger.Status.Breached);
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(22, 6);
        bytes32 root = tree.root();
        bytes32 foreign = _c("B's");
        vm.prank(registrarB);
        ledger.anchor(foreign);

        // each bad last item makes the whole call revert with its own error
        bytes[5] memory errors;
        CommitmentLedger.OutcomeInput[5] memory bad;
        bad[0] = _item(foreign, CommitmentLedger.Status.Kept, bytes32(0), _none());
        errors[0] = abi.encodeWithSelector(CommitmentLedger.NotAnchored.selector, foreign);
        bad[1] = _item(values[2], CommitmentLedger.Status.Kept, root, tree.proof(values[3]));
        errors[1] = abi.encodeWithSelector(CommitmentLedger.InvalidProof.selector, values[2], root);
        bad[2] = _item(single, CommitmentLedger.Status.Breached, bytes32(0), _none()); // Kept -> Breached
        errors[2] = abi.encodeWithSelector(
            CommitmentLedger.TransitionNotAllowed.selector,
            single,
            CommitmentLedger.Status.Kept,
            CommitmentLedger.Status.Breached
        );
        bad[3] = CommitmentLedger.OutcomeInput(single, 12, EVIDENCE, bytes32(0), _none());
        errors[3] = abi.encodeWithSelector(CommitmentLedger.UnknownOutcome.selector, 12);
        bad[4] = _item(_c("nowhere"), CommitmentLedger.Status.Kept, bytes32(0), _none());
        errors[4] = abi.encodeWithSelector(CommitmentLedger.NotAnchored.selector, _c("nowhere"));

        for (uint256 k = 0; k < bad.length; ++k) {
            CommitmentLedger.OutcomeInput[] memory items = new CommitmentLedger.OutcomeInput[](4);
            items[0] = _item(single, CommitmentLedger.Status.Kept, bytes32(0), _none());
            items[1] = _item(values[0], CommitmentLedger.Status.Proposed, root, tree.proof(values[0]));
            items[2] = _item(breached, CommitmentLedger.Status.Corrected, bytes32(0), _none());
            items[3] = bad[k];
            vm.expectRevert(errors[k]);
            vm.prank(verifierA);
            ledger.recordOutcomes(items);
            _assertStanding(single, CommitmentLedger.Status.Anchored, DEPT_A, T0, T0);
            _assertStanding(values[0], CommitmentLedger.Status.None, bytes32(0), 0, 0);
            _assertStatus(breached, CommitmentLedger.Status.Breached, "breach still open");
            assertEq(uint256(ledger.statusOf(DEPT_B, foreign).status), uint256(CommitmentLedger.Status.Anchored), "foreign");
            _assertBreaches(1, 1);
        }
    }

    // ================================================================== repair

    function test_repair_fromBreached() public {
        bytes32 c = _c("repair me");
        _reach(c, CommitmentLedger.Status.Breached);
        vm.warp(T0 + 3600);
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.OutcomeRecorded(
            c,
            DEPT_A,
            CommitmentLedger.Status.Breached,
            CommitmentLedger.Status.Repaired,
            DECISION,
            bytes32(0)
        );
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.BreachRepaired(c, DEPT_A, DECISION, T0 + 3600);
        vm.prank(verifierA);
        ledger.repair(c, DECISION);
        _assertStanding(c, CommitmentLedger.Status.Repaired, DEPT_A, T0, T0 + 3600);
        _assertBreaches(0, 1);
    }

    function test_repair_batchMemberAfterBreach() public {
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(23, 9);
        vm.prank(verifierA);
        ledger.recordOutcome(values[8], uint8(CommitmentLedger.Status.Proposed), EVIDENCE, tree.root(), tree.proof(values[8]));
        _record(values[8], CommitmentLedger.Status.Breached);
        vm.prank(verifierA);
        ledger.repair(values[8], DECISION);
        _assertStatus(values[8], CommitmentLedger.Status.Repaired, "repaired");
        _assertBreaches(0, 1);
    }

    function test_repair_revertsZeroDecision() public {
        bytes32 c = _c("repair zero");
        _reach(c, CommitmentLedger.Status.Breached);
        vm.expectRevert(CommitmentLedger.ZeroHash.selector);
        vm.prank(verifierA);
        ledger.repair(c, bytes32(0));
        _assertStatus(c, CommitmentLedger.Status.Breached, "still breached");
        _assertBreaches(1, 1);
    }

    function test_repair_revertsNotAnchored() public {
        bytes32 c = _c("repair nothing");
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.NotAnchored.selector, c));
        vm.prank(verifierA);
        ledger.repair(c, DECISION);
        _assertStatus(c, CommitmentLedger.Status.None, "none");
        // an unmaterialised batch member is unknown to repair (it cannot have been breached)
        (, bytes32[] memory values) = _anchorTree(24, 3);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.NotAnchored.selector, values[0]));
        vm.prank(verifierA);
        ledger.repair(values[0], DECISION);
    }

    function test_repair_revertsTransitionNotAllowed_onlyFromBreached() public {
        for (uint8 from = 1; from <= 10; ++from) {
            if (from == uint8(CommitmentLedger.Status.Breached)) continue;
            bytes32 c = keccak256(abi.encode("repair from", from));
            _reach(c, CommitmentLedger.Status(from));
            uint256 open = ledger.openBreaches();
            uint256 total = ledger.totalBreaches();
            vm.expectRevert(
                abi.encodeWithSelector(
                    CommitmentLedger.TransitionNotAllowed.selector,
                    c,
                    CommitmentLedger.Status(from),
                    CommitmentLedger.Status.Repaired
                )
            );
            vm.prank(verifierA);
            ledger.repair(c, DECISION);
            _assertStatus(c, CommitmentLedger.Status(from), "unchanged");
            _assertBreaches(open, total);
        }
    }

    function test_repair_otherDepartmentHasNoRecord() public {
        bytes32 c = _c("A's breach");
        _reach(c, CommitmentLedger.Status.Breached);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.NotAnchored.selector, c));
        vm.prank(verifierB);
        ledger.repair(c, DECISION);
        _assertStatus(c, CommitmentLedger.Status.Breached, "still breached");
        _assertBreaches(1, 1);
    }

    function test_repair_revertsWithoutVerifierRole() public {
        bytes32 c = _c("repair unauthorised");
        _reach(c, CommitmentLedger.Status.Breached);
        address[4] memory callers = [registrarA, registrarB, outsider, admin];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, callers[i], VERIFIER)
            );
            vm.prank(callers[i]);
            ledger.repair(c, DECISION);
        }
        _assertStatus(c, CommitmentLedger.Status.Breached, "still breached");
    }

    // ================================================================== withdraw

    function test_withdraw_single() public {
        bytes32 c = _c("withdraw me");
        _anchor(c);
        bytes32 request = keccak256("withdrawal request");
        vm.warp(T0 + 9);
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.OutcomeRecorded(
            c,
            DEPT_A,
            CommitmentLedger.Status.Anchored,
            CommitmentLedger.Status.Withdrawn,
            request,
            bytes32(0)
        );
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.CommitmentWithdrawn(c, DEPT_A, request);
        vm.prank(registrarA);
        ledger.withdraw(c, request, bytes32(0), _none());
        _assertStanding(c, CommitmentLedger.Status.Withdrawn, DEPT_A, T0, T0 + 9);
    }

    function test_withdraw_batchMember() public {
        vm.warp(T0 + 1);
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(25, 10);
        bytes32 root = tree.root();
        bytes32[] memory proof = tree.proof(values[4]);
        vm.warp(T0 + 20);
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.OutcomeRecorded(
            values[4],
            DEPT_A,
            CommitmentLedger.Status.Anchored,
            CommitmentLedger.Status.Withdrawn,
            EVIDENCE,
            root
        );
        vm.expectEmit(true, true, true, true, address(ledger));
        emit CommitmentLedger.CommitmentWithdrawn(values[4], DEPT_A, EVIDENCE);
        vm.prank(registrarA);
        ledger.withdraw(values[4], EVIDENCE, root, proof);
        _assertStanding(values[4], CommitmentLedger.Status.Withdrawn, DEPT_A, T0 + 1, T0 + 20);
    }

    function test_withdraw_revertsZeroHash() public {
        bytes32 c = _c("withdraw zero");
        _anchor(c);
        vm.expectRevert(CommitmentLedger.ZeroHash.selector);
        vm.prank(registrarA);
        ledger.withdraw(c, bytes32(0), bytes32(0), _none());
        vm.expectRevert(CommitmentLedger.ZeroHash.selector);
        vm.prank(registrarA);
        ledger.withdraw(bytes32(0), EVIDENCE, bytes32(0), _none());
        _assertStanding(c, CommitmentLedger.Status.Anchored, DEPT_A, T0, T0);
    }

    function test_withdraw_revertsNotAnchoredUnknownBatchInvalidProof() public {
        bytes32 c = _c("withdraw unknown");
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.NotAnchored.selector, c));
        vm.prank(registrarA);
        ledger.withdraw(c, EVIDENCE, bytes32(0), _none());

        bytes32 unknownRoot = keccak256("unknown root");
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.UnknownBatch.selector, unknownRoot));
        vm.prank(registrarA);
        ledger.withdraw(c, EVIDENCE, unknownRoot, _none());

        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(26, 4);
        bytes32 root = tree.root();
        bytes32[] memory wrong = tree.proof(values[1]);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.InvalidProof.selector, values[0], root));
        vm.prank(registrarA);
        ledger.withdraw(values[0], EVIDENCE, root, wrong);

        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.InvalidProofLength.selector, 1, 2, 2));
        vm.prank(registrarA);
        ledger.withdraw(values[0], EVIDENCE, root, _one(wrong[0]));

        _assertStatus(c, CommitmentLedger.Status.None, "none");
        _assertStatus(values[0], CommitmentLedger.Status.None, "not materialised");
    }

    function test_withdraw_revertsTransitionNotAllowed() public {
        for (uint8 from = 2; from <= 10; ++from) {
            bytes32 c = keccak256(abi.encode("withdraw from", from));
            _reach(c, CommitmentLedger.Status(from));
            vm.expectRevert(
                abi.encodeWithSelector(
                    CommitmentLedger.TransitionNotAllowed.selector,
                    c,
                    CommitmentLedger.Status(from),
                    CommitmentLedger.Status.Withdrawn
                )
            );
            vm.prank(registrarA);
            ledger.withdraw(c, EVIDENCE, bytes32(0), _none());
            _assertStatus(c, CommitmentLedger.Status(from), "unchanged");
        }
    }

    function test_withdraw_otherDepartmentHasNoRecord() public {
        bytes32 c = _c("A's to withdraw");
        _anchor(c);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.NotAnchored.selector, c));
        vm.prank(registrarB);
        ledger.withdraw(c, EVIDENCE, bytes32(0), _none());
        _assertStanding(c, CommitmentLedger.Status.Anchored, DEPT_A, T0, T0);
    }

    function test_withdraw_revertsWithoutRegistrarRole() public {
        bytes32 c = _c("withdraw unauthorised");
        _anchor(c);
        address[4] memory callers = [verifierA, verifierB, outsider, admin];
        for (uint256 i = 0; i < callers.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, callers[i], REGISTRAR)
            );
            vm.prank(callers[i]);
            ledger.withdraw(c, EVIDENCE, bytes32(0), _none());
        }
        _assertStanding(c, CommitmentLedger.Status.Anchored, DEPT_A, T0, T0);
    }

    // ================================================================== events rebuild the registry

    /// @dev The public breach registry rebuilt from events alone agrees with openBreaches.
    function test_events_rebuildBreachRegistry() public {
        vm.recordLogs();
        bytes32[6] memory cs;
        for (uint256 i = 0; i < cs.length; ++i) {
            cs[i] = _c(900 + i);
            _reach(cs[i], CommitmentLedger.Status.Breached);
        }
        vm.prank(verifierA);
        ledger.repair(cs[0], DECISION);
        _record(cs[1], CommitmentLedger.Status.Expired);
        _record(cs[2], CommitmentLedger.Status.Corrected);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        int256 open = 0;
        uint256 recorded = 0;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter != address(ledger)) continue;
            bytes32 topic = logs[i].topics[0];
            if (topic == CommitmentLedger.BreachRecorded.selector) {
                ++open;
                ++recorded;
            } else if (topic == CommitmentLedger.BreachRepaired.selector || topic == CommitmentLedger.BreachClosed.selector) {
                --open;
            }
        }
        assertEq(SafeCast.toUint256(open), ledger.openBreaches(), "open from events");
        assertEq(recorded, ledger.totalBreaches(), "total from events");
        _assertBreaches(3, 6);
    }

    // ================================================================== helpers

    function _item(
        bytes32 commitment,
        CommitmentLedger.Status to,
        bytes32 root,
        bytes32[] memory proof
    ) internal pure returns (CommitmentLedger.OutcomeInput memory) {
        return CommitmentLedger.OutcomeInput(commitment, uint8(to), EVIDENCE, root, proof);
    }

    function _one(bytes32 node) internal pure returns (bytes32[] memory p) {
        p = new bytes32[](1);
        p[0] = node;
    }

    function _digit(uint8 d) internal pure returns (string memory) {
        if (d >= 10) return string.concat(_digit(d / 10), _digit(d % 10));
        return string(abi.encodePacked(bytes1(uint8(48) + d)));
    }
}

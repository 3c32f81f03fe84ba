// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {CommitmentLedger} from "../CommitmentLedger.sol";
import {StandardMerkle} from "./StandardMerkle.sol";
import {LedgerFixture} from "./LedgerFixture.sol";

/// @notice Fuzz tests: inclusion proofs over random trees, proof-length bounds, and role and
/// department checks with random accounts.
contract CommitmentLedgerFuzzTest is LedgerFixture {
    using StandardMerkle for StandardMerkle.Tree;

    // ================================================================== inclusion proofs

    /// @dev A random tree of 1..64 random leaves: every member proves and records; a random
    /// non-member is rejected with each member's proof.
    function testFuzz_inclusion_everyMemberRecords_nonMemberRejected(
        uint256 seed,
        uint8 sizeRaw,
        uint8 outcomeRaw,
        bytes32 stranger
    ) public {
        uint256 n = 1 + (uint256(sizeRaw) % 64);
        bytes32[] memory values = _values(seed, n);
        _checkTree(values, outcomeRaw, stranger);
    }

    /// @dev Same, with the leaves themselves chosen by the fuzzer (zeros and duplicates dropped).
    function testFuzz_inclusion_arbitraryLeaves(bytes32[] memory raw, uint8 outcomeRaw, bytes32 stranger) public {
        bytes32[] memory values = new bytes32[](raw.length < 64 ? raw.length : 64);
        uint256 n = 0;
        for (uint256 i = 0; i < raw.length && n < values.length; ++i) {
            if (raw[i] == bytes32(0) || _contains(values, n, raw[i])) continue;
            values[n++] = raw[i];
        }
        vm.assume(n > 0);
        assembly ("memory-safe") {
            mstore(values, n)
        }
        _checkTree(values, outcomeRaw, stranger);
    }

    function _checkTree(bytes32[] memory values, uint8 outcomeRaw, bytes32 stranger) private {
        vm.assume(stranger != bytes32(0) && !_contains(values, values.length, stranger));
        uint256 n = values.length;
        StandardMerkle.Tree memory tree = StandardMerkle.build(values);
        bytes32 root = tree.root();
        vm.prank(registrarA);
        ledger.anchorBatch(root, SafeCast.toUint32(n));

        // a non-member fails with every member's proof (each has a length the batch admits)
        for (uint256 i = 0; i < n; ++i) {
            bytes32[] memory proof = tree.proof(values[i]);
            assertFalse(ledger.isAnchored(DEPT_A, stranger, root, proof), "non-member not anchored");
        }
        bytes32[] memory someProof = tree.proof(values[uint256(outcomeRaw) % n]);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.InvalidProof.selector, stranger, root));
        vm.prank(verifierA);
        ledger.recordOutcome(stranger, uint8(CommitmentLedger.Status.Kept), EVIDENCE, root, someProof);
        _assertStatus(stranger, CommitmentLedger.Status.None, "non-member stays unknown");

        // every member proves and records
        uint256 breaches = 0;
        for (uint256 i = 0; i < n; ++i) {
            bytes32[] memory proof = tree.proof(values[i]);
            assertTrue(ledger.isAnchored(DEPT_A, values[i], root, proof), "member anchored");
            uint8 to = uint8(3 + ((uint256(outcomeRaw) + i) % 4)); // Kept, Mismatch, NeedsManual, Breached
            bool breach = to == uint8(CommitmentLedger.Status.Breached);
            vm.prank(verifierA); // a breach is proposed first, then published
            ledger.recordOutcome(values[i], breach ? uint8(CommitmentLedger.Status.Proposed) : to, EVIDENCE, root, proof);
            if (breach) {
                _record(values[i], CommitmentLedger.Status.Breached);
                ++breaches;
            }
            _assertStanding(values[i], CommitmentLedger.Status(to), DEPT_A, T0, T0);
            assertTrue(ledger.isAnchored(DEPT_A, values[i], bytes32(0), _none()), "known without proof now");
        }
        _assertBreaches(breaches, breaches);
        assertFalse(ledger.isAnchored(DEPT_A, stranger, bytes32(0), _none()), "non-member still unknown");
    }

    /// @dev Proof lengths outside [floor(log2 size), ceil(log2 size)] are refused as such;
    /// lengths inside reach the proof check.
    function testFuzz_proofLengthBounds(uint32 size, uint8 length, bytes32 commitment) public {
        vm.assume(size > 0 && commitment != bytes32(0));
        bytes32 root = keccak256(abi.encode("declared", size));
        vm.prank(registrarA);
        ledger.anchorBatch(root, size);
        uint256 floorLog = 0;
        while ((uint256(1) << (floorLog + 1)) <= size) ++floorLog;
        uint256 ceilLog = (uint256(1) << floorLog) == size ? floorLog : floorLog + 1;
        bytes32[] memory proof = new bytes32[](length % 40);
        for (uint256 i = 0; i < proof.length; ++i) proof[i] = keccak256(abi.encode(commitment, i));
        if (proof.length < floorLog || proof.length > ceilLog) {
            vm.expectRevert(
                abi.encodeWithSelector(CommitmentLedger.InvalidProofLength.selector, proof.length, floorLog, ceilLog)
            );
        } else {
            vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.InvalidProof.selector, commitment, root));
        }
        vm.prank(verifierA);
        ledger.recordOutcome(commitment, uint8(CommitmentLedger.Status.Kept), EVIDENCE, root, proof);
        assertFalse(ledger.isAnchored(DEPT_A, commitment, root, proof), "random proof never anchors");
    }

    function testFuzz_anchor_anyCommitmentOnce(bytes32 commitment, uint32 dt) public {
        vm.assume(commitment != bytes32(0));
        vm.warp(T0 + dt);
        _anchor(commitment);
        _assertStanding(commitment, CommitmentLedger.Status.Anchored, DEPT_A, T0 + dt, T0 + dt);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.AlreadyAnchored.selector, commitment));
        vm.prank(registrarA);
        ledger.anchor(commitment);
        vm.prank(registrarB); // B's own record, A's untouched
        ledger.anchor(commitment);
        _assertStanding(commitment, CommitmentLedger.Status.Anchored, DEPT_A, T0 + dt, T0 + dt);
    }

    function testFuzz_recordOutcome_unknownOutcome(uint8 code) public {
        vm.assume(code > 10);
        bytes32 c = _c("fuzz outcome");
        _anchor(c);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.UnknownOutcome.selector, code));
        vm.prank(verifierA);
        ledger.recordOutcome(c, code, EVIDENCE, bytes32(0), _none());
        _assertStatus(c, CommitmentLedger.Status.Anchored, "unchanged");
    }

    // ================================================================== roles, random accounts

    function _notRegistrar(address who) private view {
        vm.assume(who != registrarA && who != registrarB);
    }

    function _notVerifier(address who) private view {
        vm.assume(who != verifierA && who != verifierB);
    }

    function testFuzz_anchor_revertsWithoutRole(address who, bytes32 c) public {
        _notRegistrar(who);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, who, REGISTRAR));
        vm.prank(who);
        ledger.anchor(c);
        _assertStatus(c, CommitmentLedger.Status.None, "unchanged");
    }

    function testFuzz_anchorBatch_revertsWithoutRole(address who, bytes32 root, uint32 size) public {
        _notRegistrar(who);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, who, REGISTRAR));
        vm.prank(who);
        ledger.anchorBatch(root, size);
        assertEq(uint256(ledger.batchOf(DEPT_A, root).size), 0, "unchanged");
    }

    function testFuzz_withdraw_revertsWithoutRole(address who) public {
        _notRegistrar(who);
        bytes32 c = _c("fuzz withdraw");
        _anchor(c);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, who, REGISTRAR));
        vm.prank(who);
        ledger.withdraw(c, EVIDENCE, bytes32(0), _none());
        _assertStatus(c, CommitmentLedger.Status.Anchored, "unchanged");
    }

    function testFuzz_recordOutcome_revertsWithoutRole(address who, uint8 outcome) public {
        _notVerifier(who);
        bytes32 c = _c("fuzz record");
        _anchor(c);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, who, VERIFIER));
        vm.prank(who);
        ledger.recordOutcome(c, outcome, EVIDENCE, bytes32(0), _none());
        _assertStatus(c, CommitmentLedger.Status.Anchored, "unchanged");
    }

    function testFuzz_recordOutcomes_revertsWithoutRole(address who) public {
        _notVerifier(who);
        bytes32 c = _c("fuzz records");
        _anchor(c);
        CommitmentLedger.OutcomeInput[] memory items = new CommitmentLedger.OutcomeInput[](1);
        items[0] = CommitmentLedger.OutcomeInput(c, uint8(CommitmentLedger.Status.Kept), EVIDENCE, bytes32(0), _none());
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, who, VERIFIER));
        vm.prank(who);
        ledger.recordOutcomes(items);
        _assertStatus(c, CommitmentLedger.Status.Anchored, "unchanged");
    }

    function testFuzz_repair_revertsWithoutRole(address who) public {
        _notVerifier(who);
        bytes32 c = _c("fuzz repair");
        _reach(c, CommitmentLedger.Status.Breached);
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, who, VERIFIER));
        vm.prank(who);
        ledger.repair(c, DECISION);
        _assertStatus(c, CommitmentLedger.Status.Breached, "unchanged");
        _assertBreaches(1, 1);
    }

    function testFuzz_grantDepartmentRole_revertsForNonAdmin(address who, address account, bytes32 dept) public {
        vm.assume(who != admin);
        vm.assume(ledger.departmentOf(account) == bytes32(0));
        vm.expectRevert(abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, who, ADMIN_ROLE));
        vm.prank(who);
        ledger.grantDepartmentRole(VERIFIER, account, dept);
        assertEq(ledger.departmentOf(account), bytes32(0), "unbound");
        assertFalse(ledger.hasRole(VERIFIER, account), "no role");
    }

    // ================================================================== departments, random accounts

    /// @dev A random account bound to a random other department can neither record, repair
    /// nor withdraw department A's commitments (single or batch member).
    function testFuzz_wrongDepartment(address who, bytes32 dept) public {
        vm.assume(dept != bytes32(0) && dept != DEPT_A);
        vm.assume(ledger.departmentOf(who) == bytes32(0));
        vm.startPrank(admin);
        ledger.grantDepartmentRole(VERIFIER, who, dept);
        ledger.grantDepartmentRole(REGISTRAR, who, dept);
        vm.stopPrank();
        assertEq(ledger.departmentOf(who), dept, "bound");

        bytes32 single = _c("A single");
        _anchor(single);
        bytes32 breached = _c("A breached");
        _reach(breached, CommitmentLedger.Status.Breached);
        (StandardMerkle.Tree memory tree, bytes32[] memory values) = _anchorTree(uint256(dept), 5);
        bytes32 root = tree.root();
        bytes32[] memory proof = tree.proof(values[2]);

        vm.startPrank(who);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.NotAnchored.selector, single));
        ledger.recordOutcome(single, uint8(CommitmentLedger.Status.Breached), EVIDENCE, bytes32(0), _none());
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.UnknownBatch.selector, root));
        ledger.recordOutcome(values[2], uint8(CommitmentLedger.Status.Kept), EVIDENCE, root, proof);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.NotAnchored.selector, breached));
        ledger.repair(breached, DECISION);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.NotAnchored.selector, single));
        ledger.withdraw(single, EVIDENCE, bytes32(0), _none());
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.UnknownBatch.selector, root));
        ledger.withdraw(values[2], EVIDENCE, root, proof);
        vm.stopPrank();

        _assertStanding(single, CommitmentLedger.Status.Anchored, DEPT_A, T0, T0);
        _assertStatus(breached, CommitmentLedger.Status.Breached, "still breached");
        _assertStanding(values[2], CommitmentLedger.Status.None, bytes32(0), 0, 0);
        _assertBreaches(1, 1);

        // and what it anchors itself belongs to its own department
        bytes32 own = keccak256(abi.encode("own", dept));
        vm.prank(who);
        ledger.anchor(own);
        assertEq(ledger.statusOf(dept, own).department, dept, "own department");
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.NotAnchored.selector, own));
        _record(own, CommitmentLedger.Status.Kept);
    }

    /// @dev Findings 2 and 3 of issue #12, for any account of any other department: it anchors
    /// A's single, A's batch members and A's root (any size) as its own and breaches them, and
    /// A's records, batch and breach count stay as they were; A still decides its own.
    function testFuzz_otherDepartmentCannotSquatOrFrontRun(address who, bytes32 dept, uint32 size) public {
        vm.assume(dept != bytes32(0) && dept != DEPT_A);
        vm.assume(ledger.departmentOf(who) == bytes32(0));
        vm.assume(size != 0);
        vm.startPrank(admin);
        ledger.grantDepartmentRole(VERIFIER, who, dept);
        ledger.grantDepartmentRole(REGISTRAR, who, dept);
        vm.stopPrank();

        bytes32 single = _c("A single");
        _anchor(single);
        bytes32[] memory values = _values(uint256(dept), 5);
        StandardMerkle.Tree memory tree = StandardMerkle.build(values);
        bytes32 root = tree.root();
        vm.prank(who); // the front-run: the root first, as the other department's
        ledger.anchorBatch(root, size);
        vm.prank(registrarA);
        ledger.anchorBatch(root, 5);

        vm.startPrank(who);
        ledger.anchor(single);
        ledger.anchor(values[2]);
        ledger.recordOutcome(single, uint8(CommitmentLedger.Status.Proposed), EVIDENCE, bytes32(0), _none());
        ledger.recordOutcome(single, uint8(CommitmentLedger.Status.Breached), EVIDENCE, bytes32(0), _none());
        ledger.recordOutcome(values[2], uint8(CommitmentLedger.Status.Proposed), EVIDENCE, bytes32(0), _none());
        ledger.recordOutcome(values[2], uint8(CommitmentLedger.Status.Breached), EVIDENCE, bytes32(0), _none());
        vm.stopPrank();

        _assertStanding(single, CommitmentLedger.Status.Anchored, DEPT_A, T0, T0);
        _assertStanding(values[2], CommitmentLedger.Status.None, bytes32(0), 0, 0);
        CommitmentLedger.Batch memory a = ledger.batchOf(DEPT_A, root);
        assertEq(a.department, DEPT_A, "A's batch");
        assertEq(uint256(a.size), 5, "A's size");
        assertEq(uint256(ledger.batchOf(dept, root).size), uint256(size), "the other's apart");
        _record(single, CommitmentLedger.Status.Kept);
        vm.prank(verifierA);
        ledger.recordOutcome(values[2], uint8(CommitmentLedger.Status.Kept), EVIDENCE, root, tree.proof(values[2]));
        _assertStatus(values[2], CommitmentLedger.Status.Kept, "A decided its own");
        assertEq(uint256(ledger.statusOf(dept, single).status), uint256(CommitmentLedger.Status.Breached), "theirs");
    }

    /// @dev A random new account of department A acts for A.
    function testFuzz_sameDepartmentAccountActs(address who) public {
        vm.assume(ledger.departmentOf(who) == bytes32(0));
        vm.prank(admin);
        ledger.grantDepartmentRole(VERIFIER, who, DEPT_A);
        bytes32 c = _c("A's");
        _anchor(c);
        vm.startPrank(who);
        ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Proposed), EVIDENCE, bytes32(0), _none());
        ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Breached), EVIDENCE, bytes32(0), _none());
        ledger.repair(c, DECISION);
        vm.stopPrank();
        _assertStatus(c, CommitmentLedger.Status.Repaired, "repaired by another A verifier");
    }

    function testFuzz_accountBoundElsewhere(address who, bytes32 first, bytes32 second, bool secondIsVerifier) public {
        vm.assume(first != bytes32(0) && second != bytes32(0) && first != second);
        vm.assume(ledger.departmentOf(who) == bytes32(0));
        vm.prank(admin);
        ledger.grantDepartmentRole(REGISTRAR, who, first);
        bytes32 role = secondIsVerifier ? VERIFIER : REGISTRAR;
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.AccountBoundElsewhere.selector, who, first));
        vm.prank(admin);
        ledger.grantDepartmentRole(role, who, second);
        assertEq(ledger.departmentOf(who), first, "still first");
        assertEq(ledger.hasRole(VERIFIER, who), false, "no verifier role");
    }

    function testFuzz_grantRole_unboundAccount(address who, bool verifier) public {
        vm.assume(ledger.departmentOf(who) == bytes32(0));
        bytes32 role = verifier ? VERIFIER : REGISTRAR;
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.AccountNotBound.selector, who));
        vm.prank(admin);
        ledger.grantRole(role, who);
        assertFalse(ledger.hasRole(role, who), "no role");
    }

    // ================================================================== helpers

    function _contains(bytes32[] memory values, uint256 n, bytes32 v) private pure returns (bool) {
        for (uint256 i = 0; i < n; ++i) if (values[i] == v) return true;
        return false;
    }

    /// @dev Issue #14, for any sequence of outcomes: Breached is entered only from Proposed;
    /// a direct move into Breached from any other status reverts and changes nothing.
    function testFuzz_breachedOnlyFromProposed(uint8[6] memory codes) public {
        bytes32 c = _c("fuzz path");
        _anchor(c);
        for (uint256 i = 0; i < codes.length; ++i) {
            CommitmentLedger.Status from = _status(c);
            uint8 to = codes[i] % 11;
            bool ok = _allowed(uint8(from), to) &&
                to != uint8(CommitmentLedger.Status.Withdrawn) &&
                to != uint8(CommitmentLedger.Status.Repaired);
            if (!ok) vm.expectRevert();
            _record(c, CommitmentLedger.Status(to));
            if (ok && to == uint8(CommitmentLedger.Status.Breached)) {
                assertEq(uint256(from), uint256(CommitmentLedger.Status.Proposed), "published unannounced");
            }
            if (!ok) assertEq(uint256(_status(c)), uint256(from), "refused move changed the status");
        }
    }
}

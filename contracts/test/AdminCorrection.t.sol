// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {CommitmentLedger} from "../CommitmentLedger.sol";
import {LedgerFixture} from "./LedgerFixture.sol";

/// @notice `correctBreach`: the admin (a Safe in production) corrects any department's
/// published or proposed breach; nobody else can, and nothing else moves.
contract AdminCorrectionTest is LedgerFixture {
    bytes32 internal constant RULING = keccak256("court ruling");

    event OutcomeRecorded(
        bytes32 indexed commitment,
        bytes32 indexed department,
        CommitmentLedger.Status from,
        CommitmentLedger.Status to,
        bytes32 evidence,
        bytes32 root
    );
    event BreachClosed(
        bytes32 indexed commitment,
        bytes32 indexed department,
        CommitmentLedger.Status reason,
        bytes32 evidence,
        uint64 timestamp
    );

    function test_correctBreach_publishedBreachIsCorrectedAndClosed() public {
        bytes32 c = _c("published");
        _reach(c, CommitmentLedger.Status.Breached);
        _assertBreaches(1, 1);
        vm.warp(T0 + 100);
        vm.expectEmit(true, true, false, true, address(ledger));
        emit OutcomeRecorded(c, DEPT_A, CommitmentLedger.Status.Breached, CommitmentLedger.Status.Corrected, RULING, 0);
        vm.expectEmit(true, true, false, true, address(ledger));
        emit BreachClosed(c, DEPT_A, CommitmentLedger.Status.Corrected, RULING, T0 + 100);
        vm.prank(admin);
        ledger.correctBreach(DEPT_A, c, RULING);
        _assertStanding(c, CommitmentLedger.Status.Corrected, DEPT_A, T0, T0 + 100);
        _assertBreaches(0, 1);
    }

    function test_correctBreach_proposedBreachIsCorrected() public {
        bytes32 c = _c("proposed");
        _reach(c, CommitmentLedger.Status.Proposed);
        vm.prank(admin);
        ledger.correctBreach(DEPT_A, c, RULING);
        _assertStatus(c, CommitmentLedger.Status.Corrected, "proposed -> corrected");
        _assertBreaches(0, 0);
    }

    function test_correctBreach_onlyTheAdmin() public {
        bytes32 c = _c("guarded");
        _reach(c, CommitmentLedger.Status.Breached);
        address[3] memory others = [verifierA, registrarA, outsider];
        for (uint256 i = 0; i < others.length; ++i) {
            vm.expectRevert(
                abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, others[i], ADMIN_ROLE)
            );
            vm.prank(others[i]);
            ledger.correctBreach(DEPT_A, c, RULING);
        }
        _assertStatus(c, CommitmentLedger.Status.Breached, "still breached");
    }

    function test_correctBreach_onlyBreachesMove() public {
        CommitmentLedger.Status[7] memory others = [
            CommitmentLedger.Status.Anchored,
            CommitmentLedger.Status.Withdrawn,
            CommitmentLedger.Status.Kept,
            CommitmentLedger.Status.Mismatch,
            CommitmentLedger.Status.Repaired,
            CommitmentLedger.Status.Expired,
            CommitmentLedger.Status.Corrected
        ];
        for (uint256 i = 0; i < others.length; ++i) {
            bytes32 c = _c(i);
            _reach(c, others[i]);
            vm.expectRevert(
                abi.encodeWithSelector(
                    CommitmentLedger.TransitionNotAllowed.selector,
                    c,
                    others[i],
                    CommitmentLedger.Status.Corrected
                )
            );
            vm.prank(admin);
            ledger.correctBreach(DEPT_A, c, RULING);
        }
    }

    function test_correctBreach_theNamedDepartmentsRecordOnly() public {
        bytes32 c = _c("department A's");
        _reach(c, CommitmentLedger.Status.Breached);
        vm.expectRevert(abi.encodeWithSelector(CommitmentLedger.NotAnchored.selector, c));
        vm.prank(admin);
        ledger.correctBreach(DEPT_B, c, RULING);
        _assertStatus(c, CommitmentLedger.Status.Breached, "A's record untouched");
    }

    function test_correctBreach_revertsZeroHashes() public {
        bytes32 c = _c("zero");
        _reach(c, CommitmentLedger.Status.Breached);
        bytes32[3][3] memory calls = [[bytes32(0), c, RULING], [DEPT_A, bytes32(0), RULING], [DEPT_A, c, bytes32(0)]];
        for (uint256 i = 0; i < 3; ++i) {
            vm.expectRevert(CommitmentLedger.ZeroHash.selector);
            vm.prank(admin);
            ledger.correctBreach(calls[i][0], calls[i][1], calls[i][2]);
        }
    }
}

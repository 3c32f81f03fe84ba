// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {CommitmentLedger} from "../CommitmentLedger.sol";
import {TestBase} from "./TestBase.sol";
import {LedgerHandler} from "./LedgerHandler.sol";

/// @notice Invariants over random sequences of LedgerHandler actions:
/// (a) a commitment (or batch root) is never anchored twice;
/// (b) a status never moves along a transition the machine forbids, and the chain always
///     agrees with the handler's model (reverted calls change nothing, batches are all or nothing);
/// (c) openBreaches == BreachRecorded events - (BreachRepaired + BreachClosed) events
///     == tracked commitments in Breached status.
contract CommitmentLedgerInvariantTest is TestBase {
    CommitmentLedger internal ledger;
    LedgerHandler internal handler;

    function setUp() public {
        vm.warp(1_700_000_000);
        address admin = vm.addr(0xAD);
        address[2] memory registrars = [vm.addr(0xA1), vm.addr(0xB1)];
        address[2] memory verifiers = [vm.addr(0xA2), vm.addr(0xB2)];
        bytes32[2] memory departments = [keccak256("DEPT-A"), keccak256("DEPT-B")];
        ledger = new CommitmentLedger(admin);
        vm.startPrank(admin);
        for (uint256 d = 0; d < 2; ++d) {
            ledger.grantDepartmentRole(ledger.REGISTRAR_ROLE(), registrars[d], departments[d]);
            ledger.grantDepartmentRole(ledger.VERIFIER_ROLE(), verifiers[d], departments[d]);
        }
        vm.stopPrank();
        handler = new LedgerHandler(ledger, registrars, verifiers, departments);

        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](9);
        selectors[0] = LedgerHandler.anchorSingle.selector;
        selectors[1] = LedgerHandler.anchorBatch.selector;
        selectors[2] = LedgerHandler.anchorExisting.selector;
        selectors[3] = LedgerHandler.recordOutcome.selector;
        selectors[4] = LedgerHandler.recordOutcomes.selector;
        selectors[5] = LedgerHandler.repair.selector;
        selectors[6] = LedgerHandler.withdraw.selector;
        selectors[7] = LedgerHandler.warp.selector;
        selectors[8] = LedgerHandler.squat.selector;
        targetSelector(FuzzSelector(address(handler), selectors));
    }

    /// (a)
    function invariant_neverAnchoredTwice() public view {
        assertEq(handler.doubleAnchors(), 0, "a second anchor succeeded");
        assertLe(handler.maxAnchorEventsPerHash(), 1, "anchor events per commitment or root");
    }

    /// (b)
    function invariant_onlyAllowedTransitions() public view {
        assertEq(handler.forbiddenMoves(), 0, "forbidden transition observed");
        assertEq(handler.changedOnRevert(), 0, "a reverted call changed a status");
        assertEq(handler.partialBatches(), 0, "recordOutcomes was not all or nothing");
        assertEq(handler.wrongTarget(), 0, "a successful call reached another status");
        assertEq(handler.wrongPredictions(), 0, "success or failure differs from the model");
        assertEq(handler.modelDrift(), 0, "status drifted from the model");
        assertEq(handler.modelDisagreements(), 0, "chain and model disagree");
    }

    /// (d) findings 2 and 3 of issue #12: another department's anchor, batch or breach of the
    /// same hash or root never changes the owner's record, and is always its own record.
    function invariant_noDepartmentSquatsAnother() public view {
        assertEq(handler.squatsThatChangedTheOwner(), 0, "another department changed the owner's record");
        assertEq(handler.squatsRefused(), 0, "another department could not make its own record");
    }

    /// (e) issue #14: nobody is published who was not told first. Every OutcomeRecorded event
    /// into Breached comes from Proposed (the status of a notified, proposed breach).
    function invariant_breachedOnlyFromProposed() public view {
        assertEq(handler.ghostPublishedUnannounced(), 0, "Breached entered other than from Proposed");
        assertEq(handler.ghostPublished(), handler.ghostBreachRecorded(), "publications vs BreachRecorded");
    }

    /// (c)
    function invariant_openBreachesMatchEventsAndStatuses() public view {
        uint256 recorded = handler.ghostBreachRecorded();
        uint256 closed = handler.ghostBreachRepaired() + handler.ghostBreachClosed();
        assertLe(closed, recorded, "more breaches closed than recorded");
        uint256 open = ledger.openBreaches();
        assertEq(open, recorded - closed, "openBreaches vs events");
        assertEq(open, handler.chainBreachedCount(), "openBreaches vs Breached statuses");
        assertEq(open, handler.modelBreached(), "openBreaches vs model");
        assertEq(ledger.totalBreaches(), recorded, "totalBreaches vs BreachRecorded events");
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {CommitmentLedger} from "../CommitmentLedger.sol";
import {Vm} from "./Vm.sol";
import {StandardMerkle} from "./StandardMerkle.sol";

/// @notice Drives a CommitmentLedger at random for the invariant tests: anchors single
/// commitments and small real Merkle batches, tries to anchor existing ones again, records
/// outcomes (random codes, sometimes by the wrong account or with a wrong proof), repairs,
/// withdraws, and moves time. It keeps a ghost model of its own (status per commitment, an
/// allowed-transition table, breach counts taken from the emitted events) and never reverts
/// on a discrepancy: it counts it, and the invariants require every count to stay zero
/// (the invariant runner ignores handler reverts, fail_on_revert = false).
contract LedgerHandler {
    using StandardMerkle for StandardMerkle.Tree;

    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    CommitmentLedger public immutable ledger;
    address[2] internal registrars;
    address[2] internal verifiers;
    bytes32[2] internal departments;

    bytes32 internal constant EVIDENCE = keccak256("handler evidence");

    struct Tracked {
        uint8 dept; // index into departments
        bool inBatch; // anchored as a batch member (not singly)
        bytes32 root; // its batch root
    }

    bytes32[] public commitments;
    mapping(bytes32 => Tracked) internal info;
    mapping(bytes32 => bytes32[]) internal proofOf;
    mapping(bytes32 => bytes32) internal siblingOf; // another member of the same batch (0 if none)
    mapping(bytes32 => CommitmentLedger.Status) public model;
    bytes32[] public roots;
    mapping(bytes32 => uint32) internal rootSize;
    mapping(bytes32 => uint8) internal rootDept;
    uint256 internal nonce;

    // ---- ghosts from events (successful calls only)
    uint256 public ghostBreachRecorded;
    uint256 public ghostBreachRepaired;
    uint256 public ghostBreachClosed;
    uint256 public ghostPublished; // OutcomeRecorded events whose `to` is Breached
    uint256 public ghostPublishedUnannounced; // ... whose `from` is not Proposed
    mapping(bytes32 => uint256) public commitmentAnchoredEvents;
    mapping(bytes32 => uint256) public batchAnchoredEvents;
    uint256 public maxAnchorEventsPerHash;

    // ---- model-side counters
    uint256 public modelBreached; // tracked commitments the model holds in Breached

    // ---- discrepancies: every one must stay zero
    uint256 public doubleAnchors; // a second anchor of an existing commitment or root succeeded
    uint256 public forbiddenMoves; // an observed before -> after the table forbids
    uint256 public changedOnRevert; // a reverted call changed a status
    uint256 public wrongPredictions; // success/failure other than the model predicts
    uint256 public wrongTarget; // a successful call left another status than requested
    uint256 public partialBatches; // recordOutcomes reverted but changed something
    uint256 public modelDrift; // after a call, a touched commitment's status differs from the model
    uint256 public squatsThatChangedTheOwner; // another department's anchor or breach changed the owner's record
    uint256 public squatsRefused; // another department could not make its own record of a hash or root

    // ---- coverage, for the log
    uint256 public okCalls;
    uint256 public revertedCalls;

    constructor(
        CommitmentLedger ledger_,
        address[2] memory registrars_,
        address[2] memory verifiers_,
        bytes32[2] memory departments_
    ) {
        ledger = ledger_;
        registrars = registrars_;
        verifiers = verifiers_;
        departments = departments_;
    }

    function commitmentCount() external view returns (uint256) {
        return commitments.length;
    }

    function rootCount() external view returns (uint256) {
        return roots.length;
    }

    // ================================================================== actions

    function anchorSingle(uint256 seed, bool deptB) external {
        uint8 d = deptB ? 1 : 0;
        bytes32 c = keccak256(abi.encode("single", seed, nonce++));
        vm.recordLogs();
        vm.prank(registrars[d]);
        try ledger.anchor(c) {
            _countEvents(true);
            _track(c, d, false, bytes32(0));
            _predicted(true, true);
        } catch {
            _countEvents(false);
            _predicted(false, true);
        }
        _checkModel(c);
    }

    function anchorBatch(uint256 seed, uint8 sizeRaw, bool deptB) external {
        uint8 d = deptB ? 1 : 0;
        uint256 n = 1 + (uint256(sizeRaw) % 8);
        bytes32[] memory values = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) values[i] = keccak256(abi.encode("member", seed, nonce, i));
        ++nonce;
        StandardMerkle.Tree memory tree = StandardMerkle.build(values);
        bytes32 root = tree.root();
        vm.recordLogs();
        vm.prank(registrars[d]);
        try ledger.anchorBatch(root, SafeCast.toUint32(n)) {
            _countEvents(true);
            _predicted(true, true);
            roots.push(root);
            rootSize[root] = SafeCast.toUint32(n);
            rootDept[root] = d;
            for (uint256 i = 0; i < n; ++i) {
                _track(values[i], d, true, root);
                proofOf[values[i]] = tree.proof(values[i]);
                siblingOf[values[i]] = n > 1 ? values[(i + 1) % n] : bytes32(0);
            }
        } catch {
            _countEvents(false);
            _predicted(false, true);
        }
    }

    /// @dev Anchoring again what the department already has on the chain (a single or
    /// materialised commitment, or a batch root) must always revert.
    function anchorExisting(uint256 idx, bool viaRoot) external {
        if (viaRoot && roots.length > 0) {
            bytes32 root = roots[idx % roots.length];
            vm.recordLogs();
            vm.prank(registrars[rootDept[root]]);
            try ledger.anchorBatch(root, rootSize[root]) {
                _countEvents(true);
                ++doubleAnchors;
            } catch (bytes memory err) {
                _countEvents(false);
                _expectError(err, abi.encodeWithSelector(CommitmentLedger.BatchAlreadyAnchored.selector, root));
            }
            return;
        }
        if (commitments.length == 0) return;
        bytes32 c = commitments[idx % commitments.length];
        CommitmentLedger.Status before = ledger.statusOf(_dept(c), c).status;
        if (before == CommitmentLedger.Status.None) return; // an unmaterialised batch member
        vm.recordLogs();
        vm.prank(registrars[info[c].dept]);
        try ledger.anchor(c) {
            _countEvents(true);
            ++doubleAnchors;
        } catch (bytes memory err) {
            _countEvents(false);
            _expectError(err, abi.encodeWithSelector(CommitmentLedger.AlreadyAnchored.selector, c));
        }
        _checkModel(c);
    }

    /// @param actorRaw mod 8: 0-5 the right department's verifier; 6 the other department's
    /// verifier; 7 the right department's registrar (lacks the role).
    /// @param proofMode mod 8: 0-5 the real root and proof; 6 another member's proof; 7 no root.
    function recordOutcome(uint256 idx, uint8 codeRaw, uint8 actorRaw, uint8 proofMode) external {
        if (commitments.length == 0) return;
        bytes32 c = _pickOpen(idx);
        uint8 code = _pickCode(c, codeRaw);
        (address actor, bool rightAccount) = _verifierActor(c, actorRaw);
        (bytes32 root, bytes32[] memory proof, bool proofOk) = _proofFor(c, proofMode);
        CommitmentLedger.Status before = _effective(c);
        bool expectOk = rightAccount && proofOk && _outcomeAllowed(before, code);
        vm.recordLogs();
        vm.prank(actor);
        try ledger.recordOutcome(c, code, EVIDENCE, root, proof) {
            _countEvents(true);
            _observe(c, before, CommitmentLedger.Status(code), true);
            _predicted(true, expectOk);
        } catch {
            _countEvents(false);
            _observe(c, before, before, false);
            _predicted(false, expectOk);
        }
        _checkModel(c);
    }

    struct Pair {
        bytes32 c1;
        bytes32 c2;
        uint8 code1;
        uint8 code2;
        CommitmentLedger.Status before1;
        CommitmentLedger.Status before2;
        CommitmentLedger.Status raw1;
        CommitmentLedger.Status raw2;
        bool expectOk;
    }

    /// @dev Two items in one call; all or nothing.
    function recordOutcomes(uint256 idx1, uint256 idx2, uint8 code1, uint8 code2, uint8 proofMode) external {
        if (commitments.length == 0) return;
        Pair memory p;
        p.c1 = _pickOpen(idx1);
        p.c2 = _pickOpen(idx2);
        p.code1 = _pickCode(p.c1, code1);
        p.code2 = _pickCode(p.c2, code2);
        uint8 d = info[p.c1].dept;
        CommitmentLedger.OutcomeInput[] memory items = _pairItems(p, proofMode);
        vm.recordLogs();
        vm.prank(verifiers[d]);
        try ledger.recordOutcomes(items) {
            _countEvents(true);
            _predicted(true, p.expectOk);
            if (p.c1 != p.c2) {
                _observe(p.c1, p.before1, CommitmentLedger.Status(p.code1), true);
                _observe(p.c2, p.before2, CommitmentLedger.Status(p.code2), true);
            } else {
                // the same commitment twice: before1 -> code1 -> code2
                if (!_allowedTable(uint8(p.before1), p.code1)) ++forbiddenMoves;
                _observe(p.c1, CommitmentLedger.Status(p.code1), CommitmentLedger.Status(p.code2), true);
            }
        } catch {
            _countEvents(false);
            _predicted(false, p.expectOk);
            if (ledger.statusOf(_dept(p.c1), p.c1).status != p.raw1 || ledger.statusOf(_dept(p.c2), p.c2).status != p.raw2) {
                ++partialBatches;
            }
        }
        _checkModel(p.c1);
        _checkModel(p.c2);
    }

    /// @dev The two items, the statuses before, and whether the model expects success.
    function _pairItems(
        Pair memory p,
        uint8 proofMode
    ) private view returns (CommitmentLedger.OutcomeInput[] memory items) {
        items = new CommitmentLedger.OutcomeInput[](2);
        (bytes32 r1, bytes32[] memory p1, bool ok1) = _proofFor(p.c1, proofMode);
        (bytes32 r2, bytes32[] memory p2, ) = _proofFor(p.c2, 0);
        items[0] = CommitmentLedger.OutcomeInput(p.c1, p.code1, EVIDENCE, r1, p1);
        items[1] = CommitmentLedger.OutcomeInput(p.c2, p.code2, EVIDENCE, r2, p2);
        p.before1 = _effective(p.c1);
        p.before2 = _effective(p.c2);
        p.raw1 = ledger.statusOf(_dept(p.c1), p.c1).status;
        p.raw2 = ledger.statusOf(_dept(p.c2), p.c2).status;
        // the model, item by item: the second sees the first's effect when they are the same
        CommitmentLedger.Status mid2 = p.c1 == p.c2 ? CommitmentLedger.Status(p.code1 <= 10 ? p.code1 : 0) : p.before2;
        p.expectOk =
            ok1 &&
            _outcomeAllowed(p.before1, p.code1) &&
            _outcomeAllowed(mid2, p.code2) &&
            info[p.c2].dept == info[p.c1].dept;
    }

    /// @param actorRaw as for recordOutcome.
    function repair(uint256 idx, uint8 actorRaw) external {
        if (commitments.length == 0) return;
        bytes32 c = _pickIn(idx, 0x40); // Breached (6)
        (address actor, bool rightAccount) = _verifierActor(c, actorRaw);
        CommitmentLedger.Status before = _effective(c);
        CommitmentLedger.Status raw = ledger.statusOf(_dept(c), c).status;
        bool expectOk = rightAccount &&
            raw != CommitmentLedger.Status.None &&
            _allowedTable(uint8(before), uint8(CommitmentLedger.Status.Repaired));
        vm.recordLogs();
        vm.prank(actor);
        try ledger.repair(c, keccak256(abi.encode("decision", c))) {
            _countEvents(true);
            _observe(c, before, CommitmentLedger.Status.Repaired, true);
            _predicted(true, expectOk);
        } catch {
            _countEvents(false);
            _observe(c, before, before, false);
            _predicted(false, expectOk);
        }
        _checkModel(c);
    }

    /// @param actorRaw mod 8: 0-5 the right department's registrar; 6 the other department's
    /// registrar; 7 the right department's verifier (lacks the role).
    function withdraw(uint256 idx, uint8 actorRaw, uint8 proofMode) external {
        if (commitments.length == 0) return;
        bytes32 c = _pickIn(idx, 0x02); // Anchored (1)
        uint8 d = info[c].dept;
        uint8 mode = actorRaw % 8;
        address actor = mode < 6 ? registrars[d] : mode == 6 ? registrars[1 - d] : verifiers[d];
        (bytes32 root, bytes32[] memory proof, bool proofOk) = _proofFor(c, proofMode);
        CommitmentLedger.Status before = _effective(c);
        bool expectOk = mode < 6 &&
            proofOk &&
            _allowedTable(uint8(before), uint8(CommitmentLedger.Status.Withdrawn));
        vm.recordLogs();
        vm.prank(actor);
        try ledger.withdraw(c, EVIDENCE, root, proof) {
            _countEvents(true);
            _observe(c, before, CommitmentLedger.Status.Withdrawn, true);
            _predicted(true, expectOk);
        } catch {
            _countEvents(false);
            _observe(c, before, before, false);
            _predicted(false, expectOk);
        }
        _checkModel(c);
    }

    /// @dev Findings 2 and 3 of issue #12: the other department anchors a tracked commitment
    /// singly (or its batch root, any size) as its own and records a breach on it. The owner's
    /// standing, batch and membership must not change. Run in a state snapshot that is
    /// reverted afterwards, so the model stays the owner's; only the counters survive.
    function squat(uint256 idx, bool viaRoot, uint32 sizeRaw) external {
        if (commitments.length == 0) return;
        bytes32 c = commitments[idx % commitments.length];
        Tracked memory t = info[c];
        bytes32 owner = departments[t.dept];
        address[2] memory other = [registrars[1 - t.dept], verifiers[1 - t.dept]];
        bytes32 before = keccak256(abi.encode(ledger.statusOf(owner, c), ledger.batchOf(owner, t.root), _member(c)));
        bytes32[] memory proof = viaRoot && t.inBatch ? proofOf[c] : new bytes32[](0);
        bytes32 root = viaRoot && t.inBatch ? t.root : bytes32(0);
        // half the time the root's real size (the other then breaches the member), else any
        uint32 size = sizeRaw % 2 == 0 ? rootSize[root] : (sizeRaw >> 1) + 1;
        uint256 snapshot = vm.snapshotState();
        bool refused = false;
        vm.prank(other[0]);
        if (root != bytes32(0)) {
            try ledger.anchorBatch(root, size) {} catch {
                refused = true;
            }
        } else {
            try ledger.anchor(c) {} catch {
                refused = true;
            }
        }
        if (root == bytes32(0) || size == rootSize[root]) {
            vm.prank(other[1]);
            try ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Proposed), EVIDENCE, root, proof) {} catch {
                refused = true;
            }
            vm.prank(other[1]);
            try ledger.recordOutcome(c, uint8(CommitmentLedger.Status.Breached), EVIDENCE, bytes32(0), proof) {} catch {
                refused = true;
            }
        }
        bytes32 afterwards = keccak256(abi.encode(ledger.statusOf(owner, c), ledger.batchOf(owner, t.root), _member(c)));
        vm.revertToState(snapshot);
        if (refused) ++squatsRefused;
        if (afterwards != before) ++squatsThatChangedTheOwner;
    }

    function warp(uint32 dt) external {
        vm.warp(block.timestamp + (dt % 30 days));
    }

    // ================================================================== checks for the invariants

    /// @dev Tracked commitments whose on-chain status is Breached (a full scan).
    function chainBreachedCount() external view returns (uint256 n) {
        for (uint256 i = 0; i < commitments.length; ++i) {
            if (ledger.statusOf(_dept(commitments[i]), commitments[i]).status == CommitmentLedger.Status.Breached) ++n;
        }
    }

    /// @dev Tracked commitments whose effective on-chain status differs from the model, or whose
    /// department differs from the one that anchored them (a full scan).
    function modelDisagreements() external view returns (uint256 n) {
        for (uint256 i = 0; i < commitments.length; ++i) {
            bytes32 c = commitments[i];
            CommitmentLedger.Standing memory s = ledger.statusOf(_dept(c), c);
            if (_effectiveOf(c, s.status) != model[c]) ++n;
            if (s.status != CommitmentLedger.Status.None && s.department != departments[info[c].dept]) ++n;
        }
    }

    // ================================================================== internals

    function _dept(bytes32 c) private view returns (bytes32) {
        return departments[info[c].dept];
    }

    /// @dev Whether the owner's batch still shows `c` as a member (true for a single).
    function _member(bytes32 c) private view returns (bool) {
        Tracked memory t = info[c];
        return !t.inBatch || ledger.isAnchored(departments[t.dept], c, t.root, proofOf[c]);
    }

    /// @dev Mostly a commitment that can still move (so that sequences go deep), sometimes any.
    function _pickOpen(uint256 idx) private view returns (bytes32) {
        return _pickIn(idx, 0x472); // Anchored, Mismatch, NeedsManual, Breached, Proposed
    }

    /// @dev With probability 3/4 the first tracked commitment from a random start whose model
    /// status is in `statusMask`; otherwise (or if none is) a uniformly random one.
    function _pickIn(uint256 idx, uint256 statusMask) private view returns (bytes32) {
        uint256 n = commitments.length;
        uint256 start = idx % n;
        if ((idx >> 200) % 4 != 0) {
            for (uint256 k = 0; k < n; ++k) {
                bytes32 c = commitments[(start + k) % n];
                if ((statusMask >> uint8(model[c])) & 1 == 1) return c;
            }
        }
        return commitments[start];
    }

    /// @dev One time in five any code 0..12 (two are not statuses at all), which tries Breached
    /// from every status; otherwise a move recordOutcome may make from the model's status, if
    /// there is any (Proposed or Breached half the time they are one, so that breaches are
    /// proposed, published, repaired and closed often).
    function _pickCode(bytes32 c, uint8 codeRaw) private view returns (uint8) {
        uint8 r = codeRaw / 5;
        if (codeRaw % 5 == 0) return r % 13;
        uint8 from = uint8(model[c]);
        if (r % 2 == 0 && _allowedTable(from, uint8(CommitmentLedger.Status.Breached))) {
            return uint8(CommitmentLedger.Status.Breached);
        }
        if (r % 2 == 0 && _allowedTable(from, uint8(CommitmentLedger.Status.Proposed))) {
            return uint8(CommitmentLedger.Status.Proposed);
        }
        uint8[7] memory options;
        uint256 count = 0;
        for (uint8 to = 3; to <= 10; ++to) {
            if (to != uint8(CommitmentLedger.Status.Repaired) && _allowedTable(from, to)) options[count++] = to;
        }
        if (count == 0) return r % 13;
        return options[(r / 2) % count];
    }

    function _track(bytes32 c, uint8 d, bool inBatch, bytes32 root) private {
        commitments.push(c);
        info[c] = Tracked(d, inBatch, root);
        model[c] = CommitmentLedger.Status.Anchored;
    }

    function _verifierActor(bytes32 c, uint8 actorRaw) private view returns (address actor, bool right) {
        uint8 d = info[c].dept;
        uint8 mode = actorRaw % 8;
        if (mode < 6) return (verifiers[d], true);
        if (mode == 6) return (verifiers[1 - d], false);
        return (registrars[d], false);
    }

    /// @dev Root and proof to send for `c`; proofOk says whether the call can get past the
    /// anchoring check (always, once the commitment has a record of its own).
    function _proofFor(
        bytes32 c,
        uint8 proofMode
    ) private view returns (bytes32 root, bytes32[] memory proof, bool ok) {
        Tracked memory t = info[c];
        bool hasRecord = ledger.statusOf(_dept(c), c).status != CommitmentLedger.Status.None;
        uint8 mode = proofMode % 8;
        if (!t.inBatch || mode == 7) return (bytes32(0), new bytes32[](0), hasRecord);
        root = t.root;
        if (mode < 6) return (root, proofOf[c], true);
        bytes32 sibling = siblingOf[c];
        if (sibling != bytes32(0)) {
            proof = proofOf[sibling];
        } else {
            proof = new bytes32[](1); // a single-leaf batch admits only the empty proof
            proof[0] = keccak256(abi.encode(c));
        }
        ok = hasRecord;
    }

    /// @dev The status the model compares: a batch member without a record counts as Anchored.
    function _effective(bytes32 c) private view returns (CommitmentLedger.Status) {
        return _effectiveOf(c, ledger.statusOf(_dept(c), c).status);
    }

    function _effectiveOf(bytes32 c, CommitmentLedger.Status s) private view returns (CommitmentLedger.Status) {
        if (s == CommitmentLedger.Status.None && info[c].inBatch) return CommitmentLedger.Status.Anchored;
        return s;
    }

    function _outcomeAllowed(CommitmentLedger.Status from, uint8 code) private pure returns (bool) {
        if (code > 10) return false;
        if (code == uint8(CommitmentLedger.Status.Withdrawn) || code == uint8(CommitmentLedger.Status.Repaired)) {
            return false;
        }
        return _allowedTable(uint8(from), code);
    }

    /// @dev The handler's own copy of the status machine.
    function _allowedTable(uint8 from, uint8 to) private pure returns (bool) {
        uint16[11] memory table = [
            uint16(0),
            0x43C, // Anchored -> Withdrawn, Kept, Mismatch, NeedsManual (bits 2..5), Proposed (10)
            0,
            0,
            0x428, // Mismatch -> Kept(3), NeedsManual(5), Proposed(10)
            0x418, // NeedsManual -> Kept(3), Mismatch(4), Proposed(10)
            0x380, // Breached -> Repaired(7), Expired(8), Corrected(9)
            0,
            0,
            0,
            0x268 // Proposed -> Kept(3), NeedsManual(5), Breached(6), Corrected(9)
        ];
        if (from > 10 || to > 10) return false;
        return (table[from] >> to) & 1 == 1;
    }

    /// @dev Compares an observed move with the table and the requested target, and updates the model.
    function _observe(
        bytes32 c,
        CommitmentLedger.Status before,
        CommitmentLedger.Status target,
        bool succeeded
    ) private {
        CommitmentLedger.Status afterwards = _effective(c);
        if (!succeeded) {
            if (afterwards != before) ++changedOnRevert;
            return;
        }
        if (afterwards != target) ++wrongTarget;
        if (afterwards != before && !_allowedTable(uint8(before), uint8(afterwards))) ++forbiddenMoves;
        _setModel(c, afterwards);
    }

    function _setModel(bytes32 c, CommitmentLedger.Status s) private {
        if (model[c] == CommitmentLedger.Status.Breached) --modelBreached;
        if (s == CommitmentLedger.Status.Breached) ++modelBreached;
        model[c] = s;
    }

    function _checkModel(bytes32 c) private {
        if (_effective(c) != model[c]) ++modelDrift;
    }

    function _predicted(bool succeeded, bool expected) private {
        if (succeeded) ++okCalls;
        else ++revertedCalls;
        if (succeeded != expected) ++wrongPredictions;
    }

    function _expectError(bytes memory err, bytes memory expected) private {
        if (keccak256(err) != keccak256(expected)) ++wrongPredictions;
        ++revertedCalls;
    }

    /// @dev Drains the recorded logs; counts the ledger's events when the call succeeded (forge
    /// also records the logs of a call that reverted, which never reach a chain).
    /// @dev Counts publications and those not preceded by a notice, from the event alone.
    function _countPublication(bytes memory data) private {
        (CommitmentLedger.Status from, CommitmentLedger.Status to, , ) = abi.decode(
            data,
            (CommitmentLedger.Status, CommitmentLedger.Status, bytes32, bytes32)
        );
        if (to != CommitmentLedger.Status.Breached) return;
        ++ghostPublished;
        if (from != CommitmentLedger.Status.Proposed) ++ghostPublishedUnannounced;
    }

    function _countEvents(bool succeeded) private {
        Vm.Log[] memory logs = vm.getRecordedLogs();
        if (!succeeded) return;
        for (uint256 i = 0; i < logs.length; ++i) {
            if (logs[i].emitter != address(ledger)) continue;
            bytes32 topic = logs[i].topics[0];
            if (topic == CommitmentLedger.OutcomeRecorded.selector) _countPublication(logs[i].data);
            else if (topic == CommitmentLedger.BreachRecorded.selector) ++ghostBreachRecorded;
            else if (topic == CommitmentLedger.BreachRepaired.selector) ++ghostBreachRepaired;
            else if (topic == CommitmentLedger.BreachClosed.selector) ++ghostBreachClosed;
            else if (topic == CommitmentLedger.CommitmentAnchored.selector) {
                uint256 n = ++commitmentAnchoredEvents[logs[i].topics[1]];
                if (n > maxAnchorEventsPerHash) maxAnchorEventsPerHash = n;
            } else if (topic == CommitmentLedger.BatchAnchored.selector) {
                uint256 n = ++batchAnchoredEvents[logs[i].topics[1]];
                if (n > maxAnchorEventsPerHash) maxAnchorEventsPerHash = n;
            }
        }
    }
}

// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";

/// @title CommitmentLedger
/// @notice Tamper-evident record of notification-commitment approvals: salted hashes of
/// signed commitments are anchored singly or as Merkle roots, and each commitment's
/// verification outcome, breach and repair are recorded against the department that
/// accepted it. Only hashes are stored; no personal data ever reaches the chain.
/// @dev Records and batches are keyed by department: an account of department B can
/// anchor any hash or root, but only ever creates B's own record of it, so it can neither
/// take over, shadow nor change a commitment or batch that department A anchored.
/// Merkle batches follow OpenZeppelin's StandardMerkleTree with leaf type bytes32:
/// leaf = keccak256(bytes.concat(keccak256(abi.encode(commitment)))). The public breach
/// registry can be rebuilt from this contract's events alone.
contract CommitmentLedger is AccessControl {
    /// @notice Role of accounts that accept (anchor) and withdraw commitments for their department.
    bytes32 public constant REGISTRAR_ROLE = keccak256("REGISTRAR_ROLE");
    /// @notice Role of accounts that record verification outcomes and repairs for their department.
    bytes32 public constant VERIFIER_ROLE = keccak256("VERIFIER_ROLE");

    /// @notice Where a commitment stands. The numbering is part of the interface: append only.
    enum Status {
        None, // never seen by the contract (a batch member is materialised on first use)
        Anchored, // accepted; awaiting or under verification
        Withdrawn, // withdrawn by the applicant before the decision
        Kept, // department data agree with every claim
        Mismatch, // data disagree; rectification ordered
        NeedsManual, // data missing or undecidable; a person decides
        Breached, // published breach: proposed, notified, and the defence failed or lapsed
        Repaired, // breach repaired by the department after the minimum period
        Expired, // publication period of the breach ended
        Corrected, // breach annulled after an objection, or a proposed breach the defence overturned
        Proposed // breach proposed: the applicant was notified and may answer before publication
    }

    /// @notice A Merkle batch of commitments accepted by one department.
    struct Batch {
        bytes32 department;
        uint32 size;
        uint64 anchoredAt;
        uint64 blockNumber;
    }

    /// @notice One commitment's standing (what `statusOf` returns).
    struct Standing {
        Status status;
        bytes32 department;
        uint64 anchoredAt;
        uint64 updatedAt;
    }

    /// @notice One item of `recordOutcomes`.
    struct OutcomeInput {
        bytes32 commitment;
        uint8 outcome;
        bytes32 evidence;
        bytes32 root;
        bytes32[] proof;
    }

    /// @dev One storage slot; the department is the key it is stored under.
    struct Record {
        Status status;
        uint64 anchoredAt;
        uint64 updatedAt;
    }

    /// @dev One storage slot per batch; the department is the key it is stored under.
    struct BatchRecord {
        uint32 size;
        uint64 anchoredAt;
        uint64 blockNumber;
    }

    /// @dev Department ids by index; index 0 is unused so that 0 means "not bound".
    bytes32[] private _departments;
    mapping(bytes32 department => uint32 index) private _departmentIndex;
    mapping(address account => uint32 index) private _accountDepartment;
    mapping(bytes32 department => mapping(bytes32 commitment => Record)) private _records;
    mapping(bytes32 department => mapping(bytes32 root => BatchRecord)) private _batches;

    /// @notice Commitments currently in Breached status.
    uint256 public openBreaches;
    /// @notice Breaches ever recorded.
    uint256 public totalBreaches;
    /// @dev The department an account acts for in a department role, non-zero exactly while it
    /// holds the role (kept by `_grantRole`/`_revokeRole` beside AccessControl's own record).
    /// One storage read checks both the role and the binding of a department call's caller.
    mapping(bytes32 role => mapping(address account => bytes32 department)) private _actingFor;

    /// @notice An account was bound to a department; it acts only for that department.
    event DepartmentBound(address indexed account, bytes32 indexed department);
    /// @notice A single commitment was anchored.
    event CommitmentAnchored(bytes32 indexed commitment, bytes32 indexed department, address registrar);
    /// @notice A Merkle root of `size` commitments was anchored.
    event BatchAnchored(bytes32 indexed root, bytes32 indexed department, uint32 size, address registrar);
    /// @notice A commitment's status changed from `from` to `to`; `evidence` is the hash of the
    /// signed report or decision behind it; `root` is the batch whose proof this call checked
    /// (its first outcome), else 0.
    event OutcomeRecorded(
        bytes32 indexed commitment,
        bytes32 indexed department,
        Status from,
        Status to,
        bytes32 evidence,
        bytes32 root
    );
    /// @notice A commitment became a breach (false, or rectification overdue).
    event BreachRecorded(bytes32 indexed commitment, bytes32 indexed department, bytes32 evidence, uint64 timestamp);
    /// @notice A breach was repaired by a department decision (`decision` is its hash).
    event BreachRepaired(bytes32 indexed commitment, bytes32 indexed department, bytes32 decision, uint64 timestamp);
    /// @notice A breach left the public registry because it expired or was corrected.
    event BreachClosed(
        bytes32 indexed commitment,
        bytes32 indexed department,
        Status reason,
        bytes32 evidence,
        uint64 timestamp
    );
    /// @notice A commitment was withdrawn before the decision.
    event CommitmentWithdrawn(bytes32 indexed commitment, bytes32 indexed department, bytes32 evidence);

    /// @notice A hash argument that must not be zero was zero.
    error ZeroHash();
    /// @notice A batch must hold at least one commitment.
    error EmptyBatch();
    /// @notice The caller's department already has a record of the commitment.
    error AlreadyAnchored(bytes32 commitment);
    /// @notice The caller's department already anchored this Merkle root.
    error BatchAlreadyAnchored(bytes32 root);
    /// @notice No batch with this root was anchored.
    error UnknownBatch(bytes32 root);
    /// @notice The commitment is neither anchored singly nor shown to be in a batch.
    error NotAnchored(bytes32 commitment);
    /// @notice The proof's length cannot belong to a tree of the batch's size.
    error InvalidProofLength(uint256 length, uint256 minLength, uint256 maxLength);
    /// @notice The proof does not show the commitment in the batch with this root.
    error InvalidProof(bytes32 commitment, bytes32 root);
    /// @notice The outcome code is not a status of this contract.
    error UnknownOutcome(uint8 outcome);
    /// @notice The status machine forbids this move.
    error TransitionNotAllowed(bytes32 commitment, Status from, Status to);
    /// @notice The account is not bound to a department.
    error AccountNotBound(address account);
    /// @notice The account is bound to another department already.
    error AccountBoundElsewhere(address account, bytes32 department);
    /// @notice `recordOutcomes` was called with no items.
    error NoOutcomes();

    /// @param admin The governing office: grants and revokes department roles.
    constructor(address admin) {
        _departments.push(bytes32(0));
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ------------------------------------------------------------------ administration

    /// @notice Bind `account` to `department` and grant it `role` (REGISTRAR_ROLE or VERIFIER_ROLE).
    /// @dev An account is bound to one department for life; a second department reverts.
    /// @param role REGISTRAR_ROLE or VERIFIER_ROLE (any other role goes through `grantRole`).
    /// @param account The department's signing account.
    /// @param department The department id (keccak256 of its code).
    function grantDepartmentRole(
        bytes32 role,
        address account,
        bytes32 department
    ) external onlyRole(getRoleAdmin(role)) {
        if (department == bytes32(0)) revert ZeroHash();
        uint32 bound = _accountDepartment[account];
        if (bound == 0) {
            _accountDepartment[account] = _indexOfDepartment(department);
            emit DepartmentBound(account, department);
        } else if (_departments[bound] != department) {
            revert AccountBoundElsewhere(account, _departments[bound]);
        }
        _grantRole(role, account);
    }

    /// @notice Correct a department's breach from above: a published (Breached) or proposed
    /// (Proposed) breach becomes Corrected, for a ruling the department did not record itself.
    /// @dev The admin role is meant to be held by a multi-signature Safe, so a correction
    /// takes its threshold of owners; a department still corrects its own through `recordOutcome`.
    /// @param department The department whose record it is.
    /// @param commitment The commitment hash.
    /// @param evidence Hash of the ruling or decision behind the correction.
    function correctBreach(
        bytes32 department,
        bytes32 commitment,
        bytes32 evidence
    ) external onlyRole(DEFAULT_ADMIN_ROLE) {
        if (department == bytes32(0) || commitment == bytes32(0) || evidence == bytes32(0)) revert ZeroHash();
        Record storage record = _records[department][commitment];
        Status from = record.status;
        if (from == Status.None) revert NotAnchored(commitment);
        if (from != Status.Breached && from != Status.Proposed) {
            revert TransitionNotAllowed(commitment, from, Status.Corrected);
        }
        _moveTo(commitment, record, Status.Corrected);
        emit OutcomeRecorded(commitment, department, from, Status.Corrected, evidence, bytes32(0));
        if (from == Status.Breached) {
            --openBreaches;
            emit BreachClosed(commitment, department, Status.Corrected, evidence, uint64(block.timestamp));
        }
    }

    /// @notice The department `account` is bound to (0 when none).
    /// @param account Any address.
    /// @return The department id, or zero.
    function departmentOf(address account) external view returns (bytes32) {
        return _departments[_accountDepartment[account]];
    }

    /// @dev Department roles need a department: plain `grantRole` of them to an unbound account
    /// reverts. Granting one also records the department the account acts for in it.
    function _grantRole(bytes32 role, address account) internal override returns (bool granted) {
        bool departmental = role == REGISTRAR_ROLE || role == VERIFIER_ROLE;
        uint32 bound = _accountDepartment[account];
        if (departmental && bound == 0) revert AccountNotBound(account);
        granted = super._grantRole(role, account);
        if (granted && departmental) _actingFor[role][account] = _departments[bound];
    }

    /// @dev Revoking (or renouncing) a department role ends acting for the department in it;
    /// the binding itself is for life.
    function _revokeRole(bytes32 role, address account) internal override returns (bool revoked) {
        revoked = super._revokeRole(role, account);
        if (revoked) delete _actingFor[role][account];
    }

    // ------------------------------------------------------------------ anchoring

    /// @notice Anchor one commitment hash for the caller's department.
    /// @dev The record is the caller's department's own: a hash that another department
    /// anchored (singly or in a batch) keeps that department's record untouched.
    /// @param commitment keccak256 of the commitment's canonical bytes (salted).
    function anchor(bytes32 commitment) external {
        bytes32 department = _callerDepartment(REGISTRAR_ROLE);
        if (commitment == bytes32(0)) revert ZeroHash();
        Record storage record = _records[department][commitment];
        if (record.status != Status.None) revert AlreadyAnchored(commitment);
        uint64 nowTs = uint64(block.timestamp);
        record.status = Status.Anchored;
        record.anchoredAt = nowTs;
        record.updatedAt = nowTs;
        emit CommitmentAnchored(commitment, department, msg.sender);
    }

    /// @notice Anchor the Merkle root of `size` commitments for the caller's department.
    /// @dev The batch is the caller's department's own: the same root anchored by another
    /// department first is another batch and does not stop this one.
    /// @param root StandardMerkleTree root over the commitment hashes.
    /// @param size Number of commitments (leaves) in the tree.
    function anchorBatch(bytes32 root, uint32 size) external {
        bytes32 department = _callerDepartment(REGISTRAR_ROLE);
        if (root == bytes32(0)) revert ZeroHash();
        if (size == 0) revert EmptyBatch();
        mapping(bytes32 root => BatchRecord) storage batches = _batches[department];
        if (batches[root].size != 0) revert BatchAlreadyAnchored(root);
        batches[root] = BatchRecord(size, uint64(block.timestamp), uint64(block.number));
        emit BatchAnchored(root, department, size, msg.sender);
    }

    /// @notice Whether `department` anchored `commitment`: singly (or already known) when
    /// `root` is 0, else as a member of its batch `root` shown by `proof`.
    /// @param department The department id.
    /// @param commitment The commitment hash.
    /// @param root A batch root of `department`, or 0.
    /// @param proof The StandardMerkleTree proof of the commitment in `root`.
    /// @return True when anchored.
    function isAnchored(
        bytes32 department,
        bytes32 commitment,
        bytes32 root,
        bytes32[] calldata proof
    ) external view returns (bool) {
        if (root == bytes32(0)) return _records[department][commitment].status != Status.None;
        BatchRecord memory batch = _batches[department][root];
        if (batch.size == 0 || !_proofLengthFits(proof.length, batch.size)) return false;
        return MerkleProof.verifyCalldata(proof, root, _leaf(commitment));
    }

    /// @notice A department's batch by its root (size 0 and department 0 when unknown).
    /// @param department The department id.
    /// @param root The batch root.
    /// @return The batch's department, size, time and block.
    function batchOf(bytes32 department, bytes32 root) external view returns (Batch memory) {
        BatchRecord memory batch = _batches[department][root];
        bytes32 known = batch.size == 0 ? bytes32(0) : department;
        return Batch(known, batch.size, batch.anchoredAt, batch.blockNumber);
    }

    /// @notice A department's standing of a commitment (status None and department 0 when
    /// that department has no record of it).
    /// @param department The department id.
    /// @param commitment The commitment hash.
    /// @return The status, department and times.
    function statusOf(bytes32 department, bytes32 commitment) external view returns (Standing memory) {
        Record memory record = _records[department][commitment];
        bytes32 known = record.status == Status.None ? bytes32(0) : department;
        return Standing(record.status, known, record.anchoredAt, record.updatedAt);
    }

    // ------------------------------------------------------------------ outcomes

    /// @notice Record a verification outcome for a commitment of the caller's department.
    /// @param commitment The commitment hash.
    /// @param outcome A Status code: Kept, Mismatch, NeedsManual, Proposed, Breached, Expired or
    /// Corrected. Breached is reachable only from Proposed: nobody is published who was not
    /// told first.
    /// @param evidence Hash of the signed verification report, notice (for Proposed) or decision.
    /// @param root The commitment's batch root (0 when anchored singly or already known).
    /// @param proof Its StandardMerkleTree proof in `root`.
    function recordOutcome(
        bytes32 commitment,
        uint8 outcome,
        bytes32 evidence,
        bytes32 root,
        bytes32[] calldata proof
    ) external {
        _recordOutcome(_callerDepartment(VERIFIER_ROLE), commitment, outcome, evidence, root, proof);
    }

    /// @notice Record many outcomes in one transaction; all or nothing.
    /// @param items The outcomes, each as for `recordOutcome`.
    function recordOutcomes(OutcomeInput[] calldata items) external {
        bytes32 department = _callerDepartment(VERIFIER_ROLE);
        if (items.length == 0) revert NoOutcomes();
        for (uint256 i = 0; i < items.length; ++i) {
            OutcomeInput calldata item = items[i];
            _recordOutcome(department, item.commitment, item.outcome, item.evidence, item.root, item.proof);
        }
    }

    /// @notice Repair a breach of the caller's department (minimum periods are the department's rule).
    /// @param commitment The breached commitment.
    /// @param decision Hash of the repair decision document.
    function repair(bytes32 commitment, bytes32 decision) external {
        bytes32 department = _callerDepartment(VERIFIER_ROLE);
        if (decision == bytes32(0)) revert ZeroHash();
        Record storage record = _records[department][commitment];
        if (record.status == Status.None) revert NotAnchored(commitment);
        Status from = _moveTo(commitment, record, Status.Repaired);
        --openBreaches;
        emit OutcomeRecorded(commitment, department, from, Status.Repaired, decision, bytes32(0));
        emit BreachRepaired(commitment, department, decision, uint64(block.timestamp));
    }

    /// @notice Withdraw a commitment of the caller's department before the decision.
    /// @param commitment The commitment hash.
    /// @param evidence Hash of the withdrawal request.
    /// @param root Its batch root (0 when anchored singly).
    /// @param proof Its proof in `root`.
    function withdraw(
        bytes32 commitment,
        bytes32 evidence,
        bytes32 root,
        bytes32[] calldata proof
    ) external {
        bytes32 department = _callerDepartment(REGISTRAR_ROLE);
        if (evidence == bytes32(0)) revert ZeroHash();
        (Record storage record, bytes32 provenRoot) = _ownRecord(department, commitment, root, proof);
        Status from = _moveTo(commitment, record, Status.Withdrawn);
        emit OutcomeRecorded(commitment, department, from, Status.Withdrawn, evidence, provenRoot);
        emit CommitmentWithdrawn(commitment, department, evidence);
    }

    /// @notice Whether the status machine allows `from` to move to `to`.
    /// @param from The current status.
    /// @param to The proposed status.
    /// @return True when allowed.
    function transitionAllowed(Status from, Status to) public pure returns (bool) {
        if (from == Status.Anchored) {
            return
                to == Status.Withdrawn ||
                to == Status.Kept ||
                to == Status.Mismatch ||
                to == Status.NeedsManual ||
                to == Status.Proposed;
        }
        if (from == Status.Mismatch) return to == Status.Kept || to == Status.NeedsManual || to == Status.Proposed;
        if (from == Status.NeedsManual) return to == Status.Kept || to == Status.Mismatch || to == Status.Proposed;
        // The notice was given and the defence period ran: publish, or the defence succeeded.
        if (from == Status.Proposed) {
            return
                to == Status.Breached || to == Status.Kept || to == Status.NeedsManual || to == Status.Corrected;
        }
        if (from == Status.Breached) return to == Status.Repaired || to == Status.Expired || to == Status.Corrected;
        return false; // Withdrawn, Kept, Repaired, Expired and Corrected are final; None only by anchoring
    }

    // ------------------------------------------------------------------ internals

    function _recordOutcome(
        bytes32 department,
        bytes32 commitment,
        uint8 outcome,
        bytes32 evidence,
        bytes32 root,
        bytes32[] calldata proof
    ) private {
        if (outcome > uint8(type(Status).max)) revert UnknownOutcome(outcome);
        if (evidence == bytes32(0)) revert ZeroHash();
        Status to = Status(outcome);
        // Withdrawal and repair have their own entry points and roles.
        if (to == Status.Withdrawn || to == Status.Repaired) {
            revert TransitionNotAllowed(commitment, _records[department][commitment].status, to);
        }
        (Record storage record, bytes32 provenRoot) = _ownRecord(department, commitment, root, proof);
        Status from = _moveTo(commitment, record, to);
        emit OutcomeRecorded(commitment, department, from, to, evidence, provenRoot);
        uint64 nowTs = uint64(block.timestamp);
        if (to == Status.Breached) {
            ++openBreaches;
            ++totalBreaches;
            emit BreachRecorded(commitment, department, evidence, nowTs);
        } else if (from == Status.Breached) {
            --openBreaches;
            emit BreachClosed(commitment, department, to, evidence, nowTs);
        }
    }

    /// @dev `department`'s record of `commitment`, materialised from its own batch `root`
    /// on first use. `provenRoot` is the batch root when this call proved membership, else
    /// 0: events carry only checked roots.
    function _ownRecord(
        bytes32 department,
        bytes32 commitment,
        bytes32 root,
        bytes32[] calldata proof
    ) private returns (Record storage record, bytes32 provenRoot) {
        if (commitment == bytes32(0)) revert ZeroHash();
        record = _records[department][commitment];
        if (record.status == Status.None) {
            _materialise(record, department, commitment, root, proof);
            provenRoot = root;
        }
    }

    /// @dev Proves `commitment` is in `department`'s batch `root` and gives it a record.
    function _materialise(
        Record storage record,
        bytes32 department,
        bytes32 commitment,
        bytes32 root,
        bytes32[] calldata proof
    ) private {
        if (root == bytes32(0)) revert NotAnchored(commitment);
        BatchRecord memory batch = _batches[department][root];
        if (batch.size == 0) revert UnknownBatch(root);
        if (!_proofLengthFits(proof.length, batch.size)) {
            (uint256 minLength, uint256 maxLength) = _proofLengthRange(batch.size);
            revert InvalidProofLength(proof.length, minLength, maxLength);
        }
        if (!MerkleProof.verifyCalldata(proof, root, _leaf(commitment))) revert InvalidProof(commitment, root);
        record.status = Status.Anchored;
        record.anchoredAt = batch.anchoredAt;
    }

    /// @dev The department the caller acts for in `role` (REGISTRAR_ROLE or VERIFIER_ROLE);
    /// reverts as `onlyRole` does when the caller does not hold the role. Department roles are
    /// granted only to bound accounts, so holding one always comes with a department.
    function _callerDepartment(bytes32 role) private view returns (bytes32 department) {
        department = _actingFor[role][msg.sender];
        if (department == bytes32(0)) revert IAccessControl.AccessControlUnauthorizedAccount(msg.sender, role);
    }

    function _moveTo(bytes32 commitment, Record storage record, Status to) private returns (Status from) {
        from = record.status;
        if (!transitionAllowed(from, to)) revert TransitionNotAllowed(commitment, from, to);
        record.status = to;
        record.updatedAt = uint64(block.timestamp);
    }

    function _indexOfDepartment(bytes32 department) private returns (uint32 index) {
        index = _departmentIndex[department];
        if (index == 0) {
            index = uint32(_departments.length);
            _departments.push(department);
            _departmentIndex[department] = index;
        }
    }

    /// @dev A leaf of a StandardMerkleTree over one bytes32 value.
    function _leaf(bytes32 commitment) private pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(commitment))));
    }

    /// @dev In a StandardMerkleTree of n leaves every proof has floor(log2 n) or ceil(log2 n) nodes.
    function _proofLengthRange(uint32 size) private pure returns (uint256 minLength, uint256 maxLength) {
        minLength = Math.log2(size, Math.Rounding.Floor);
        maxLength = Math.log2(size, Math.Rounding.Ceil);
    }

    function _proofLengthFits(uint256 length, uint32 size) private pure returns (bool) {
        (uint256 minLength, uint256 maxLength) = _proofLengthRange(size);
        return length >= minLength && length <= maxLength;
    }
}

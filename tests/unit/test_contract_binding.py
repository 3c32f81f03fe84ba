"""LedgerContract against CommitmentLedger.sol, on the embedded chain and on a real anvil node.

Every refusal here is the contract's own: the binding sends (or estimates) the call and
the chain client decodes the custom error the EVM returned.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from web3 import Web3

from ledger import (
    REGISTRAR_ROLE,
    VERIFIER_ROLE,
    ZERO_HASH,
    ContractRevertError,
    Hash32,
    LedgerContract,
    MerkleTree,
    OutcomeItem,
    Status,
    department_id,
    keccak256,
    verify_proof,
)

HRSS = department_id("BJ-HRSS")
SAMR = department_id("BJ-SAMR")
BATCH_SIZE = 37  # not a power of two: proofs have 5 or 6 nodes


def h(label: str) -> Hash32:
    """A distinct 32-byte value for a label."""
    return keccak256(label.encode())


def commitments(prefix: str, n: int) -> list[Hash32]:
    return [h(f"{prefix}-{i}") for i in range(n)]


def reverts(call: Callable[[], Any], name: str) -> ContractRevertError:
    """Run `call`, expect the contract to refuse it with custom error `name`."""
    with pytest.raises(ContractRevertError) as info:
        call()
    assert info.value.error_name == name, info.value
    assert info.value.raw[:4] != b""  # decoded from the EVM's revert data, not made up
    return info.value


def same_address(value: object, address: str) -> bool:
    return isinstance(value, str) and value.lower() == address.lower()


def anchored_batch(deployment: Any, prefix: str = "batch", n: int = BATCH_SIZE) -> MerkleTree:
    tree = MerkleTree.build(commitments(prefix, n))
    deployment.ledger.anchor_batch(deployment.registrar, tree.root, len(tree))
    return tree


# ---------------------------------------------------------------------- deployment and roles


def test_deploy_has_code_and_roles(deployment: Any) -> None:
    d = deployment
    ledger: LedgerContract = d.ledger
    assert d.chain.code_at(ledger.address) != b""
    assert ledger.has_role(bytes(32), d.admin.address)  # DEFAULT_ADMIN_ROLE
    assert ledger.has_role(REGISTRAR_ROLE, d.registrar.address)
    assert ledger.has_role(VERIFIER_ROLE, d.verifier.address)
    assert ledger.has_role(REGISTRAR_ROLE, d.other_registrar.address)
    assert ledger.has_role(VERIFIER_ROLE, d.other_verifier.address)
    assert not ledger.has_role(VERIFIER_ROLE, d.registrar.address)
    assert not ledger.has_role(REGISTRAR_ROLE, d.verifier.address)
    assert not ledger.has_role(REGISTRAR_ROLE, d.outsider.address)
    assert ledger.department_of(d.registrar.address) == HRSS
    assert ledger.department_of(d.verifier.address) == HRSS
    assert ledger.department_of(d.other_registrar.address) == SAMR
    assert ledger.department_of(d.other_verifier.address) == SAMR
    assert ledger.department_of(d.outsider.address) == bytes(32)
    assert ledger.department_of(d.admin.address) == bytes(32)
    # the role constants of the binding are the contract's
    assert bytes(ledger._contract.functions.REGISTRAR_ROLE().call()) == REGISTRAR_ROLE
    assert bytes(ledger._contract.functions.VERIFIER_ROLE().call()) == VERIFIER_ROLE
    assert ledger.open_breaches() == 0
    bound = {
        (e.args["account"].lower(), bytes(e.args["department"]))
        for e in ledger.events("DepartmentBound")
    }
    assert bound == {
        (d.registrar.address.lower(), HRSS),
        (d.verifier.address.lower(), HRSS),
        (d.other_registrar.address.lower(), SAMR),
        (d.other_verifier.address.lower(), SAMR),
    }


def test_status_enum_matches_contract_numbering(deployment: Any) -> None:
    allowed = deployment.ledger._contract.functions.transitionAllowed
    assert allowed(int(Status.ANCHORED), int(Status.PROPOSED)).call()
    assert allowed(int(Status.PROPOSED), int(Status.BREACHED)).call()
    assert not allowed(int(Status.ANCHORED), int(Status.BREACHED)).call()  # issue #14
    assert allowed(int(Status.BREACHED), int(Status.REPAIRED)).call()
    assert allowed(int(Status.MISMATCH), int(Status.KEPT)).call()
    assert not allowed(int(Status.KEPT), int(Status.BREACHED)).call()
    assert not allowed(int(Status.ANCHORED), int(Status.REPAIRED)).call()
    assert [s.value for s in Status] == list(range(11))


# ---------------------------------------------------------------------- single anchors


def test_anchor_single(deployment: Any) -> None:
    d = deployment
    c = h("single")
    assert d.ledger.status_of(HRSS, c).status is Status.NONE
    assert not d.ledger.is_anchored(HRSS, c)
    sent = d.ledger.anchor(d.registrar, c)
    assert sent.gas_used > 21_000
    standing = d.ledger.status_of(HRSS, c)
    assert standing.status is Status.ANCHORED
    assert standing.department == HRSS
    assert standing.anchored_at > 0
    assert standing.updated_at == standing.anchored_at
    assert d.ledger.is_anchored(HRSS, c)
    assert d.ledger.is_anchored(HRSS, c, ZERO_HASH, [])
    (event,) = d.ledger.events("CommitmentAnchored")
    assert bytes(event.args["commitment"]) == c
    assert bytes(event.args["department"]) == HRSS
    assert same_address(event.args["registrar"], d.registrar.address)
    assert event.blockNumber == sent.block_number


def test_anchor_twice_reverts_and_changes_nothing(deployment: Any) -> None:
    d = deployment
    c = h("twice")
    d.ledger.anchor(d.registrar, c)
    before = d.ledger.status_of(HRSS, c)
    error = reverts(lambda: d.ledger.anchor(d.registrar, c), "AlreadyAnchored")
    assert error.error_args == (c,)
    # another department anchoring it makes its own record and leaves this one alone
    d.ledger.anchor(d.other_registrar, c)
    assert d.ledger.status_of(HRSS, c) == before
    assert d.ledger.status_of(SAMR, c).department == SAMR
    assert len(d.ledger.events("CommitmentAnchored")) == 2
    # the refused attempts consumed no nonce: the next transaction goes through
    d.ledger.anchor(d.registrar, h("after twice"))
    assert d.ledger.is_anchored(HRSS, h("after twice"))


# ---------------------------------------------------------------------- batches


def test_anchor_batch_and_inclusion(deployment: Any) -> None:
    d = deployment
    tree = MerkleTree.build(commitments("incl", BATCH_SIZE))
    sent = d.ledger.anchor_batch(d.registrar, tree.root, BATCH_SIZE)
    batch = d.ledger.batch_of(HRSS, tree.root)
    assert batch.size == BATCH_SIZE
    assert batch.department == HRSS
    assert batch.block_number == sent.block_number
    assert batch.anchored_at > 0
    (event,) = d.ledger.events("BatchAnchored")
    assert bytes(event.args["root"]) == tree.root
    assert event.args["size"] == BATCH_SIZE
    assert bytes(event.args["department"]) == HRSS

    proofs = tree.proofs()
    assert len(proofs) == BATCH_SIZE
    assert {len(p) for p in proofs.values()} == {5, 6}
    for value, proof in proofs.items():
        assert verify_proof(tree.root, value, proof)
        assert d.ledger.is_anchored(HRSS, value, tree.root, proof), value.hex()
        # a batch member is not a single anchor, and has no record until first used
        assert not d.ledger.is_anchored(HRSS, value)
        assert d.ledger.status_of(HRSS, value).status is Status.NONE

    values = list(proofs)
    a, b = values[0], values[1]
    wrong = proofs[b] if len(proofs[b]) == len(proofs[a]) else proofs[values[2]]
    assert not d.ledger.is_anchored(HRSS, a, tree.root, wrong)  # another member's proof
    tampered = [h("tampered"), *proofs[a][1:]]
    assert not d.ledger.is_anchored(HRSS, a, tree.root, tampered)
    assert not d.ledger.is_anchored(HRSS, a, tree.root, [])  # empty: too short
    assert not d.ledger.is_anchored(HRSS, a, tree.root, [*proofs[a], *proofs[a]])  # too long
    assert not d.ledger.is_anchored(HRSS, h("not a member"), tree.root, proofs[a])
    assert not d.ledger.is_anchored(HRSS, a, h("unknown root"), proofs[a])
    # the root itself is no member
    assert not d.ledger.is_anchored(HRSS, tree.root, tree.root, proofs[a])
    assert d.ledger.batch_of(HRSS, h("unknown root")).size == 0


def test_batch_of_one(deployment: Any) -> None:
    d = deployment
    (value,) = commitments("lonely", 1)
    tree = MerkleTree.build([value])
    assert tree.proof(value) == []
    d.ledger.anchor_batch(d.registrar, tree.root, 1)
    assert d.ledger.is_anchored(HRSS, value, tree.root, [])
    d.ledger.record_outcome(d.verifier, value, Status.KEPT, h("ev"), tree.root, [])
    assert d.ledger.status_of(HRSS, value).status is Status.KEPT


def test_other_department_batch(deployment: Any) -> None:
    d = deployment
    tree = MerkleTree.build(commitments("samr", 5))
    d.ledger.anchor_batch(d.other_registrar, tree.root, 5)
    assert d.ledger.batch_of(SAMR, tree.root).department == SAMR
    assert d.ledger.batch_of(HRSS, tree.root).size == 0
    # the same root is another department's own batch: no front-run can take it
    d.ledger.anchor_batch(d.registrar, tree.root, 5)
    assert d.ledger.batch_of(HRSS, tree.root).department == HRSS
    reverts(lambda: d.ledger.anchor_batch(d.registrar, tree.root, 5), "BatchAlreadyAnchored")


# ---------------------------------------------------------------------- outcomes


def test_record_outcome_materialises_batch_member(deployment: Any) -> None:
    d = deployment
    tree = anchored_batch(d, "mat")
    batch = d.ledger.batch_of(HRSS, tree.root)
    value = list(tree)[7]
    proof = tree.proof(value)
    sent = d.ledger.record_outcome(
        d.verifier, value, Status.MISMATCH, h("report-1"), tree.root, proof
    )
    standing = d.ledger.status_of(HRSS, value)
    assert standing.status is Status.MISMATCH
    assert standing.department == HRSS
    assert standing.anchored_at == batch.anchored_at
    assert standing.updated_at >= standing.anchored_at
    assert d.ledger.is_anchored(HRSS, value)  # it has a record of its own now

    (event,) = d.ledger.events("OutcomeRecorded", from_block=sent.block_number)
    assert bytes(event.args["commitment"]) == value
    assert event.args["from"] == Status.ANCHORED
    assert event.args["to"] == Status.MISMATCH
    assert bytes(event.args["root"]) == tree.root
    assert bytes(event.args["evidence"]) == h("report-1")

    # further outcomes need no proof
    d.ledger.record_outcome(d.verifier, value, Status.NEEDS_MANUAL, h("report-2"))
    d.ledger.record_outcome(d.verifier, value, Status.KEPT, h("report-3"))
    assert d.ledger.status_of(HRSS, value).status is Status.KEPT
    # other members are untouched
    assert d.ledger.status_of(HRSS, list(tree)[8]).status is Status.NONE
    # Kept is final
    error = reverts(
        lambda: d.ledger.record_outcome(d.verifier, value, Status.BREACHED, h("late")),
        "TransitionNotAllowed",
    )
    assert error.error_args == (value, Status.KEPT, Status.BREACHED)


def test_breach_repair_and_counters(deployment: Any) -> None:
    d = deployment
    c = h("breach-me")
    d.ledger.anchor(d.registrar, c)
    d.ledger.record_outcome(d.verifier, c, Status.PROPOSED, h("notice"))
    assert d.ledger.open_breaches() == 0  # proposed: not a breach yet
    sent = d.ledger.record_outcome(d.verifier, c, Status.BREACHED, h("false claim"))
    assert d.ledger.status_of(HRSS, c).status is Status.BREACHED
    assert d.ledger.open_breaches() == 1
    assert d.ledger._contract.functions.totalBreaches().call() == 1
    (breach,) = d.ledger.events("BreachRecorded")
    assert bytes(breach.args["commitment"]) == c
    assert bytes(breach.args["department"]) == HRSS
    assert bytes(breach.args["evidence"]) == h("false claim")
    block = d.chain.w3.eth.get_block(sent.block_number)
    assert breach.args["timestamp"] == block["timestamp"]

    # a breach cannot be "kept" afterwards
    reverts(
        lambda: d.ledger.record_outcome(d.verifier, c, Status.KEPT, h("x")),
        "TransitionNotAllowed",
    )
    # repair is its own entry point: Repaired through recordOutcome is refused
    error = reverts(
        lambda: d.ledger.record_outcome(d.verifier, c, Status.REPAIRED, h("x")),
        "TransitionNotAllowed",
    )
    assert error.error_args == (c, Status.BREACHED, Status.REPAIRED)
    reverts(lambda: d.ledger.repair(d.other_verifier, c, h("decision")), "NotAnchored")
    reverts(
        lambda: d.ledger.repair(d.registrar, c, h("decision")), "AccessControlUnauthorizedAccount"
    )

    d.ledger.repair(d.verifier, c, h("decision"))
    assert d.ledger.status_of(HRSS, c).status is Status.REPAIRED
    assert d.ledger.open_breaches() == 0
    assert d.ledger._contract.functions.totalBreaches().call() == 1
    (repaired,) = d.ledger.events("BreachRepaired")
    assert bytes(repaired.args["decision"]) == h("decision")
    moves = [(e.args["from"], e.args["to"]) for e in d.ledger.events("OutcomeRecorded")]
    assert moves == [
        (Status.ANCHORED, Status.PROPOSED),
        (Status.PROPOSED, Status.BREACHED),
        (Status.BREACHED, Status.REPAIRED),
    ]
    # repaired is final
    error = reverts(lambda: d.ledger.repair(d.verifier, c, h("again")), "TransitionNotAllowed")
    assert error.error_args == (c, Status.REPAIRED, Status.REPAIRED)
    assert d.ledger.open_breaches() == 0


def test_breach_closed_by_expiry_and_correction(deployment: Any) -> None:
    d = deployment
    a, b, kept = h("expires"), h("corrected"), h("kept")
    for c in (a, b, kept):
        d.ledger.anchor(d.registrar, c)
    d.ledger.record_outcome(d.verifier, a, Status.MISMATCH, h("m"))
    for c in (a, b):
        d.ledger.record_outcome(d.verifier, c, Status.PROPOSED, h("notice"))
    d.ledger.record_outcome(d.verifier, a, Status.BREACHED, h("overdue"))
    d.ledger.record_outcome(d.verifier, b, Status.BREACHED, h("false"))
    d.ledger.record_outcome(d.verifier, kept, Status.KEPT, h("ok"))
    assert d.ledger.open_breaches() == 2
    d.ledger.record_outcome(d.verifier, a, Status.EXPIRED, h("period over"))
    assert d.ledger.open_breaches() == 1
    d.ledger.record_outcome(d.verifier, b, Status.CORRECTED, h("objection upheld"))
    assert d.ledger.open_breaches() == 0
    assert d.ledger._contract.functions.totalBreaches().call() == 2
    closed = {
        (bytes(e.args["commitment"]), e.args["reason"]) for e in d.ledger.events("BreachClosed")
    }
    assert closed == {(a, Status.EXPIRED), (b, Status.CORRECTED)}
    assert {bytes(e.args["commitment"]) for e in d.ledger.events("BreachRecorded")} == {a, b}
    assert d.ledger.status_of(HRSS, a).status is Status.EXPIRED
    assert d.ledger.status_of(HRSS, b).status is Status.CORRECTED


def test_withdraw(deployment: Any) -> None:
    d = deployment
    tree = anchored_batch(d, "wd", 6)
    value = list(tree)[2]
    d.ledger.withdraw(d.registrar, value, h("applicant asked"), tree.root, tree.proof(value))
    assert d.ledger.status_of(HRSS, value).status is Status.WITHDRAWN
    (event,) = d.ledger.events("CommitmentWithdrawn")
    assert bytes(event.args["commitment"]) == value
    reverts(
        lambda: d.ledger.record_outcome(d.verifier, value, Status.KEPT, h("late")),
        "TransitionNotAllowed",
    )
    reverts(
        lambda: d.ledger.withdraw(d.verifier, h("c"), h("e")), "AccessControlUnauthorizedAccount"
    )


def test_record_outcomes_many_in_one_transaction(deployment: Any) -> None:
    d = deployment
    tree = anchored_batch(d, "many")
    proofs = tree.proofs()
    members = list(proofs)[:20]
    outcomes = [Status.KEPT, Status.MISMATCH, Status.NEEDS_MANUAL, Status.PROPOSED]
    items = [
        OutcomeItem(c, outcomes[i % 4], h(f"report-{i}"), tree.root, tuple(proofs[c]))
        for i, c in enumerate(members)
    ]
    # a breach is proposed first and published in a later transaction
    publish = [OutcomeItem(c, Status.BREACHED, h(f"decision-{i}")) for i, c in enumerate(members)]
    before = d.chain.block_number()
    sent = d.ledger.record_outcomes(d.verifier, items)
    assert d.chain.block_number() == before + 1 == sent.block_number
    for item in items:
        assert d.ledger.status_of(HRSS, item.commitment).status is item.outcome
    events = d.ledger.events("OutcomeRecorded", from_block=sent.block_number)
    assert [bytes(e.args["commitment"]) for e in events] == members
    assert {e.transactionHash for e in events} == {sent.tx_hash}
    assert d.ledger.open_breaches() == 0
    d.ledger.record_outcomes(d.verifier, publish[3::4])
    assert d.ledger.open_breaches() == 5
    assert len(d.ledger.events("BreachRecorded")) == 5

    # further items without proofs, mixed with a fresh member with its proof
    fresh = list(proofs)[20]
    second = [
        OutcomeItem(members[1], Status.KEPT, h("fixed-1")),  # Mismatch -> Kept
        OutcomeItem(members[3], Status.EXPIRED, h("expired-3")),  # Breached -> Expired
        OutcomeItem(fresh, Status.KEPT, h("fresh"), tree.root, tuple(proofs[fresh])),
    ]
    d.ledger.record_outcomes(d.verifier, second)
    assert d.ledger.status_of(HRSS, members[1]).status is Status.KEPT
    assert d.ledger.status_of(HRSS, members[3]).status is Status.EXPIRED
    assert d.ledger.status_of(HRSS, fresh).status is Status.KEPT
    assert d.ledger.open_breaches() == 4


def test_record_outcomes_is_all_or_nothing(deployment: Any) -> None:
    d = deployment
    tree = anchored_batch(d, "aon", 8)
    proofs = tree.proofs()
    good, bad, *_ = proofs
    items = [
        OutcomeItem(good, Status.KEPT, h("ok"), tree.root, tuple(proofs[good])),
        OutcomeItem(bad, Status.KEPT, h("ok"), tree.root, tuple(proofs[good])),  # wrong proof
    ]
    error = reverts(lambda: d.ledger.record_outcomes(d.verifier, items), "InvalidProof")
    assert error.error_args == (bad, tree.root)
    assert d.ledger.status_of(HRSS, good).status is Status.NONE
    assert d.ledger.events("OutcomeRecorded") == []
    reverts(lambda: d.ledger.record_outcomes(d.verifier, []), "NoOutcomes")


# ---------------------------------------------------------------------- refusals by name


def test_zero_hash_refusals(deployment: Any) -> None:
    d = deployment
    c = h("zero-tests")
    d.ledger.anchor(d.registrar, c)
    reverts(lambda: d.ledger.anchor(d.registrar, ZERO_HASH), "ZeroHash")
    reverts(lambda: d.ledger.anchor_batch(d.registrar, ZERO_HASH, 3), "ZeroHash")
    reverts(lambda: d.ledger.record_outcome(d.verifier, c, Status.KEPT, ZERO_HASH), "ZeroHash")
    reverts(lambda: d.ledger.repair(d.verifier, c, ZERO_HASH), "ZeroHash")
    reverts(lambda: d.ledger.withdraw(d.registrar, c, ZERO_HASH), "ZeroHash")
    reverts(
        lambda: d.ledger.grant_department_role(
            d.admin, REGISTRAR_ROLE, d.outsider.address, ZERO_HASH
        ),
        "ZeroHash",
    )
    assert d.ledger.status_of(HRSS, c).status is Status.ANCHORED


def test_batch_refusals(deployment: Any) -> None:
    d = deployment
    tree = MerkleTree.build(commitments("refuse", BATCH_SIZE))
    reverts(lambda: d.ledger.anchor_batch(d.registrar, tree.root, 0), "EmptyBatch")
    assert d.ledger.batch_of(HRSS, tree.root).size == 0
    d.ledger.anchor_batch(d.registrar, tree.root, BATCH_SIZE)
    error = reverts(
        lambda: d.ledger.anchor_batch(d.registrar, tree.root, BATCH_SIZE), "BatchAlreadyAnchored"
    )
    assert error.error_args == (tree.root,)
    assert len(d.ledger.events("BatchAnchored")) == 1


def test_outcome_inclusion_refusals(deployment: Any) -> None:
    d = deployment
    tree = anchored_batch(d, "incl-refuse")
    proofs = tree.proofs()
    values = list(proofs)
    a = values[0]
    ev = h("evidence")

    error = reverts(
        lambda: d.ledger.record_outcome(d.verifier, h("stranger"), Status.KEPT, ev), "NotAnchored"
    )
    assert error.error_args == (h("stranger"),)
    reverts(lambda: d.ledger.repair(d.verifier, h("stranger"), ev), "NotAnchored")
    # a batch member needs its root and proof the first time
    reverts(lambda: d.ledger.record_outcome(d.verifier, a, Status.KEPT, ev), "NotAnchored")

    error = reverts(
        lambda: d.ledger.record_outcome(d.verifier, a, Status.KEPT, ev, h("no root"), proofs[a]),
        "UnknownBatch",
    )
    assert error.error_args == (h("no root"),)

    error = reverts(
        lambda: d.ledger.record_outcome(d.verifier, a, Status.KEPT, ev, tree.root, proofs[a][:3]),
        "InvalidProofLength",
    )
    assert error.error_args == (3, 5, 6)  # floor and ceil of log2(37)
    reverts(
        lambda: d.ledger.record_outcome(
            d.verifier, a, Status.KEPT, ev, tree.root, [*proofs[a], *proofs[a]]
        ),
        "InvalidProofLength",
    )

    other = next(v for v in values[1:] if len(proofs[v]) == len(proofs[a]))
    error = reverts(
        lambda: d.ledger.record_outcome(d.verifier, a, Status.KEPT, ev, tree.root, proofs[other]),
        "InvalidProof",
    )
    assert error.error_args == (a, tree.root)
    error = reverts(
        lambda: d.ledger.record_outcome(
            d.verifier, h("outsider value"), Status.KEPT, ev, tree.root, proofs[a]
        ),
        "InvalidProof",
    )
    assert d.ledger.status_of(HRSS, a).status is Status.NONE
    assert d.ledger.events("OutcomeRecorded") == []


def test_outcome_code_refusals(deployment: Any) -> None:
    d = deployment
    c = h("codes")
    d.ledger.anchor(d.registrar, c)
    ev = h("e")
    for code in (11, 255):
        error = reverts(
            lambda code=code: d.ledger.record_outcome(d.verifier, c, code, ev), "UnknownOutcome"
        )
        assert error.error_args == (code,)
    # and through the raw contract function, bypassing the binding entirely
    raw = d.ledger._contract.functions.recordOutcome(c, 42, ev, ZERO_HASH, [])
    error = reverts(
        lambda: d.chain.transact(d.verifier, raw.build_transaction, abi=d.ledger.abi),
        "UnknownOutcome",
    )
    assert error.error_args == (42,)
    for status in (
        Status.NONE,
        Status.ANCHORED,
        Status.WITHDRAWN,
        Status.REPAIRED,
        Status.BREACHED,
    ):
        error = reverts(
            lambda status=status: d.ledger.record_outcome(d.verifier, c, status, ev),
            "TransitionNotAllowed",
        )
        assert error.error_args == (c, Status.ANCHORED, status)
    # Anchored -> Expired / Corrected skip the breach
    for status in (Status.EXPIRED, Status.CORRECTED):
        reverts(
            lambda status=status: d.ledger.record_outcome(d.verifier, c, status, ev),
            "TransitionNotAllowed",
        )
    # repair of what is not a breach
    error = reverts(lambda: d.ledger.repair(d.verifier, c, h("d")), "TransitionNotAllowed")
    assert error.error_args == (c, Status.ANCHORED, Status.REPAIRED)
    assert d.ledger.status_of(HRSS, c).status is Status.ANCHORED


def test_wrong_department_is_refused_by_the_contract(deployment: Any) -> None:
    d = deployment
    single = h("hrss single")
    d.ledger.anchor(d.registrar, single)
    tree = anchored_batch(d, "hrss batch", 9)
    member = list(tree)[4]
    ev = h("e")

    # the raw contract function, so no Python check can be in the way
    raw = d.ledger._contract.functions.recordOutcome(
        single, int(Status.BREACHED), ev, ZERO_HASH, []
    )
    # the other department has no record of its own: records are keyed by department
    error = reverts(
        lambda: d.chain.transact(d.other_verifier, raw.build_transaction, abi=d.ledger.abi),
        "NotAnchored",
    )
    assert error.error_args == (single,)
    # and through the binding, also for a batch member with a valid proof
    reverts(
        lambda: d.ledger.record_outcome(d.other_verifier, single, Status.KEPT, ev),
        "NotAnchored",
    )
    error = reverts(
        lambda: d.ledger.record_outcome(
            d.other_verifier, member, Status.KEPT, ev, tree.root, tree.proof(member)
        ),
        "UnknownBatch",
    )
    assert error.error_args == (tree.root,)
    reverts(lambda: d.ledger.withdraw(d.other_registrar, single, ev), "NotAnchored")
    # nothing changed, not even the batch member's materialisation
    assert d.ledger.status_of(HRSS, single).status is Status.ANCHORED
    assert d.ledger.status_of(HRSS, member).status is Status.NONE
    assert d.ledger.events("OutcomeRecorded") == []
    # the right department can
    d.ledger.record_outcome(d.verifier, member, Status.KEPT, ev, tree.root, tree.proof(member))
    assert d.ledger.status_of(HRSS, member).status is Status.KEPT


def test_access_control_refusals(deployment: Any) -> None:
    d = deployment
    c = h("ac")
    error = reverts(lambda: d.ledger.anchor(d.outsider, c), "AccessControlUnauthorizedAccount")
    account, role = error.error_args
    assert same_address(account, d.outsider.address)
    assert bytes(role) == REGISTRAR_ROLE
    reverts(
        lambda: d.ledger.anchor_batch(d.outsider, h("root"), 2), "AccessControlUnauthorizedAccount"
    )
    reverts(lambda: d.ledger.anchor(d.verifier, c), "AccessControlUnauthorizedAccount")
    assert d.ledger.status_of(HRSS, c).status is Status.NONE

    d.ledger.anchor(d.registrar, c)
    error = reverts(
        lambda: d.ledger.record_outcome(d.registrar, c, Status.KEPT, h("e")),
        "AccessControlUnauthorizedAccount",
    )
    account, role = error.error_args
    assert same_address(account, d.registrar.address)
    assert bytes(role) == VERIFIER_ROLE
    reverts(
        lambda: d.ledger.record_outcomes(d.outsider, [OutcomeItem(c, Status.KEPT, h("e"))]),
        "AccessControlUnauthorizedAccount",
    )
    # only the admin grants department roles
    error = reverts(
        lambda: d.ledger.grant_department_role(
            d.registrar, VERIFIER_ROLE, d.outsider.address, HRSS
        ),
        "AccessControlUnauthorizedAccount",
    )
    assert bytes(error.error_args[1]) == bytes(32)  # DEFAULT_ADMIN_ROLE
    assert d.ledger.department_of(d.outsider.address) == bytes(32)
    assert d.ledger.status_of(HRSS, c).status is Status.ANCHORED


def test_department_binding_refusals(deployment: Any) -> None:
    d = deployment
    # an account is bound to one department for life
    error = reverts(
        lambda: d.ledger.grant_department_role(d.admin, VERIFIER_ROLE, d.registrar.address, SAMR),
        "AccountBoundElsewhere",
    )
    account, department = error.error_args
    assert same_address(account, d.registrar.address)
    assert department == HRSS
    assert not d.ledger.has_role(VERIFIER_ROLE, d.registrar.address)
    # the same department again is fine: a second role for the bound account
    d.ledger.grant_department_role(d.admin, VERIFIER_ROLE, d.registrar.address, HRSS)
    assert d.ledger.has_role(VERIFIER_ROLE, d.registrar.address)

    # plain AccessControl.grantRole of a department role needs a bound account
    for role in (REGISTRAR_ROLE, VERIFIER_ROLE):
        raw = d.ledger._contract.functions.grantRole(
            role, Web3.to_checksum_address(d.outsider.address)
        )
        error = reverts(
            lambda raw=raw: d.chain.transact(d.admin, raw.build_transaction, abi=d.ledger.abi),
            "AccountNotBound",
        )
        assert len(error.error_args) == 1
        assert same_address(error.error_args[0], d.outsider.address)
        assert not d.ledger.has_role(role, d.outsider.address)
    # ... but works for an account already bound
    raw = d.ledger._contract.functions.grantRole(
        REGISTRAR_ROLE, Web3.to_checksum_address(d.other_verifier.address)
    )
    d.chain.transact(d.admin, raw.build_transaction, abi=d.ledger.abi)
    assert d.ledger.has_role(REGISTRAR_ROLE, d.other_verifier.address)
    d.ledger.anchor(d.other_verifier, h("samr via grantRole"))
    assert d.ledger.status_of(SAMR, h("samr via grantRole")).department == SAMR


def test_another_department_cannot_take_over_a_batch_member(deployment: Any) -> None:
    """Issue #12 finding 2: SAMR's registrar anchoring an unmaterialised member of HRSS's
    batch singly and SAMR's verifier breaching it touch only SAMR's own record: HRSS's
    decision on it goes through and HRSS's later outcomes are not blocked."""
    d = deployment
    tree = anchored_batch(d, "hrss squatted", 4)
    member, other = list(tree)[1], list(tree)[2]
    d.ledger.anchor(d.other_registrar, member)
    d.ledger.record_outcome(d.other_verifier, member, Status.PROPOSED, h("samr's notice"))
    d.ledger.record_outcome(d.other_verifier, member, Status.BREACHED, h("samr's breach"))
    assert d.ledger.status_of(SAMR, member).status is Status.BREACHED
    assert d.ledger.status_of(HRSS, member).status is Status.NONE
    assert d.ledger.is_anchored(HRSS, member, tree.root, tree.proof(member))
    d.ledger.record_outcomes(
        d.verifier,
        [
            OutcomeItem(member, Status.KEPT, h("hrss"), tree.root, tree.proof(member)),
            OutcomeItem(other, Status.KEPT, h("hrss"), tree.root, tree.proof(other)),
        ],
    )
    assert d.ledger.status_of(HRSS, member).status is Status.KEPT
    assert d.ledger.status_of(HRSS, other).status is Status.KEPT


def test_outcome_recorded_finds_the_transaction_on_chain(deployment: Any) -> None:
    """The chain's word on which transaction recorded a move (finding 8 of issue #12)."""
    d = deployment
    c = h("found by its event")
    d.ledger.anchor(d.registrar, c)
    assert d.ledger.outcome_recorded(HRSS, c, Status.KEPT) is None
    sent = d.ledger.record_outcome(d.verifier, c, Status.KEPT, h("report"))
    assert d.ledger.outcome_recorded(HRSS, c, Status.KEPT) == (sent.tx_hash, sent.block_number)
    assert d.ledger.outcome_recorded(HRSS, c, Status.BREACHED) is None
    assert d.ledger.outcome_recorded(SAMR, c, Status.KEPT) is None  # another department's


def test_outcomes_refusal_asks_without_sending(deployment: Any) -> None:
    """The contract's refusal of a set of outcomes, named, before anything is sent."""
    d = deployment
    c = h("asked first")
    d.ledger.anchor(d.registrar, c)
    ok = [OutcomeItem(c, Status.KEPT, h("report"))]
    assert d.ledger.outcomes_refusal(d.verifier.address, ok) is None
    stranger = h("never anchored")
    bad = [*ok, OutcomeItem(stranger, Status.KEPT, h("report"))]
    before = d.chain.block_number()
    refusal = d.ledger.outcomes_refusal(d.verifier.address, bad)
    assert refusal is not None
    assert (refusal.error_name, refusal.error_args) == ("NotAnchored", (stranger,))
    assert d.chain.block_number() == before  # nothing sent
    assert d.ledger.status_of(HRSS, c).status is Status.ANCHORED

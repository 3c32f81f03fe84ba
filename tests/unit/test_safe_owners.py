"""Changes of the admin Safe's owners, offline: call data that decode to what they encode,
and every change checked against the owners and threshold before it can be proposed."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address

from api.admin_proposals import (
    action_json,
    decoded_action,
    described,
    executed_acts,
    new_proposal,
)
from ledger import (
    SENTINEL_OWNERS,
    Execution,
    OwnerChange,
    OwnerEvent,
    SafeError,
    SafeTx,
    decode_owner_change,
    plan_owner_change,
)

SAFE = to_checksum_address("0x" + "5a" * 20)
LEDGER = to_checksum_address("0x" + "1e" * 20)
A, B, C, D = (Account.create().address for _ in range(4))
OWNERS = [A, B, C]  # getOwners' order: A is first after the sentinel


def plan(function: str, **given: object) -> OwnerChange:
    return plan_owner_change(function, safe=SAFE, owners=OWNERS, threshold=2, **given)  # type: ignore[arg-type]


def test_owner_changes_decode_to_what_they_encode() -> None:
    for change in (
        OwnerChange("addOwnerWithThreshold", owner=D, threshold=3),
        OwnerChange("removeOwner", owner=B, previous=A, threshold=1),
        OwnerChange("removeOwner", owner=A, previous=SENTINEL_OWNERS, threshold=2),
        OwnerChange("swapOwner", owner=C, previous=B, new_owner=D),
        OwnerChange("changeThreshold", threshold=3),
    ):
        assert decode_owner_change(change.data()) == change


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (function_signature_to_4byte_selector("enableModule(address)") + bytes(32), "not a change"),
        (OwnerChange("changeThreshold", threshold=2).data() + b"\x00", "must be"),
        (OwnerChange("changeThreshold", threshold=2).data()[:4] + bytes(32), "threshold"),
        (
            OwnerChange("addOwnerWithThreshold", owner=D, threshold=1).data()[:4]
            + b"\x01" * 32
            + (1).to_bytes(32, "big"),
            "do not decode",
        ),
    ],
    ids=["enableModule", "trailing byte", "threshold zero", "dirty address"],
)
def test_other_call_data_are_no_owner_change(data: bytes, message: str) -> None:
    with pytest.raises(SafeError, match=message):
        decode_owner_change(data)


def test_the_previous_owner_comes_from_the_safes_list() -> None:
    assert plan("removeOwner", owner=A).previous == SENTINEL_OWNERS
    assert plan("removeOwner", owner=C).previous == B
    swap = plan("swapOwner", owner=B, new_owner=D)
    assert (swap.previous, swap.owner, swap.new_owner) == (A, B, D)
    assert swap.owners_after(OWNERS) == [A, D, C]
    added = plan("addOwnerWithThreshold", owner=D, new_threshold=3)
    assert added == OwnerChange("addOwnerWithThreshold", owner=D, threshold=3)
    assert added.owners_after(OWNERS) == [D, A, B, C]  # Safe puts a new owner first
    assert plan("addOwnerWithThreshold", owner=D).threshold == 2  # kept by default
    assert plan("removeOwner", owner=B).threshold == 2
    assert plan("changeThreshold", new_threshold=3).threshold == 3


@pytest.mark.parametrize(
    ("function", "given", "message"),
    [
        ("addOwnerWithThreshold", {"owner": B}, "already an owner"),
        ("addOwnerWithThreshold", {"owner": D.lower()}, "not checksummed"),
        ("addOwnerWithThreshold", {"owner": D[:-1] + "x"}, "not an address"),
        ("addOwnerWithThreshold", {"owner": SAFE}, "owner of itself"),
        ("addOwnerWithThreshold", {"owner": "0x" + "00" * 20}, "cannot be an owner"),
        ("addOwnerWithThreshold", {"owner": SENTINEL_OWNERS}, "cannot be an owner"),
        ("addOwnerWithThreshold", {"owner": D, "new_threshold": 5}, "between 1 and the 4"),
        ("addOwnerWithThreshold", {"owner": D, "new_threshold": 0}, "between 1 and the 4"),
        ("addOwnerWithThreshold", {"new_threshold": 2}, "takes owner"),
        ("removeOwner", {"owner": D}, "not an owner"),
        ("removeOwner", {"owner": A, "new_threshold": 3}, "between 1 and the 2"),
        ("swapOwner", {"owner": A, "new_owner": C}, "already an owner"),
        ("swapOwner", {"owner": D, "new_owner": Account.create().address}, "not an owner"),
        ("swapOwner", {"owner": A, "new_owner": D, "new_threshold": 2}, "no more"),
        ("changeThreshold", {"new_threshold": 4}, "between 1 and the 3"),
        ("changeThreshold", {"new_threshold": 0}, "between 1 and the 3"),
        ("changeThreshold", {"new_threshold": 2}, "nothing would change"),
        ("changeThreshold", {"owner": A, "new_threshold": 1}, "no more"),
        ("enableModule", {"owner": A}, "not a change"),
    ],
)
def test_a_change_the_safe_would_refuse_is_never_planned(
    function: str, given: dict[str, object], message: str
) -> None:
    with pytest.raises(SafeError, match=message):
        plan(function, **given)


def test_removing_below_the_threshold_is_refused() -> None:
    two = [A, B]
    with pytest.raises(SafeError, match="under the threshold of 2: give a lower threshold"):
        plan_owner_change("removeOwner", safe=SAFE, owners=two, threshold=2, owner=B)
    lowered = plan_owner_change(
        "removeOwner", safe=SAFE, owners=two, threshold=2, owner=B, new_threshold=1
    )
    assert lowered == OwnerChange("removeOwner", owner=B, previous=A, threshold=1)
    with pytest.raises(SafeError, match="only owner"):
        plan_owner_change("removeOwner", safe=SAFE, owners=[A], threshold=1, owner=A)


def test_a_proposal_to_the_safe_itself_is_an_owner_change() -> None:
    change = plan("addOwnerWithThreshold", owner=D, new_threshold=3)
    proposal = new_proposal(SAFE, 31337, LEDGER, change, 4)
    assert proposal.tx.to == proposal.tx.safe
    assert proposal.action == change
    shown = described(change)
    assert shown["summary"] == f"add {D} as an owner of the Safe; 3 approvals needed from then on"
    assert action_json(change) == {"function": "addOwnerWithThreshold", "owner": D, "threshold": 3}
    # the same call data sent to the ledger are no admin act, and a ledger act to the Safe
    # is no owner change: the target decides how call data are read, and both are strict
    with pytest.raises(SafeError, match="not an admin function"):
        decoded_action(SafeTx(SAFE, 31337, LEDGER, change.data(), 4))
    with pytest.raises(SafeError, match="not a change"):
        decoded_action(SafeTx(SAFE, 31337, SAFE, bytes.fromhex("2f2ff15d") + bytes(64), 4))


def test_the_safes_events_go_to_the_execution_they_happened_in() -> None:
    """Two Safe executions in one transaction (a contract may batch them): each owner event
    belongs to the last execution logged before it, and a ledger act gets no changes."""
    add = SafeTx(SAFE, 31337, SAFE, plan("addOwnerWithThreshold", owner=D).data(), 0)
    lower = SafeTx(SAFE, 31337, SAFE, OwnerChange("changeThreshold", threshold=1).data(), 1)
    other = SafeTx(SAFE, 31337, LEDGER, bytes.fromhex("a9059cbb") + bytes(64), 2)  # transfer
    batch, alone = b"\x01" * 32, b"\x02" * 32
    executions = [
        Execution(batch, 5, add, (A, B), log_index=0),
        Execution(batch, 5, lower, (A, B), log_index=3),
        Execution(alone, 6, other, (A, C), log_index=0),
    ]
    events = [
        OwnerEvent(batch, 5, 1, "added_owner", D),
        OwnerEvent(batch, 5, 4, "threshold", 1),
        OwnerEvent(alone, 6, 1, "threshold", 9),  # not after any owner change: not counted
    ]
    acts = executed_acts(executions, LEDGER, events)
    assert [act.get("changes") for act in acts] == [
        [{"added_owner": D}],
        [{"threshold": 1}],
        None,
    ]
    assert acts[0]["action"]["summary"].startswith(f"add {D} as an owner")
    assert acts[2]["action"] == {"to": LEDGER}  # no admin act of the ledger's

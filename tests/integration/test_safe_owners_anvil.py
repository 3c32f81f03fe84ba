"""Changing the admin Safe's owners and threshold, on a real anvil node.

A department joins the consortium (its owner added, the threshold raised), leaves (its owner
removed), replaces its key (swapped), or the owners move the threshold: each is a Safe
transaction on the Safe itself, refused below M approvals and carried out with M. Afterwards
the old M no longer suffices, and a removed owner's approval no longer counts. Through
`commitledger admin`, invalid changes are refused before anything is written, and the
history (and `GET /v1/admin/acts`) lists each change with what the Safe's own events say.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from support.cli import one_json
from support.deployment import Deployment
from support.safe_admin import (
    HRSS,
    HRSS_ID,
    Governed,
    binding,
    commitledger,
    govern,
    keystores,
    ok,
    ok_words,
    refusal_code,
)
from support.service_world import open_service

from api.admin_proposals import executed_acts
from ledger import (
    Chain,
    ContractRevertError,
    OwnerChange,
    OwnerSignature,
    SafeAdmin,
    SafeTx,
    describe_refusal,
    pack_signatures,
    plan_owner_change,
    sign_safe_tx,
)

pytestmark = [pytest.mark.integration]

UNBOUND = bytes(32)


@pytest.fixture
def governed(anvil_chain: Chain) -> Governed:
    return govern(anvil_chain)


def owner_change(world: Governed, function: str, **given: Any) -> SafeTx:
    """A Safe transaction of this change, planned against the Safe's state on chain."""
    safe = world.safe
    change = plan_owner_change(
        function,  # type: ignore[arg-type]
        safe=safe.address,
        owners=safe.owners(),
        threshold=safe.threshold(),
        **given,
    )
    return safe.transaction(safe.address, change.data())


def approvals(tx: SafeTx, *owners: LocalAccount) -> list[OwnerSignature]:
    return [sign_safe_tx(owner, tx) for owner in owners]


def refused(world: Governed, tx: SafeTx, signatures: list[OwnerSignature]) -> object:
    """The Safe's refusal code of executing `tx` with `signatures` (it must refuse)."""
    with pytest.raises(ContractRevertError) as refusal:
        world.safe.execute(world.sender, tx, signatures)
    return refusal_code(refusal.value)


# ---------------------------------------------------------------------- through the Safe


def test_a_department_joins_with_m_approvals_and_raises_the_bar(governed: Governed) -> None:
    safe, (a, b, c) = governed.safe, governed.owners
    before = safe.owners()
    joining = Account.create()
    tx = owner_change(governed, "addOwnerWithThreshold", owner=joining.address, new_threshold=3)
    assert tx.to == safe.address  # a call of the Safe itself
    assert tx.hash() == safe.transaction_hash_on_chain(tx)
    assert refused(governed, tx, approvals(tx, a)) == "GS020"
    assert (safe.owners(), safe.threshold(), safe.nonce()) == (before, 2, 0)

    executed = safe.execute(governed.sender, tx, approvals(tx, a, c))
    assert safe.owners() == [joining.address, *before]  # Safe puts a new owner first
    assert safe.threshold() == 3

    # the old M no longer suffices; the new owner's approval counts
    account = Account.create().address
    bind = binding(governed, account)
    assert refused(governed, bind, approvals(bind, a, b)) == "GS020"
    assert governed.ledger.department_of(account) == UNBOUND
    safe.execute(governed.sender, bind, approvals(bind, a, b, joining))
    assert governed.ledger.department_of(account) == HRSS_ID

    # the history, from the chain: the Safe's own events say what changed
    [change, bound] = executed_acts(safe.executions(), governed.ledger.address, safe.owner_events())
    assert change["transaction"] == "0x" + executed.hex()
    assert change["action"]["function"] == "addOwnerWithThreshold"
    assert change["action"]["owner"] == joining.address
    assert change["changes"] == [{"added_owner": joining.address}, {"threshold": 3}]
    assert sorted(change["approved_by"]) == sorted([a.address, c.address])
    assert "changes" not in bound
    assert bound["action"]["function"] == "grantDepartmentRole"


def test_a_removed_owners_approval_no_longer_counts(governed: Governed) -> None:
    safe, (a, b, c) = governed.safe, governed.owners
    assert safe.owners() == [a.address, b.address, c.address]
    tx = owner_change(governed, "removeOwner", owner=b.address)  # in the middle of the list
    assert refused(governed, tx, approvals(tx, b)) == "GS020"
    safe.execute(governed.sender, tx, approvals(tx, b, c))  # b agrees to leave
    assert safe.owners() == [a.address, c.address]
    assert safe.threshold() == 2  # kept: two owners remain

    account = Account.create().address
    bind = binding(governed, account)
    assert refused(governed, bind, approvals(bind, a, b)) == "GS026"  # not an owner
    assert governed.ledger.department_of(account) == UNBOUND
    safe.execute(governed.sender, bind, approvals(bind, a, c))
    assert governed.ledger.department_of(account) == HRSS_ID

    # the first owner of the list (after the sentinel) leaves, lowering the threshold
    first = owner_change(governed, "removeOwner", owner=a.address, new_threshold=1)
    safe.execute(governed.sender, first, approvals(first, a, c))
    assert (safe.owners(), safe.threshold()) == ([c.address], 1)
    kinds = [(e.kind, e.value) for e in safe.owner_events()]
    assert kinds == [("removed_owner", b.address), ("removed_owner", a.address), ("threshold", 1)]


def test_a_swapped_key_and_a_moved_threshold(governed: Governed) -> None:
    safe, (a, b, c) = governed.safe, governed.owners
    new_key = Account.create()
    swap = owner_change(governed, "swapOwner", owner=c.address, new_owner=new_key.address)
    assert refused(governed, swap, approvals(swap, c)) == "GS020"
    safe.execute(governed.sender, swap, approvals(swap, a, c))
    assert safe.owners() == [a.address, b.address, new_key.address]

    lower = owner_change(governed, "changeThreshold", new_threshold=1)
    assert refused(governed, lower, approvals(lower, c, new_key)) == "GS026"  # c was replaced
    assert safe.threshold() == 2
    safe.execute(governed.sender, lower, approvals(lower, new_key, b))
    assert safe.threshold() == 1
    account = Account.create().address
    bind = binding(governed, account)
    safe.execute(governed.sender, bind, approvals(bind, new_key))  # one approval is M now
    assert governed.ledger.department_of(account) == HRSS_ID


def test_a_change_prepared_on_an_old_list_is_refused(governed: Governed) -> None:
    """The previous owner is read from the chain when a change is planned: one prepared
    ahead (for a later nonce) on a list that has changed since is refused by the Safe
    itself (GS205, said in words before anything is sent), and nothing changes."""
    safe, (a, b, c) = governed.safe, governed.owners
    remove_b = owner_change(governed, "removeOwner", owner=b.address)
    later = plan_owner_change(
        "removeOwner",
        safe=safe.address,
        owners=safe.owners(),
        threshold=safe.threshold(),
        owner=c.address,
        new_threshold=1,
    )
    assert later.previous == b.address
    ahead = safe.transaction(safe.address, later.data(), nonce=1)
    safe.execute(governed.sender, remove_b, approvals(remove_b, a, b))
    assert safe.owners() == [a.address, c.address]

    signatures = approvals(ahead, a, c)
    refusal = safe.refusal(
        governed.sender.address, ahead, pack_signatures(signatures), target_abi=safe.abi
    )
    assert refusal is not None and refusal_code(refusal) == "GS205"
    assert describe_refusal(refusal).startswith("GS205: the previous owner named")
    assert refused(governed, ahead, signatures) == "GS013"
    assert (safe.owners(), safe.threshold(), safe.nonce()) == ([a.address, c.address], 2, 1)


# ---------------------------------------------------------------------- the public route


def test_the_public_sees_owner_changes(governed: Governed, tmp_path: Path) -> None:
    url = governed.chain.url
    assert url is not None
    as_deployed = Deployment(
        governed.chain, governed.ledger, governed.old_admin, governed.registrar,
        governed.verifier, governed.sender, governed.sender, governed.sender,
    )  # fmt: skip
    world = open_service(tmp_path, as_deployed, rpc=url)
    record = json.loads(world.settings.resolved_deployment_file.read_text())
    record["admin_safe"] = governed.safe.address
    world.settings.resolved_deployment_file.write_text(json.dumps(record))
    _, b, c = governed.owners
    joining = Account.create().address
    tx = owner_change(governed, "addOwnerWithThreshold", owner=joining, new_threshold=3)
    executed = governed.safe.execute(governed.sender, tx, approvals(tx, b, c))

    answer = world.client.get("/v1/admin/acts")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["threshold"] == 3
    assert body["owners"][0] == joining
    [act] = body["acts"]
    assert act["transaction"] == "0x" + executed.hex()
    assert act["action"] == {
        "function": "addOwnerWithThreshold",
        "owner": joining,
        "threshold": 3,
        "summary": f"add {joining} as an owner of the Safe; 3 approvals needed from then on",
    }
    assert act["changes"] == [{"added_owner": joining}, {"threshold": 3}]
    assert sorted(act["approved_by"]) == sorted([b.address, c.address])


# ---------------------------------------------------------------------- the command line


def test_owners_change_the_owners_from_their_own_machines(
    anvil_chain: Chain, tmp_path: Path
) -> None:
    keys = keystores(tmp_path, ("admin", "registrar", "verifier", "a", "b", "c", "d"))
    path = {name: made[0] for name, made in keys.items()}
    address = {name: made[1] for name, made in keys.items()}
    assert anvil_chain.url is not None
    deployment = tmp_path / "deployment.json"
    ok(tmp_path, "deploy", "--rpc", anvil_chain.url, "--admin-key", path["admin"], "--fund",
       "--department", HRSS, "--registrar-key", path["registrar"],
       "--verifier-key", path["verifier"], "--out", deployment)  # fmt: skip
    owners = ",".join(address[n] for n in ("a", "b", "c"))
    handed = ok(tmp_path, "admin", "handover", "--admin-key", path["admin"], "--owners", owners,
                "--threshold", "2", "--deployment", deployment)  # fmt: skip
    safe = SafeAdmin(anvil_chain, handed["safe"])
    before = safe.owners()

    def admin(*args: object) -> Any:
        return ok(tmp_path, "admin", *args, "--deployment", deployment)

    def refused_proposal(*args: object, message: str) -> None:
        out = tmp_path / "refused.json"
        run = commitledger(tmp_path, "admin", "propose", *args, "--out", out,
                           "--deployment", deployment)  # fmt: skip
        assert run.code == 2, run
        assert message in one_json(run.stdout)["error"]["message"], run
        assert not out.exists()

    # ------------------------------------------------ invalid inputs: nothing written
    # (every refusal is in the unit tests; here, that the command line writes nothing)
    d = address["d"]
    refused_proposal("add-owner", "--owner", address["b"], message="already an owner")
    refused_proposal("add-owner", "--owner", d.lower(), message="not checksummed")
    refused_proposal("add-owner", "--owner", d, "--threshold", "5", message="between 1 and the 4")
    refused_proposal("remove-owner", "--owner", d, message="not an owner")
    refused_proposal("remove-owner", "--owner", address["a"], "--threshold", "3",
                     message="between 1 and the 2")  # fmt: skip
    refused_proposal("swap-owner", "--owner", address["a"], message="takes new_owner and owner")
    refused_proposal("change-threshold", "--threshold", "4", message="between 1 and the 3")
    refused_proposal("add-owner", "--owner", d, "--role", "verifier", message="takes --owner")
    refused_proposal("grant", "--role", "verifier", "--account", d, "--owner", d,
                     message="are for add-owner")  # fmt: skip
    assert (safe.owners(), safe.threshold(), safe.nonce()) == (before, 2, 0)

    # ------------------------------------------------ a department joins: d, and M = 3
    join = tmp_path / "join.json"
    proposed = admin("propose", "add-owner", "--owner", d, "--threshold", "3", "--out", join)
    assert proposed["action"]["function"] == "addOwnerWithThreshold"
    expected = OwnerChange("addOwnerWithThreshold", owner=d, threshold=3).data()
    on_chain = safe.transaction_hash_on_chain(
        SafeTx(safe.address, anvil_chain.chain_id, safe.address, expected, 0)
    )
    assert proposed["safe_tx_hash"] == "0x" + on_chain.hex()
    ok(tmp_path, "admin", "approve", join, "--key", path["a"])
    assert ok(tmp_path, "admin", "show", join)["action"]["summary"] == (
        f"add {d} as an owner of the Safe; 3 approvals needed from then on"
    )
    words = ok_words(tmp_path, "admin", "show", join)
    assert f"add {d} as an owner of the Safe; 3 approvals needed from then on" in words
    below = commitledger(tmp_path, "admin", "execute", join, "--key", path["admin"],
                         "--deployment", deployment)  # fmt: skip
    assert below.code == 1, below
    assert one_json(below.stdout)["error"]["type"] == "NotEnoughApprovals"
    assert safe.owners() == before
    ok(tmp_path, "admin", "approve", join, "--key", path["c"])
    joined = admin("execute", join, "--key", path["admin"])
    assert (safe.owners(), safe.threshold()) == ([d, *before], 3)

    # the old M (two approvals) no longer suffices for a binding; three do
    registrar = Account.create().address
    bind = tmp_path / "bind.json"
    admin("propose", "bind", "--role", "registrar", "--account", registrar,
          "--department", HRSS, "--out", bind)  # fmt: skip
    for owner in ("a", "c"):
        ok(tmp_path, "admin", "approve", bind, "--key", path[owner])
    two = commitledger(tmp_path, "admin", "execute", bind, "--key", path["admin"],
                       "--deployment", deployment)  # fmt: skip
    assert two.code == 1, two
    assert "2 of 3 approvals" in one_json(two.stdout)["error"]["message"]
    ok(tmp_path, "admin", "approve", bind, "--key", path["d"])
    admin("execute", bind, "--key", path["admin"])

    # ------------------------------------------------ a department leaves: a
    leave = tmp_path / "leave.json"
    proposed = admin("propose", "remove-owner", "--owner", address["a"], "--out", leave)
    assert proposed["action"]["previous_owner"] == d  # read from the chain's list
    assert proposed["action"]["threshold"] == 3
    for owner in ("a", "b", "d"):
        ok(tmp_path, "admin", "approve", leave, "--key", path[owner])
    admin("execute", leave, "--key", path["admin"])
    assert (safe.owners(), safe.threshold()) == ([d, address["b"], address["c"]], 3)

    # a's approval no longer counts: with b and c it is two of three
    verifier = Account.create().address
    late = tmp_path / "late.json"
    admin("propose", "bind", "--role", "verifier", "--account", verifier,
          "--department", HRSS, "--out", late)  # fmt: skip
    for owner in ("a", "b", "c"):
        ok(tmp_path, "admin", "approve", late, "--key", path[owner])
    stale = commitledger(tmp_path, "admin", "execute", late, "--key", path["admin"],
                         "--deployment", deployment)  # fmt: skip
    assert stale.code == 1, stale
    message = one_json(stale.stdout)["error"]["message"]
    assert "2 of 3 approvals" in message and address["a"] in message
    assert safe.nonce() == 3
    ok(tmp_path, "admin", "approve", late, "--key", path["d"])
    done = admin("execute", late, "--key", path["admin"])
    assert sorted(done["approved_by"]) == sorted(address[n] for n in ("b", "c", "d"))
    assert done["not_counted"] == [address["a"]]

    # ------------------------------------------------ the history, from the chain alone
    history = admin("history")["executed"]
    assert [act["action"]["function"] for act in history] == [
        "addOwnerWithThreshold",
        "grantDepartmentRole",
        "removeOwner",
        "grantDepartmentRole",
    ]
    assert history[0]["transaction"] == joined["transaction"]
    assert history[0]["changes"] == [{"added_owner": d}, {"threshold": 3}]
    assert history[2]["changes"] == [{"removed_owner": address["a"]}]
    assert sorted(history[3]["approved_by"]) == sorted(address[n] for n in ("b", "c", "d"))
    words = ok_words(tmp_path, "admin", "history", "--deployment", deployment)
    assert f"remove {address['a']} from the Safe's owners" in words
    assert f"the Safe logged: removed owner {address['a']}" in words

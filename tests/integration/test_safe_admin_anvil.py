"""The contract's admin as a Safe (1.4.1, our own build) on a real anvil node.

With M of N owners, a binding or a revocation with fewer than M approvals is refused (by
the Safe itself, and by `commitledger admin execute` before anything is sent) and with M
it goes through; after the hand-over the old admin key can change nothing (AccessControl
refuses it). The SafeTx hash computed offline is checked against the Safe's own
`getTransactionHash` on chain.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from support.cli import one_json
from support.deployment import Deployment
from support.safe_admin import (
    HRSS,
    HRSS_ID,
    PASSPHRASE,
    Governed,
    binding,
    commitledger,
    govern,
    ok,
    refusal_code,
)
from support.service_world import assert_problem, open_service

from api.keyfiles import KeyUnlock, load_account, new_key
from ledger import (
    DEFAULT_ADMIN_ROLE,
    REGISTRAR_ROLE,
    VERIFIER_ROLE,
    AdminCall,
    Chain,
    ChainError,
    ContractRevertError,
    Hash32,
    LedgerContract,
    OwnerSignature,
    SafeAdmin,
    SafeError,
    SafeTx,
    Status,
    department_id,
    hand_over_admin,
    keccak256,
    pack_signatures,
    sign_safe_tx,
)

pytestmark = [pytest.mark.integration]

MARKET = "BJ-SAMR"
RULING = keccak256(b"the court's ruling that annuls the breach")


@pytest.fixture
def governed(anvil_chain: Chain) -> Governed:
    return govern(anvil_chain)


def published_breach(world: Governed, name: bytes) -> Hash32:
    """A commitment of HRSS anchored, proposed as a breach and published."""
    commitment = Hash32(keccak256(name))
    world.ledger.anchor(world.registrar, commitment)
    for status in (Status.PROPOSED, Status.BREACHED):
        world.ledger.record_outcome(
            world.verifier, commitment, status, Hash32(keccak256(b"notice " + name))
        )
    return commitment


def correction(world: Governed, commitment: bytes) -> SafeTx:
    call = AdminCall("correctBreach", department=HRSS_ID, commitment=commitment, evidence=RULING)
    return world.safe.transaction(world.ledger.address, call.data())


# ---------------------------------------------------------------------- the Safe itself


def test_safe_is_set_up_as_asked(governed: Governed) -> None:
    safe = governed.safe
    assert safe.version() == "1.4.1"
    assert sorted(safe.owners()) == sorted(o.address for o in governed.owners)
    assert safe.threshold() == 2
    assert safe.nonce() == 0
    assert governed.ledger.has_role(DEFAULT_ADMIN_ROLE, safe.address)
    assert not governed.ledger.has_role(DEFAULT_ADMIN_ROLE, governed.old_admin.address)


def test_offline_hash_is_the_safes_own(governed: Governed) -> None:
    outsider = Account.create().address
    for tx in (
        binding(governed, outsider),
        binding(governed, outsider, "verifier"),
        SafeTx(governed.safe.address, governed.chain.chain_id, outsider, b"", nonce=7),
        SafeTx(governed.safe.address, governed.chain.chain_id, outsider, bytes(300), nonce=2**40),
    ):
        assert tx.hash() == governed.safe.transaction_hash_on_chain(tx)


# ---------------------------------------------------------------------- M of N


def test_binding_needs_m_approvals(governed: Governed) -> None:
    account = Account.create().address
    tx = binding(governed, account)
    first, second, _ = governed.owners
    one = [sign_safe_tx(first, tx)]
    with pytest.raises(ContractRevertError) as refused:
        governed.safe.execute(governed.sender, tx, one)
    assert refusal_code(refused.value) == "GS020"  # fewer signatures than the threshold
    assert governed.ledger.department_of(account) == bytes(32)
    assert governed.safe.nonce() == 0

    # the same owner twice is still one approval
    twice = [*one, OwnerSignature(first.address, sign_safe_tx(first, tx, eth_sign=True).signature)]
    with pytest.raises(ContractRevertError) as refused:
        governed.safe.execute(governed.sender, tx, twice)
    assert refusal_code(refused.value) == "GS026"

    # an outsider's signature does not count
    stranger = [*one, sign_safe_tx(Account.create(), tx)]
    with pytest.raises(ContractRevertError) as refused:
        governed.safe.execute(governed.sender, tx, stranger)
    assert refusal_code(refused.value) == "GS026"
    assert not governed.ledger.has_role(REGISTRAR_ROLE, account)

    two = [*one, sign_safe_tx(second, tx, eth_sign=True)]  # both signature forms
    governed.safe.execute(governed.sender, tx, two)
    assert governed.ledger.department_of(account) == bytes(department_id(HRSS))
    assert governed.ledger.has_role(REGISTRAR_ROLE, account)
    assert governed.safe.nonce() == 1

    # the approvals were for nonce 0: they cannot be played again
    with pytest.raises(ContractRevertError) as refused:
        governed.safe.execute(governed.sender, binding(governed, account, "verifier"), two)
    assert refusal_code(refused.value) == "GS026"


def test_revocation_needs_m_approvals(governed: Governed) -> None:
    account = Account.create().address
    first, _, third = governed.owners
    tx = binding(governed, account, "verifier")
    governed.safe.execute(governed.sender, tx, [sign_safe_tx(first, tx), sign_safe_tx(third, tx)])
    revoke = governed.safe.transaction(
        governed.ledger.address, AdminCall("revokeRole", "verifier", account).data()
    )
    with pytest.raises(ContractRevertError):
        governed.safe.execute(governed.sender, revoke, [sign_safe_tx(third, revoke)])
    assert governed.ledger.has_role(VERIFIER_ROLE, account)
    governed.safe.execute(
        governed.sender, revoke, [sign_safe_tx(third, revoke), sign_safe_tx(first, revoke)]
    )
    assert not governed.ledger.has_role(VERIFIER_ROLE, account)


def test_a_refused_inner_call_names_the_ledgers_error(governed: Governed) -> None:
    account = Account.create().address
    first, second, _ = governed.owners
    tx = binding(governed, account)
    governed.safe.execute(governed.sender, tx, [sign_safe_tx(first, tx), sign_safe_tx(second, tx)])
    # the same account for another department: the ledger refuses, the Safe says GS013
    call = AdminCall("grantDepartmentRole", "verifier", account, bytes(department_id(MARKET)))
    elsewhere = governed.safe.transaction(governed.ledger.address, call.data())
    signatures = [sign_safe_tx(first, elsewhere), sign_safe_tx(second, elsewhere)]
    refused = governed.safe.refusal(
        governed.sender.address,
        elsewhere,
        pack_signatures(signatures),
        target_abi=governed.ledger.abi,
    )
    assert refused is not None and refused.error_name == "AccountBoundElsewhere"
    with pytest.raises(ContractRevertError) as sent:
        governed.safe.execute(governed.sender, elsewhere, signatures)
    assert refusal_code(sent.value) == "GS013"
    assert governed.ledger.department_of(account) == bytes(department_id(HRSS))


def test_correction_needs_m_approvals(governed: Governed) -> None:
    ledger, (first, _, third) = governed.ledger, governed.owners
    commitment = published_breach(governed, b"wrongly published")
    assert ledger.open_breaches() == 1
    tx = correction(governed, commitment)
    with pytest.raises(ContractRevertError) as refused:
        governed.safe.execute(governed.sender, tx, [sign_safe_tx(third, tx)])
    assert refusal_code(refused.value) == "GS020"
    assert ledger.status_of(HRSS_ID, Hash32(commitment)).status == Status.BREACHED

    executed = governed.safe.execute(
        governed.sender, tx, [sign_safe_tx(third, tx), sign_safe_tx(first, tx)]
    )
    assert ledger.status_of(HRSS_ID, Hash32(commitment)).status == Status.CORRECTED
    assert ledger.open_breaches() == 0
    recorded = ledger.outcome_recorded(HRSS_ID, Hash32(commitment), Status.CORRECTED)
    assert recorded is not None and recorded[0] == executed  # the Safe's transaction did it
    # who approved it, from the chain alone (SafeL2's event of the execution)
    [execution] = governed.safe.executions()
    assert execution.transaction == executed
    assert execution.tx == tx
    assert sorted(execution.approvers) == sorted([first.address, third.address])

    # a correction of what is no breach: the ledger's own refusal, named through the Safe
    again = correction(governed, commitment)
    signatures = [sign_safe_tx(first, again), sign_safe_tx(third, again)]
    refused_inner = governed.safe.refusal(
        governed.sender.address, again, pack_signatures(signatures), target_abi=ledger.abi
    )
    assert refused_inner is not None
    assert refused_inner.error_name == "TransitionNotAllowed"


# ---------------------------------------------------------------------- the old admin key


def test_the_old_admin_key_alone_changes_nothing(governed: Governed) -> None:
    admin, ledger = governed.old_admin, governed.ledger
    account = Account.create().address
    attempts: list[tuple[str, tuple[object, ...]]] = [
        ("grantDepartmentRole", (REGISTRAR_ROLE, account, department_id(HRSS))),
        ("grantRole", (DEFAULT_ADMIN_ROLE, admin.address)),
        ("revokeRole", (DEFAULT_ADMIN_ROLE, governed.safe.address)),
        ("revokeRole", (VERIFIER_ROLE, governed.verifier.address)),
        ("correctBreach", (HRSS_ID, published_breach(governed, b"stays"), RULING)),
    ]
    for name, args in attempts:
        with pytest.raises(ContractRevertError) as refused:
            governed.chain.transact(admin, ledger.builder(name, *args), abi=ledger.abi)
        assert refused.value.error_name == "AccessControlUnauthorizedAccount", name
        assert str(refused.value.error_args[0]).lower() == admin.address.lower()
    assert ledger.department_of(account) == bytes(32)
    assert ledger.has_role(VERIFIER_ROLE, governed.verifier.address)
    assert ledger.open_breaches() == 1
    assert ledger.has_role(DEFAULT_ADMIN_ROLE, governed.safe.address)
    assert not ledger.has_role(DEFAULT_ADMIN_ROLE, admin.address)


# ---------------------------------------------------------------------- the command line


def test_owners_govern_from_their_own_machines(anvil_chain: Chain, tmp_path: Path) -> None:
    unlock = KeyUnlock(passphrase=PASSPHRASE, scrypt_n=2**10)  # keystores, cheap to open
    names = ("admin", "registrar", "verifier", "a", "b", "c")
    keys = {name: tmp_path / f"{name}.json" for name in names}
    facts = {name: new_key("ethereum", path, unlock) for name, path in keys.items()}
    owners = ",".join(facts[name]["address"] for name in ("a", "b", "c"))
    assert anvil_chain.url is not None
    deployment = tmp_path / "deployment.json"
    ok(tmp_path, "deploy", "--rpc", anvil_chain.url, "--admin-key", keys["admin"], "--fund",
       "--department", HRSS, "--registrar-key", keys["registrar"],
       "--verifier-key", keys["verifier"], "--out", deployment)  # fmt: skip
    early = commitledger(tmp_path, "admin", "propose", "grant", "--role", "verifier",
                         "--account", facts["a"]["address"], "--out", tmp_path / "early.json",
                         "--deployment", deployment)  # fmt: skip
    assert early.code == 2, early
    assert "no admin Safe" in one_json(early.stdout)["error"]["message"]
    assert not (tmp_path / "early.json").exists()
    too_high = commitledger(tmp_path, "admin", "handover", "--admin-key", keys["admin"],
                            "--owners", owners, "--threshold", "4",
                            "--deployment", deployment)  # fmt: skip
    assert too_high.code == 2, too_high
    assert "threshold 4" in one_json(too_high.stdout)["error"]["message"]
    handed = ok(tmp_path, "admin", "handover", "--admin-key", keys["admin"], "--owners", owners,
                "--threshold", "2", "--deployment", deployment)  # fmt: skip
    assert handed["threshold"] == 2 and len(handed["owners"]) == 3
    assert json.loads(deployment.read_text())["admin_safe"] == handed["safe"]

    # the old admin key, through the ordinary deploy path, is refused by the contract
    ledger = LedgerContract(anvil_chain, json.loads(deployment.read_text())["contract"])
    assert not ledger.has_role(DEFAULT_ADMIN_ROLE, facts["admin"]["address"])

    registrar = Account.create().address
    proposal = tmp_path / "bind.json"
    proposed = ok(tmp_path, "admin", "propose", "bind", "--role", "registrar", "--account",
                  registrar, "--department", HRSS, "--out", proposal,
                  "--deployment", deployment)  # fmt: skip
    assert proposed["action"]["department_code"] == HRSS
    assert proposed["approved_by"] == []
    safe = SafeAdmin(anvil_chain, handed["safe"])
    on_chain = safe.transaction_hash_on_chain(SafeTx(
        safe.address, anvil_chain.chain_id, ledger.address,
        AdminCall("grantDepartmentRole", "registrar", registrar,
                  bytes(department_id(HRSS))).data(), 0,
    ))  # fmt: skip
    assert proposed["safe_tx_hash"] == "0x" + on_chain.hex()

    # each owner signs on their own machine: here, their own copy of the file
    machine_a = tmp_path / "a"
    machine_a.mkdir()
    copy_a = machine_a / "bind.json"
    copy_a.write_bytes(proposal.read_bytes())
    approved = ok(machine_a, "admin", "approve", copy_a, "--key", keys["a"])
    assert approved["approved_by"] == [facts["a"]["address"]]

    refused = commitledger(tmp_path, "admin", "execute", copy_a, "--key", keys["admin"],
                           "--deployment", deployment)  # fmt: skip
    assert refused.code == 1, refused
    assert one_json(refused.stdout)["error"]["type"] == "NotEnoughApprovals"
    assert ledger.department_of(registrar) == bytes(32)
    assert safe.nonce() == 0

    approved = ok(tmp_path, "admin", "approve", copy_a, "--key", keys["c"], "--eth-sign")
    assert len(approved["approved_by"]) == 2
    shown = ok(tmp_path, "admin", "show", copy_a)
    assert sorted(shown["approved_by"]) == sorted([facts["a"]["address"], facts["c"]["address"]])
    executed = ok(tmp_path, "admin", "execute", copy_a, "--key", keys["admin"],
                  "--deployment", deployment)  # fmt: skip
    assert executed["transaction"].startswith("0x")
    assert ledger.department_of(registrar) == bytes(department_id(HRSS))
    assert ledger.has_role(REGISTRAR_ROLE, registrar)

    # played again: the Safe moved on to nonce 1, so nothing is sent
    again = commitledger(tmp_path, "admin", "execute", copy_a, "--key", keys["admin"],
                         "--deployment", deployment)  # fmt: skip
    assert again.code == 1, again
    assert "nonce 0" in one_json(again.stdout)["error"]["message"]

    # a breach HRSS published, corrected by two owners
    registrar, verifier = (load_account(keys[n], unlock) for n in ("registrar", "verifier"))
    commitment = Hash32(keccak256(b"a breach the court annulled"))
    ledger.anchor(registrar, commitment)
    for status in (Status.PROPOSED, Status.BREACHED):
        ledger.record_outcome(verifier, commitment, status, Hash32(keccak256(b"notice")))
    fix = tmp_path / "correct.json"
    ok(tmp_path, "admin", "propose", "correct", "--department", HRSS, "--commitment",
       "0x" + commitment.hex(), "--evidence", "0x" + RULING.hex(), "--out", fix,
       "--deployment", deployment)  # fmt: skip
    ok(tmp_path, "admin", "approve", fix, "--key", keys["b"])
    refused = commitledger(tmp_path, "admin", "execute", fix, "--key", keys["registrar"],
                           "--deployment", deployment)  # fmt: skip
    assert refused.code == 1, refused
    assert ledger.status_of(HRSS_ID, commitment).status == Status.BREACHED
    ok(tmp_path, "admin", "approve", fix, "--key", keys["c"])
    corrected = ok(tmp_path, "admin", "execute", fix, "--key", keys["registrar"],
                   "--deployment", deployment)  # fmt: skip
    assert corrected["action"]["function"] == "correctBreach"
    assert corrected["action"]["department_code"] == HRSS
    assert corrected["nonce"] == 1
    assert ledger.status_of(HRSS_ID, commitment).status == Status.CORRECTED
    assert ledger.open_breaches() == 0

    # who approved each act, from the chain alone
    history = ok(tmp_path, "admin", "history", "--deployment", deployment)["executed"]
    assert [act["action"]["function"] for act in history] == [
        "grantDepartmentRole",
        "correctBreach",
    ]
    assert history[1]["transaction"] == corrected["transaction"]
    assert history[1]["action"]["department_code"] == HRSS
    assert history[1]["action"]["commitment"] == "0x" + commitment.hex()
    assert sorted(history[1]["approved_by"]) == sorted(facts[n]["address"] for n in ("b", "c"))
    assert sorted(history[0]["approved_by"]) == sorted(facts[n]["address"] for n in ("a", "c"))


def test_an_altered_proposal_is_refused(anvil_chain: Chain, tmp_path: Path) -> None:
    owner = tmp_path / "owner.json"
    new_key("ethereum", owner, KeyUnlock(passphrase=PASSPHRASE, scrypt_n=2**10))
    call = AdminCall("grantRole", "verifier", Account.create().address)
    document = {
        "schema": "commitledger/admin-proposal/1",
        "chain_id": anvil_chain.chain_id,
        "safe": "0x" + "5a" * 20,
        "safe_tx": {"to": "0x" + "1e" * 20, "value": "0", "data": "0x" + call.data().hex(),
                    "operation": 0, "nonce": 0},
        "safe_tx_hash": "0x" + "00" * 32,
        "action": {"function": "grantRole", "role": "verifier", "account": call.account},
        "approvals": [],
    }  # fmt: skip
    path = tmp_path / "p.json"
    path.write_text(json.dumps(document))
    run = commitledger(tmp_path, "admin", "approve", path, "--key", owner)
    assert run.code == 2, run
    assert "safe_tx_hash does not match" in one_json(run.stdout)["error"]["message"]


# ---------------------------------------------------------------------- the public route


def test_the_public_sees_who_approved_a_correction(governed: Governed, tmp_path: Path) -> None:
    url = governed.chain.url
    assert url is not None
    as_deployed = Deployment(
        governed.chain, governed.ledger, governed.old_admin, governed.registrar,
        governed.verifier, governed.sender, governed.sender, governed.sender,
    )  # fmt: skip
    world = open_service(tmp_path, as_deployed, rpc=url)
    missing = assert_problem(world.client.get("/v1/admin/acts"), 404, "not-found")
    assert "not a Safe" in missing["detail"]  # its admin is still one key
    record = json.loads(world.settings.resolved_deployment_file.read_text())
    record["admin_safe"] = governed.safe.address
    world.settings.resolved_deployment_file.write_text(json.dumps(record))
    assert world.client.get("/v1/admin/acts").json()["acts"] == []

    first, second, _ = governed.owners
    commitment = published_breach(governed, b"annulled in public")
    tx = correction(governed, commitment)
    executed = governed.safe.execute(
        governed.sender, tx, [sign_safe_tx(second, tx), sign_safe_tx(first, tx)]
    )
    answer = world.client.get("/v1/admin/acts", params={"commitment": "0x" + commitment.hex()})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["safe"] == governed.safe.address
    assert body["threshold"] == 2
    [act] = body["acts"]
    assert act["transaction"] == "0x" + executed.hex()
    assert act["action"]["function"] == "correctBreach"
    assert act["action"]["department_code"] == HRSS
    assert act["action"]["evidence"] == "0x" + RULING.hex()
    assert sorted(act["approved_by"]) == sorted([first.address, second.address])
    by_transaction = world.client.get("/v1/admin/acts", params={"transaction": act["transaction"]})
    assert by_transaction.json()["acts"] == [act]
    other = world.client.get("/v1/admin/acts", params={"commitment": "0x" + "ab" * 32})
    assert other.json()["acts"] == []
    bad = world.client.get("/v1/admin/acts", params={"commitment": "0x1234"})
    assert_problem(bad, 400, "invalid-hash")


def test_the_role_goes_only_to_a_set_up_safe(anvil_chain: Chain) -> None:
    admin, stranger = Account.create(), Account.create()
    anvil_chain.fund(admin.address)
    ledger = LedgerContract.deploy(anvil_chain, admin)
    singleton, _factory = SafeAdmin.deploy_singleton(anvil_chain, admin)
    for address, message in (
        (stranger.address, "holds no contract"),  # a key, not a Safe
        (ledger.address, "did not answer"),  # a contract, not a Safe
        (singleton, "did not answer getOwners"),  # the singleton itself has no owners
    ):
        with pytest.raises((SafeError, ChainError), match=message):
            hand_over_admin(ledger, admin, SafeAdmin(anvil_chain, address))
    assert ledger.has_role(DEFAULT_ADMIN_ROLE, admin.address)
    safe = SafeAdmin.deploy(anvil_chain, admin, [stranger.address], 1)
    with pytest.raises(SafeError, match="does not hold the ledger's admin role"):
        hand_over_admin(ledger, stranger, safe)

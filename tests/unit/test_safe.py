"""The Safe admin offline: its artifacts, the SafeTx hash, owners' signatures, proposals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from api.admin_proposals import approve, new_proposal, read_proposal, write_proposal
from ledger import (
    PROJECT_ROOT,
    SAFE_CONTRACT_NAMES,
    AdminCall,
    InvalidDocumentError,
    OwnerSignature,
    SafeError,
    SafeTx,
    checked_signatures,
    decode_admin_call,
    department_id,
    keccak256,
    load_safe_artifact,
    pack_signatures,
    sign_safe_tx,
    signer_of,
    stale_safe_fields,
)

SAFE = "0x" + "5a" * 20
LEDGER = "0x" + "1e" * 20
SAFE_PACKAGE = "node_modules/@safe-global/safe-contracts"
GRANT = AdminCall("grantRole", "admin", "0x" + "11" * 20).data()


def a_tx(**changes: object) -> SafeTx:
    fields: dict[str, object] = {
        "safe": SAFE,
        "chain_id": 31337,
        "to": LEDGER,
        "data": b"\x12\x34",
        "nonce": 0,
    }
    fields.update(changes)
    return SafeTx(**fields)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- artifacts


def test_safe_artifacts_come_from_the_pinned_package() -> None:
    package = json.loads((PROJECT_ROOT / SAFE_PACKAGE / "package.json").read_text())
    assert package["version"] == "1.4.1"
    pinned = json.loads((PROJECT_ROOT / "package.json").read_text())["devDependencies"]
    assert pinned["@safe-global/safe-contracts"] == "1.4.1"  # exact, not a range
    for name in SAFE_CONTRACT_NAMES:
        artifact = load_safe_artifact(name)
        assert artifact["contractName"] == name
        assert artifact["sourceName"].startswith(f"{SAFE_PACKAGE}/contracts/")
        for path, digest in artifact["sources"].items():
            assert path.startswith(f"{SAFE_PACKAGE}/contracts/"), path
            assert "0x" + keccak256((PROJECT_ROOT / path).read_bytes()).hex() == digest, path
    singleton = {e.get("name") for e in load_safe_artifact("SafeL2")["abi"]}
    assert {"setup", "execTransaction", "getTransactionHash", "SafeMultiSigTransaction"} <= (
        singleton
    )
    # under EIP-170's 24,576-byte limit, which real chains enforce
    assert len(load_safe_artifact("SafeL2")["deployedBytecode"]) // 2 - 1 < 24_576


def test_safe_artifacts_are_not_stale() -> None:
    assert stale_safe_fields() == {}  # compiles afresh


def test_unknown_artifact_is_refused() -> None:
    with pytest.raises(Exception, match="no Safe artifact named"):
        load_safe_artifact("Safe")


# ---------------------------------------------------------------------- the SafeTx hash


def test_hash_follows_eip712_as_safe_defines_it() -> None:
    tx = a_tx(nonce=7)
    domain = keccak256(
        bytes.fromhex("47e79534a245952e8b16893a336b85a3d9ea9fa8c573f3d803afb92a79469218")
        + (31337).to_bytes(32, "big")
        + bytes(12)
        + bytes.fromhex("5a" * 20)
    )
    assert tx.domain_separator() == domain
    assert keccak256(
        b"SafeTx(address to,uint256 value,bytes data,uint8 operation,uint256 safeTxGas,"
        b"uint256 baseGas,uint256 gasPrice,address gasToken,address refundReceiver,uint256 nonce)"
    ).hex() == ("bb8310d486368db6bd6f849402fdd73ad53d316b5a4b2644ad6efe0f941286d8")
    assert tx.hash() == keccak256(b"\x19\x01" + domain + tx.struct_hash())


@pytest.mark.parametrize(
    "change",
    [{"nonce": 8}, {"chain_id": 1}, {"safe": "0x" + "5b" * 20}, {"data": b"\x12\x35"}],
)
def test_hash_binds_every_field(change: dict[str, object]) -> None:
    assert a_tx(**{"nonce": 7, **change}).hash() != a_tx(nonce=7).hash()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("operation", 1, "only plain calls"),
        ("to", "0x1234", "not an address"),
        ("nonce", -1, "uint256"),
        ("gas_price", 1, "refunds"),
        ("data", bytes(64 * 1024 + 1), "call data"),
    ],
)
def test_malformed_transactions_are_refused(field: str, value: object, message: str) -> None:
    with pytest.raises(SafeError, match=message):
        a_tx(**{field: value})


# ---------------------------------------------------------------------- signatures


def test_both_signature_forms_recover_their_owner() -> None:
    owner = Account.create()
    tx = a_tx()
    direct = sign_safe_tx(owner, tx)
    eth_sign = sign_safe_tx(owner, tx, eth_sign=True)
    assert direct.signature[64] in (27, 28)
    assert eth_sign.signature[64] in (31, 32)
    assert signer_of(tx.hash(), direct.signature) == owner.address
    assert signer_of(tx.hash(), eth_sign.signature) == owner.address
    # a signature of another transaction names someone else
    assert signer_of(a_tx(nonce=1).hash(), direct.signature) != owner.address


@pytest.mark.parametrize("v", [0, 1, 29, 30, 33])
def test_other_signature_kinds_are_refused(v: int) -> None:
    signature = sign_safe_tx(Account.create(), a_tx()).signature[:64] + bytes([v])
    with pytest.raises(SafeError, match="not an owner's ECDSA signature"):
        signer_of(a_tx().hash(), signature)


def test_signatures_are_checked_deduplicated_and_sorted() -> None:
    owners = [Account.create() for _ in range(4)]
    tx = a_tx()
    signed = [sign_safe_tx(o, tx) for o in owners]
    checked = checked_signatures(tx, [*signed, signed[0]])
    assert [s.owner for s in checked] == sorted(
        (o.address for o in owners), key=lambda a: int(a, 16)
    )
    assert pack_signatures(signed) == b"".join(s.signature for s in checked)
    assert len(pack_signatures(signed)) == 4 * 65


def test_a_signature_claimed_for_another_owner_is_refused() -> None:
    owner, other = Account.create(), Account.create()
    forged = OwnerSignature(other.address, sign_safe_tx(owner, a_tx()).signature)
    with pytest.raises(SafeError, match="was not made by"):
        checked_signatures(a_tx(), [forged])
    with pytest.raises(SafeError, match="65 bytes"):
        checked_signatures(a_tx(), [OwnerSignature(owner.address, b"\x1b" * 64)])


# ---------------------------------------------------------------------- admin acts, proposals


def test_admin_calls_decode_to_what_they_encode() -> None:
    account = Account.create().address
    for call in (
        AdminCall("grantDepartmentRole", "verifier", account, bytes(department_id("BJ-HRSS"))),
        AdminCall("grantRole", "admin", account),
        AdminCall("revokeRole", "registrar", account),
        AdminCall(
            "correctBreach",
            department=bytes(department_id("BJ-SAMR")),
            commitment=keccak256(b"a commitment"),
            evidence=keccak256(b"a ruling"),
        ),
    ):
        assert decode_admin_call(call.data()) == call


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes.fromhex("a9059cbb") + bytes(64), "not an admin function"),  # ERC-20 transfer
        (GRANT + b"\x00", "must be"),
        (GRANT[:4] + b"\x01" * 32 + GRANT[36:], "not one of the ledger's roles"),
        (GRANT[:4] + b"\x01" * 64, "do not decode"),  # an address word with dirty padding
    ],
    ids=["transfer", "trailing byte", "unknown role", "dirty address"],
)
def test_other_call_data_are_not_admin_acts(data: bytes, message: str) -> None:
    with pytest.raises(SafeError, match=message):
        decode_admin_call(data)


def test_admin_call_checks_its_parts() -> None:
    account = Account.create().address
    hrss = bytes(department_id("BJ-HRSS"))
    with pytest.raises(SafeError, match="department is not one of them"):
        AdminCall("grantRole", "verifier", account, hrss)
    with pytest.raises(SafeError, match="registrar or verifier"):
        AdminCall("grantDepartmentRole", "admin", account, hrss)
    with pytest.raises(SafeError, match="not one of"):
        AdminCall("grantRole", "owner", account)  # type: ignore[arg-type]
    with pytest.raises(SafeError, match="evidence is missing"):
        AdminCall("correctBreach", department=hrss, commitment=keccak256(b"c"))
    with pytest.raises(SafeError, match="commitment must not be zero"):
        AdminCall("correctBreach", department=hrss, commitment=bytes(32), evidence=hrss)
    with pytest.raises(SafeError, match="role is not one of them"):
        AdminCall("correctBreach", "admin", department=hrss, commitment=hrss, evidence=hrss)


def test_proposal_round_trip_and_alterations(tmp_path: Path) -> None:
    owners = [Account.create() for _ in range(2)]
    call = AdminCall("revokeRole", "verifier", Account.create().address)
    proposal = approve(new_proposal(SAFE, 31337, LEDGER, call, 4), owners[0])
    proposal = approve(approve(proposal, owners[1], eth_sign=True), owners[1])  # re-approved
    assert len(proposal.signatures) == 2
    path = tmp_path / "p.json"
    write_proposal(path, proposal)
    assert read_proposal(path) == proposal
    document = json.loads(path.read_text())
    for alter in (
        lambda d: d["safe_tx"].update(nonce=5),
        lambda d: d.update(chain_id=1),
        lambda d: d["action"].update(role="registrar"),
        lambda d: d["approvals"][0].update(owner=d["approvals"][1]["owner"]),
        lambda d: d["safe_tx"].update(operation=1),
    ):
        altered = json.loads(json.dumps(document))
        alter(altered)
        path.write_text(json.dumps(altered))
        with pytest.raises(InvalidDocumentError):
            read_proposal(path)

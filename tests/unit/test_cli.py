"""The `commitledger` command line, offline: keys, sign, hash, canonical, and every bad input.

The embedded chain lives in one process, so commands that need a node are exercised here only
on their bad-input paths (which must fail before any node is contacted); the whole story
against a real node is in tests/integration/test_cli_anvil.py.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from eth_account import Account
from support.cli import (
    flat,
    one_json,
    one_line,
    unreachable_rpc,
    write_documents,
    write_json,
    write_signed,
)
from support.service_keys import write_account
from typer.testing import CliRunner, Result

from api.cli import app
from api.keyfiles import load_account, load_signing_key
from ledger import (
    Commitment,
    ProofBundle,
    SignedCommitment,
    SigningKey,
    decode_proof,
    hex32,
    keccak256,
    leaf_hash,
    to_hash32,
    verify_signed,
)

RUNNER = CliRunner()
# Rich wraps at the terminal width; a wide one keeps these tests about content. Wrapping
# itself is tested on its own (test_long_error_stays_on_one_line).
WIDE = 1000


def cli(*args: object, columns: int = WIDE) -> Result:
    """Run `commitledger ARGS` in-process."""
    return RUNNER.invoke(app, [str(a) for a in args], env={"COLUMNS": str(columns)})


def explain(result: Result) -> str:
    return f"exit {result.exit_code}\nstdout: {result.stdout!r}\nstderr: {result.stderr!r}"


def ok_json(result: Result) -> Any:
    """The one JSON document of a successful --json run."""
    assert result.exit_code == 0, explain(result)
    return one_json(result.stdout)


def assert_bad_input(result: Result, *phrases: str, code: int = 2) -> str:
    """Exit 2 (or `code`), nothing on stdout, and one line on stderr naming the problem."""
    assert result.exit_code == code, explain(result)
    assert result.stdout == "", explain(result)
    assert "Traceback" not in result.stderr
    line = one_line(result.stderr)
    assert line.startswith("error: "), line
    for phrase in phrases:
        assert phrase in line, f"{phrase!r} not in {line!r}"
    return line


def assert_bad_input_json(result: Result, *phrases: str, code: int = 2) -> dict[str, Any]:
    """Exit 2 (or `code`) and exactly one JSON document on stdout: ok false, the error named."""
    assert result.exit_code == code, explain(result)
    document = one_json(result.stdout)
    assert document["ok"] is False
    assert set(document["error"]) == {"type", "message"}
    message = document["error"]["message"]
    assert "\n" not in message
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in {message!r}"
    return document


def pem_body(path: Path) -> list[str]:
    """The secret lines of a PEM file (everything but the BEGIN/END lines)."""
    return [line for line in path.read_text().splitlines() if not line.startswith("-----")]


# ---------------------------------------------------------------------- inputs on disk


@dataclass
class Work:
    """Files for the tests: good documents, keys, and one of each kind of bad input."""

    root: Path
    document: Commitment
    doc: Path
    signed: Path
    other_signed: Path
    pem: Path
    account: Path
    dead_rpc: str
    deployment: Path
    bundle: dict[str, Any]

    def file(self, name: str, value: object) -> Path:
        return write_json(self.root / name, value)

    def raw(self, name: str, data: bytes) -> Path:
        path = self.root / name
        path.write_bytes(data)
        return path

    def signed_obj(self) -> dict[str, Any]:
        obj: dict[str, Any] = json.loads(self.signed.read_text())
        return obj

    def bundle_file(self, name: str, **changes: Any) -> Path:
        body = {**self.bundle, **changes}
        return self.file(name, {k: v for k, v in body.items() if v is not None})

    def version_1_file(self, name: str, **changes: Any) -> Path:
        """The bundle as version 1 wrote it (leaf, a list proof, the block hash), changed."""
        proof = [hex32(node) for node in decode_proof(self.bundle["proof"])]
        leaf = hex32(leaf_hash(to_hash32(self.bundle["commitment"])))
        body = {**self.bundle, "version": 1, "leaf": leaf, "proof": proof}
        return self.file(name, {**body, "block_hash": "0x" + "44" * 32, **changes})


@pytest.fixture
def work(tmp_path: Path) -> Work:
    (doc, document), (_, other) = write_documents(tmp_path, 2)
    signed = write_signed(tmp_path / "presigned0.json", document)
    other_signed = write_signed(tmp_path / "presigned1.json", other)
    pem = tmp_path / "applicant.pem"
    pem.write_bytes(SigningKey.generate("ed25519").to_pem())
    account = Account.create()
    account_file = write_account(tmp_path / "registrar.json", account)  # the suite's passphrase
    dead = unreachable_rpc()
    deployment = write_json(
        tmp_path / "deployment.json",
        {"rpc": dead, "chain_id": 31337, "contract": "0x" + "11" * 20, "department": "BJ-HRSS"},
    )
    bundle = ProofBundle(
        commitment=document.hash(),
        root=keccak256(b"root"),
        proof=(keccak256(b"sibling"),),
        chain_id=31337,
        contract="0x" + "22" * 20,
        transaction=keccak256(b"tx"),
        block_number=3,
        block_hash=keccak256(b"block"),
    ).to_json_obj()
    return Work(
        tmp_path, document, doc, signed, other_signed, pem, account_file, dead, deployment, bundle
    )


def altered_value(w: Work) -> Path:
    """The signed document, still valid, changed after signing (signature kept)."""
    obj = w.signed_obj()
    document = obj["document"]
    document["channel"] = "counter" if document["channel"] == "online" else "online"
    return w.file("altered-value.signed.json", obj)


def altered_signature(w: Work) -> Path:
    """The signed document with one bit of its signature flipped."""
    obj = w.signed_obj()
    raw = bytearray(base64.b64decode(obj["signature"]["value"]))
    raw[0] ^= 0x01
    obj["signature"]["value"] = base64.b64encode(bytes(raw)).decode()
    return w.file("altered-signature.signed.json", obj)


def other_key(w: Work) -> Path:
    """The signed document claiming another applicant's public key."""
    obj = w.signed_obj()
    obj["signature"]["public_key"] = SigningKey.generate("ed25519").public_key_b64()
    return w.file("other-key.signed.json", obj)


def bad_base64(w: Work) -> Path:
    obj = w.signed_obj()
    obj["signature"]["value"] = "not base64!"
    return w.file("bad-base64.signed.json", obj)


def bad_code(w: Work) -> Path:
    """A document whose commitment code fails the schema (20 digits required)."""
    obj = w.document.to_json_obj()
    obj["code"] = "123"
    return w.file("bad-code.json", obj)


def not_json(w: Work) -> Path:
    return w.raw("broken.json", b'{"schema_version": 1,')


def changed_document(w: Work, name: str, **fields: object) -> Path:
    """The work's document with some fields changed (the schema checks them on reading)."""
    obj = w.document.to_json_obj()
    applicant = fields.pop("applicant_name", None)
    if applicant is not None:
        obj["applicant"]["name"] = applicant
    obj.update(fields)
    return w.file(name, obj)


# Each case: the command line to run (built from the Work files) and the phrases the error
# must contain. Node-bound commands are pointed at an unreachable node, so a case whose
# error names something other than the node shows the check came before any contact.
Case = Callable[[Work], tuple[list[object], list[str]]]

PINNED = ["--contract", "0x" + "11" * 20, "--chain-id", "1"]  # verify-proof's trust anchor
NOT_AN_ADDRESS = ["--contract", "0x12", "--chain-id", "1"]

BAD_INPUTS: dict[str, Case] = {
    # JSON that is not JSON
    "hash/not-json": lambda w: (["hash", not_json(w)], ["broken.json", "not valid JSON"]),
    "canonical/not-json": lambda w: (["canonical", not_json(w)], ["not valid JSON"]),
    "sign/not-json": lambda w: (["sign", not_json(w), "--key", w.pem], ["not valid JSON"]),
    "anchor/not-json": lambda w: (
        ["anchor", not_json(w), "--key", w.account, "--deployment", w.deployment],
        ["broken.json", "not valid JSON"],
    ),
    "verify-proof/not-json": lambda w: (
        ["verify-proof", not_json(w), "--rpc", w.dead_rpc],
        ["not valid JSON"],
    ),
    "canonical/duplicate-key": lambda w: (
        ["canonical", w.raw("dup.json", b'{"a": 1, "a": 2}')],
        ["duplicate key 'a'"],
    ),
    "canonical/nan": lambda w: (
        ["canonical", w.raw("nan.json", b'{"a": NaN}')],
        ["NaN is not a JSON number"],
    ),
    "hash/missing-file": lambda w: (
        ["hash", w.root / "absent.json"],
        ["absent.json", "No such file"],
    ),
    # documents that fail the schema
    "hash/bad-code": lambda w: (["hash", bad_code(w)], ["invalid commitment", "code"]),
    "sign/bad-code": lambda w: (
        ["sign", bad_code(w), "--key", w.pem],
        ["invalid commitment", "code", "20 digits"],
    ),
    "anchor/bad-code": lambda w: (
        ["anchor", bad_code(w), "--key", w.account, "--deployment", w.deployment],
        ["bad-code.json", "invalid commitment", "code"],
    ),
    "sign/zero-salt": lambda w: (
        ["sign", changed_document(w, "zero-salt.json", salt="0x" + "00" * 32), "--key", w.pem],
        ["salt: not random"],
    ),
    "hash/escape-in-name": lambda w: (
        ["hash", changed_document(w, "escape.json", applicant_name="A\x1b[2J\r\nB")],
        ["applicant.name", "control or invisible formatting characters", "U+001B"],
    ),
    "hash/huge-salt": lambda w: (
        ["hash", changed_document(w, "huge-salt.json", salt="0x" + "a" * 900_000)],
        ["salt", "900002 characters"],
    ),
    "hash/signed-in-the-future": lambda w: (
        ["hash", changed_document(w, "future.json", signed_at="2031-01-01T00:00:00Z")],
        ["signed_at", "in the future"],
    ),
    "hash/not-a-commitment": lambda w: (
        ["hash", w.file("list.json", [1, 2])],
        ["invalid commitment"],
    ),
    # bad or missing signatures: refused before the (unreachable) node is contacted
    "anchor/altered-document": lambda w: (
        ["anchor", altered_value(w), "--key", w.account, "--deployment", w.deployment],
        ["signature does not verify"],
    ),
    "anchor/altered-signature": lambda w: (
        ["anchor", altered_signature(w), "--key", w.account, "--deployment", w.deployment],
        ["signature does not verify"],
    ),
    "anchor/other-public-key": lambda w: (
        ["anchor", other_key(w), "--key", w.account, "--deployment", w.deployment],
        ["signature does not verify"],
    ),
    "anchor/signature-not-base64": lambda w: (
        ["anchor", bad_base64(w), "--key", w.account, "--deployment", w.deployment],
        ["signature value is not valid base64"],
    ),
    "anchor/bad-second-of-batch": lambda w: (
        [
            "anchor",
            w.signed,
            altered_signature(w),
            "--key",
            w.account,
            "--deployment",
            w.deployment,
        ],
        ["signature does not verify"],
    ),
    "anchor/unsigned": lambda w: (
        ["anchor", w.doc, "--key", w.account, "--deployment", w.deployment],
        ["doc0.json", "not signed"],
    ),
    "anchor/twice": lambda w: (
        ["anchor", w.signed, w.signed, "--key", w.account, "--deployment", w.deployment],
        ["given twice", hex32(w.document.hash())],
    ),
    # deployment file and node
    "anchor/no-deployment": lambda w: (
        ["anchor", w.signed, "--key", w.account, "--deployment", w.root / "none.json"],
        ["none.json", "No such file"],
    ),
    "anchor/not-a-deployment": lambda w: (
        ["anchor", w.signed, "--key", w.account, "--deployment", w.file("d.json", {"a": 1})],
        ["d.json", "not a deployment file"],
    ),
    "deploy/not-an-account": lambda w: (
        ["deploy", "--rpc", w.dead_rpc, "--admin-key", w.pem, "--out", w.root / "d.json"],
        ["applicant.pem", "not an account key file"],
    ),
    "contract-verify/not-an-address": lambda w: (
        ["contract", "verify", "--rpc", w.dead_rpc, "--address", "0x1234"],
        ["not an address", "0x1234"],
    ),
    # hashes of the wrong length
    "proof/short-hash": lambda w: (["proof", "0x1234"], ["32 bytes", "got 2 bytes"]),
    "proof/long-hash": lambda w: (["proof", "0x" + "ab" * 33], ["32 bytes", "got 33 bytes"]),
    "proof/not-hex": lambda w: (["proof", "0x" + "zz" * 32], ["not a hex hash"]),
    # malformed bundles (checked before the node, which is unreachable)
    "verify-proof/missing-fields": lambda w: (
        ["verify-proof", w.bundle_file("b.json", root=None, proof=None), "--rpc", w.dead_rpc],
        ["lacks field(s): root, proof"],
    ),
    "verify-proof/not-an-object": lambda w: (
        ["verify-proof", w.file("b.json", [w.bundle]), "--rpc", w.dead_rpc],
        ["must be a JSON object"],
    ),
    "verify-proof/unknown-field": lambda w: (
        ["verify-proof", w.bundle_file("b.json", extra=1), "--rpc", w.dead_rpc],
        ["unknown field(s): extra"],
    ),
    "verify-proof/wrong-version": lambda w: (
        ["verify-proof", w.bundle_file("b.json", version=3), "--rpc", w.dead_rpc],
        ["version"],
    ),
    "verify-proof/proof-not-base64url": lambda w: (
        ["verify-proof", w.bundle_file("b.json", proof=["0x" + "ab" * 32]), "--rpc", w.dead_rpc],
        ["proof", "base64url"],
    ),
    "verify-proof/v1-leaf-mismatch": lambda w: (
        ["verify-proof", w.version_1_file("b.json", leaf="0x" + "33" * 32), "--rpc", w.dead_rpc],
        ["leaf is not the leaf of its commitment"],
    ),
    "verify-proof/v1-short-proof-element": lambda w: (
        ["verify-proof", w.version_1_file("b.json", proof=["0x1234"]), "--rpc", w.dead_rpc],
        ["proof element", "32 bytes"],
    ),
    "verify-proof/bad-commitment": lambda w: (
        ["verify-proof", w.bundle_file("b.json", commitment="0xab"), "--rpc", w.dead_rpc],
        ["commitment", "32 bytes"],
    ),
    "verify-proof/bad-contract": lambda w: (
        ["verify-proof", w.bundle_file("b.json", contract="nowhere"), "--rpc", w.dead_rpc],
        ["contract must be a 0x-hex address"],
    ),
    "verify-proof/negative-block": lambda w: (
        ["verify-proof", w.bundle_file("b.json", block_number=-1), "--rpc", w.dead_rpc],
        ["block_number must be a non-negative integer"],
    ),
    "verify-proof/unpinned": lambda w: (
        ["verify-proof", w.bundle_file("b.json"), "--rpc", w.dead_rpc],
        ["--contract ADDRESS --chain-id ID", "a bundle's own contract proves nothing"],
    ),
    "verify-proof/pinned-to-no-address": lambda w: (
        ["verify-proof", w.bundle_file("b.json"), "--rpc", w.dead_rpc, *NOT_AN_ADDRESS],
        ["not an address", "0x12"],
    ),
    # keys
    "sign/key-not-pem": lambda w: (
        ["sign", w.doc, "--key", w.account],
        ["not a PEM private key"],
    ),
    "sign/key-missing": lambda w: (
        ["sign", w.doc, "--key", w.root / "nokey.pem"],
        ["cannot read key", "nokey.pem"],
    ),
    "keys-new/unknown-kind": lambda w: (
        ["keys", "new", "--kind", "rsa", "--out", w.root / "k.pem"],
        ["unknown key kind 'rsa'"],
    ),
    "keys-new/exists": lambda w: (
        ["keys", "new", "--out", w.pem],
        ["applicant.pem", "exists already"],
    ),
}


# A node that does not answer is no bad input: exit 3, a sentence naming its URL.
UNREACHABLE: dict[str, Case] = {
    "anchor/unreachable-node": lambda w: (
        ["anchor", w.signed, "--key", w.account, "--deployment", w.deployment],
        ["no Ethereum node answers", w.dead_rpc],
    ),
    "deploy/unreachable-node": lambda w: (
        ["deploy", "--rpc", w.dead_rpc, "--admin-key", w.account, "--out", w.root / "d.json"],
        ["no Ethereum node answers", w.dead_rpc],
    ),
    "contract-verify/unreachable-node": lambda w: (
        ["contract", "verify", "--rpc", w.dead_rpc, "--address", "0x" + "22" * 20],
        ["no Ethereum node answers", w.dead_rpc],
    ),
    "verify-proof/unreachable-node": lambda w: (
        ["verify-proof", w.bundle_file("b.json"), "--rpc", w.dead_rpc, *PINNED],
        ["no Ethereum node answers", w.dead_rpc],
    ),
}


@pytest.mark.parametrize("case", list(UNREACHABLE))
def test_an_unreachable_node_exits_3_naming_its_url(work: Work, case: str) -> None:
    args, phrases = UNREACHABLE[case](work)
    line = assert_bad_input(cli(*args), *phrases, "start the node", code=3)
    assert line.count(work.dead_rpc) == 1
    document = assert_bad_input_json(cli(*args, "--json"), *phrases, code=3)
    assert document["error"]["type"] == "NodeUnreachableError"


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_exits_2_with_one_line_naming_the_problem(work: Work, case: str) -> None:
    args, phrases = BAD_INPUTS[case](work)
    line = assert_bad_input(cli(*args), *phrases)
    if case.startswith(("anchor/", "verify-proof/")) and "unreachable" not in case:
        assert "node" not in line, "the input must be refused before any node is contacted"
        assert work.dead_rpc not in line


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_with_json_prints_one_json_document(work: Work, case: str) -> None:
    args, phrases = BAD_INPUTS[case](work)
    assert_bad_input_json(cli(*args, "--json"), *phrases)


@pytest.mark.parametrize(
    ("case", "kind"),
    [
        ("anchor/altered-document", "SignatureError"),
        ("anchor/altered-signature", "SignatureError"),
        ("anchor/unsigned", "InvalidDocumentError"),
        ("anchor/bad-code", "InvalidDocumentError"),
        ("proof/short-hash", "InvalidHashError"),
        ("verify-proof/v1-leaf-mismatch", "ProofBundleError"),
    ],
)
def test_json_error_names_its_kind(work: Work, case: str, kind: str) -> None:
    args, _ = BAD_INPUTS[case](work)
    assert assert_bad_input_json(cli(*args, "--json"))["error"]["type"] == kind


def test_failed_sign_writes_nothing(work: Work) -> None:
    bad = bad_code(work)
    assert_bad_input(cli("sign", bad, "--key", work.pem))
    assert not bad.with_suffix(".signed.json").exists()


def test_refused_anchor_writes_no_proofs(work: Work) -> None:
    proofs = work.root / "proofs"
    result = cli(
        "anchor",
        altered_signature(work),
        "--key",
        work.account,
        "--deployment",
        work.deployment,
        "--proofs-dir",
        proofs,
    )
    assert_bad_input(result, "signature")
    assert not proofs.exists()


# ---------------------------------------------------------------------- output format bugs


def test_long_error_stays_on_one_line(work: Work) -> None:
    result = cli("hash", bad_code(work), columns=80)
    assert result.exit_code == 2
    assert len(flat(result.stderr)) > 80
    one_line(result.stderr)


@pytest.mark.parametrize("name", ["[bold]doc.json", "[/x].json"])
def test_error_prints_file_names_literally(work: Work, name: str) -> None:
    assert_bad_input(cli("hash", work.root / name), name, "No such file")


@pytest.mark.parametrize(
    "args", [["demo", "--count", "0"], ["sign", "doc.json"]], ids=["out-of-range", "missing"]
)
def test_usage_error_with_json_prints_one_json_document(args: list[str]) -> None:
    result = cli(*args, "--json")
    assert result.exit_code == 2
    assert one_json(result.stdout)["ok"] is False


# ---------------------------------------------------------------------- keys new


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256", "ethereum"])
def test_keys_new_writes_an_owner_only_key(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "key"
    facts = ok_json(cli("keys", "new", "--kind", kind, "--out", path, "--json"))
    assert facts["ok"] is True
    assert facts["kind"] == kind
    assert facts["path"] == str(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    if kind == "ethereum":  # a keystore, with the suite's passphrase (tests/conftest.py)
        body = json.loads(path.read_text())
        assert "private_key" not in body and body["crypto"]["kdf"] == "scrypt"
        assert load_account(path).address == facts["address"]
        assert facts["address"].lower().endswith(body["address"].lower().removeprefix("0x"))
        assert "public_key" not in facts
    else:  # encrypted PKCS#8, the suite's passphrase being in the environment
        key = load_signing_key(path)
        assert key.algorithm == kind
        assert facts["public_key"] == key.public_key_b64()
        assert "address" not in facts


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256", "ethereum"])
@pytest.mark.parametrize("as_json", [False, True])
def test_keys_new_never_prints_the_private_key(tmp_path: Path, kind: str, as_json: bool) -> None:
    path = tmp_path / "key"
    result = cli("keys", "new", "--kind", kind, "--out", path, *(["--json"] if as_json else []))
    assert result.exit_code == 0, explain(result)
    printed = result.stdout + result.stderr
    if kind == "ethereum":
        secret = load_account(path).key.hex().removeprefix("0x")
        assert secret.lower() not in printed.lower()
        assert load_account(path).address in printed
    else:
        for line in pem_body(path):
            assert line not in printed
        assert "PRIVATE KEY" not in printed
    if not as_json:
        assert str(path) in result.stdout


def test_keys_new_default_kind_is_ed25519(tmp_path: Path) -> None:
    facts = ok_json(cli("keys", "new", "--out", tmp_path / "k.pem", "--json"))
    assert facts["kind"] == "ed25519"


@pytest.mark.parametrize("kind", ["ed25519", "ethereum"])
def test_keys_new_refuses_to_overwrite(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "key"
    assert cli("keys", "new", "--kind", kind, "--out", path).exit_code == 0
    before = path.read_bytes()
    assert_bad_input(cli("keys", "new", "--kind", kind, "--out", path), "exists already")
    assert_bad_input_json(cli("keys", "new", "--out", path, "--json"), "exists already")
    assert path.read_bytes() == before


def test_keys_new_refuses_a_file_it_did_not_write(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    assert_bad_input(cli("keys", "new", "--out", path), "exists already")
    assert path.read_text() == "mine"


# ---------------------------------------------------------------------- sign


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa-p256"])
def test_sign_writes_the_signed_commitment_beside_the_document(work: Work, kind: str) -> None:
    key = work.root / f"{kind}.pem"
    public_key = ok_json(cli("keys", "new", "--kind", kind, "--out", key, "--json"))["public_key"]
    original = work.doc.read_bytes()
    result = ok_json(cli("sign", work.doc, "--key", key, "--json"))
    target = work.root / "doc0.signed.json"
    assert result == {"ok": True, "hash": hex32(work.document.hash()), "signed": str(target)}
    signed = SignedCommitment.from_json_obj(json.loads(target.read_text()))
    verify_signed(signed)
    assert signed.document == work.document
    assert signed.signature.algorithm == kind
    assert signed.signature.public_key == public_key
    assert work.doc.read_bytes() == original


def test_sign_human_output_names_the_file_and_hash(work: Work) -> None:
    result = cli("sign", work.doc, "--key", work.pem)
    assert result.exit_code == 0, explain(result)
    assert "doc0.signed.json" in result.stdout
    assert hex32(work.document.hash()) in result.stdout


def test_sign_out_option(work: Work) -> None:
    target = work.root / "elsewhere" / "s.json"
    target.parent.mkdir()
    assert ok_json(cli("sign", work.doc, "--key", work.pem, "--out", target, "--json"))["signed"]
    verify_signed(SignedCommitment.from_json_obj(json.loads(target.read_text())))
    assert not (work.root / "doc0.signed.json").exists()


def test_sign_resigns_a_signed_document(work: Work) -> None:
    target = work.root / "again.json"
    result = ok_json(cli("sign", work.signed, "--key", work.pem, "--out", target, "--json"))
    assert result["hash"] == hex32(work.document.hash())
    signed = SignedCommitment.from_json_obj(json.loads(target.read_text()))
    verify_signed(signed)
    assert (
        signed.signature.public_key == SigningKey.from_pem(work.pem.read_bytes()).public_key_b64()
    )


# ---------------------------------------------------------------------- hash


def test_hash_bare_and_signed_are_the_same(work: Work) -> None:
    expected = hex32(work.document.hash())
    bare = cli("hash", work.doc)
    signed = cli("hash", work.signed)
    assert bare.exit_code == signed.exit_code == 0
    assert bare.stdout == signed.stdout == expected + "\n"


def test_hash_json_shape(work: Work) -> None:
    for path in (work.doc, work.signed):
        assert ok_json(cli("hash", path, "--json")) == {
            "ok": True,
            "file": str(path),
            "hash": hex32(work.document.hash()),
        }


def test_hash_ignores_key_order_and_whitespace(work: Work) -> None:
    obj = work.document.to_json_obj()
    reordered = {key: obj[key] for key in reversed(list(obj))}
    path = work.raw("compact.json", json.dumps(reordered, separators=(",", ":")).encode())
    assert cli("hash", path).stdout == cli("hash", work.doc).stdout


def test_hash_changes_with_the_document(work: Work) -> None:
    obj = work.document.to_json_obj()
    obj["channel"] = "counter" if obj["channel"] == "online" else "online"
    changed = work.file("changed.json", obj)
    assert cli("hash", changed).stdout != cli("hash", work.doc).stdout


# ---------------------------------------------------------------------- canonical


def test_canonical_prints_exactly_the_rfc8785_bytes(work: Work) -> None:
    result = cli("canonical", work.doc)
    assert result.exit_code == 0, explain(result)
    expected = rfc8785.dumps(json.loads(work.doc.read_bytes()))
    assert result.stdout_bytes == expected
    assert keccak256(result.stdout_bytes) == work.document.hash()


def test_canonical_of_any_json_sorts_keys_and_normalises_numbers(work: Work) -> None:
    path = work.raw(
        "any.json",
        '{\n  "b": [1.0, 2e3, -0.5],\n  "é": null,\n  "a": {"z": true, "y": "中文"}\n}\n'.encode(),
    )
    result = cli("canonical", path)
    assert result.exit_code == 0, explain(result)
    assert result.stdout_bytes == '{"a":{"y":"中文","z":true},"b":[1,2000,-0.5],"é":null}'.encode()
    assert result.stdout_bytes == rfc8785.dumps(json.loads(path.read_bytes()))


def test_canonical_json(work: Work) -> None:
    document = ok_json(cli("canonical", work.doc, "--json"))
    assert set(document) == {"ok", "canonical", "keccak256"}
    assert document["ok"] is True
    assert document["canonical"].encode() == rfc8785.dumps(json.loads(work.doc.read_bytes()))
    assert document["keccak256"] == hex32(work.document.hash())
    assert document["keccak256"] == ok_json(cli("hash", work.doc, "--json"))["hash"]


def test_canonical_of_a_signed_file_covers_the_signature_too(work: Work) -> None:
    # canonical shows any JSON file as it is: the signed file's bytes include the signature
    document = ok_json(cli("canonical", work.signed, "--json"))
    assert document["canonical"].encode() == rfc8785.dumps(json.loads(work.signed.read_bytes()))
    assert document["keccak256"] != hex32(work.document.hash())


# ---------------------------------------------------------------------- offline proof lookup


def test_proof_prints_a_stored_bundle(work: Work) -> None:
    proofs = work.root / "proofs"
    proofs.mkdir()
    commitment = work.bundle["commitment"]
    write_json(proofs / f"{commitment}.json", work.bundle)
    result = cli("proof", commitment.upper().replace("0X", "0x"), "--proofs-dir", proofs)
    assert result.exit_code == 0, explain(result)
    assert one_json(result.stdout) == work.bundle
    assert ok_json(cli("proof", commitment, "--proofs-dir", proofs, "--json")) == work.bundle


def test_proof_of_an_unknown_hash_is_a_failed_check(work: Work) -> None:
    digest = hex32(keccak256(b"never anchored"))
    result = cli("proof", digest, "--proofs-dir", work.root, "--json")
    assert result.exit_code == 1, explain(result)
    document = one_json(result.stdout)
    assert document["ok"] is False
    assert document["error"]["type"] == "NotFound"
    assert digest in document["error"]["message"]

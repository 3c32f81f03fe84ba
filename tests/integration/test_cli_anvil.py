"""The `commitledger` script across processes against a real anvil node.

keys, deploy, sign, anchor (a batch and singly), proof, verify-proof (and tampered bundles),
contract verify; and the refusals that come from the contract itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.cli import flat, one_json, write_documents, write_json, write_signed

from ledger import (
    AnvilNode,
    Chain,
    SignedCommitment,
    decode_proof,
    encode_proof,
    hex32,
    to_hash32,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("anvil_binary"),
]

COMMITLEDGER = Path(sys.executable).parent / "commitledger"
DEPARTMENT = "BJ-HRSS"


@dataclass
class Run:
    """One finished `commitledger` process."""

    args: list[str]
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"{self.args}: exit {self.code}\nstdout: {self.stdout}\nstderr: {self.stderr}"

    def json(self) -> Any:
        """The one JSON document on stdout."""
        return one_json(self.stdout)


def commitledger(*args: object, cwd: Path) -> Run:
    """Run the installed `commitledger` script in its own process."""
    argv = [str(a) for a in args]
    done = subprocess.run(
        [str(COMMITLEDGER), *argv], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    return Run(argv, done.returncode, done.stdout, done.stderr)


def succeeds(*args: object, cwd: Path) -> Any:
    """Run a --json command that must succeed; return its JSON document."""
    run = commitledger(*args, "--json", cwd=cwd)
    assert run.code == 0, run
    document = run.json()
    assert document.get("ok", True) is True, run
    return document


def check_failed(*args: object, cwd: Path) -> Any:
    """Run a --json command that must fail a check (exit 1); return its JSON document."""
    run = commitledger(*args, "--json", cwd=cwd)
    assert run.code == 1, run
    document = run.json()
    assert document["ok"] is False, run
    return document


@dataclass
class Setup:
    """A ledger deployed by `commitledger deploy` on a fresh anvil node."""

    dir: Path
    rpc: str
    admin: Path
    registrar: Path
    verifier: Path
    addresses: dict[str, str]
    deployment: Path
    record: dict[str, Any]

    @property
    def pin(self) -> tuple[object, ...]:
        """verify-proof's trust anchor: the deployment as the department publishes it."""
        return ("--contract", self.record["contract"], "--chain-id", self.record["chain_id"])

    def run(self, *args: object) -> Run:
        return commitledger(*args, cwd=self.dir)

    def ok(self, *args: object) -> Any:
        return succeeds(*args, cwd=self.dir)

    def failed(self, *args: object) -> Any:
        return check_failed(*args, cwd=self.dir)

    def signed_documents(
        self, count: int, prefix: str, seed: int, *, via_cli: bool = False
    ) -> list[Path]:
        """Write `count` sample documents and sign them (with `commitledger sign` if asked;
        in-process otherwise, as each process costs a second of start-up)."""
        documents = write_documents(
            self.dir / "docs", count, seed=seed, department=DEPARTMENT, prefix=prefix
        )
        if not via_cli:
            return [write_signed(path.with_suffix(".signed.json"), d) for path, d in documents]
        key = self.dir / f"{prefix}-applicant.pem"
        self.ok("keys", "new", "--kind", "ed25519", "--out", key)
        return [Path(self.ok("sign", path, "--key", key)["signed"]) for path, _ in documents]

    def anchor(self, files: list[Path], *options: object) -> Any:
        return self.ok(
            "anchor",
            *files,
            "--key",
            self.registrar,
            "--deployment",
            self.deployment,
            "--proofs-dir",
            self.dir / "proofs",
            *options,
        )

    def block_number(self) -> int:
        return Chain.connect(self.rpc).block_number()


@pytest.fixture
def setup(anvil: AnvilNode, tmp_path: Path) -> Setup:
    keys = {name: tmp_path / f"{name}.json" for name in ("admin", "registrar", "verifier")}
    with ThreadPoolExecutor() as pool:  # three independent processes, side by side
        made = pool.map(
            lambda path: succeeds("keys", "new", "--kind", "ethereum", "--out", path, cwd=tmp_path),
            keys.values(),
        )
        addresses = {name: facts["address"] for name, facts in zip(keys, made, strict=True)}
    deployment = tmp_path / "deployment.json"
    record = succeeds(
        "deploy",
        "--rpc",
        anvil.url,
        "--admin-key",
        keys["admin"],
        "--department",
        DEPARTMENT,
        "--registrar-key",
        keys["registrar"],
        "--verifier-key",
        keys["verifier"],
        "--fund",
        "--out",
        deployment,
        cwd=tmp_path,
    )
    assert record["rpc"] == anvil.url
    assert record["department"] == DEPARTMENT
    assert json.loads(deployment.read_text())["contract"] == record["contract"]
    return Setup(
        tmp_path,
        anvil.url,
        keys["admin"],
        keys["registrar"],
        keys["verifier"],
        addresses,
        deployment,
        record,
    )


def test_batch_anchor_prove_verify_and_tamper(setup: Setup) -> None:
    files = setup.signed_documents(5, "batch", seed=1, via_cli=True)
    hashes = [
        hex32(SignedCommitment.from_json_obj(json.loads(f.read_text())).hash()) for f in files
    ]
    assert setup.ok("hash", files[0])["hash"] == hashes[0]

    anchored = setup.anchor(files)
    assert anchored["mode"] == "batch"
    root = anchored["root"]
    assert root.startswith("0x")
    assert len(root) == 66
    assert len(anchored["transactions"]) == 1
    assert anchored["gas_used"] > 0
    items = anchored["commitments"]
    assert [item["file"] for item in items] == [str(f) for f in files]
    assert [item["hash"] for item in items] == hashes
    assert all(item["proof"] for item in items)

    for item in (items[0], items[-1]):
        bundle = setup.ok("proof", item["hash"], "--proofs-dir", setup.dir / "proofs")
        assert bundle["commitment"] == item["hash"]
        assert bundle["root"] == root
        assert bundle["version"] == 2
        assert [hex32(p) for p in decode_proof(bundle["proof"])] == item["proof"]
        assert bundle["contract"] == setup.record["contract"]
        assert bundle["chain_id"] == setup.record["chain_id"]

    bundle_file = setup.dir / "proofs" / f"{hashes[0]}.json"
    report = setup.ok("verify-proof", bundle_file, "--rpc", setup.rpc, *setup.pin)
    assert report["commitment"] == hashes[0]
    assert report["checks"]
    assert all(check["ok"] for check in report["checks"])
    human = setup.run("verify-proof", bundle_file, "--rpc", setup.rpc, *setup.pin)
    assert human.code == 0, human
    assert "verified" in human.stdout
    assert "NOT verified" not in human.stdout
    last = setup.dir / "proofs" / f"{hashes[-1]}.json"
    assert setup.ok("verify-proof", last, "--rpc", setup.rpc, *setup.pin)["ok"] is True

    # a bundle edited by hand fails a check (exit 1), with the report still one document
    original = json.loads(bundle_file.read_text())
    nodes = [hex32(p) for p in decode_proof(original["proof"])]
    flipped_nodes = [to_hash32(_flip(nodes[0])), *map(to_hash32, nodes[1:])]
    flipped = dict(original, proof=encode_proof(flipped_nodes))
    moved = dict(original, commitment=_flip(hashes[0]))
    for name, edited in {"proof": flipped, "commitment": moved}.items():
        path = write_json(setup.dir / f"edited-{name}.json", edited)
        report = setup.failed("verify-proof", path, "--rpc", setup.rpc, *setup.pin)
        failed = {check["name"] for check in report["checks"] if not check["ok"]}
        assert {"merkle", "anchored"} <= failed, report
    human = setup.run("verify-proof", path, "--rpc", setup.rpc, *setup.pin)
    assert human.code == 1, human
    assert "NOT verified" in human.stdout

    # the same batch again: the contract refuses, nothing is sent, the proofs stay
    before = setup.block_number()
    proofs_before = {p.name: p.read_bytes() for p in (setup.dir / "proofs").iterdir()}
    again = setup.run(
        "anchor",
        *files,
        "--key",
        setup.registrar,
        "--deployment",
        setup.deployment,
        "--proofs-dir",
        setup.dir / "proofs",
        "--json",
    )
    assert again.code == 1, again
    error = again.json()["error"]
    assert error["type"] == "BatchAlreadyAnchored"
    assert "BatchAlreadyAnchored" in error["raw"]
    assert "already anchored" in error["message"]  # a sentence, not the raw error
    assert root in error["message"]
    assert setup.block_number() == before
    assert {p.name: p.read_bytes() for p in (setup.dir / "proofs").iterdir()} == proofs_before

    # in another order the tree is the same, so it is the same batch
    reordered = setup.run(
        "anchor", *reversed(files), "--key", setup.registrar, "--deployment", setup.deployment
    )
    assert reordered.code == 1, reordered
    assert "already anchored" in flat(reordered.stderr)


def _flip(hex_hash: str) -> str:
    """The hash with its last hex digit changed."""
    last = hex_hash[-1]
    return hex_hash[:-1] + ("0" if last != "0" else "1")


def test_single_anchors_verify(setup: Setup) -> None:
    files = setup.signed_documents(2, "single", seed=2)
    anchored = setup.anchor(files, "--single")
    assert anchored["mode"] == "single"
    assert anchored["root"] is None
    assert len(anchored["transactions"]) == 2
    for item in anchored["commitments"]:
        assert item["proof"] == []
        bundle = setup.dir / "proofs" / f"{item['hash']}.json"
        assert json.loads(bundle.read_text())["root"] == "0x" + "00" * 32
        report = setup.ok("verify-proof", bundle, "--rpc", setup.rpc, *setup.pin)
        assert all(check["ok"] for check in report["checks"])

    # anchoring one of them singly again: AlreadyAnchored, exit 1
    again = setup.run(
        "anchor", files[0], "--single", "--key", setup.registrar, "--deployment", setup.deployment
    )
    assert again.code == 1, again
    assert "already anchored" in flat(again.stderr)


def test_contract_verify(setup: Setup) -> None:
    contract = setup.record["contract"]
    same = setup.ok("contract", "verify", "--rpc", setup.rpc, "--address", contract)
    assert same["ok"] is True
    assert same["deployed_bytes"] == same["expected_bytes"] > 0
    human = setup.run("contract", "verify", "--rpc", setup.rpc, "--address", contract)
    assert human.code == 0, human
    assert "matches" in human.stdout

    registrar = setup.addresses["registrar"]
    empty = setup.failed("contract", "verify", "--rpc", setup.rpc, "--address", registrar)
    assert empty["deployed_bytes"] == 0
    human = setup.run("contract", "verify", "--rpc", setup.rpc, "--address", registrar)
    assert human.code == 1, human
    assert "DIFFERS" in human.stdout


def test_the_contract_refuses_an_account_without_the_role(setup: Setup) -> None:
    files = setup.signed_documents(2, "refused", seed=3)
    before = setup.block_number()
    for options in ([], ["--single"]):
        run = setup.run(
            "anchor",
            *files,
            *options,
            "--key",
            setup.verifier,
            "--deployment",
            setup.deployment,
            "--proofs-dir",
            setup.dir / "proofs",
            "--json",
        )
        assert run.code == 1, run
        error = run.json()["error"]
        assert error["type"] == "AccessControlUnauthorizedAccount"
        assert setup.addresses["verifier"].lower() in error["message"].lower()
    assert setup.block_number() == before
    assert not (setup.dir / "proofs").exists()


def test_a_bad_signature_sends_nothing_to_a_live_node(setup: Setup) -> None:
    good, bad = setup.signed_documents(2, "tamper", seed=4)
    obj = json.loads(bad.read_text())
    obj["document"]["channel"] = "counter" if obj["document"]["channel"] == "online" else "online"
    write_json(bad, obj)
    before = setup.block_number()
    run = setup.run("anchor", good, bad, "--key", setup.registrar, "--deployment", setup.deployment)
    assert run.code == 2, run
    assert "signature does not verify" in flat(run.stderr)
    assert setup.block_number() == before


def test_a_refused_single_anchor_leaves_no_unprovable_commitment(setup: Setup) -> None:
    first, second = setup.signed_documents(2, "partial", seed=5)
    setup.anchor([second], "--single")
    run = setup.run(
        "anchor",
        first,
        second,
        "--single",
        "--key",
        setup.registrar,
        "--deployment",
        setup.deployment,
        "--proofs-dir",
        setup.dir / "proofs",
    )
    assert run.code == 1, run
    assert "already anchored" in flat(run.stderr)
    first_hash = setup.ok("hash", first)["hash"]
    has_proof = (setup.dir / "proofs" / f"{first_hash}.json").exists()
    # either nothing was sent for `first`, or its proof bundle was kept
    retry = setup.run(
        "anchor", first, "--single", "--key", setup.registrar, "--deployment", setup.deployment
    )
    assert has_proof or retry.code == 0, (has_proof, str(retry))

"""Department keys for the service tests (no tests here): the deployment's accounts written
where the service looks for them, `<keys_dir>/<D>/{registrar,verifier}.json, report.pem`."""

from __future__ import annotations

import json
from pathlib import Path

from eth_account.signers.local import LocalAccount

from ledger import SigningKey
from support.deployment import HRSS, MARKET, Deployment


def write_account(path: Path, account: LocalAccount) -> None:
    """An account key file as `commitledger keys new --kind ethereum` writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"kind": "ethereum", "address": account.address, "private_key": account.key.hex()}
    path.write_text(json.dumps(body) + "\n")
    path.chmod(0o600)


def write_department_keys(
    keys_dir: Path,
    department: str,
    registrar: LocalAccount | None,
    verifier: LocalAccount | None,
    *,
    report: bool = True,
) -> None:
    """The department's keys that are given; the others are left missing."""
    folder = keys_dir / department
    folder.mkdir(parents=True, exist_ok=True)
    if registrar is not None:
        write_account(folder / "registrar.json", registrar)
    if verifier is not None:
        write_account(folder / "verifier.json", verifier)
    if report:
        (folder / "report.pem").write_bytes(SigningKey.generate("ed25519").to_pem())


def write_all_keys(keys_dir: Path, deployment: Deployment) -> None:
    """Both departments' registrar, verifier and report keys."""
    write_department_keys(keys_dir, HRSS, deployment.registrar, deployment.verifier)
    write_department_keys(keys_dir, MARKET, deployment.other_registrar, deployment.other_verifier)

"""Department keys for the tests (no tests here): the deployment's accounts written where the
service looks for them, `<keys_dir>/<D>/{registrar,verifier}.json, report.pem`, encrypted as
`commitledger keys new --passphrase-file` writes them, with a cheap scrypt cost.

Clear key files are refused outside `serve --demo`; the suite's processes open these keys
with `TEST_PASSPHRASE`, which tests/conftest.py puts in `COMMITLEDGER_KEY_PASSPHRASE` (and
`COMMITLEDGER_KEY_SCRYPT_N`, so that keys the commands make are cheap too). `write_clear_account`
writes the old clear form, for the tests that check it is refused. `write_master_key`
writes the store's master key as `keys new --kind master` does (a master keystore), and
`open_master_key` opens one as the service does.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from eth_account.signers.local import LocalAccount

from api.keyfiles import (
    KeyUnlock,
    keystore_bytes,
    load_master_key,
    master_keystore_bytes,
    pem_bytes,
)
from ledger import SigningKey, Vault
from support.deployment import HRSS, MARKET, Deployment

TEST_PASSPHRASE = "the suite's key passphrase"  # a test fixture's
TEST_SCRYPT_N = 2**4  # the standard n = 2**18 takes ~1 s a key to write and to open
CHEAP_UNLOCK = KeyUnlock(TEST_PASSPHRASE, scrypt_n=TEST_SCRYPT_N)


def write_account(path: Path, account: LocalAccount, unlock: KeyUnlock = CHEAP_UNLOCK) -> Path:
    """An account keystore as `commitledger keys new --kind ethereum` writes it (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(keystore_bytes(account, unlock))
    path.chmod(0o600)
    return path


def write_master_key(
    path: Path, vault: Vault | None = None, unlock: KeyUnlock = CHEAP_UNLOCK
) -> Vault:
    """The store's master key (`vault`'s, else a new one) as a master keystore (0600)."""
    vault = vault or Vault.from_text(Vault.new_master_key())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(master_keystore_bytes(vault.master_key, unlock))
    path.chmod(0o600)
    return vault


def open_master_key(path: Path, unlock: KeyUnlock = CHEAP_UNLOCK) -> Vault:
    """The vault of a master keystore (the suite's passphrase)."""
    return load_master_key(path, unlock)


def write_clear_account(path: Path, account: LocalAccount) -> Path:
    """An account key file in clear, as `keys new` wrote it before keys were encrypted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"kind": "ethereum", "address": account.address, "private_key": account.key.hex()}
    path.write_text(json.dumps(body) + "\n")
    path.chmod(0o600)
    return path


def write_report_key(
    path: Path, key: SigningKey | None = None, unlock: KeyUnlock = CHEAP_UNLOCK
) -> SigningKey:
    """A department's report key (`key`, else a new Ed25519 one) as encrypted PKCS#8 (0600)."""
    private = (
        ed25519.Ed25519PrivateKey.generate()
        if key is None
        else serialization.load_pem_private_key(key.to_pem(), password=None)
    )
    assert isinstance(private, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem_bytes(private, unlock))
    path.chmod(0o600)
    return SigningKey(private)


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
        write_report_key(folder / "report.pem")


def write_all_keys(keys_dir: Path, deployment: Deployment) -> None:
    """Both departments' registrar, verifier and report keys."""
    write_department_keys(keys_dir, HRSS, deployment.registrar, deployment.verifier)
    write_department_keys(keys_dir, MARKET, deployment.other_registrar, deployment.other_verifier)

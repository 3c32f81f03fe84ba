"""A department's own machine for the consortium tests: its data directory holding only its
own keys, encrypted (scrypt made cheap for the tests), its passphrase file; its copy of the
store's master key, encrypted with its own passphrase; and whether an instance answers."""

from __future__ import annotations

from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric import ed25519
from eth_account.signers.local import LocalAccount

from api.keyfiles import KeyUnlock, keystore_bytes, master_keystore_bytes, pem_bytes
from ledger import Vault
from support.deployment import HRSS, MARKET

# Each department its own passphrase; scrypt cheap for the test (n = 2**18 takes ~1 s a key).
PASSPHRASES = {HRSS: "hrss: correct horse battery", MARKET: "samr: staple and more"}
PUBLIC_PASSPHRASE = "public: the lookup's own"  # the public instance's machine


def machine_master_key(machine: Path, vault: Vault) -> Path:
    """The store's master key on one machine (`machine/master.key`, where `serve --data-dir`
    finds it), encrypted with that machine's passphrase file: each machine holds its own
    copy of the same key."""
    passphrase = (machine / "passphrase").read_text().removesuffix("\n")
    path = machine / "master.key"
    path.write_bytes(master_keystore_bytes(vault.master_key, KeyUnlock(passphrase, scrypt_n=2**4)))
    path.chmod(0o600)
    return path


def share_master_key(root: Path, *machines: Path) -> Path:
    """A new master key for the store, a copy on each department's machine and on the
    public instance's (made here, under `root`); the public machine's directory."""
    vault = Vault.from_text(Vault.new_master_key())
    for machine in machines:
        machine_master_key(machine, vault)
    return public_dir(root, vault)


def public_dir(root: Path, vault: Vault) -> Path:
    """The public instance's machine: no department keys, the master key, its passphrase."""
    folder = root / "public"
    folder.mkdir(parents=True, mode=0o700)
    (folder / "passphrase").write_text(PUBLIC_PASSPHRASE + "\n")
    machine_master_key(folder, vault)
    return folder


def answers(url: str) -> bool:
    """Whether `url` answers 200 within two seconds."""
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def department_dir(
    root: Path, department: str, registrar: LocalAccount, verifier: LocalAccount
) -> Path:
    """A department's own machine: its data directory, its keys encrypted, its passphrase file."""
    unlock = KeyUnlock(PASSPHRASES[department], scrypt_n=2**4)
    folder = root / department / "keys" / department
    folder.mkdir(parents=True, mode=0o700)
    (folder / "registrar.json").write_bytes(keystore_bytes(registrar, unlock))
    (folder / "verifier.json").write_bytes(keystore_bytes(verifier, unlock))
    (folder / "report.pem").write_bytes(pem_bytes(ed25519.Ed25519PrivateKey.generate(), unlock))
    (root / department / "passphrase").write_text(PASSPHRASES[department] + "\n")
    return root / department

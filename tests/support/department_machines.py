"""A department's own machine for the consortium tests: its data directory holding only its
own keys, encrypted (scrypt made cheap for the tests), its passphrase file; and whether an
instance answers."""

from __future__ import annotations

from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric import ed25519
from eth_account.signers.local import LocalAccount

from api.keyfiles import KeyUnlock, keystore_bytes, pem_bytes
from support.deployment import HRSS, MARKET

# Each department its own passphrase; scrypt cheap for the test (n = 2**18 takes ~1 s a key).
PASSPHRASES = {HRSS: "hrss: correct horse battery", MARKET: "samr: staple and more"}


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

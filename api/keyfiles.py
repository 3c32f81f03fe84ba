"""Key files: applicant signing keys (PEM) and department chain accounts (JSON), written 0600."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger import InvalidDocumentError, SignatureError, SigningKey, Vault

KeyKind = Literal["ed25519", "ecdsa-p256", "ethereum", "master"]


def _write_secret(path: Path, data: bytes) -> None:
    """Create `path` readable by its owner only; refuse to overwrite a key."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def new_key(kind: KeyKind, path: Path) -> dict[str, str]:
    """Create a key of `kind` at `path`; return its public facts (never the secret)."""
    if path.exists():
        raise InvalidDocumentError(f"{path} exists already: keys are never overwritten")
    if kind == "master":  # the store's master key: wraps every commitment's data key
        _write_secret(path, (Vault.new_master_key() + "\n").encode())
        return {"kind": kind, "path": str(path)}
    if kind == "ethereum":
        account = Account.create()
        body = {"kind": "ethereum", "address": account.address, "private_key": account.key.hex()}
        _write_secret(path, (json.dumps(body, indent=2) + "\n").encode())
        return {"kind": kind, "address": account.address, "path": str(path)}
    key = SigningKey.generate(kind)
    _write_secret(path, key.to_pem())
    return {"kind": kind, "public_key": key.public_key_b64(), "path": str(path)}


def load_signing_key(path: Path) -> SigningKey:
    """An applicant's signing key from a PEM file."""
    try:
        return SigningKey.from_pem(path.read_bytes())
    except OSError as exc:
        raise SignatureError(f"cannot read key {path}: {exc.strerror}") from None
    except SignatureError as exc:
        raise SignatureError(f"{path}: {exc}") from None


def load_account(path: Path) -> LocalAccount:
    """A department's chain account from a key file written by `keys new --kind ethereum`."""
    try:
        body = json.loads(path.read_text())
        key = body["private_key"]
        account: LocalAccount = Account.from_key(key)
    except OSError as exc:
        raise InvalidDocumentError(f"cannot read key {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError):
        raise InvalidDocumentError(
            f"{path} is not an account key file (make one with `commitledger keys new --kind "
            "ethereum`)"
        ) from None
    return account

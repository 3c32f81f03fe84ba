"""Key files: chain accounts as Web3 Secret Storage v3 keystores, signing keys as encrypted
PKCS#8 PEM, the store's master key; written 0600, never overwritten.

A passphrase comes from a file or the environment (`COMMITLEDGER_KEY_PASSPHRASE`), never
from the command line. Clear key files (account JSON holding `private_key`, unencrypted PEM)
are what `keys new` wrote before keys were encrypted: a department's keys in clear are
accepted only where `KeyUnlock.allow_clear` says so (`--demo`, or the development setting
`allow_clear_keys`); an applicant's own signing key may be clear.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger import InvalidDocumentError, SignatureError, SigningKey, Vault, checksum_address

KeyKind = Literal["ed25519", "ecdsa-p256", "ethereum", "master"]
PASSPHRASE_ENV = "COMMITLEDGER_KEY_PASSPHRASE"  # noqa: S105  # a variable's name
PASSPHRASE_FILE_ENV = "COMMITLEDGER_KEY_PASSPHRASE_FILE"  # noqa: S105
ALLOW_CLEAR_ENV = "COMMITLEDGER_ALLOW_CLEAR_KEYS"
MAX_KEY_FILE_BYTES = 64 * 1024  # a keystore is under 1 KiB; anything this big is not one
MAX_PASSPHRASE_BYTES = 4096
TRUE_WORDS = ("1", "true", "yes", "on")
GIVE_PASSPHRASE = (
    f"give its passphrase in a file (--passphrase-file or key_passphrase_file) or in "
    f"{PASSPHRASE_ENV}"
)
CLEAR_REFUSED = (
    "clear key files are accepted only with --demo or allow_clear_keys (development): "
    "encrypt it with `commitledger keys encrypt {path}`"
)


class KeyFileError(InvalidDocumentError):
    """A key file cannot be used: unreadable, not a key, locked without its passphrase, the
    wrong passphrase, or clear where clear keys are refused. Names the file, never a secret."""


@dataclass(frozen=True)
class KeyUnlock:
    """How key files are opened and written: the passphrase (None: new keys are clear and
    encrypted ones cannot be opened), whether clear files are accepted, and the scrypt cost
    of new keystores (None: the standard n = 2**18; tests use less)."""

    passphrase: str | None = field(default=None, repr=False)
    allow_clear: bool = False
    scrypt_n: int | None = None

    @classmethod
    def from_env(
        cls, *, passphrase_file: Path | None = None, allow_clear: bool | None = None
    ) -> KeyUnlock:
        """From `passphrase_file`, else `COMMITLEDGER_KEY_PASSPHRASE_FILE`, else
        `COMMITLEDGER_KEY_PASSPHRASE`; clear files allowed by `allow_clear`, else by
        `COMMITLEDGER_ALLOW_CLEAR_KEYS`."""
        named = passphrase_file or (
            Path(os.environ[PASSPHRASE_FILE_ENV]) if os.environ.get(PASSPHRASE_FILE_ENV) else None
        )
        passphrase = (
            read_passphrase(named) if named is not None else os.environ.get(PASSPHRASE_ENV) or None
        )
        if allow_clear is None:
            allow_clear = os.environ.get(ALLOW_CLEAR_ENV, "").strip().lower() in TRUE_WORDS
        return cls(_checked(passphrase, PASSPHRASE_ENV), allow_clear)

    @classmethod
    def for_command_line(cls) -> KeyUnlock:
        """For a key a command names itself (`anchor --key`, `deploy --admin-key`): the
        environment's passphrase, clear files accepted (the operator chose the file; the
        refusal guards what an instance picks up from its keys directory)."""
        return cls.from_env(allow_clear=True)


def read_passphrase(path: Path) -> str:
    """The passphrase a file holds (one line; the line end is not part of it)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PASSPHRASE_BYTES + 2)
    except OSError as exc:
        raise KeyFileError(f"cannot read passphrase file {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8").removesuffix("\n").removesuffix("\r")
    except UnicodeDecodeError:
        raise KeyFileError(f"passphrase file {path} is not UTF-8 text") from None
    checked = _checked(text, f"passphrase file {path}")
    assert checked is not None
    return checked


def _checked(passphrase: str | None, where: str) -> str | None:
    if passphrase is None:
        return None
    if not passphrase:
        raise KeyFileError(f"{where}: the passphrase is empty")
    if len(passphrase.encode()) > MAX_PASSPHRASE_BYTES or "\n" in passphrase:
        raise KeyFileError(f"{where}: a passphrase is one line of at most 4096 bytes")
    return passphrase


# ---------------------------------------------------------------------- writing


def _write_secret(path: Path, data: bytes) -> None:
    """Create `path` readable by its owner only; refuse to overwrite a key."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _replace_secret(path: Path, data: bytes) -> None:
    """Put `data` in place of `path` at once (a file beside it, 0600, renamed over it)."""
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def keystore_bytes(account: LocalAccount, unlock: KeyUnlock) -> bytes:
    """The account as a Web3 Secret Storage v3 keystore (scrypt), with its address."""
    assert unlock.passphrase is not None
    body = Account.encrypt(account.key, unlock.passphrase, kdf="scrypt", iterations=unlock.scrypt_n)
    return (json.dumps(body, indent=2) + "\n").encode()


def pem_bytes(
    key: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey, unlock: KeyUnlock
) -> bytes:
    """The key as PKCS#8 PEM: encrypted (the best cipher cryptography offers) with a
    passphrase, clear without."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(unlock.passphrase.encode())
        if unlock.passphrase is not None
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def new_key(kind: KeyKind, path: Path, unlock: KeyUnlock | None = None) -> dict[str, Any]:
    """Create a key of `kind` at `path`, encrypted when `unlock` has a passphrase; return its
    public facts (never the secret)."""
    unlock = unlock or KeyUnlock()
    if path.exists():
        raise InvalidDocumentError(f"{path} exists already: keys are never overwritten")
    encrypted = unlock.passphrase is not None
    if kind == "master":  # the store's master key: wraps every commitment's data key
        _write_secret(path, (Vault.new_master_key() + "\n").encode())
        return {"kind": kind, "path": str(path)}
    if kind == "ethereum":
        account: LocalAccount = Account.create()
        if encrypted:
            data = keystore_bytes(account, unlock)
        else:
            body = {
                "kind": "ethereum",
                "address": account.address,
                "private_key": account.key.hex(),
            }
            data = (json.dumps(body, indent=2) + "\n").encode()
        _write_secret(path, data)
        return {"kind": kind, "address": account.address, "path": str(path), "encrypted": encrypted}
    private: ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey = (
        ed25519.Ed25519PrivateKey.generate()
        if kind == "ed25519"
        else ec.generate_private_key(ec.SECP256R1())
    )
    _write_secret(path, pem_bytes(private, unlock))
    return {
        "kind": kind,
        "public_key": SigningKey(private).public_key_b64(),
        "path": str(path),
        "encrypted": encrypted,
    }


def encrypt_in_place(path: Path, unlock: KeyUnlock, *, write: bool = True) -> dict[str, Any]:
    """Encrypt a clear account or PEM key file where it is (the clear bytes replaced at
    once); a file encrypted already is left as it is. Its public facts, `changed` saying
    whether it was (`write` False: would be) encrypted now; KeyFileError for a file that is
    not a key."""
    if unlock.passphrase is None:
        raise KeyFileError(f"cannot encrypt {path}: no passphrase; {GIVE_PASSPHRASE}")
    raw = _read(path)
    facts: dict[str, Any] = {"path": str(path)}
    if _is_pem(raw):
        if b"ENCRYPTED PRIVATE KEY" in raw:
            return {**facts, "kind": "pem", "changed": False}
        key = _clear_pem(path, raw)
        if write:
            _replace_secret(path, pem_bytes(key, unlock))
        return {
            **facts,
            "kind": "pem",
            "public_key": SigningKey(key).public_key_b64(),
            "changed": True,
        }
    body = _json(path, raw)
    if _is_keystore(body):
        return {**facts, "kind": "ethereum", "address": _address(body), "changed": False}
    account = _clear_account(path, body)
    if write:
        _replace_secret(path, keystore_bytes(account, unlock))
    return {**facts, "kind": "ethereum", "address": account.address, "changed": True}


# ---------------------------------------------------------------------- reading


def _read(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"cannot read key {path}: {exc.strerror}") from None
    if len(raw) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{path} is too large to be a key file")
    return raw


def _is_pem(raw: bytes) -> bool:
    return raw.lstrip().startswith(b"-----BEGIN ")


def _json(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        raise KeyFileError(
            f"{path} is not an account key file (make one with `commitledger keys new --kind "
            "ethereum`)"
        )
    return body


def _is_keystore(body: dict[str, Any]) -> bool:
    return "crypto" in body or "Crypto" in body


def _address(body: dict[str, Any]) -> str | None:
    """The keystore's address (optional in the definition), checksummed; None without one."""
    address = body.get("address")
    if not isinstance(address, str):
        return None
    return checksum_address("0x" + address.lower().removeprefix("0x"))


def _clear_account(path: Path, body: dict[str, Any]) -> LocalAccount:
    try:
        account: LocalAccount = Account.from_key(body["private_key"])
    except (ValueError, KeyError, TypeError):
        raise KeyFileError(
            f"{path} is not an account key file (make one with `commitledger keys new --kind "
            "ethereum`)"
        ) from None
    return account


def _clear_pem(path: Path, raw: bytes) -> ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey:
    return _pem_key(path, raw, None)


def _pem_key(
    path: Path, raw: bytes, passphrase: str | None
) -> ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(
            raw, password=None if passphrase is None else passphrase.encode()
        )
    except TypeError:  # encrypted without a password, or a password for a clear key
        raise KeyFileError(f"{path} is encrypted: {GIVE_PASSPHRASE}") from None
    except ValueError:
        if passphrase is not None and b"ENCRYPTED PRIVATE KEY" in raw:
            raise KeyFileError(f"{path}: wrong passphrase (nothing was loaded)") from None
        raise KeyFileError(f"{path} is not a PEM private key") from None
    except Exception:  # UnsupportedAlgorithm and the like: not a key this project signs with
        raise KeyFileError(f"{path} is not a PEM private key") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyFileError(f"{path}: unsupported key type {type(key).__name__}")
    return key


def _refuse_clear(path: Path, unlock: KeyUnlock) -> None:
    if not unlock.allow_clear:
        raise KeyFileError(f"{path} is a clear key file: " + CLEAR_REFUSED.format(path=path))


def load_account(path: Path, unlock: KeyUnlock | None = None) -> LocalAccount:
    """A chain account from a keystore (any standard scrypt or PBKDF2 parameters) or, where
    `unlock` allows clear keys, from a clear file of `keys new`. `unlock` None: a key the
    command line names (`KeyUnlock.for_command_line`)."""
    unlock = unlock if unlock is not None else KeyUnlock.for_command_line()
    body = _json(path, _read(path))
    if not _is_keystore(body):
        account = _clear_account(path, body)
        _refuse_clear(path, unlock)
        return account
    if unlock.passphrase is None:
        raise KeyFileError(f"{path} is an encrypted keystore: {GIVE_PASSPHRASE}")
    try:
        key = Account.decrypt(body, unlock.passphrase)
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise KeyFileError(f"{path}: wrong passphrase (nothing was loaded)") from None
        raise KeyFileError(f"{path} is not a Web3 Secret Storage keystore") from None
    except (KeyError, TypeError, NotImplementedError):
        raise KeyFileError(f"{path} is not a Web3 Secret Storage keystore") from None
    found: LocalAccount = Account.from_key(key)
    return found


def load_report_key(path: Path, unlock: KeyUnlock | None = None) -> SigningKey:
    """A department's report-signing key: encrypted PKCS#8 PEM, or clear where `unlock`
    allows clear keys (`unlock` None: a key the command line names)."""
    unlock = unlock if unlock is not None else KeyUnlock.for_command_line()
    raw = _read(path)
    if not _is_pem(raw):
        raise KeyFileError(f"{path} is not a PEM private key")
    if b"ENCRYPTED PRIVATE KEY" not in raw:
        key = _pem_key(path, raw, None)
        _refuse_clear(path, unlock)
        return SigningKey(key)
    if unlock.passphrase is None:
        raise KeyFileError(f"{path} is encrypted: {GIVE_PASSPHRASE}")
    return SigningKey(_pem_key(path, raw, unlock.passphrase))


def load_signing_key(path: Path, unlock: KeyUnlock | None = None) -> SigningKey:
    """An applicant's signing key from a PEM file: clear, or encrypted with the passphrase
    of `unlock` (None: the environment's)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SignatureError(f"cannot read key {path}: {exc.strerror}") from None
    if b"ENCRYPTED PRIVATE KEY" not in raw:
        try:
            return SigningKey.from_pem(raw)
        except SignatureError as exc:
            raise SignatureError(f"{path}: {exc}") from None
    unlock = unlock if unlock is not None else KeyUnlock.for_command_line()
    if unlock.passphrase is None:
        raise SignatureError(f"{path} is encrypted: {GIVE_PASSPHRASE}")
    try:
        return SigningKey(_pem_key(path, raw, unlock.passphrase))
    except KeyFileError as exc:
        raise SignatureError(str(exc)) from None

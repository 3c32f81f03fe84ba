"""Key files: chain accounts as Web3 Secret Storage v3 keystores, signing keys as encrypted
PKCS#8 PEM, the store's master key; written 0600, never overwritten.

A passphrase comes from a file or the environment (`COMMITLEDGER_KEY_PASSPHRASE`), never
from the command line. Clear key files (account JSON holding `private_key`, unencrypted PEM)
are what `keys new` wrote before keys were encrypted: a department's keys, an admin's or a
Safe owner's account in clear are accepted only by `serve --demo` (`KeyUnlock.allow_clear`,
which nothing in the environment or the configuration sets) and refused everywhere else,
naming the file and `commitledger keys encrypt`; a chain account is never written in clear
outside the demo either. An applicant's own signing key may be clear.

The store's master key (32 bytes; it wraps every commitment's data key) is kept in the same
standard as the accounts: a Web3 Secret Storage v3 keystore (scrypt, AES-128-CTR, keccak
MAC) holding the 32 bytes, with no `address` member and `"kind": "commitledger master key"`,
which the loaders check so that a chain keystore is never taken for the master key nor the
master key for a chain account. Its clear form (one line of base64 or 0x-hex) follows the
rules of the other clear keys: accepted by `serve --demo` only. `COMMITLEDGER_MASTER_KEY` (the
key itself in the environment, not a file at rest) is read by `ledger.Vault`, not here.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keyfile.keyfile import decode_keyfile_json

from ledger import (
    InvalidDocumentError,
    SignatureError,
    SigningKey,
    Vault,
    VaultError,
    checksum_address,
    keccak256,
)

KeyKind = Literal["ed25519", "ecdsa-p256", "ethereum", "master"]
PASSPHRASE_ENV = "COMMITLEDGER_KEY_PASSPHRASE"  # noqa: S105  # a variable's name
PASSPHRASE_FILE_ENV = "COMMITLEDGER_KEY_PASSPHRASE_FILE"  # noqa: S105
SCRYPT_N_ENV = "COMMITLEDGER_KEY_SCRYPT_N"
STANDARD_SCRYPT_N = 2**18  # the Web3 Secret Storage definition's n, and what new keystores get
STANDARD_PBKDF2_C = 2**18  # the definition's PBKDF2 count
MIN_SCRYPT_N, MAX_SCRYPT_N = 2**2, 2**20
MAX_KEY_FILE_BYTES = 64 * 1024  # a keystore is under 1 KiB; anything this big is not one
MAX_PASSPHRASE_BYTES = 4096
GIVE_PASSPHRASE = (
    f"give its passphrase in a file (--passphrase-file or key_passphrase_file) or in "
    f"{PASSPHRASE_ENV}"
)
CLEAR_REFUSED = (
    "clear key files are accepted only by `serve --demo`: encrypt it with "
    "`commitledger keys encrypt {path}` (passphrase from --passphrase-file or "
    f"{PASSPHRASE_ENV}) and give the same passphrase here"
)
NO_CLEAR_WRITTEN = (
    "a chain account is never written in clear (every command but `serve --demo` refuses "
    f"clear keys): {GIVE_PASSPHRASE}"
)
MASTER_KIND = "commitledger master key"  # the master keystore's "kind" member
NO_CLEAR_MASTER = (
    "the store's master key is never written in clear (every command but `serve --demo` "
    f"refuses clear keys): {GIVE_PASSPHRASE}"
)


class KeyFileError(InvalidDocumentError):
    """A key file cannot be used: unreadable, not a key, locked without its passphrase, the
    wrong passphrase, or clear where clear keys are refused. Names the file, never a secret."""


@dataclass(frozen=True)
class KeyUnlock:
    """How key files are opened and written: the passphrase (None: encrypted ones cannot be
    opened and no chain account can be written), whether clear files are accepted (only
    `serve --demo` sets it), and the scrypt cost of new keystores (None: the standard
    n = 2**18; tests use less through COMMITLEDGER_KEY_SCRYPT_N)."""

    passphrase: str | None = field(default=None, repr=False)
    allow_clear: bool = False
    scrypt_n: int | None = None

    @classmethod
    def from_env(cls, *, passphrase_file: Path | None = None) -> KeyUnlock:
        """For a command's keys: the passphrase from `passphrase_file`, else
        `COMMITLEDGER_KEY_PASSPHRASE_FILE`, else `COMMITLEDGER_KEY_PASSPHRASE`; the scrypt
        cost from `COMMITLEDGER_KEY_SCRYPT_N`; clear files refused."""
        named = passphrase_file or (
            Path(os.environ[PASSPHRASE_FILE_ENV]) if os.environ.get(PASSPHRASE_FILE_ENV) else None
        )
        passphrase = (
            read_passphrase(named) if named is not None else os.environ.get(PASSPHRASE_ENV) or None
        )
        return cls(_checked(passphrase, PASSPHRASE_ENV), False, scrypt_cost_from_env())


def scrypt_cost_from_env() -> int | None:
    """`COMMITLEDGER_KEY_SCRYPT_N`: the scrypt n of new keystores (None when unset: the
    standard 2**18); KeyFileError when it is not a power of two from 2**2 to 2**20."""
    raw = os.environ.get(SCRYPT_N_ENV, "").strip()
    if not raw:
        return None
    try:
        return checked_scrypt_n(int(raw))
    except ValueError as exc:
        raise KeyFileError(f"{SCRYPT_N_ENV}: {exc}") from None


def checked_scrypt_n(n: int) -> int:
    """`n` when it is a power of two from 2**2 to 2**20; else ValueError."""
    if not MIN_SCRYPT_N <= n <= MAX_SCRYPT_N or n & (n - 1):
        raise ValueError(f"the scrypt cost must be a power of two from 4 to {MAX_SCRYPT_N}")
    return n


def weak_kdf(path: Path) -> str | None:
    """What makes the keystore at `path` cheaper to guess than the standard (scrypt n or
    PBKDF2 count below 2**18), or None (also for a file that is not a keystore)."""
    try:
        body = _json(path, _read(path))
    except KeyFileError:
        return None
    crypto = body.get("crypto") or body.get("Crypto")
    if not isinstance(crypto, dict) or not isinstance(crypto.get("kdfparams"), dict):
        return None
    params = crypto["kdfparams"]
    kdf, n, c = crypto.get("kdf"), params.get("n"), params.get("c")
    if kdf == "scrypt" and isinstance(n, int) and n < STANDARD_SCRYPT_N:
        return f"scrypt n = {n}, below the standard {STANDARD_SCRYPT_N}"
    if kdf == "pbkdf2" and isinstance(c, int) and c < STANDARD_PBKDF2_C:
        return f"PBKDF2 count {c}, below the standard {STANDARD_PBKDF2_C}"
    return None


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
    directory = os.open(path.parent, os.O_RDONLY)
    try:  # the rename itself durable: after a crash the file is the old or the new one
        os.fsync(directory)
    finally:
        os.close(directory)


def master_keystore_bytes(master_key: bytes, unlock: KeyUnlock) -> bytes:
    """The store's 32-byte master key as a Web3 Secret Storage v3 keystore: scrypt (n from
    `unlock`, r = 8, p = 1, a 32-byte salt), AES-128-CTR under the derived key's first half,
    the MAC keccak-256 of its second half and the ciphertext; no address (the key is no
    account), `kind` saying what it holds."""
    assert unlock.passphrase is not None
    if len(master_key) != 32:
        raise VaultError(f"the master key must be 32 bytes, got {len(master_key)}")
    n = unlock.scrypt_n or STANDARD_SCRYPT_N
    salt, iv = secrets.token_bytes(32), secrets.token_bytes(16)
    derived = Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(unlock.passphrase.encode())
    encryptor = Cipher(algorithms.AES(derived[:16]), modes.CTR(iv)).encryptor()
    ciphertext = encryptor.update(master_key) + encryptor.finalize()
    body = {
        "kind": MASTER_KIND,
        "crypto": {
            "cipher": "aes-128-ctr",
            "cipherparams": {"iv": iv.hex()},
            "ciphertext": ciphertext.hex(),
            "kdf": "scrypt",
            "kdfparams": {"dklen": 32, "n": n, "r": 8, "p": 1, "salt": salt.hex()},
            "mac": keccak256(derived[16:32] + ciphertext).hex(),
        },
        "id": str(uuid.uuid4()),
        "version": 3,
    }
    return (json.dumps(body, indent=2) + "\n").encode()


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
    public facts (never the secret). A chain account without a passphrase is refused (clear
    only where `unlock` allows clear keys: the demo), nothing written; a signing key without
    one is clear (an applicant's may be). The store's master key is a keystore of its own
    kind, refused without a passphrase like a chain account (clear only in the demo)."""
    unlock = unlock or KeyUnlock()
    if path.exists():
        raise InvalidDocumentError(f"{path} exists already: keys are never overwritten")
    encrypted = unlock.passphrase is not None
    if kind == "ethereum" and not encrypted and not unlock.allow_clear:
        raise KeyFileError(f"cannot write {path}: {NO_CLEAR_WRITTEN}")
    if kind == "master" and not encrypted and not unlock.allow_clear:
        raise KeyFileError(f"cannot write {path}: {NO_CLEAR_MASTER}")
    if kind == "master":  # the store's master key: wraps every commitment's data key
        master = Vault.new_master_key()
        data = (
            master_keystore_bytes(Vault.from_text(master).master_key, unlock)
            if encrypted
            else (master + "\n").encode()
        )
        _write_secret(path, data)
        return {"kind": kind, "path": str(path), "encrypted": encrypted}
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
    """Encrypt a clear account, PEM or master key file where it is (the clear bytes
    replaced at once by a 0600 file renamed over it, so no copy of them is left in another
    file); a file encrypted already is left as it is. Its public facts, `changed` saying
    whether it was (`write` False: would be) encrypted now; KeyFileError for a file that is
    not a key."""
    if unlock.passphrase is None:
        raise KeyFileError(f"cannot encrypt {path}: no passphrase; {GIVE_PASSPHRASE}")
    raw = _read(path)
    facts: dict[str, Any] = {"path": str(path)}
    if not _is_pem(raw) and not raw.lstrip().startswith(b"{"):  # a clear master key's line
        vault = _clear_master(path, raw)
        if write:
            _replace_secret(path, master_keystore_bytes(vault.master_key, unlock))
        return {**facts, "kind": "master", "changed": True}
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
    if _is_master(body):
        return {**facts, "kind": "master", "changed": False}
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


def _is_master(body: dict[str, Any]) -> bool:
    return body.get("kind") == MASTER_KIND


def _clear_master(path: Path, raw: bytes) -> Vault:
    try:
        return Vault.from_text(raw.decode("ascii"))
    except (UnicodeDecodeError, VaultError):
        raise KeyFileError(
            f"{path} is not a key file (a master key is one line of base64 or a keystore; "
            "make one with `commitledger keys new --kind master`)"
        ) from None


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
    `unlock` allows clear keys (`serve --demo`), from a clear file of `keys new`. `unlock`
    None: the environment's passphrase (`KeyUnlock.from_env`), clear files refused."""
    unlock = unlock if unlock is not None else KeyUnlock.from_env()
    body = _json(path, _read(path))
    if _is_master(body):
        raise KeyFileError(f"{path} is the store's master key, not a chain account")
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


def load_master_key(path: Path, unlock: KeyUnlock | None = None) -> Vault:
    """The store's vault from its master key file: a master keystore opened with the
    passphrase of `unlock` (None: the environment's), or a clear line of base64 / 0x-hex
    where `unlock` allows clear keys (`serve --demo`). A chain keystore, a wrong passphrase
    or a clear file elsewhere: KeyFileError naming the file, nothing opened."""
    unlock = unlock if unlock is not None else KeyUnlock.from_env()
    raw = _read(path)
    if not raw.lstrip().startswith(b"{"):
        vault = _clear_master(path, raw)
        _refuse_clear(path, unlock)
        return vault
    body = _json(path, raw)
    if not _is_master(body):
        what = "a chain account" if _is_keystore(body) or "private_key" in body else "a file"
        raise KeyFileError(
            f"{path} is {what}, not the store's master key (a master keystore says "
            f'"kind": "{MASTER_KIND}"; make one with `commitledger keys new --kind master`)'
        )
    if unlock.passphrase is None:
        raise KeyFileError(f"{path} is an encrypted master key: {GIVE_PASSPHRASE}")
    try:
        key = decode_keyfile_json(body, unlock.passphrase.encode())
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise KeyFileError(f"{path}: wrong passphrase (nothing was loaded)") from None
        raise KeyFileError(f"{path} is not a Web3 Secret Storage keystore") from None
    except (KeyError, TypeError, NotImplementedError, AttributeError):
        raise KeyFileError(f"{path} is not a Web3 Secret Storage keystore") from None
    try:
        return Vault(bytes(key))
    except VaultError as exc:
        raise KeyFileError(f"{path}: {exc}") from None


def load_report_key(path: Path, unlock: KeyUnlock | None = None) -> SigningKey:
    """A department's report-signing key: encrypted PKCS#8 PEM, or clear where `unlock`
    allows clear keys (`serve --demo`; `unlock` None: the environment's passphrase)."""
    unlock = unlock if unlock is not None else KeyUnlock.from_env()
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
    unlock = unlock if unlock is not None else KeyUnlock.from_env()
    if unlock.passphrase is None:
        raise SignatureError(f"{path} is encrypted: {GIVE_PASSPHRASE}")
    try:
        return SigningKey(_pem_key(path, raw, unlock.passphrase))
    except KeyFileError as exc:
        raise SignatureError(str(exc)) from None

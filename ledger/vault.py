"""Personal data at rest: AES-GCM under a data key per commitment, wrapped by a master key.

Erasing a commitment's personal data destroys its wrapped data key; the ciphertext that
remains cannot be opened by anyone, and the salted hash on chain reveals nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import zlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

from ledger.errors import ErasedError, VaultError

MASTER_KEY_ENV = "COMMITLEDGER_MASTER_KEY"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_SECRET_VERSION = 1
SEALED_SECRET_BYTES = 1 + _NONCE_BYTES + _KEY_BYTES + _TAG_BYTES  # a sealed 32-byte secret

# Sealed data, version 2: the version byte, the nonce, then AES-GCM over the plaintext
# deflated (raw, with the preset dictionary below), the version and the dictionary's name
# authenticated with the caller's associated data. Version 1 (nonce + AES-GCM of the
# plaintext, no version byte) is still opened: a value starting with the version byte is
# tried as version 2 first, and, its tag failing, as version 1 (1 in 256 version 1 values
# start with that byte by chance; their tag fails as version 2, then opens as version 1).
# Both tags are checked, so no value opens unless it was sealed under the data key.
_DEFLATED_VERSION = 2
_DEFLATED_CONTEXT = b"commitledger/sealed/v2/deflate-dict-1\x00"
# Frozen with version 2: a signed commitment's recurring text (keys, common values), so a
# document of about 840 bytes deflates to about 400. Changing it needs a new version.
_DEFLATE_DICTIONARY = (
    b'{"document":{"schema_version":1,"code":"","matter_code":"","department":"",'
    b'"applicant":{"kind":"person","name":"","id_type":"passport","id_number":""},'
    b'"claims":[{"key":"degree_level","op":"in","value":["bachelor","master","doctorate"]},'
    b'{"key":"relevant_work_years","op":">=","value":},'
    b'{"key":"no_criminal_record","op":"==","value":true},'
    b'{"key":"age_years","op":">=","value":},{"key":"employer_uscc","op":"==","value":""}],'
    b'"channel":"counter","signed_at":"","notice_hash":"0x","salt":"0x"},'
    b'"signature":{"algorithm":"ed25519","public_key":"MCowBQYDK2VwAyEA","value":""}}'
)
_DEFLATE_LEVEL = 6
_MAX_OPENED_BYTES = 16 << 20  # inflating stops here: nothing sealed is larger


def _deflate(plaintext: bytes) -> bytes:
    packer = zlib.compressobj(
        _DEFLATE_LEVEL, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, _DEFLATE_DICTIONARY
    )
    return packer.compress(plaintext) + packer.flush()


def _inflate(packed: bytes) -> bytes:
    unpacker = zlib.decompressobj(-15, _DEFLATE_DICTIONARY)
    try:
        plain = unpacker.decompress(packed, _MAX_OPENED_BYTES)
    except zlib.error:
        raise VaultError("sealed data do not inflate") from None
    if unpacker.unconsumed_tail or not unpacker.eof:
        raise VaultError("sealed data inflate beyond the limit or are cut short")
    return plain


@dataclass(frozen=True)
class Sealed:
    """Ciphertext (nonce + AES-GCM output) and its data key wrapped by the master key (RFC 3394)."""

    ciphertext: bytes
    wrapped_key: bytes


class Vault:
    """Seals and opens personal data with per-commitment data keys under one master key."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != _KEY_BYTES:
            raise VaultError(f"the master key must be {_KEY_BYTES} bytes, got {len(master_key)}")
        self._master_key = master_key
        # A separate key for applicant fingerprints, so that they say nothing about the data keys.
        self._fingerprint_key = hmac.new(
            master_key, b"applicant-fingerprint", hashlib.sha256
        ).digest()
        # And one for the service's own secrets kept in the store (webhook keys, cursor key).
        self._secrets_key = hmac.new(master_key, b"stored-secrets", hashlib.sha256).digest()

    @property
    def master_key(self) -> bytes:
        """The master key itself: only for handing to worker processes; never log it."""
        return self._master_key

    @classmethod
    def from_text(cls, text: str) -> Vault:
        """A vault from a base64 (or 0x-hex) master key, as configuration gives it."""
        value = text.strip()
        try:
            raw = (
                bytes.fromhex(value[2:])
                if value.startswith("0x")
                else base64.b64decode(value, validate=True)
            )
        except ValueError:
            raise VaultError("the master key must be 32 bytes as base64 or 0x-hex") from None
        return cls(raw)

    @classmethod
    def from_environment(cls) -> Vault:
        """The vault whose master key is in COMMITLEDGER_MASTER_KEY."""
        text = os.environ.get(MASTER_KEY_ENV)
        if not text:
            raise VaultError(
                f"no master key: set {MASTER_KEY_ENV} (make one with `keys new --kind master`)"
            )
        return cls.from_text(text)

    @staticmethod
    def new_master_key() -> str:
        """A fresh master key as base64."""
        return base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode("ascii")

    def seal(self, plaintext: bytes, associated: bytes = b"") -> Sealed:
        """Deflate, then encrypt under a fresh data key, authenticating `associated` (the
        commitment hash): sealed data version 2 (see _DEFLATED_VERSION)."""
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        body = AESGCM(data_key).encrypt(nonce, _deflate(plaintext), _DEFLATED_CONTEXT + associated)
        ciphertext = bytes([_DEFLATED_VERSION]) + nonce + body
        return Sealed(ciphertext, aes_key_wrap(self._master_key, data_key))

    def seal_v1(self, plaintext: bytes, associated: bytes = b"") -> Sealed:
        """Seal as before version 2 (nonce + AES-GCM, not deflated): for tests of old rows."""
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        ciphertext = nonce + AESGCM(data_key).encrypt(nonce, plaintext, associated)
        return Sealed(ciphertext, aes_key_wrap(self._master_key, data_key))

    def open(self, ciphertext: bytes, wrapped_key: bytes | None, associated: bytes = b"") -> bytes:
        """Decrypt; ErasedError when the data key was destroyed, VaultError when tampered."""
        if wrapped_key is None:
            raise ErasedError("the personal data of this commitment were erased")
        if len(ciphertext) < _NONCE_BYTES + _TAG_BYTES:
            raise VaultError("sealed data are truncated: too short to hold a nonce and a tag")
        try:
            cipher = AESGCM(aes_key_unwrap(self._master_key, wrapped_key))
        except InvalidUnwrap:
            raise VaultError("sealed data do not open: wrong master key or altered data") from None
        if ciphertext[0] == _DEFLATED_VERSION and len(ciphertext) >= 1 + _NONCE_BYTES + _TAG_BYTES:
            nonce, body = ciphertext[1 : 1 + _NONCE_BYTES], ciphertext[1 + _NONCE_BYTES :]
            try:
                packed = cipher.decrypt(nonce, body, _DEFLATED_CONTEXT + associated)
            except InvalidTag:
                pass  # a version 1 value whose nonce starts with the version byte, or altered
            else:
                return _inflate(packed)
        try:
            nonce, body = ciphertext[:_NONCE_BYTES], ciphertext[_NONCE_BYTES:]
            return cipher.decrypt(nonce, body, associated)
        except InvalidTag:
            raise VaultError("sealed data do not open: wrong master key or altered data") from None

    def seal_secret(self, secret: bytes, purpose: bytes) -> bytes:
        """A 32-byte secret the store must keep (a webhook's signing key, the cursor key),
        sealed: version, nonce, AES-GCM under a key derived from the master key, with
        `purpose` authenticated so that a sealed value cannot be moved to another use."""
        if len(secret) != _KEY_BYTES:
            raise VaultError(f"a stored secret is {_KEY_BYTES} bytes, got {len(secret)}")
        nonce = secrets.token_bytes(_NONCE_BYTES)
        body = AESGCM(self._secrets_key).encrypt(nonce, secret, purpose)
        return bytes([_SECRET_VERSION]) + nonce + body

    def open_secret(self, sealed: bytes, purpose: bytes) -> bytes:
        """The secret `seal_secret` sealed for `purpose`; VaultError when it does not open."""
        if not is_sealed_secret(sealed):
            raise VaultError("not a sealed secret")
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return AESGCM(self._secrets_key).decrypt(nonce, body, purpose)
        except InvalidTag:
            raise VaultError("a stored secret does not open: wrong master key") from None

    def fingerprint(self, id_type: str, id_number: str) -> bytes:
        """A keyed fingerprint of an applicant's identity, to find their records without the ID."""
        return hmac.new(
            self._fingerprint_key, f"{id_type}:{id_number}".encode(), hashlib.sha256
        ).digest()


def is_sealed_secret(value: bytes) -> bool:
    """Whether a stored secret is sealed (`Vault.seal_secret`) rather than kept in clear."""
    return len(value) == SEALED_SECRET_BYTES and value[0] == _SECRET_VERSION

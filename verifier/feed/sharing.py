"""The government-sharing scope: a record's full identity, sealed to the credit platform's key.

Public and restricted records name a person masked (`高**`, `110101**********32`), so a
credit platform cannot aggregate them per person or company. A subscriber of the
`government` scope registers its platform's X25519 public key; each record delivered to it
carries, beside the department-signed body, `sealed_identity`: the committer's full name
and full ID number or unified social credit code, readable only with the platform's private
key. Nothing of it is stored: it is sealed from the sealed commitment document at delivery.

The scheme, `X25519-HKDF-SHA256-A256GCM` (version 1):

- `epk`: a fresh X25519 key pair per record; `shared = X25519(ephemeral private, platform
  public)` (an all-zero shared secret is refused).
- `key = HKDF-SHA256(ikm=shared, salt=epk || platform public key (raw, 32 + 32 bytes),
  info=b"commitledger/feed/sealed-identity/v1", length=32)`.
- `ciphertext = AES-256-GCM(key, nonce (12 random bytes), plaintext, aad)`, the 16-byte
  tag appended.
- `plaintext`: the RFC 8785 canonical JSON (UTF-8) of `{"category", "id_number",
  "id_type", "name"}`; category `natural_person` or `legal_person`.
- `aad`: the UTF-8 of the canonical JSON `{"alg":"X25519-HKDF-SHA256-A256GCM",
  "commitment_hash":"0x…","kid":"…","record_id":"FR-…"}` (keys sorted, no spaces): the
  record's id and its evidence's commitment hash, so a ciphertext moved to another record
  does not open.
- `kid`: the first 16 hex digits of SHA-256 of the platform's raw 32-byte public key.
- Sent as `{"alg", "kid", "epk", "nonce", "ciphertext"}`, each byte string standard base64.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ledger import Hash32, SignedCommitment, Store, Vault, VaultError, canonical_bytes
from verifier.errors import FeedError
from verifier.feed.records import COMMITTER_CATEGORIES, committer_category

log = logging.getLogger("commitledger.feed.sharing")

GOVERNMENT_SCOPE = "government"
"""The consumer scope of the credit platform: every record, with the sealed identity."""
SEALED_IDENTITY = "sealed_identity"
"""The member of a delivered record that carries the sealed identity (outside the signature)."""
ALGORITHM = "X25519-HKDF-SHA256-A256GCM"
HKDF_INFO = b"commitledger/feed/sealed-identity/v1"
NONCE_BYTES = 12
KEY_BYTES = 32
MAX_KEY_TEXT = 1000  # a PEM public or private key is far shorter
MAX_SEALED_B64 = 4000  # name and ID are bounded by the document's own limits


class SealedIdentityError(FeedError):
    """A platform key is malformed, or a sealed identity does not open (wrong key, moved to
    another record, altered)."""


@dataclass(frozen=True)
class SharedIdentity:
    """Whose record it is, in full: what the government-sharing scope carries sealed."""

    name: str
    id_type: str
    id_number: str
    category: str  # a COMMITTER_CATEGORIES value, as the records carry it (自然人, 法人, ...)

    def plaintext(self) -> bytes:
        """The bytes sealed: RFC 8785 canonical JSON."""
        return canonical_bytes(asdict(self))


# ---------------------------------------------------------------------- keys


def key_id(public_key: bytes) -> str:
    """The key id of a platform's raw 32-byte X25519 public key."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def parse_platform_key(text: str | bytes) -> bytes:
    """The raw 32 bytes of a platform's X25519 public key given as base64 of the raw key or
    as PEM (SubjectPublicKeyInfo); SealedIdentityError saying what is wrong otherwise."""
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise SealedIdentityError("a platform key is ASCII: base64 or PEM") from None
    text = text.strip()
    if not text or len(text) > MAX_KEY_TEXT:
        raise SealedIdentityError(
            "a platform key is an X25519 public key: base64 of its 32 raw bytes or PEM"
        )
    if text.startswith("-----BEGIN"):
        raw = _pem_public(text)
    else:
        raw = _b64(text, "platform key")
        if len(raw) != KEY_BYTES:
            raise SealedIdentityError(
                f"a platform key is 32 raw bytes of X25519, not {len(raw)}: "
                "give base64 of the raw key or PEM"
            )
    _refuse_low_order(raw)
    return raw


def _pem_public(text: str) -> bytes:
    try:
        key = serialization.load_pem_public_key(text.encode("ascii"))
    except (ValueError, UnsupportedAlgorithm):
        raise SealedIdentityError("the PEM is not a public key") from None
    if not isinstance(key, X25519PublicKey):
        raise SealedIdentityError("the PEM public key is not X25519 (the scheme needs X25519)")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _refuse_low_order(raw: bytes) -> None:
    """A key of small order makes every shared secret zero: anyone could open the records."""
    try:
        X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(raw))
    except ValueError:
        raise SealedIdentityError("the platform key is a point of small order: refused") from None


def new_platform_key() -> tuple[X25519PrivateKey, bytes]:
    """A platform's key pair (for tests and demos): the private key and the raw public key."""
    private = X25519PrivateKey.generate()
    return private, _raw_public(private)


def private_key_pem(private: X25519PrivateKey) -> bytes:
    """The private key as unencrypted PKCS#8 PEM (keep it 0600)."""
    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_platform_private_key(text: str | bytes) -> X25519PrivateKey:
    """A platform's private key from PKCS#8 PEM or base64 of its 32 raw bytes."""
    data = text.encode("ascii") if isinstance(text, str) else text
    data = data.strip()
    if not data or len(data) > MAX_KEY_TEXT:
        raise SealedIdentityError("a platform private key is X25519: PKCS#8 PEM or base64 raw")
    if data.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise SealedIdentityError("the PEM is not an unencrypted private key") from None
        if not isinstance(key, X25519PrivateKey):
            raise SealedIdentityError("the PEM private key is not X25519")
        return key
    raw = _b64(data.decode("ascii", "replace"), "platform private key")
    if len(raw) != KEY_BYTES:
        raise SealedIdentityError("a raw X25519 private key is 32 bytes")
    return X25519PrivateKey.from_private_bytes(raw)


def _raw_public(private: X25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


# ---------------------------------------------------------------------- seal and open


def associated_data(kid: str, record_id: str, commitment_hash: str) -> bytes:
    """What binds a sealed identity to its record (see the module's description)."""
    return canonical_bytes(
        {
            "alg": ALGORITHM,
            "commitment_hash": commitment_hash.lower(),
            "kid": kid,
            "record_id": record_id,
        }
    )


def _derive(shared: bytes, epk: bytes, recipient: bytes) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=epk + recipient, info=HKDF_INFO
    ).derive(shared)
    return AESGCM(key)


def seal_identity(
    platform_key: bytes, identity: SharedIdentity, *, record_id: str, commitment_hash: str
) -> dict[str, str]:
    """`identity` sealed to the platform's raw X25519 public key, bound to the record."""
    recipient = X25519PublicKey.from_public_bytes(platform_key)
    ephemeral = X25519PrivateKey.generate()
    epk = _raw_public(ephemeral)
    shared = ephemeral.exchange(recipient)
    kid = key_id(platform_key)
    nonce = os.urandom(NONCE_BYTES)
    aad = associated_data(kid, record_id, commitment_hash)
    ciphertext = _derive(shared, epk, platform_key).encrypt(nonce, identity.plaintext(), aad)
    return {
        "alg": ALGORITHM,
        "kid": kid,
        "epk": _b64e(epk),
        "nonce": _b64e(nonce),
        "ciphertext": _b64e(ciphertext),
    }


def open_identity(
    private_key: X25519PrivateKey,
    sealed: Mapping[str, Any],
    *,
    record_id: str,
    commitment_hash: str,
) -> SharedIdentity:
    """The identity in `sealed`, for the platform holding `private_key`: SealedIdentityError
    when it is not for this key or this record, or was altered."""
    if not isinstance(sealed, Mapping) or sealed.get("alg") != ALGORITHM:
        raise SealedIdentityError(f"not a sealed identity of {ALGORITHM}")
    recipient = _raw_public(private_key)
    kid = key_id(recipient)
    if sealed.get("kid") != kid:
        raise SealedIdentityError(f"sealed to key {sealed.get('kid')!r}, not to this key ({kid})")
    epk = _field(sealed, "epk")
    nonce = _field(sealed, "nonce")
    ciphertext = _field(sealed, "ciphertext")
    if len(epk) != KEY_BYTES or len(nonce) != NONCE_BYTES:
        raise SealedIdentityError("a sealed identity's epk is 32 bytes and its nonce 12")
    try:
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(epk))
        aad = associated_data(kid, record_id, commitment_hash)
        plain = _derive(shared, epk, recipient).decrypt(nonce, ciphertext, aad)
    except (InvalidTag, ValueError):
        raise SealedIdentityError(
            f"the sealed identity does not open for record {record_id}: another record's, "
            "another key's or altered"
        ) from None
    data = json.loads(plain)
    return SharedIdentity(data["name"], data["id_type"], data["id_number"], data["category"])


def open_record_identity(
    private_key: X25519PrivateKey, record: Mapping[str, Any]
) -> SharedIdentity | None:
    """The identity a delivered record carries (None: it carries none), bound to the
    record's own id and commitment hash."""
    sealed = record.get(SEALED_IDENTITY)
    if sealed is None:
        return None
    try:
        record_id = str(record["id"])
        commitment_hash = str(record["evidence"]["commitment_hash"])
    except (KeyError, TypeError):
        raise SealedIdentityError("not a feed record: no id or evidence") from None
    return open_identity(private_key, sealed, record_id=record_id, commitment_hash=commitment_hash)


def without_sealed_identity(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record as the department signed it (`FeedRecord.from_json_obj` takes this)."""
    return {name: value for name, value in record.items() if name != SEALED_IDENTITY}


def _b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SealedIdentityError(f"the {what} is neither base64 nor PEM") from None


def _field(sealed: Mapping[str, Any], name: str) -> bytes:
    value = sealed.get(name)
    if not isinstance(value, str) or len(value) > MAX_SEALED_B64:
        raise SealedIdentityError(f"a sealed identity's {name} is base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise SealedIdentityError(f"a sealed identity's {name} is not base64") from None


# ---------------------------------------------------------------------- at delivery


def identity_of(store: Store, vault: Vault | None, commitment: Hash32) -> SharedIdentity | None:
    """The committer's full identity from the sealed document (None: not in this store,
    erased, or no vault to open it). Nothing of it is logged."""
    if vault is None:
        return None
    found = store.sealed(commitment)
    if found is None or found[1] is None:
        return None
    sealed, wrapped = found
    try:
        plain = vault.open(sealed, wrapped, associated=commitment)
    except VaultError:
        log.warning("sealed document of 0x%s does not open", commitment.hex())
        return None
    applicant = SignedCommitment.from_json_obj(json.loads(plain)).document.applicant
    kind = committer_category(applicant.kind, applicant.id_number)
    return SharedIdentity(
        applicant.name, applicant.id_type, applicant.id_number, COMMITTER_CATEGORIES[kind]
    )


def shared_body(body: str, store: Store, vault: Vault | None, platform_key: bytes) -> str:
    """A stored record body as delivered in the government scope: with `sealed_identity`
    when the store can name the committer, as it is otherwise. The signed members are left
    byte for byte; the sealed identity is appended outside them."""
    record = json.loads(body)
    commitment_hash = str(record["evidence"]["commitment_hash"])
    identity = identity_of(store, vault, Hash32(bytes.fromhex(commitment_hash[2:])))
    if identity is None:
        return body
    sealed = seal_identity(
        platform_key, identity, record_id=str(record["id"]), commitment_hash=commitment_hash
    )
    member = json.dumps({SEALED_IDENTITY: sealed}, separators=(",", ":"))
    return body[:-1] + "," + member[1:]

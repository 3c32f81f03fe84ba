"""Applicants' keys: Ed25519 or ECDSA P-256 signatures over a commitment's canonical bytes."""

from __future__ import annotations

import base64
import binascii
from typing import TypeGuard

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ledger.documents import (
    Commitment,
    Signature,
    SignatureAlgorithm,
    SignedCommitment,
    check_salt,
)
from ledger.errors import SignatureError

__all__ = [
    "SigningKey",
    "decode_base64",
    "low_s",
    "sign_commitment",
    "verify_bytes",
    "verify_signed",
]

_PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
_PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
# The order of P-256's group: (r, s) and (r, n - s) both verify, so new signatures take the
# low one (s <= n/2) and each signature has one encoding. High S still verifies (README).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class SigningKey:
    """A private key that signs commitments; its public half travels as base64 SPKI DER."""

    def __init__(self, private_key: _PrivateKey) -> None:
        self._private_key = private_key
        self.algorithm: SignatureAlgorithm = _algorithm_of(private_key)

    @classmethod
    def generate(cls, algorithm: SignatureAlgorithm) -> SigningKey:
        """Create a fresh key for ``algorithm`` ("ed25519" or "ecdsa-p256")."""
        if algorithm == "ed25519":
            return cls(ed25519.Ed25519PrivateKey.generate())
        if algorithm == "ecdsa-p256":
            return cls(ec.generate_private_key(ec.SECP256R1()))
        raise SignatureError(f"unknown signature algorithm {algorithm!r}")

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        """Load an unencrypted PKCS#8 PEM private key; raise SignatureError otherwise."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except TypeError:
            raise SignatureError("the private key is encrypted; give an unencrypted one") from None
        except (ValueError, UnsupportedAlgorithm):
            raise SignatureError("not a PEM private key") from None
        if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
            raise SignatureError(f"unsupported key type {type(key).__name__}")
        return cls(key)

    def to_pem(self) -> bytes:
        """Return the private key as unencrypted PKCS#8 PEM; keep it secret."""
        return self._private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_key_der(self) -> bytes:
        """Return the public key as DER SubjectPublicKeyInfo."""
        return self._private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def public_key_b64(self) -> str:
        """Return the public key as standard base64 of DER SubjectPublicKeyInfo."""
        return base64.b64encode(self.public_key_der()).decode("ascii")

    def sign(self, data: bytes) -> bytes:
        """Sign ``data``: raw 64 bytes for Ed25519; for P-256, DER (r, s) over SHA-256 with
        low S (s <= n/2)."""
        if isinstance(self._private_key, ed25519.Ed25519PrivateKey):
            return self._private_key.sign(data)
        return low_s(self._private_key.sign(data, _ECDSA_SHA256))


def low_s(der: bytes) -> bytes:
    """A DER P-256 signature with S normalised to the lower half (n - s when s > n/2)."""
    r, s = decode_dss_signature(der)
    if s > P256_ORDER // 2:
        s = P256_ORDER - s
    return encode_dss_signature(r, s)


def sign_commitment(commitment: Commitment, key: SigningKey) -> SignedCommitment:
    """Sign the commitment's canonical bytes and put the signature beside it.

    Raises InvalidDocumentError for a salt that is all zero or visibly not random.
    """
    check_salt(commitment.salt)
    signature = Signature(
        algorithm=key.algorithm,
        public_key=key.public_key_b64(),
        value=base64.b64encode(key.sign(commitment.canonical())).decode("ascii"),
    )
    return SignedCommitment(document=commitment, signature=signature)


def verify_signed(signed: SignedCommitment, *, canonical: bytes | None = None) -> None:
    """Check the signature over the document's canonical bytes; raise SignatureError if not.

    `canonical`: those bytes when the caller already made them from this very document
    (``Commitment.canonical()``, or ``canonical_bytes_plain`` of its plain JSON value), so
    intake makes the document's plain value once for signature, hash and sealed copy.
    """
    signature = signed.signature
    data = signed.document.canonical() if canonical is None else canonical
    if not verify_bytes(signature.algorithm, signature.public_key, signature.value, data):
        raise SignatureError(
            f"the {signature.algorithm} signature does not verify over the document's "
            "canonical bytes: the document was changed or signed with another key"
        )


def verify_bytes(
    algorithm: SignatureAlgorithm, public_key_b64: str, signature_b64: str, data: bytes
) -> bool:
    """Whether a base64 signature by a base64 SPKI key verifies over `data`.

    False when it does not verify; SignatureError when key or signature are malformed.
    """
    public_key = _load_public_key(algorithm, public_key_b64)
    value = decode_base64(signature_b64, "signature value")
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(value, data)
        else:
            public_key.verify(value, data, _ECDSA_SHA256)
    except InvalidSignature:
        return False
    return True


def decode_base64(text: str, what: str) -> bytes:
    """Decode standard base64 with padding, refusing other characters; raise SignatureError."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{what} is not valid base64") from None


def _load_public_key(algorithm: SignatureAlgorithm, text: str) -> _PublicKey:
    der = decode_base64(text, "public key")
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        raise SignatureError("public key is not a DER SubjectPublicKeyInfo") from None
    # The label and the key must agree, so a reader can trust the label it displays.
    if algorithm == "ed25519" and isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if algorithm == "ecdsa-p256" and _is_p256(key):
        return key
    raise SignatureError(f"public key is {_describe(key)}, but the algorithm says {algorithm}")


def _is_p256(key: object) -> TypeGuard[ec.EllipticCurvePublicKey]:
    return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)


def _describe(key: object) -> str:
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"an EC key on {key.curve.name}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "an Ed25519 key"
    return f"a {type(key).__name__}"


def _algorithm_of(private_key: _PrivateKey) -> SignatureAlgorithm:
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(private_key.curve, ec.SECP256R1):
        return "ecdsa-p256"
    raise SignatureError(f"EC keys must be on P-256, not {private_key.curve.name}")

"""Whether a signature over a challenge proves the key that signed a commitment, and which of
the same applicant's commitments that key signed (the scope of the session it earns).

The commitment's signature, and with it the public key, is inside the sealed document: each
is opened with the vault. A commitment by the same person (same fingerprint) signed with
another key is outside the scope: holding one key shows nothing about the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select

from api.service.applicant_auth import MAX_SCOPE, challenge_message
from ledger import (
    ErasedError,
    Hash32,
    Intake,
    InvalidDocumentError,
    SignatureAlgorithm,
    SignatureError,
    SignedCommitment,
    VaultError,
    commitments,
    decode_base64,
    verify_bytes,
)

# The applicant's commitments opened to compare keys, newest first: enough for a person's
# years of applications, and a bound on the work a session costs.
MAX_CANDIDATES = 500


class NotProvenError(Exception):
    """The signature does not prove the commitment's key (why, for the log and the answer)."""


@dataclass(frozen=True)
class Proof:
    """What a verified challenge signature established."""

    fingerprint: bytes
    algorithm: SignatureAlgorithm
    public_key_der: bytes
    commitments: tuple[Hash32, ...]


def _open(intake: Intake, commitment: Hash32) -> SignedCommitment:
    try:
        signed = intake.open_document(commitment)
    except ErasedError:
        raise NotProvenError("the commitment's personal data were erased") from None
    except (VaultError, InvalidDocumentError, ValueError):
        raise NotProvenError("the commitment cannot be opened") from None
    if signed is None:
        raise NotProvenError("no such commitment")
    return signed


def prove(intake: Intake, commitment: Hash32, challenge_hex: str, signature_b64: str) -> Proof:
    """The proof that `signature_b64` over the challenge's message was made by the key that
    signed `commitment`, with the commitments of the same applicant that key signed; NotProvenError
    otherwise. Changes nothing."""
    signed = _open(intake, commitment)
    key = signed.signature
    message = challenge_message(challenge_hex, commitment)
    try:
        valid = verify_bytes(key.algorithm, key.public_key, signature_b64, message)
    except SignatureError:
        raise NotProvenError("the signature is not base64 of a signature") from None
    if not valid:
        raise NotProvenError("the signature does not verify with the commitment's key")
    key_der = decode_base64(key.public_key, "public key")
    fingerprint = _fingerprint(intake, commitment)
    scope = _same_key(intake, fingerprint, key.algorithm, key_der)
    if commitment not in scope:  # the newest MAX_SCOPE may leave the proven one out
        scope = (commitment, *scope[: MAX_SCOPE - 1])
    return Proof(fingerprint, key.algorithm, key_der, scope)


def _fingerprint(intake: Intake, commitment: Hash32) -> bytes:
    with intake.store.engine.connect() as connection:
        found = connection.execute(
            select(commitments.c.applicant_fingerprint).where(commitments.c.hash == commitment)
        ).scalar()
    if found is None:
        raise NotProvenError("no such commitment")
    return bytes(found)


def _same_key(
    intake: Intake, fingerprint: bytes, algorithm: SignatureAlgorithm, key_der: bytes
) -> tuple[Hash32, ...]:
    """The applicant's commitments (newest first, at most MAX_SCOPE) signed by this key."""
    c = commitments.c
    with intake.store.engine.connect() as connection:
        rows = connection.execute(
            select(c.hash, c.sealed, c.wrapped_key)
            .where(c.applicant_fingerprint == fingerprint, c.wrapped_key.is_not(None))
            .order_by(c.received_at.desc(), c.hash)
            .limit(MAX_CANDIDATES)
        ).all()
    found: list[Hash32] = []
    for row in rows:
        digest = Hash32(bytes(row.hash))
        try:
            plain = intake.vault.open(bytes(row.sealed), bytes(row.wrapped_key), digest)
            signature = SignedCommitment.from_json_obj(json.loads(plain)).signature
            same = signature.algorithm == algorithm and (
                decode_base64(signature.public_key, "public key") == key_der
            )
        except (VaultError, InvalidDocumentError, SignatureError, ValueError):
            continue  # one that does not open is not shown, and hides nothing else
        if same:
            found.append(digest)
            if len(found) >= MAX_SCOPE:
                break
    return tuple(found)

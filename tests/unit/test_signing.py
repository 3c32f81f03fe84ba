"""Signing commitments with Ed25519 and ECDSA P-256, and every way verification must fail."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ledger import (
    Commitment,
    SignatureAlgorithm,
    SignatureError,
    SignedCommitment,
    SigningKey,
    decode_base64,
    new_salt,
    sign_commitment,
    verify_signed,
)

ALGORITHMS: list[SignatureAlgorithm] = ["ed25519", "ecdsa-p256"]


def commitment() -> Commitment:
    return Commitment.from_json_obj(
        {
            "schema_version": 1,
            "code": "11000020240301000042",
            "matter_code": "BJ-HRSS-JFLH-001",
            "department": "BJ-HRSS",
            "applicant": {
                "kind": "person",
                "name": "李四",
                "id_type": "passport",
                "id_number": "E12345678",
            },
            "claims": [{"key": "social_insurance_consecutive_months", "op": ">=", "value": 84}],
            "channel": "counter",
            "signed_at": datetime(2024, 3, 1, 2, 0, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "notice_hash": "0x" + "cd" * 32,
            "salt": new_salt(),
        }
    )


def with_signature(signed: SignedCommitment, **fields: str) -> SignedCommitment:
    obj = signed.to_json_obj()
    obj["signature"].update(fields)
    return SignedCommitment.from_json_obj(obj)


@pytest.fixture(params=ALGORITHMS)
def key(request: pytest.FixtureRequest) -> SigningKey:
    algorithm: SignatureAlgorithm = request.param
    return SigningKey.generate(algorithm)


def test_signed_commitment_verifies(key: SigningKey) -> None:
    signed = sign_commitment(commitment(), key)
    assert signed.signature.algorithm == key.algorithm
    assert signed.signature.public_key == key.public_key_b64()
    verify_signed(signed)


def test_signature_survives_a_json_round_trip(key: SigningKey) -> None:
    signed = sign_commitment(commitment(), key)
    verify_signed(SignedCommitment.from_json_obj(signed.to_json_obj()))


def test_signature_is_over_the_canonical_bytes(key: SigningKey) -> None:
    document = commitment()
    signed = sign_commitment(document, key)
    public_key = serialization.load_der_public_key(base64.b64decode(signed.signature.public_key))
    value = base64.b64decode(signed.signature.value)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        assert len(value) == 64
        public_key.verify(value, document.canonical())
    else:
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        assert value[0] == 0x30  # a DER SEQUENCE of r and s
        public_key.verify(value, document.canonical(), ec.ECDSA(hashes.SHA256()))


def _one_byte_changed(text: str) -> str:
    last = text[-1]
    return text[:-1] + ("1" if last != "1" else "2")


@pytest.mark.parametrize(
    "path",
    [
        ["salt"],
        ["notice_hash"],
        ["code"],
        ["signed_at"],
        ["applicant", "id_number"],
        ["claims", 0, "key"],
    ],
    ids=lambda path: ".".join(map(str, path)),
)
def test_changing_one_byte_of_the_document_breaks_the_signature(
    key: SigningKey, path: list[str | int]
) -> None:
    obj = sign_commitment(commitment(), key).to_json_obj()
    target: Any = obj["document"]
    for step in path[:-1]:
        target = target[step]
    if path[-1] == "signed_at":
        target["signed_at"] = target["signed_at"].replace(":00Z", ":01Z")
    else:
        target[path[-1]] = _one_byte_changed(target[path[-1]])
    with pytest.raises(SignatureError, match="does not verify over the document's canonical"):
        verify_signed(SignedCommitment.from_json_obj(obj))


def test_a_changed_claim_value_breaks_the_signature(key: SigningKey) -> None:
    obj = sign_commitment(commitment(), key).to_json_obj()
    obj["document"]["claims"][0]["value"] = 83
    with pytest.raises(SignatureError, match="does not verify"):
        verify_signed(SignedCommitment.from_json_obj(obj))


def test_flipping_any_bit_of_the_signature_breaks_it(key: SigningKey) -> None:
    signed = sign_commitment(commitment(), key)
    value = base64.b64decode(signed.signature.value)
    for position in range(0, len(value), 7):
        flipped = bytearray(value)
        flipped[position] ^= 0x01
        tampered = with_signature(signed, value=base64.b64encode(flipped).decode())
        with pytest.raises(SignatureError):
            verify_signed(tampered)


def test_another_applicants_key_is_rejected(key: SigningKey) -> None:
    signed = sign_commitment(commitment(), key)
    impostor = SigningKey.generate(key.algorithm)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_signed(with_signature(signed, public_key=impostor.public_key_b64()))


def test_key_of_the_other_algorithm_is_rejected() -> None:
    signed = sign_commitment(commitment(), SigningKey.generate("ed25519"))
    p256 = SigningKey.generate("ecdsa-p256")
    with pytest.raises(SignatureError, match="is an EC key on secp256r1, but the algorithm says"):
        verify_signed(with_signature(signed, public_key=p256.public_key_b64()))
    with pytest.raises(SignatureError, match="is an Ed25519 key, but the algorithm says ecdsa"):
        verify_signed(with_signature(signed, algorithm="ecdsa-p256"))


def test_an_ec_key_on_another_curve_is_rejected() -> None:
    signed = sign_commitment(commitment(), SigningKey.generate("ecdsa-p256"))
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    der = p384.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(SignatureError, match="EC key on secp384r1"):
        verify_signed(with_signature(signed, public_key=base64.b64encode(der).decode()))


@pytest.mark.parametrize(
    ("field", "garbage", "fragment"),
    [
        ("public_key", "not base64!", "public key is not valid base64"),
        ("public_key", "QUJD", "public key is not a DER SubjectPublicKeyInfo"),
        ("public_key", "", "public key is not a DER SubjectPublicKeyInfo"),
        ("value", "AAA", "signature value is not valid base64"),
        ("value", "%%%%", "signature value is not valid base64"),
        ("value", "", "does not verify"),
        ("value", "AAAA", "does not verify"),
    ],
)
def test_garbage_signature_fields_raise_signature_error(
    key: SigningKey, field: str, garbage: str, fragment: str
) -> None:
    signed = sign_commitment(commitment(), key)
    with pytest.raises(SignatureError, match=fragment):
        verify_signed(with_signature(signed, **{field: garbage}))


def test_pem_round_trip_keeps_the_key(key: SigningKey) -> None:
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    loaded = SigningKey.from_pem(pem)
    assert loaded.algorithm == key.algorithm
    assert loaded.public_key_b64() == key.public_key_b64()
    verify_signed(sign_commitment(commitment(), loaded))


def test_public_key_is_base64_subject_public_key_info(key: SigningKey) -> None:
    der = base64.b64decode(key.public_key_b64(), validate=True)
    assert der == key.public_key_der()
    assert len(der) == {"ed25519": 44, "ecdsa-p256": 91}[key.algorithm]


def test_from_pem_refuses_what_it_cannot_use() -> None:
    with pytest.raises(SignatureError, match="not a PEM private key"):
        SigningKey.from_pem(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    encrypted = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    with pytest.raises(SignatureError, match="encrypted"):
        SigningKey.from_pem(encrypted)
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(SignatureError, match="must be on P-256"):
        SigningKey.from_pem(p384)


def test_decode_base64_refuses_characters_outside_the_alphabet() -> None:
    assert decode_base64("QUJD", "x") == b"ABC"
    with pytest.raises(SignatureError, match="x is not valid base64"):
        decode_base64("QU JD", "x")

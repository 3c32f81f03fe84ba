"""Bounds on what a commitment may hold: printable names, field lengths, no future dates,
random salts, short quotes of bad values; P-256 signatures with low S."""

from __future__ import annotations

import base64
import re
import sys
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from support.documents import person_commitment, with_change

from ledger import (
    P256_ORDER,
    Commitment,
    InvalidDocumentError,
    SigningKey,
    check_salt,
    new_salt,
    sign_commitment,
    verify_bytes,
    verify_signed,
)


def refusal(obj: dict[str, Any]) -> str:
    with pytest.raises(InvalidDocumentError) as caught:
        Commitment.from_json_obj(obj)
    return str(caught.value)


@pytest.mark.parametrize(
    "name",
    ["张\x00三", "张三\x1b[2J\r\nOK", "abc\u202edef", "张\u200b三", "a\u2028b", "a\x7fb"],
    ids=["nul", "ansi-crlf", "rtl-override", "zero-width-space", "line-separator", "del"],
)
def test_a_name_with_control_or_invisible_characters_is_refused(name: str) -> None:
    message = refusal(with_change(person_commitment(), ["applicant", "name"], name))
    assert message.startswith("invalid commitment: applicant.name: ")
    assert "control or invisible formatting characters" in message


def test_a_claim_string_with_a_control_character_is_refused() -> None:
    obj = person_commitment()
    obj["claims"].append({"key": "note", "op": "==", "value": "x\x1b[31m"})
    assert re.search(r": claims\[\d+\]\.value: must not hold control", refusal(obj))


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["applicant", "name"], "张" * 101, "applicant.name"),
        (["applicant", "id_number"], "E" * 900_000, "applicant.id_number"),
        (["matter_code"], "M" * 65, "matter_code"),
        (["department"], "BJ" * 20, "department"),
    ],
    ids=["name", "id-number", "matter-code", "department"],
)
def test_fields_have_a_length_bound(path: list[str | int], value: str, field: str) -> None:
    message = refusal(with_change(person_commitment(), path, value))
    assert f": {field}: " in message
    assert len(message) < 300


def test_claim_values_and_claims_are_bounded() -> None:
    obj = person_commitment()
    obj["claims"].append({"key": "huge", "op": "==", "value": "x" * 900_000})
    assert "at most 200 characters" in refusal(obj)
    obj = person_commitment()
    obj["claims"].append({"key": "many", "op": "in", "value": [str(n) for n in range(51)]})
    assert "at most 50 strings" in refusal(obj)
    obj = person_commitment()
    obj["claims"] = [{"key": f"k{n}", "op": "==", "value": True} for n in range(51)]
    assert "at most 50 claims" in refusal(obj)


def test_every_character_is_refused_exactly_when_its_category_is_unprintable() -> None:
    # Names and claim strings take a fast path when str.isprintable says so: it must let
    # through no character that the category rule refuses, and refuse none it admits.
    from ledger.documents import _UNPRINTABLE, _printable

    refused = set()
    for code in range(sys.maxunicode + 1):
        try:
            _printable(f"a{chr(code)}b")
        except ValueError:
            refused.add(code)
    categories = (unicodedata.category(chr(code)) for code in range(sys.maxunicode + 1))
    assert refused == {code for code, kind in enumerate(categories) if kind in _UNPRINTABLE}
    with pytest.raises(ValueError, match=r"U\+202E at position 1"):
        _printable("a\u202eb")


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        (2**53 - 1, None),
        (-(2**53 - 1), None),
        (2**53, "within +/-(2**53 - 1)"),
        (-(2**53), "within +/-(2**53 - 1)"),
        (True, None),
        (0, None),
        ("plain", None),
        (1.5, "must be an integer, a string, a boolean or a list of strings"),
        (None, "must be an integer, a string, a boolean or a list of strings"),
        ({"a": 1}, "must be an integer, a string, a boolean or a list of strings"),
        ("\u3000", None),  # an ideographic space: printable by category, not by isprintable
        ("\ufeff", "U+FEFF"),
    ],
    ids=[
        "max-int",
        "min-int",
        "int-too-big",
        "int-too-small",
        "bool",
        "zero",
        "str",
        "float",
        "null",
        "object",
        "ideographic-space",
        "bom",
    ],
)
def test_claim_values_of_each_type(value: object, refused: str | None) -> None:
    obj = person_commitment()
    obj["claims"].append({"key": "extra", "op": "==", "value": value})
    if refused is None:
        assert Commitment.from_json_obj(obj).claims[-1].value == value
    else:
        assert refused in refusal(obj)


def test_a_bad_value_is_quoted_by_a_short_prefix_only() -> None:
    message = refusal(with_change(person_commitment(), ["salt"], "0x" + "a" * 900_000))
    assert message.startswith("invalid commitment: salt: ")
    assert len(message) < 200
    assert "900002 characters" in message


def test_a_signature_in_the_future_is_refused_beyond_a_small_skew() -> None:
    soon = datetime.now(UTC) + timedelta(minutes=1)
    later = datetime.now(UTC) + timedelta(minutes=10)
    obj = with_change(person_commitment(), ["signed_at"], f"{soon:%Y-%m-%dT%H:%M:%SZ}")
    Commitment.from_json_obj(obj)
    obj = with_change(person_commitment(), ["signed_at"], "2031-01-01T00:00:00Z")
    assert "signed_at: 2031-01-01T00:00:00Z is in the future" in refusal(obj)
    obj = with_change(person_commitment(), ["signed_at"], f"{later:%Y-%m-%dT%H:%M:%SZ}")
    assert "in the future" in refusal(obj)


def test_a_code_dated_after_today_is_refused() -> None:
    code = person_commitment()["code"]
    future = code[:6] + "20311231" + code[14:]
    assert "after today" in refusal(with_change(person_commitment(), ["code"], future))


@pytest.mark.parametrize(
    "salt",
    [
        "0x" + "00" * 32,
        "0x" + "5a" * 32,
        "0x" + "0102" * 16,
        "0x" + bytes(range(15)).hex() * 2 + "0001",
    ],
)
def test_salts_that_are_visibly_not_random_are_refused(salt: str) -> None:
    with pytest.raises(InvalidDocumentError, match="salt: not random"):
        check_salt(salt)
    document = Commitment.from_json_obj(with_change(person_commitment(), ["salt"], salt))
    with pytest.raises(InvalidDocumentError, match="salt: not random"):
        sign_commitment(document, SigningKey.generate("ed25519"))


def test_a_fresh_salt_is_accepted() -> None:
    for _ in range(200):
        check_salt(new_salt())


def test_p256_signatures_have_low_s_and_high_s_still_verifies() -> None:
    key = SigningKey.generate("ecdsa-p256")
    obj = with_change(person_commitment(), ["salt"], new_salt())
    document = Commitment.from_json_obj(obj)
    for _ in range(24):  # with high S half the time, 24 in a row would be 1 in 16 million
        signed = sign_commitment(document, key)
        verify_signed(signed)
        r, s = decode_dss_signature(base64.b64decode(signed.signature.value))
        assert s <= P256_ORDER // 2
    high = base64.b64encode(encode_dss_signature(r, P256_ORDER - s)).decode()
    assert verify_bytes("ecdsa-p256", key.public_key_b64(), high, document.canonical())

"""The JSON intake seals: pydantic's serializer writes what json.dumps wrote of the value."""

from __future__ import annotations

import json
from typing import Any

import pytest
from support.documents import organisation_commitment, person_commitment

from api.demo import sample_commitments
from ledger import Commitment, SignedCommitment, SigningKey, new_salt, sign_commitment
from ledger.intake import sealed_form

KEY = SigningKey.generate("ed25519")
AWKWARD_TEXT = [
    'a "quoted" name',
    "back\\slash and /slash/",
    "张三 \u3000 ideographic space",
    "no-break\u00a0space, a tab-free line",
    "emoji \U0001f600 and é, é",
    "<script>&amp;</script>",
    "x" * 200,
]


def as_dumped(signed: SignedCommitment) -> bytes:
    return json.dumps(signed.to_json_obj(), ensure_ascii=False, separators=(",", ":")).encode()


def signed_with_claims(claims: list[dict[str, Any]]) -> SignedCommitment:
    obj = person_commitment() | {"salt": new_salt()}
    obj["claims"] = obj["claims"] + claims
    return sign_commitment(Commitment.from_json_obj(obj), KEY)


def test_sample_documents_seal_as_json_dumps_wrote_them() -> None:
    for commitment in sample_commitments(300, seed=7):
        signed = sign_commitment(commitment, KEY)
        assert sealed_form(signed) == as_dumped(signed)


def test_an_organisation_seals_as_json_dumps_wrote_it() -> None:
    obj = organisation_commitment() | {"salt": new_salt()}
    signed = sign_commitment(Commitment.from_json_obj(obj), KEY)
    assert sealed_form(signed) == as_dumped(signed)


@pytest.mark.parametrize("text", AWKWARD_TEXT)
def test_awkward_strings_seal_as_json_dumps_wrote_them(text: str) -> None:
    signed = signed_with_claims([{"key": "note", "op": "==", "value": text}])
    assert sealed_form(signed) == as_dumped(signed)


def test_numbers_booleans_and_lists_seal_as_json_dumps_wrote_them() -> None:
    signed = signed_with_claims(
        [
            {"key": "most", "op": "<=", "value": 2**53 - 1},
            {"key": "least", "op": ">=", "value": -(2**53 - 1)},
            {"key": "zero", "op": "==", "value": 0},
            {"key": "flag", "op": "!=", "value": True},
            {"key": "places", "op": "in", "value": AWKWARD_TEXT},
        ]
    )
    assert sealed_form(signed) == as_dumped(signed)
    assert SignedCommitment.from_json_obj(json.loads(sealed_form(signed))) == signed

"""The fast canonical encoder against the RFC 8785 implementation.

`canonical_bytes_plain` (the stdlib's C JSON encoder, sorted keys, no spaces) is what
`Commitment.canonical()` hashes and signs; `canonical_bytes` is the maintained RFC 8785
implementation. They agree exactly on the values the commitment schema admits: ASCII keys,
no floats, integers within +/-(2**53 - 1), strings, booleans, null, lists and objects.

Where the fast path is NOT valid (so it must never see such values):
- non-ASCII keys: JCS sorts keys by UTF-16 code units, Python by code points; they differ
  as soon as a key beyond the BMP (an emoji, U+1F600 = D83D DE00) meets one in U+E000..U+FFFF;
- floats: JCS writes the shortest ECMAScript form (1 not 1.0, 1e-7 not 1e-07);
- integers beyond 2**53 - 1: JCS refuses them (they are not exact doubles), json writes them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from api.demo import sample_commitments
from ledger import (
    Commitment,
    InvalidDocumentError,
    canonical_bytes,
    canonical_bytes_plain,
    keccak256,
)
from verifier import default_catalog

SAFE = 2**53 - 1

# Every code point except lone surrogates (which no UTF-8 document can hold).
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)))
# Strings that stress the escaping rules: controls, quotes, backslash, DEL, separators, BOM.
TRICKY_CHARACTERS = (
    '\x00\x08\t\n\x0c\r\x1f"\\/\x7f\x80\u2028\u2029\ufeff\ufffd\U0001f600\u20ac\u738ba'
)
TRICKY = st.text(alphabet=st.sampled_from(list(TRICKY_CHARACTERS)))
ASCII_KEY = st.text(alphabet=st.characters(max_codepoint=0x7F))
SCALARS = st.none() | st.booleans() | st.integers(-SAFE, SAFE) | TEXT | TRICKY
PLAIN_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(ASCII_KEY | TRICKY.filter(str.isascii), children, max_size=6)
    ),
    max_leaves=40,
)


@pytest.mark.property
@settings(max_examples=500, deadline=None)
@given(PLAIN_VALUES)
@example(SAFE)
@example(-SAFE)
@example(0)
@example({"": None, "\x00": True, "\x7f": False, "A": [], "a": {}, "_": ""})
@example({"s": "\u2028\u2029\ufeff\x7f\x1f\U0001f600"})
@example(["\\", '"', "/", "\b\f\n\r\t"])
def test_plain_equals_rfc8785_for_plain_values(value: Any) -> None:
    assert canonical_bytes_plain(value) == canonical_bytes(value)


@pytest.mark.property
@settings(max_examples=200, deadline=None)
@given(st.dictionaries(ASCII_KEY, SCALARS, min_size=2, max_size=12))
def test_ascii_keys_sort_the_same_either_way(value: dict[str, Any]) -> None:
    plain = json.loads(canonical_bytes_plain(value))
    jcs = json.loads(canonical_bytes(value))
    assert list(plain) == list(jcs) == sorted(value)


@pytest.mark.property
@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_sample_commitments_canonical_is_rfc8785(seed: int) -> None:
    for commitment in sample_commitments(10, seed=seed):
        obj = commitment.to_json_obj()
        assert commitment.canonical() == canonical_bytes(obj)


def test_every_sample_commitment_canonical_is_rfc8785() -> None:
    """Across every matter of the catalog, persons, foreigners and organisations."""
    matters_seen = set()
    every = [m.code for m in default_catalog().matters]
    for department in (None, *sorted({m.department for m in default_catalog().matters})):
        samples = [*sample_commitments(150, seed=5, department=department)]
        samples += sample_commitments(50, seed=5, department=department, matters=every)
        for commitment in samples:
            obj = commitment.to_json_obj()
            assert commitment.canonical() == canonical_bytes(obj), obj
            assert commitment.hash() == keccak256(canonical_bytes(obj))
            matters_seen.add(commitment.matter_code)
    assert matters_seen == {m.code for m in default_catalog().matters}


def test_commitment_with_awkward_strings_canonical_is_rfc8785() -> None:
    """Names with quotes, backslashes, non-BMP characters still encode identically (a line
    separator, U+2028, is refused in names: the property tests above cover it)."""
    commitment = next(sample_commitments(1, seed=3))
    obj = commitment.to_json_obj()
    obj["applicant"] = {**obj["applicant"], "name": 'O"Brien \\ 𠮷野家 \uff21\uff22\uff23'}
    rebuilt = Commitment.from_json_obj(obj)
    assert rebuilt.canonical() == canonical_bytes(rebuilt.to_json_obj())


def test_commitment_json_keys_are_ascii() -> None:
    """The precondition of the fast path, checked on the schema's actual output."""

    def keys(value: object) -> list[str]:
        if isinstance(value, dict):
            return [k for k, v in value.items() for k in [k, *keys(v)]]
        if isinstance(value, list):
            return [k for item in value for k in keys(item)]
        return []

    def has_float(value: object) -> bool:
        if isinstance(value, float):
            return True
        if isinstance(value, dict):
            return any(has_float(v) for v in value.values())
        if isinstance(value, list):
            return any(has_float(v) for v in value)
        return False

    for commitment in sample_commitments(100, seed=9):
        obj = commitment.to_json_obj()
        assert all(key.isascii() for key in keys(obj))
        assert not has_float(obj)


# ---------------------------------------------------------------------- where it is not valid


def test_non_ascii_keys_can_sort_differently() -> None:
    """Documented limit: U+FB33 sorts before U+1F600 by code point, after it by UTF-16."""
    value = {"\ufb33": 1, "\U0001f600": 2}
    plain, jcs = canonical_bytes_plain(value), canonical_bytes(value)
    assert list(json.loads(plain)) == ["\ufb33", "\U0001f600"]
    assert list(json.loads(jcs)) == ["\U0001f600", "\ufb33"]
    assert plain != jcs


@pytest.mark.property
@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet=st.characters(min_codepoint=0x80, exclude_categories=("Cs",))),
        st.integers(-SAFE, SAFE),
        min_size=2,
        max_size=6,
    )
)
def test_non_ascii_keys_hold_the_same_members(value: dict[str, int]) -> None:
    """With non-ASCII keys the two encoders may order members differently (no equality is
    claimed); they still encode the same members, so only the order is at stake."""
    assert json.loads(canonical_bytes_plain(value)) == json.loads(canonical_bytes(value))


@pytest.mark.parametrize(
    ("value", "plain", "jcs"),
    [
        (1.0, b"1.0", b"1"),
        (1e-7, b"1e-07", b"1e-7"),
        ({"a": 0.5e21}, b'{"a":5e+20}', b'{"a":500000000000000000000}'),
    ],
)
def test_floats_differ(value: object, plain: bytes, jcs: bytes) -> None:
    assert canonical_bytes_plain(value) == plain
    assert canonical_bytes(value) == jcs


def test_integers_beyond_2_53_are_refused_only_by_rfc8785() -> None:
    assert canonical_bytes_plain(2**53) == b"9007199254740992"
    with pytest.raises(InvalidDocumentError, match="2\\*\\*53"):
        canonical_bytes(2**53)


def test_non_string_keys_are_coerced_only_by_the_fast_path() -> None:
    """Another limit: json turns the key 1 into "1", RFC 8785 refuses a non-string key."""
    assert canonical_bytes_plain({1: "x"}) == b'{"1":"x"}'
    with pytest.raises(InvalidDocumentError):
        canonical_bytes({1: "x"})


@pytest.mark.parametrize(
    "value",
    [
        "\ud800",
        {"k": "a\udfffb"},
        float("nan"),
        {"x": object()},
        {"x": b"bytes"},
    ],
    ids=["lone-high", "lone-low", "nan", "object", "bytes"],
)
def test_both_refuse_what_json_cannot_hold(value: object) -> None:
    with pytest.raises(InvalidDocumentError):
        canonical_bytes_plain(value)
    with pytest.raises(InvalidDocumentError):
        canonical_bytes(value)

"""RFC 8785 canonical form, keccak256 and strict JSON parsing."""

from __future__ import annotations

import json
import math
import struct

import pytest

from ledger import (
    InvalidDocumentError,
    canonical_bytes,
    commitment_hash,
    keccak256,
    load_json_bytes,
)

# RFC 8785 section 3.2.2 example, as JSON text so the parser and number forms are exercised.
RFC_INPUT = r"""{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
RFC_OUTPUT = (
    r'{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
    r'"string":"€$\u000f\nA'
    "'"
    r'B\"\\\\\"/"}'
)

# RFC 8785 section 3.2.3: keys sort by UTF-16 code units, so the emoji (a surrogate pair
# starting 0xD83D) sorts before U+FB33 although its code point U+1F600 is larger.
SORTING_INPUT = r"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"""
SORTED_KEYS = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]

# RFC 8785 appendix B: IEEE 754 bit patterns and their JCS text.
NUMBER_VECTORS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def test_rfc8785_example_document() -> None:
    assert canonical_bytes(load_json_bytes(RFC_INPUT.encode())) == RFC_OUTPUT.encode()


def test_keys_sort_by_utf16_code_units_not_code_points() -> None:
    canonical = canonical_bytes(load_json_bytes(SORTING_INPUT.encode()))
    assert list(json.loads(canonical)) == SORTED_KEYS
    assert canonical.startswith(b'{"\\r":"Carriage Return","1":"One","\xc2\x80":"Control"')


@pytest.mark.parametrize(("bits", "expected"), NUMBER_VECTORS)
def test_number_formatting_matches_rfc8785_appendix_b(bits: str, expected: str) -> None:
    (number,) = struct.unpack(">d", bytes.fromhex(bits))
    assert canonical_bytes(number) == expected.encode()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4.50", b"4.5"), ("1e21", b"1e+21"), ("1E+20", b"100000000000000000000"), ("-0", b"0")],
)
def test_number_spellings_parse_to_one_form(text: str, expected: bytes) -> None:
    assert canonical_bytes(load_json_bytes(text.encode())) == expected


def test_strings_escape_only_what_rfc8785_requires() -> None:
    value = 'tab\t nul\x00 unit\x1f quote" slash/ back\\ é 中 \U0001f600 \u2028'
    expected = '"tab\\t nul\\u0000 unit\\u001f quote\\" slash/ back\\\\ é 中 \U0001f600 \u2028"'
    assert canonical_bytes(value) == expected.encode("utf-8")


def test_whitespace_and_nesting_are_normalised() -> None:
    raw = b'{ "b" : [ 1 , { "z" : true , "a" : null } ] ,\n "a" : "x" }'
    assert canonical_bytes(load_json_bytes(raw)) == b'{"a":"x","b":[1,{"a":null,"z":true}]}'


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (math.nan, "not representable"),
        (math.inf, "not representable"),
        (-math.inf, "not representable"),
        ({1: "one"}, "keys must be strings"),
        (2**53, "2**53 - 1"),
        (-(2**53), "2**53 - 1"),
        ("\ud800", "non-UTF-8"),
        ({"a": b"bytes"}, "unsupported type"),
        ({1, 2}, "unsupported type"),
    ],
    ids=["nan", "inf", "-inf", "int-key", "2**53", "-2**53", "lone-surrogate", "bytes", "set"],
)
def test_values_jcs_cannot_encode_are_rejected(value: object, fragment: str) -> None:
    with pytest.raises(InvalidDocumentError, match="cannot make canonical") as caught:
        canonical_bytes(value)
    assert fragment in str(caught.value)


def test_largest_safe_integers_are_accepted() -> None:
    assert canonical_bytes([2**53 - 1, -(2**53) + 1]) == b"[9007199254740991,-9007199254740991]"


def test_a_value_that_contains_itself_is_rejected() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(InvalidDocumentError, match="contains itself"):
        canonical_bytes(loop)


def test_keccak256_is_ethereum_keccak_not_sha3() -> None:
    empty = "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert keccak256(b"").hex() == empty
    assert keccak256(b"abc").hex() == (
        "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"
    )


def test_commitment_hash_ignores_key_order_and_whitespace() -> None:
    first = load_json_bytes(b'{"a": 1, "b": [true, "x"]}')
    second = load_json_bytes(b'{"b":[true,"x"],"a":1.0}')
    assert commitment_hash(first) == commitment_hash(second) == keccak256(b'{"a":1,"b":[true,"x"]}')


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
        (b'{"outer": [{"k": 1, "k": 1}]}', "duplicate key 'k'"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        (b"[Infinity]", "Infinity is not a JSON number"),
        (b"[-Infinity]", "-Infinity is not a JSON number"),
        (b"[1e400]", "overflows a double"),
        (b'{"name": "\xe5\xbc"}', "invalid UTF-8 at byte 10"),
        (b'\xef\xbb\xbf{"a": 1}', "byte-order mark"),
        (b'{"a": 1}\n{"b": 2}', "Extra data at line 2 column 1"),
        (b'{"a": 1,\n "b": }', "line 2 column 7"),
        (b"", "Expecting value at line 1 column 1"),
        (b"[" * 100_000, "nested deeper than 256 levels"),
        (b"1" * 5000, "not valid JSON"),
    ],
    ids=[
        "duplicate",
        "nested-duplicate",
        "nan",
        "infinity",
        "-infinity",
        "overflow",
        "bad-utf8",
        "bom",
        "trailing",
        "syntax",
        "empty",
        "deep",
        "huge-int",
    ],
)
def test_load_json_bytes_rejects_with_a_one_line_reason(raw: bytes, fragment: str) -> None:
    with pytest.raises(InvalidDocumentError, match=r"^not valid JSON: ") as caught:
        load_json_bytes(raw)
    message = str(caught.value)
    assert fragment in message
    assert "\n" not in message


def test_load_json_bytes_keeps_types() -> None:
    parsed = load_json_bytes('{"n": 84, "f": 4.5, "s": "张三", "l": [null, false]}'.encode())
    assert parsed == {"n": 84, "f": 4.5, "s": "张三", "l": [None, False]}
    assert isinstance(parsed, dict)
    assert type(parsed["n"]) is int


def test_nesting_up_to_the_limit_parses() -> None:
    assert load_json_bytes(b"[" * 256 + b"]" * 256) is not None


def test_brackets_inside_strings_do_not_count_towards_depth() -> None:
    raw = json.dumps({"note": "[{" * 1000 + '\\"'}).encode()
    assert load_json_bytes(raw) == {"note": "[{" * 1000 + '\\"'}


@pytest.mark.parametrize(
    "value",
    [
        {"a": 1, "b": [True, None, "x"]},  # plain: the C encoder's bytes
        {"a": 1.5},  # a float: the full JCS encoder
        {"big": 2**53 - 1, "\u00e9": "non-ASCII key"},  # a non-ASCII key: the full encoder
    ],
)
def test_commitment_hash_is_keccak256_of_the_rfc8785_bytes(value: object) -> None:
    assert commitment_hash(value) == keccak256(canonical_bytes(value))


def test_commitment_hash_refuses_what_rfc8785_cannot_encode() -> None:
    with pytest.raises(InvalidDocumentError):
        commitment_hash({"n": 2**53})

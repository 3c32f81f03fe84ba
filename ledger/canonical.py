"""The one canonical form of a document: strict JSON in, RFC 8785 (JCS) bytes and keccak256 out."""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any, NoReturn

import rfc8785

from ledger.errors import InvalidDocumentError
from ledger.keccak import keccak_digest
from ledger.types import Hash32

__all__ = [
    "canonical_bytes",
    "canonical_bytes_fast",
    "canonical_bytes_plain",
    "commitment_hash",
    "commitment_hash_of_canonical",
    "is_plain",
    "keccak256",
    "load_json_bytes",
]

_UTF8_BOM = b"\xef\xbb\xbf"
_JSON_SAFE_INT = 2**53 - 1
# json's C scanner recurses on the C stack and can crash the process before Python's
# recursion limit trips, so depth is bounded first; documents need fewer than ten levels.
_MAX_DEPTH = 256
# Linear on any input, unlike a pattern for a whole string literal, which retried to the
# end of the text from every quote.
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_DEPTH_CHUNK = 4096
# Also matches an escaped backslash before "u0000" (text, not a NUL): the walk decides.
_NUL_OR_SURROGATE_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def canonical_bytes(value: object) -> bytes:
    """Return the RFC 8785 (JCS) serialisation of a JSON-like value.

    Raises InvalidDocumentError for values JCS cannot encode: NaN or infinite floats,
    integers beyond +/-(2**53 - 1), non-string keys, lone surrogates, other types.
    """
    try:
        return rfc8785.dumps(value)  # type: ignore[arg-type]  # checked by rfc8785 itself
    except rfc8785.IntegerDomainError as exc:
        raise InvalidDocumentError(
            f"cannot make canonical: {exc}; JSON numbers are IEEE 754 doubles, "
            "so integers must lie within +/-(2**53 - 1): write larger ones as strings"
        ) from None
    except rfc8785.CanonicalizationError as exc:
        raise InvalidDocumentError(f"cannot make canonical: {exc}") from None
    except RecursionError:
        raise InvalidDocumentError(
            "cannot make canonical: the value is nested too deeply or contains itself"
        ) from None


def canonical_bytes_plain(value: object) -> bytes:
    """RFC 8785 bytes of a value whose keys are ASCII and which holds no floats, fast.

    For such values JCS is exactly sorted-key, space-free JSON with only the mandatory
    escapes: the stdlib's C encoder gives the same bytes in a fraction of the time. Callers
    guarantee the precondition (the commitment schema does); a test compares both ways.
    """
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
        return text.encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as exc:
        raise InvalidDocumentError(f"cannot make canonical: {exc}") from None


def keccak256(data: bytes) -> Hash32:
    """Return the Ethereum keccak256 digest (not NIST SHA3-256) of ``data``."""
    return Hash32(keccak_digest(data))


def is_plain(value: object) -> bool:
    """Whether ``canonical_bytes_plain`` gives exactly the RFC 8785 bytes of ``value``.

    Only ASCII keys, no floats (JCS writes numbers its own way), integers within
    +/-(2**53 - 1). Exact types only: a subclass (an enum, say) goes to the full encoder.
    """
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not -_JSON_SAFE_INT <= item <= _JSON_SAFE_INT:
                return False
        elif kind is dict:
            for key in item:
                if type(key) is not str or not key.isascii():
                    return False
            stack.extend(item.values())
        elif kind is list or kind is tuple:
            stack.extend(item)
        else:
            return False  # floats and anything else: the full JCS encoder decides
    return True


def canonical_bytes_fast(value: object) -> bytes:
    """The RFC 8785 bytes of ``value``, through the stdlib's C encoder when that gives the
    same bytes (``is_plain``), through the full JCS encoder otherwise."""
    return canonical_bytes_plain(value) if is_plain(value) else canonical_bytes(value)


def commitment_hash(document: object) -> Hash32:
    """THIS IS WHERE THE COMMITMENT HASH IS MADE: keccak256 of the RFC 8785 canonical bytes.

    ``document`` is a commitment's plain JSON value (``Commitment.to_json_obj()``, the
    ``document`` part of a signed commitment; the signature is outside the hash). The
    result is the value anchored on chain (alone or as a Merkle leaf), the key of the store,
    and what an auditor recomputes from the document. ``Commitment.hash`` and every other
    caller come here; nothing else in the project makes a commitment hash. Raises
    InvalidDocumentError for values RFC 8785 cannot encode.
    """
    return commitment_hash_of_canonical(canonical_bytes_fast(document))


def commitment_hash_of_canonical(canonical: bytes) -> Hash32:
    """The commitment hash from a document's RFC 8785 bytes, when the caller made them
    already: intake hashes the very bytes whose signature it checked, encoded once."""
    return keccak256(canonical)


def load_json_bytes(raw: bytes) -> object:
    """Parse one JSON document strictly from UTF-8 bytes; raise InvalidDocumentError.

    Rejected: invalid UTF-8, a byte-order mark, duplicate object keys (anywhere),
    NaN / Infinity / -Infinity, numbers that overflow a double, trailing data, nesting
    deeper than 256 levels, strings holding NUL or a lone surrogate. Time is linear in
    the size of ``raw`` whatever its shape; every body, request and file goes through here.
    """
    text = _decode_utf8(raw)
    _check_depth(text)
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
        )
    except json.JSONDecodeError as exc:
        raise InvalidDocumentError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except InvalidDocumentError:
        raise
    except ValueError as exc:
        # int() refuses numbers of more than 4300 digits with a plain ValueError
        raise InvalidDocumentError(f"not valid JSON: {exc}") from None
    # NUL and lone surrogates can only be written as the escapes \u0000 and \uD800 to \uDFFF
    # (strict parsing refuses a raw NUL, the UTF-8 decoder a raw surrogate): none of them,
    # nothing to walk. Other escapes (a name in \u-escaped Chinese) need no walk.
    if _NUL_OR_SURROGATE_ESCAPE.search(text):
        _check_strings(value)
    return value


def _decode_utf8(raw: bytes) -> str:
    # A BOM would make two byte strings parse to one document; RFC 8259 forbids adding one.
    if raw.startswith(_UTF8_BOM):
        raise InvalidDocumentError("not valid JSON: starts with a UTF-8 byte-order mark")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidDocumentError(
            f"not valid JSON: invalid UTF-8 at byte {exc.start} ({exc.reason})"
        ) from None


def _check_depth(text: str) -> None:
    if text.count("[") + text.count("{") <= _MAX_DEPTH:
        return
    # With escaped backslashes and then escaped quotes gone, the quotes left delimit the
    # strings (in all of the text the parser would accept before an error), so every other
    # piece lies outside strings. str.replace, not a regex: a few ms for 256 KiB, during
    # which this thread holds the GIL.
    unescaped = text.replace("\\\\", "").replace('\\"', "")
    outside = "".join(unescaped.split('"')[0::2])
    brackets = _NOT_BRACKET.sub("", outside)
    depth = 0
    for start in range(0, len(brackets), _DEPTH_CHUNK):  # stops at the first chunk too deep
        steps = map(_DEPTH_STEP.__getitem__, brackets[start : start + _DEPTH_CHUNK])
        levels = list(accumulate(steps, initial=depth))
        if max(levels) > _MAX_DEPTH:
            raise InvalidDocumentError(f"not valid JSON: nested deeper than {_MAX_DEPTH} levels")
        depth = levels[-1]


def _check_strings(value: object) -> None:
    # A NUL cuts a name short in C libraries and SQLite's full-text search; a lone
    # surrogate cannot be written as UTF-8, so it could be neither stored nor hashed.
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict):
            for key, member in item.items():
                _check_text(key)
                stack.append(member)
        elif isinstance(item, list):
            stack.extend(item)


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise InvalidDocumentError("not valid JSON: a string holds U+0000 (NUL)")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            code = ord(text[exc.start])
            raise InvalidDocumentError(
                f"not valid JSON: a string holds a lone surrogate \\u{code:04x}"
            ) from None


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # Parsers disagree on which duplicate wins, so two readers could see two documents.
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            shown = key if len(key) <= 40 else key[:40] + "..."
            raise InvalidDocumentError(f"not valid JSON: duplicate key {shown!r} in an object")
        result[key] = value
    return result


def _reject_constant(name: str) -> NoReturn:
    raise InvalidDocumentError(f"not valid JSON: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise InvalidDocumentError(f"not valid JSON: number {text} overflows a double")
    return number

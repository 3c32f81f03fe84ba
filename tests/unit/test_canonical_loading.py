"""The strict loader's bounds: linear-time depth check, NUL and lone surrogates refused."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ledger import InvalidDocumentError, load_json_bytes

LIMIT = 256 * 1024


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 300 + b'\\"' * ((LIMIT - 300) // 2),  # the old regex: ~20 minutes
        b'["' + b'\\"' * (LIMIT // 2),
        b"[" * LIMIT,
    ],
    ids=["brackets-then-escaped-quotes", "unterminated-string", "only-brackets"],
)
def test_a_body_at_the_limit_shaped_to_be_slow_is_refused_within_a_deadline(raw: bytes) -> None:
    # Another process: a regex holds the GIL, so no thread here could give up on it.
    script = (
        "import sys\n"
        "from ledger.canonical import load_json_bytes\n"
        "from ledger.errors import InvalidDocumentError\n"
        "try:\n"
        "    load_json_bytes(sys.stdin.buffer.read())\n"
        "except InvalidDocumentError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], input=raw, capture_output=True, timeout=20, check=True
    )
    assert done.stdout.decode().startswith("not valid JSON: ")


def test_quotes_escaped_inside_strings_keep_the_depth_right() -> None:
    inside = '\\"[[[' * 200 + "\\\\"  # escaped quotes and an escaped backslash before the end
    raw = ("[" * 250 + json.dumps(inside) + "]" * 250).encode()
    assert load_json_bytes(raw) is not None
    with pytest.raises(InvalidDocumentError, match="nested deeper than 256 levels"):
        load_json_bytes(("[" * 257 + json.dumps(inside) + "]" * 257).encode())


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b'{"name": "\\ud800"}', "lone surrogate \\ud800"),
        (b'{"\\udc00": 1}', "lone surrogate \\udc00"),
        (b'["ok", ["a\\u0000b"]]', "U+0000 (NUL)"),
        (b'{"a\\u0000": 1}', "U+0000 (NUL)"),
    ],
    ids=["surrogate-value", "surrogate-key", "nul-value", "nul-key"],
)
def test_nul_and_lone_surrogates_are_refused(raw: bytes, fragment: str) -> None:
    with pytest.raises(InvalidDocumentError, match=r"^not valid JSON: ") as caught:
        load_json_bytes(raw)
    assert fragment in str(caught.value)


def test_a_surrogate_pair_and_an_escaped_backslash_are_fine() -> None:
    assert load_json_bytes(b'["\\ud83d\\ude00", "\\\\u0000"]') == ["\U0001f600", "\\u0000"]


def test_every_escape_is_refused_exactly_when_it_is_nul_or_a_lone_surrogate() -> None:
    # The loader walks the strings only when the text holds such an escape: every \uXXXX,
    # in lower and upper case hex, beside an escape that needs no walk, and as a key.
    for code in range(0x10000):
        refused = code == 0 or 0xD800 <= code <= 0xDFFF
        for escape in (f"\\u{code:04x}", f"\\u{code:04X}"):
            for raw in (f'["\\u4e2d", "a{escape}"]', f'{{"{escape}": 1}}'):
                try:
                    load_json_bytes(raw.encode())
                except InvalidDocumentError:
                    assert refused, raw
                else:
                    assert not refused, raw


def test_a_duplicate_key_is_quoted_by_a_short_prefix_only() -> None:
    key = "k" * 900_000
    with pytest.raises(InvalidDocumentError) as caught:
        load_json_bytes(json.dumps({key: 1}).encode()[:-1] + f', "{key}": 2}}'.encode())
    assert len(str(caught.value)) < 120

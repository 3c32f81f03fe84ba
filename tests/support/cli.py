"""Helpers shared by the CLI tests: sample documents on disk, and reading the CLI's output."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from api.demo import sample_commitments
from ledger import Commitment, SigningKey, sign_commitment


def write_json(path: Path, value: object) -> Path:
    """Write `value` as pretty JSON (keys in insertion order, UTF-8) and return `path`."""
    path.write_text(json.dumps(value, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def write_documents(
    directory: Path,
    count: int,
    *,
    seed: int = 7,
    department: str | None = None,
    prefix: str = "doc",
) -> list[tuple[Path, Commitment]]:
    """Write `count` bare sample commitments as `prefix<i>.json`; return (path, document)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for i, document in enumerate(sample_commitments(count, seed=seed, department=department)):
        path = write_json(directory / f"{prefix}{i}.json", document.to_json_obj())
        written.append((path, document))
    return written


def write_signed(path: Path, document: Commitment, key: SigningKey | None = None) -> Path:
    """Sign `document` (with a fresh Ed25519 key unless given) and write it to `path`."""
    signed = sign_commitment(document, key or SigningKey.generate("ed25519"))
    return write_json(path, signed.to_json_obj())


def one_json(text: str) -> Any:
    """Parse `text` as exactly one JSON document (json.loads refuses trailing data)."""
    assert text.strip(), "expected one JSON document on stdout, got nothing"
    return json.loads(text)


def one_line(text: str) -> str:
    """The single line of `text` (asserting there is exactly one)."""
    lines = text.strip("\n").splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}: {text!r}"
    return lines[0]


def flat(text: str) -> str:
    """`text` with all runs of whitespace (including wrapped line breaks) made one space."""
    return " ".join(text.split())


def closed_port() -> int:
    """A loopback port on which nothing listens (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def unreachable_rpc() -> str:
    """The URL of a JSON-RPC node that is not there."""
    return f"http://127.0.0.1:{closed_port()}"

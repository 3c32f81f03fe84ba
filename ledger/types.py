"""Domain types shared across the ledger: hashes, addresses, department ids."""

from __future__ import annotations

from typing import NewType

from ledger.errors import InvalidHashError

Hash32 = NewType("Hash32", bytes)
"""Exactly 32 bytes: a keccak256 digest, a Merkle root or leaf, a department id."""

DepartmentId = NewType("DepartmentId", bytes)
"""The 32-byte id the contract binds each account to (keccak256 of the department code)."""


def to_hash32(value: str | bytes) -> Hash32:
    """Parse a 32-byte hash from raw bytes or 0x-prefixed / bare hex; raise InvalidHashError."""
    if isinstance(value, bytes):
        raw = value
    else:
        text = value.strip()
        if text.startswith(("0x", "0X")):
            text = text[2:]
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise InvalidHashError(f"not a hex hash: {value!r}") from None
    if len(raw) != 32:
        raise InvalidHashError(f"a hash must be 32 bytes (64 hex digits), got {len(raw)} bytes")
    return Hash32(raw)


def hex32(value: bytes) -> str:
    """Render 32 bytes as 0x-prefixed lowercase hex."""
    return "0x" + value.hex()

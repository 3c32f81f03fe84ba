"""CommitmentLedger call data written directly, and its simplest answers read: the hot
paths (a 300-outcome transaction, the audit's batched standing) skip eth_abi's generic coder.
The bytes equal eth_abi's (tests compare)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from eth_utils.abi import function_signature_to_4byte_selector

from ledger.errors import ChainError
from ledger.types import Hash32

if TYPE_CHECKING:
    from ledger.contract import OutcomeItem

_RECORD_OUTCOMES = function_signature_to_4byte_selector(
    "recordOutcomes((bytes32,uint8,bytes32,bytes32,bytes32[])[])"
)
WORD = 32


def word(value: int) -> bytes:
    """A uint256 ABI word."""
    return value.to_bytes(WORD, "big")


def bytes32(value: bytes) -> bytes:
    """A bytes32 ABI word; ValueError unless the value has exactly 32 bytes."""
    if len(value) != WORD:
        raise ValueError(f"a bytes32 value has 32 bytes, not {len(value)}")
    return bytes(value)


def encode_outcomes(items: Sequence[OutcomeItem]) -> str:
    """0x-hex call data of `recordOutcomes(items)`, written directly: eth_abi's generic
    encoder checked and wrote the thousands of words of a 300-outcome batch one at a time,
    at more CPU than the rest of sending it. The same bytes as eth_abi (a test compares)."""
    heads, tails = [], []
    offset = WORD * len(items)  # the tuples follow the table of their offsets
    for item in items:
        if not 0 <= int(item.outcome) <= 255:
            raise ValueError(f"an outcome is a uint8, not {int(item.outcome)}")
        tail = b"".join(
            (
                bytes32(item.commitment),
                word(int(item.outcome)),
                bytes32(item.evidence),
                bytes32(item.root),
                word(5 * WORD),  # the proof follows the tuple's five head words
                word(len(item.proof)),
                *(bytes32(node) for node in item.proof),
            )
        )
        heads.append(word(offset))
        tails.append(tail)
        offset += len(tail)
    data = b"".join((_RECORD_OUTCOMES, word(WORD), word(len(items)), *heads, *tails))
    return "0x" + data.hex()


_IS_ANCHORED = function_signature_to_4byte_selector("isAnchored(bytes32,bytes32,bytes32,bytes32[])")
_STATUS_OF = function_signature_to_4byte_selector("statusOf(bytes32,bytes32)")


def encode_is_anchored(
    department: bytes, commitment: Hash32, root: Hash32, proof: Sequence[Hash32]
) -> str:
    """0x-hex call data of `isAnchored(department, commitment, root, proof)`, written directly."""
    words = (
        bytes32(department),
        bytes32(commitment),
        bytes32(root),
        word(4 * WORD),
        word(len(proof)),
    )
    return "0x" + b"".join((_IS_ANCHORED, *words, *(bytes32(n) for n in proof))).hex()


def encode_status_of(department: bytes, commitment: Hash32) -> str:
    """0x-hex call data of `statusOf(department, commitment)`."""
    return "0x" + (_STATUS_OF + bytes32(department) + bytes32(commitment)).hex()


_BATCH_OF = function_signature_to_4byte_selector("batchOf(bytes32,bytes32)")


def encode_batch_of(department: bytes, root: Hash32) -> str:
    """0x-hex call data of `batchOf(department, root)`."""
    return "0x" + (_BATCH_OF + bytes32(department) + bytes32(root)).hex()


def decode_batch_size(raw: bytes) -> int:
    """The size of the `Batch` that `batchOf` returns (department, size, anchoredAt,
    blockNumber: four words); ChainError when the bytes are not one."""
    if len(raw) != 4 * WORD:
        raise ChainError(f"not an ABI Batch: {len(raw)} bytes, 0x{raw[:40].hex()}")
    return int.from_bytes(raw[WORD : 2 * WORD], "big")


def decode_bool(raw: bytes) -> bool:
    """A `bool` return value; ChainError when the bytes are not one."""
    if len(raw) != WORD or int.from_bytes(raw, "big") > 1:
        raise ChainError(f"not an ABI bool: 0x{raw[:40].hex()}")
    return raw[-1] == 1

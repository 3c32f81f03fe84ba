"""keccak256 through one reused state a thread: the same digests as eth_hash, everywhere."""

from __future__ import annotations

import multiprocessing
import os
import threading
from typing import Any

import pytest
from eth_hash.auto import keccak as eth_hash_keccak

from ledger import keccak256
from ledger.keccak import keccak_digest

THREAD_DEADLINE = 60.0
# around the 136-byte rate of keccak256: one block, exactly full, spilling into the next
LENGTHS = [*range(0, 300), 1000, 4096, 100_000]


def test_the_reused_state_is_in_use() -> None:
    assert keccak_digest is not eth_hash_keccak


@pytest.mark.parametrize("length", LENGTHS)
def test_digests_equal_eth_hash(length: int) -> None:
    data = os.urandom(length)
    assert keccak_digest(data) == eth_hash_keccak(data)
    assert keccak256(data) == eth_hash_keccak(data)


def test_known_vectors() -> None:
    assert keccak256(b"").hex() == (
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    )
    assert keccak256(b"a" * 200).hex() == eth_hash_keccak(b"a" * 200).hex()


def test_a_digest_does_not_change_when_the_next_one_is_made() -> None:
    first = keccak_digest(b"first")
    copy = bytes(first)
    keccak_digest(b"second")
    assert first == copy


def test_other_values_are_taken_or_refused_as_eth_hash_does() -> None:
    mutable: Any = bytearray(b"abc")
    assert keccak_digest(mutable) == eth_hash_keccak(b"abc")
    for refused in (memoryview(b"abc"), "abc", None):
        with pytest.raises(TypeError):
            keccak_digest(refused)  # type: ignore[arg-type]


def test_threads_hashing_at_once_get_their_own_digests() -> None:
    inputs = [os.urandom(n % 300) for n in range(2000)]
    expected = [eth_hash_keccak(data) for data in inputs]
    wrong: list[int] = []

    def hash_all() -> None:
        for _ in range(5):
            for index, data in enumerate(inputs):
                if keccak_digest(data) != expected[index]:
                    wrong.append(index)

    threads = [threading.Thread(target=hash_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(THREAD_DEADLINE)
        assert not thread.is_alive()
    assert wrong == []


def _digest_in_child(data: bytes) -> bytes:
    return keccak_digest(data)


def test_a_forked_process_hashes_alike() -> None:
    keccak_digest(b"state made before the fork")
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.map(_digest_in_child, [b"", b"abc" * 100]) == [
            eth_hash_keccak(b""),
            eth_hash_keccak(b"abc" * 100),
        ]

"""batchOf call data written by hand, and its Batch answer read, as web3.py and eth_abi do."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode as abi_encode
from support.deployment import HRSS_ID

from ledger import ChainError, Hash32, keccak256, load_artifact
from ledger.calldata import decode_batch_size, encode_batch_of


def test_call_data_equals_web3s() -> None:
    from web3 import Web3

    contract = Web3().eth.contract(
        address=Web3.to_checksum_address("0x5fbdb2315678afecb367f032d93f642f64180aa3"),
        abi=load_artifact()["abi"],
    )
    for root in (keccak256(b"a root"), Hash32(bytes(32)), Hash32(b"\xff" * 32)):
        expected = contract.encode_abi("batchOf", [HRSS_ID, root])
        assert encode_batch_of(HRSS_ID, root) == expected


@pytest.mark.parametrize("size", [0, 1, 1000, 2**32 - 1])
def test_the_size_is_read_from_a_batch_as_eth_abi_writes_it(size: int) -> None:
    answer = abi_encode(
        ["(bytes32,uint32,uint64,uint64)"], [(HRSS_ID, size, 1_700_000_000, 12_345)]
    )
    assert decode_batch_size(answer) == size


@pytest.mark.parametrize("answer", [b"", b"\x00" * 32, b"\x00" * 160])
def test_an_answer_that_is_no_batch_is_refused(answer: bytes) -> None:
    with pytest.raises(ChainError, match="not an ABI Batch"):
        decode_batch_size(answer)


def test_a_short_root_is_refused_not_padded() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        encode_batch_of(HRSS_ID, Hash32(b"\x01" * 31))

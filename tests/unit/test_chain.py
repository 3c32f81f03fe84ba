"""The chain client: revert decoding, unreachable nodes, nonces, deadlines (on anvil too:
tests/integration/test_chain_anvil.py)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector as selector
from support.deployment import HRSS_ID
from web3 import Web3

from ledger import (
    ZERO_HASH,
    Chain,
    ChainError,
    ContractRevertError,
    NodeUnreachableError,
    Status,
    TransactionTimeoutError,
    decode_revert,
    free_port,
    keccak256,
    load_artifact,
)

ABI = load_artifact()["abi"]


def h(label: str) -> bytes:
    return keccak256(label.encode())


# ---------------------------------------------------------------------- decode_revert


def test_decode_known_custom_errors() -> None:
    c = h("c")
    raw = selector("AlreadyAnchored(bytes32)") + abi_encode(["bytes32"], [c])
    error = decode_revert(raw, ABI)
    assert isinstance(error, ContractRevertError)
    assert isinstance(error, ChainError)
    assert error.error_name == "AlreadyAnchored"
    assert error.error_args == (c,)
    assert error.raw == raw
    assert "AlreadyAnchored(0x" + c.hex() + ")" in str(error)

    raw = selector("InvalidProofLength(uint256,uint256,uint256)") + abi_encode(
        ["uint256"] * 3, [3, 5, 6]
    )
    assert decode_revert(raw, ABI).error_args == (3, 5, 6)

    raw = selector("TransitionNotAllowed(bytes32,uint8,uint8)") + abi_encode(
        ["bytes32", "uint8", "uint8"], [c, 3, 6]
    )
    error = decode_revert(raw, ABI)
    assert error.error_name == "TransitionNotAllowed"
    assert error.error_args == (c, Status.KEPT, Status.BREACHED)

    raw = selector("ZeroHash()")
    error = decode_revert(raw, ABI)
    assert (error.error_name, error.error_args) == ("ZeroHash", ())

    account = "0x" + "ab" * 20
    raw = selector("AccessControlUnauthorizedAccount(address,bytes32)") + abi_encode(
        ["address", "bytes32"], [account, c]
    )
    error = decode_revert(raw, ABI)
    assert error.error_name == "AccessControlUnauthorizedAccount"
    assert error.error_args[0].lower() == account
    assert error.error_args[1] == c


def test_decode_every_abi_error_by_name() -> None:
    for entry in ABI:
        if entry["type"] != "error":
            continue
        types = [i["type"] for i in entry["inputs"]]
        raw = selector(f"{entry['name']}({','.join(types)})") + bytes(32 * len(types))
        assert decode_revert(raw, ABI).error_name == entry["name"]


def test_decode_unknown_selector() -> None:
    raw = bytes.fromhex("deadbeef") + bytes(32)
    error = decode_revert(raw, ABI)
    assert error.error_name == "UnknownRevert"
    assert error.error_args == (raw,)
    assert error.raw == raw
    # a custom error of this contract is unknown without its ABI
    raw = selector("ZeroHash()")
    assert decode_revert(raw, []).error_name == "UnknownRevert"
    # empty revert data (e.g. a bare `revert()`)
    assert decode_revert(b"", ABI).error_name == "UnknownRevert"


def test_decode_error_string_and_panic() -> None:
    raw = selector("Error(string)") + abi_encode(["string"], ["nope"])
    error = decode_revert(raw, ABI)
    assert (error.error_name, error.error_args) == ("Error", ("nope",))
    # even with no ABI at all
    assert decode_revert(raw, []).error_args == ("nope",)

    raw = selector("Panic(uint256)") + abi_encode(["uint256"], [0x11])  # arithmetic overflow
    error = decode_revert(raw, [])
    assert (error.error_name, error.error_args) == ("Panic", (0x11,))


def test_decode_malformed_arguments_still_name_the_error() -> None:
    raw = selector("AlreadyAnchored(bytes32)") + b"\x01\x02"  # truncated argument
    error = decode_revert(raw, ABI)
    assert error.error_name == "AlreadyAnchored"
    assert error.error_args == ()
    assert error.raw == raw


# ---------------------------------------------------------------------- connecting


def test_connect_where_nothing_listens_fails() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(NodeUnreachableError) as info:
        Chain.connect(url)
    assert url in str(info.value)
    assert isinstance(info.value, ConnectionError)


def test_embedded_chain_facts(embedded_chain: Chain) -> None:
    assert embedded_chain.kind == "embedded"
    assert isinstance(embedded_chain.chain_id, int)
    assert embedded_chain.code_at("0x" + "00" * 19 + "42") == b""


# ---------------------------------------------------------------------- nonces and receipts


def _anchor_build(deployment: Any, commitment: bytes) -> Any:
    return deployment.ledger._contract.functions.anchor(commitment).build_transaction


def test_submit_many_then_wait_each(deployment: Any) -> None:
    d = deployment
    w3: Web3 = d.chain.w3
    start_nonce = w3.eth.get_transaction_count(d.registrar.address)
    values = [h(f"pipelined-{i}") for i in range(6)]
    hashes = [d.chain.submit(d.registrar, _anchor_build(d, v), abi=d.ledger.abi) for v in values]
    assert len(set(hashes)) == len(values)
    receipts = [d.chain.wait(tx_hash, timeout=30) for tx_hash in hashes]
    assert all(r["status"] == 1 for r in receipts)
    nonces = [w3.eth.get_transaction(tx_hash)["nonce"] for tx_hash in hashes]
    assert nonces == list(range(start_nonce, start_nonce + len(values)))
    order = [(r["blockNumber"], r["transactionIndex"]) for r in receipts]
    assert order == sorted(order)
    assert w3.eth.get_transaction_count(d.registrar.address) == start_nonce + len(values)
    for v in values:
        assert d.ledger.status_of(HRSS_ID, v).status is Status.ANCHORED
    anchored = [bytes(e.args["commitment"]) for e in d.ledger.events("CommitmentAnchored")]
    assert anchored == values


def test_revert_at_build_time_sends_nothing(deployment: Any) -> None:
    d = deployment
    w3: Web3 = d.chain.w3
    d.ledger.anchor(d.registrar, h("first"))
    count = w3.eth.get_transaction_count(d.registrar.address)
    block = d.chain.block_number()
    for _ in range(3):
        with pytest.raises(ContractRevertError) as info:
            d.chain.submit(d.registrar, _anchor_build(d, ZERO_HASH), abi=d.ledger.abi)
        assert info.value.error_name == "ZeroHash"
        with pytest.raises(ContractRevertError) as info:
            d.chain.transact(d.registrar, _anchor_build(d, h("first")), abi=d.ledger.abi)
        assert info.value.error_name == "AlreadyAnchored"
    assert w3.eth.get_transaction_count(d.registrar.address) == count
    assert w3.eth.get_transaction_count(d.registrar.address, "pending") == count
    assert d.chain.block_number() == block
    # the client's own nonce did not move either: the next transaction is mined at once
    tx_hash = d.chain.submit(d.registrar, _anchor_build(d, h("second")), abi=d.ledger.abi)
    assert w3.eth.get_transaction(tx_hash)["nonce"] == count
    assert d.chain.wait(tx_hash, timeout=30)["status"] == 1


def test_revert_without_abi_is_still_a_revert(deployment: Any) -> None:
    d = deployment
    with pytest.raises(ContractRevertError) as info:
        d.chain.submit(d.registrar, _anchor_build(d, ZERO_HASH))
    assert info.value.error_name == "UnknownRevert"
    assert info.value.raw == selector("ZeroHash()")


def test_wait_for_a_hash_never_mined_times_out(deployment: Any) -> None:
    never = os.urandom(32)
    started = time.monotonic()
    with pytest.raises(TransactionTimeoutError) as info:
        deployment.chain.wait(never, timeout=0.5)
    assert time.monotonic() - started >= 0.4  # the deadline was waited out, not skipped
    assert never.hex() in str(info.value)
    assert isinstance(info.value, TimeoutError)


def test_transact_returns_a_successful_receipt(deployment: Any) -> None:
    d = deployment
    receipt = d.chain.transact(d.registrar, _anchor_build(d, h("receipt")), abi=d.ledger.abi)
    assert receipt["status"] == 1
    assert receipt["blockNumber"] == d.chain.block_number()
    assert receipt["gasUsed"] > 21_000

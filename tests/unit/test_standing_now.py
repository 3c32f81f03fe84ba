"""The auditors' question to the contract, asked in one batched JSON-RPC POST: call data
equal to web3's, answers equal to web3's on the embedded chain, and a node that answers
nonsense or not at all is an error, never a wrong answer."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from eth_abi.abi import encode as abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st
from support.deployment import HRSS_ID, Deployment

from ledger import (
    ChainError,
    Hash32,
    MerkleTree,
    NodeUnreachableError,
    RpcBatch,
    StandingNow,
    Status,
    decode_bool,
    decode_standing,
    encode_is_anchored,
    encode_status_of,
    keccak256,
)

WORD = st.binary(min_size=32, max_size=32).map(Hash32)


def h(text: str) -> Hash32:
    return Hash32(keccak256(text.encode()))


# ---------------------------------------------------------------------- encoding


@pytest.mark.property
@settings(max_examples=200, deadline=None)
@given(WORD, WORD, st.lists(WORD, max_size=24))
def test_call_data_equals_web3s(commitment: Hash32, root: Hash32, proof: list[Hash32]) -> None:
    contract = _web3_contract()
    expected = contract.encode_abi("isAnchored", [HRSS_ID, commitment, root, proof])
    assert encode_is_anchored(HRSS_ID, commitment, root, proof) == expected
    assert encode_status_of(HRSS_ID, commitment) == contract.encode_abi(
        "statusOf", [HRSS_ID, commitment]
    )


def test_a_short_hash_is_refused_not_padded() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        encode_status_of(HRSS_ID, Hash32(b"\x01" * 31))
    with pytest.raises(ValueError, match="32 bytes"):
        encode_is_anchored(HRSS_ID, h("a"), h("b"), [Hash32(b"\x01" * 33)])


def test_answers_decode_as_eth_abi_writes_them() -> None:
    raw = abi_encode(["uint8", "bytes32", "uint64", "uint64"], [6, h("dept"), 2**64 - 1, 7])
    standing = decode_standing(raw)
    assert (standing.status, standing.department) == (Status.BREACHED, h("dept"))
    assert (standing.anchored_at, standing.updated_at) == (2**64 - 1, 7)
    assert decode_bool(abi_encode(["bool"], [True])) is True
    assert decode_bool(abi_encode(["bool"], [False])) is False


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        bytes(96),  # a word short
        bytes(160),  # a word too many
        abi_encode(["uint8", "bytes32", "uint64", "uint64"], [200, bytes(32), 0, 0]),
        abi_encode(["uint256", "bytes32", "uint256", "uint64"], [1, bytes(32), 2**64, 0]),
    ],
)
def test_a_malformed_standing_is_an_error(raw: bytes) -> None:
    with pytest.raises(ChainError):
        decode_standing(raw)


@pytest.mark.parametrize("raw", [b"", b"\x01", abi_encode(["uint256"], [2]), bytes(64)])
def test_a_malformed_bool_is_an_error(raw: bytes) -> None:
    with pytest.raises(ChainError):
        decode_bool(raw)


# ---------------------------------------------------------------------- embedded chain


def test_on_the_embedded_chain_the_answer_is_web3s(embedded_deployment: Deployment) -> None:
    d = embedded_deployment
    values = [h(f"member-{i}") for i in range(5)]
    tree = MerkleTree.build(values)
    d.ledger.anchor_batch(d.registrar, tree.root, len(tree))
    breached = values[2]
    d.ledger.record_outcome(
        d.verifier, breached, Status.PROPOSED, h("notice"), tree.root, tree.proof(breached)
    )
    d.ledger.record_outcome(d.verifier, breached, Status.BREACHED, h("evidence"))
    answer = d.ledger.standing_now(HRSS_ID, breached, (tree.root, tree.proof(breached)))
    assert answer == StandingNow(
        d.chain.block_number(),
        True,
        d.ledger.status_of(HRSS_ID, breached),
    )
    assert answer.standing.status is Status.BREACHED
    member = d.ledger.standing_now(HRSS_ID, values[0], (tree.root, tree.proof(values[0])))
    assert (member.anchored, member.standing.status) == (True, Status.NONE)
    wrong = d.ledger.standing_now(HRSS_ID, values[0], (tree.root, tree.proof(values[1])))
    assert wrong.anchored is False
    unasked = d.ledger.standing_now(HRSS_ID, h("unknown"))
    assert (unasked.anchored, unasked.standing.status) == (None, Status.NONE)


# ---------------------------------------------------------------------- the node's answer


class _Node:
    """A JSON-RPC endpoint on loopback that answers what the test says: a real node cannot
    be made to answer nonsense."""

    def __init__(self) -> None:
        self.answer: Callable[[list[dict[str, Any]]], tuple[int, bytes]] = _echo_results
        self.received: list[Any] = []
        self.authorizations: list[str | None] = []
        self.hang_up = False  # close each kept-alive connection after one answer, unsaid
        node = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                node.received.append(body)
                node.authorizations.append(self.headers.get("Authorization"))
                status, payload = node.answer(body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                self.close_connection = node.hang_up or self.close_connection

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def _echo_results(body: list[dict[str, Any]]) -> tuple[int, bytes]:
    return 200, json.dumps(
        [{"jsonrpc": "2.0", "id": c["id"], "result": "0x1"} for c in body]
    ).encode()


@pytest.fixture
def node() -> Iterator[_Node]:
    fake = _Node()
    thread = threading.Thread(target=fake.server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def test_one_post_answers_every_call_in_order(node: _Node) -> None:
    def reversed_order(body: list[dict[str, Any]]) -> tuple[int, bytes]:
        results = [{"jsonrpc": "2.0", "id": c["id"], "result": c["method"]} for c in body]
        return 200, json.dumps(results[::-1]).encode()

    node.answer = reversed_order
    batch = RpcBatch(node.url)
    try:
        assert batch.call([("a", []), ("b", [1]), ("c", [])]) == ["a", "b", "c"]
        assert batch.call([("d", [])]) == ["d"]
    finally:
        batch.close()
    assert [len(posted) for posted in node.received] == [3, 1]
    assert node.received[0][1]["params"] == [1]


def _garbled(payload: object, status: int = 200) -> Callable[[list[Any]], tuple[int, bytes]]:
    def answer(body: list[dict[str, Any]]) -> tuple[int, bytes]:
        ids = [c["id"] for c in body]
        text = payload(ids) if callable(payload) else payload
        return status, text if isinstance(text, bytes) else json.dumps(text).encode()

    return answer


GARBLED = {
    "not json": b"<html>oops</html>",
    "an object": {"jsonrpc": "2.0", "id": 1, "result": "0x1"},
    "an error": lambda ids: [{"id": i, "error": {"code": -32000, "message": "no"}} for i in ids],
    "a missing answer": lambda ids: [{"id": i, "result": "0x1"} for i in ids[1:]],
    "foreign ids": lambda ids: [{"id": i + 100, "result": "0x1"} for i in ids],
    "no result": lambda ids: [{"id": i} for i in ids],
    "not entries": lambda ids: ["0x1" for _ in ids],
}


@pytest.mark.parametrize("name", list(GARBLED))
def test_a_garbled_answer_is_an_error(node: _Node, name: str) -> None:
    node.answer = _garbled(GARBLED[name])
    batch = RpcBatch(node.url)
    try:
        with pytest.raises(ChainError) as raised:
            batch.call([("eth_blockNumber", []), ("eth_call", [{}, "latest"])])
        assert not isinstance(raised.value, NodeUnreachableError)
    finally:
        batch.close()


def test_an_http_error_is_an_error(node: _Node) -> None:
    node.answer = lambda body: (503, b"busy")
    batch = RpcBatch(node.url)
    with pytest.raises(ChainError, match="HTTP 503"):
        batch.call([("eth_blockNumber", [])])
    batch.close()


def test_a_node_that_is_not_there_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    batch = RpcBatch(f"http://127.0.0.1:{port}")
    with pytest.raises(NodeUnreachableError):
        batch.call([("eth_blockNumber", [])])
    batch.close()


def test_a_node_that_does_not_answer_in_time_is_unreachable() -> None:
    with socket.socket() as silent:  # accepts (the kernel does) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        batch = RpcBatch(f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.2)
        with pytest.raises(NodeUnreachableError):
            batch.call([("eth_blockNumber", [])])
        batch.close()


def _web3_contract() -> Any:
    from web3 import Web3

    from ledger import load_artifact

    return Web3().eth.contract(
        address="0x5FbDB2315678afecb367f032d93F642f64180aa3", abi=load_artifact()["abi"]
    )


def test_a_kept_alive_connection_the_node_closed_is_opened_again(node: _Node) -> None:
    node.server.RequestHandlerClass.protocol_version = "HTTP/1.1"  # keeps connections...
    node.hang_up = True  # ...but closes each after one answer, without saying so
    batch = RpcBatch(node.url)
    try:
        assert batch.call([("a", [])]) == ["0x1"]
        assert batch.call([("b", [])]) == ["0x1"]  # the first connection is gone by now
    finally:
        batch.close()
    assert len(node.received) == 2


def test_a_node_behind_basic_auth_gets_its_credentials(node: _Node) -> None:
    batch = RpcBatch(node.url.replace("http://", "http://auditor:s%3Acret@") + "/rpc?x=1")
    try:
        assert batch.call([("a", [])]) == ["0x1"]
    finally:
        batch.close()
    assert node.authorizations == ["Basic " + base64.b64encode(b"auditor:s:cret").decode()]


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ChainError, match="not an http"):
        RpcBatch("ws://127.0.0.1:8545")

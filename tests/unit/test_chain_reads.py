"""The audit lookup's reads from the event loop (api.service.chain_reads): one batch per
lookup, the current status every time, final anchorings kept and dropped when the chain
goes back, and a node that is down, silent or wrong is an error within the timeout."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from api.service.chain_reads import (
    Anchoring,
    AsyncRpc,
    AsyncStanding,
    FinalAnchors,
)
from ledger import ChainError, Hash32, NodeUnreachableError, StandingNow, Status
from ledger.contract import Standing

DIGEST = Hash32(b"\x11" * 32)
ROOT = Hash32(b"\x22" * 32)
ANCHORING = Anchoring(ROOT, (Hash32(b"\x33" * 32),), 100, b"\x44" * 32)
CHAIN_ID = 31337


def _word(value: int) -> str:
    return value.to_bytes(32, "big").hex()


class FakeNode:
    """A JSON-RPC node on loopback that answers batches from `head`, `status` and
    `anchored`, and records the methods of each batch it was sent."""

    def __init__(self) -> None:
        self.head = 1_000
        self.status = Status.ANCHORED
        self.anchored = True
        self.chain_id = CHAIN_ID
        self.batches: list[list[str]] = []
        self.reply: Callable[[list[dict[str, Any]]], bytes] | None = None

    def _result(self, call: dict[str, Any]) -> str:
        if call["method"] == "eth_blockNumber":
            return hex(self.head)
        if call["method"] == "eth_chainId":
            return hex(self.chain_id)
        data = call["params"][0]["data"]
        if len(data) > 2 + 8 + 2 * 64 * 2:  # isAnchored: four arguments and a proof
            return "0x" + _word(int(self.anchored))
        return "0x" + _word(int(self.status)) + _word(0) + _word(5) + _word(6)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                calls = json.loads(await reader.readexactly(length))
                self.batches.append([c["method"] for c in calls])
                if self.reply is not None:
                    body = self.reply(calls)
                else:
                    body = json.dumps(
                        [
                            {"jsonrpc": "2.0", "id": c["id"], "result": self._result(c)}
                            for c in calls
                        ]
                    ).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def _run(test: Callable[[FakeNode, str], Awaitable[None]]) -> FakeNode:
    node = FakeNode()

    async def main() -> None:
        server = await asyncio.start_server(node.serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            await test(node, f"http://127.0.0.1:{port}")

    asyncio.run(main())
    return node


def _standing(url: str, depth: int = 64) -> AsyncStanding:
    return AsyncStanding(
        AsyncRpc(url, timeout=2.0), "0x" + "55" * 20, CHAIN_ID, FinalAnchors(depth=depth)
    )


def test_a_lookup_is_one_batch_and_the_chain_id_is_checked_once() -> None:
    async def test(node: FakeNode, url: str) -> None:
        reader = _standing(url, depth=10_000)  # never final here: isAnchored every time
        first = await reader.standing_now("BJ-HRSS", DIGEST, ANCHORING)
        second = await reader.standing_now("BJ-HRSS", DIGEST, None)
        assert first == StandingNow(1_000, True, Standing(Status.ANCHORED, b"\0" * 32, 5, 6))
        assert second.anchored is None
        assert node.batches == [
            ["eth_blockNumber", "eth_call", "eth_chainId", "eth_call"],
            ["eth_blockNumber", "eth_call"],
        ]

    _run(test)


def test_a_final_anchoring_is_not_asked_again_but_the_status_is() -> None:
    async def test(node: FakeNode, url: str) -> None:
        reader = _standing(url, depth=64)
        node.head = ANCHORING.block_number + 64
        assert (await reader.standing_now("BJ-HRSS", DIGEST, ANCHORING)).anchored is True
        node.status = Status.BREACHED  # the outcome moves on: the lookup says so at once
        again = await reader.standing_now("BJ-HRSS", DIGEST, ANCHORING)
        assert again.anchored is True and again.standing.status is Status.BREACHED
        assert node.batches[-1] == ["eth_blockNumber", "eth_call"]  # no isAnchored
        assert len(reader.final) == 1

    _run(test)


def test_a_shallow_or_false_anchoring_is_asked_every_time() -> None:
    async def test(node: FakeNode, url: str) -> None:
        reader = _standing(url, depth=64)
        node.head = ANCHORING.block_number + 63  # one block short of final
        await reader.standing_now("BJ-HRSS", DIGEST, ANCHORING)
        node.head += 100
        node.anchored = False  # the node does not hold it: never kept
        assert (await reader.standing_now("BJ-HRSS", DIGEST, ANCHORING)).anchored is False
        assert (await reader.standing_now("BJ-HRSS", DIGEST, ANCHORING)).anchored is False
        assert all(batch[-1] == "eth_call" and len(batch) >= 3 for batch in node.batches)
        assert len(reader.final) == 0

    _run(test)


def test_a_reorg_below_the_final_depth_drops_what_was_kept() -> None:
    async def test(node: FakeNode, url: str) -> None:
        reader = _standing(url, depth=64)
        node.head = ANCHORING.block_number + 80
        await reader.standing_now("BJ-HRSS", DIGEST, ANCHORING)
        assert len(reader.final) == 1
        # The chain went back (a node restarted without its state): the batch is gone.
        node.head = ANCHORING.block_number + 10
        node.anchored = False
        after = await reader.standing_now("BJ-HRSS", DIGEST, ANCHORING)
        assert after.anchored is False  # asked again, not answered from what was kept
        assert len(reader.final) == 0
        assert "eth_call" in node.batches[-1] and len(node.batches[-1]) == 3

    _run(test)


def test_an_anchoring_moved_to_another_block_is_not_the_kept_one() -> None:
    final = FinalAnchors(depth=2)
    answer = StandingNow(200, True, Standing(Status.ANCHORED, b"", 0, 0))
    final.seen("BJ-HRSS", DIGEST, ANCHORING, answer)
    assert final.known("BJ-HRSS", DIGEST, ANCHORING)
    moved = ANCHORING._replace(block_number=150, block_hash=b"\x66" * 32)
    assert not final.known("BJ-HRSS", DIGEST, moved)
    assert not final.known("BJ-SAMR", DIGEST, ANCHORING)  # another department's record
    final.head(150)  # back below 100 + 2? no: 150 - 100 >= 2, still final
    assert final.known("BJ-HRSS", DIGEST, ANCHORING)
    final.head(101)
    assert not final.known("BJ-HRSS", DIGEST, ANCHORING)


def test_the_kept_anchorings_are_bounded() -> None:
    final = FinalAnchors(depth=1, size=3)
    answer = StandingNow(200, True, Standing(Status.ANCHORED, b"", 0, 0))
    digests = [Hash32(bytes([n]) * 32) for n in range(5)]
    for digest in digests:
        final.seen("BJ-HRSS", digest, ANCHORING, answer)
    assert len(final) == 3
    assert not final.known("BJ-HRSS", digests[0], ANCHORING)
    assert final.known("BJ-HRSS", digests[4], ANCHORING)


def test_a_node_on_another_chain_is_refused() -> None:
    async def test(node: FakeNode, url: str) -> None:
        node.chain_id = 1
        with pytest.raises(ChainError, match="chain 1"):
            await _standing(url).standing_now("BJ-HRSS", DIGEST, None)

    _run(test)


@pytest.mark.parametrize(
    "reply",
    [
        lambda calls: b"not json",
        lambda calls: b'{"jsonrpc": "2.0", "id": 1, "result": "0x1"}',
        lambda calls: json.dumps(
            [{"jsonrpc": "2.0", "id": c["id"], "error": {"code": -32000}} for c in calls]
        ).encode(),
        lambda calls: json.dumps(
            [{"jsonrpc": "2.0", "id": c["id"], "result": "0xzz"} for c in calls]
        ).encode(),
        lambda calls: json.dumps([{"jsonrpc": "2.0", "id": 99, "result": "0x1"}]).encode(),
    ],
    ids=["not-json", "not-a-batch", "refused", "not-hex", "other-ids"],
)
def test_a_malformed_answer_is_a_chain_error(reply: Callable[[Any], bytes]) -> None:
    async def test(node: FakeNode, url: str) -> None:
        node.reply = reply
        with pytest.raises(ChainError):
            await _standing(url).standing_now("BJ-HRSS", DIGEST, ANCHORING)

    _run(test)


def test_a_node_that_is_down_is_unreachable() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def main() -> None:
        with pytest.raises(NodeUnreachableError, match=f"127.0.0.1:{port}"):
            await AsyncRpc(f"http://127.0.0.1:{port}").call([("eth_blockNumber", [])])

    asyncio.run(main())


def test_a_node_that_never_answers_is_unreachable_within_the_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]

        async def main() -> None:
            rpc = AsyncRpc(f"http://127.0.0.1:{port}", timeout=0.2)
            with pytest.raises(NodeUnreachableError, match="TimeoutError"):
                await rpc.call([("eth_blockNumber", [])])

        asyncio.run(main())


def test_a_kept_alive_connection_the_node_closed_is_opened_again() -> None:
    async def test(node: FakeNode, url: str) -> None:
        rpc = AsyncRpc(url)
        assert await rpc.call([("eth_blockNumber", [])]) == [hex(node.head)]
        for _, writer in rpc._idle:  # as if the node had closed it meanwhile
            writer.transport.abort()
        assert await rpc.call([("eth_blockNumber", [])]) == [hex(node.head)]

    _run(test)


def test_the_url_credentials_go_in_a_header_and_are_never_named() -> None:
    rpc = AsyncRpc("http://user:s%40cret@127.0.0.1:9/")
    assert b"Authorization: Basic dXNlcjpzQGNyZXQ=" in rpc._head
    assert rpc.where == "127.0.0.1:9"
    with pytest.raises(ChainError):
        AsyncRpc("ws://127.0.0.1:9/")


def test_the_chain_id_is_asked_again_after_the_node_failed() -> None:
    async def test(node: FakeNode, url: str) -> None:
        reader = _standing(url)
        await reader.standing_now("BJ-HRSS", DIGEST, None)
        node.reply = lambda calls: b"not json"
        with pytest.raises(ChainError):
            await reader.standing_now("BJ-HRSS", DIGEST, None)
        node.reply = None
        node.chain_id = 5  # back, but on another chain: refused, not read
        with pytest.raises(ChainError, match="chain 5"):
            await reader.standing_now("BJ-HRSS", DIGEST, None)

    _run(test)

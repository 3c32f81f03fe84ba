"""The audit lookup's questions to the node, asked from the event loop: no thread hand-off.

A lookup asks the node three things at the time of the lookup: its head block, `statusOf`
and, for an anchored commitment, `isAnchored` with the stored proof. Through the thread pool
and a blocking client each lookup waited for a thread and held it across the node's answer;
here they go as one JSON-RPC batch POST over a small pool of kept-alive asyncio connections,
bounded by a timeout (a node that does not answer is "unreachable", never a hang).

What cannot change is not asked again: an `isAnchored` answer of true for a batch whose block
is FINAL_DEPTH blocks under the head is kept (`FinalAnchors`), keyed by department, root,
the anchoring block's number and hash, and the commitment. Every lookup still asks the head
and the commitment's current `statusOf`; a head that went back below a kept batch's final
depth (a reorg, a node restarted without its state) drops what was kept of it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote, urlsplit

from ledger import (
    ChainError,
    Hash32,
    NodeUnreachableError,
    StandingNow,
    batch_results,
    decode_bool,
    decode_standing,
    department_id,
    encode_is_anchored,
    encode_status_of,
    hex_data,
    hex_quantity,
)

if TYPE_CHECKING:
    from api.service.context import ChainLink

log = logging.getLogger("commitledger.service")

READ_TIMEOUT_S = 2.0  # for the whole exchange: connecting, sending, the whole answer
MAX_CONNECTIONS = 8  # kept-alive connections to the node per process
MAX_ANSWER_BYTES = 1 << 20  # a batch of three small answers is well under a kilobyte
FINAL_DEPTH = 64  # blocks on top after which an anchoring is taken as final
MAX_KEPT = 100_000  # final anchorings kept (about 200 bytes each)


class Anchoring(NamedTuple):
    """The store's facts of where a commitment was anchored, as the node is asked of them."""

    root: Hash32
    proof: tuple[Hash32, ...]
    block_number: int
    block_hash: bytes


class FinalAnchors:
    """`isAnchored` answers of true for anchorings FINAL_DEPTH blocks deep (bounded, LRU)."""

    def __init__(self, depth: int = FINAL_DEPTH, size: int = MAX_KEPT) -> None:
        self.depth = depth
        self._size = size
        self._kept: OrderedDict[tuple[str, bytes, int, bytes, bytes], int] = OrderedDict()
        self._highest = 0  # the highest head seen: a head below it went back

    @staticmethod
    def _key(
        department: str, digest: Hash32, anchoring: Anchoring
    ) -> tuple[str, bytes, int, bytes, bytes]:
        return (
            department,
            bytes(anchoring.root),
            anchoring.block_number,
            bytes(anchoring.block_hash),
            bytes(digest),
        )

    def known(self, department: str, digest: Hash32, anchoring: Anchoring) -> bool:
        """Whether the node said this anchoring holds the commitment, and it is final."""
        key = self._key(department, digest, anchoring)
        if key not in self._kept:
            return False
        self._kept.move_to_end(key)
        return True

    def seen(
        self, department: str, digest: Hash32, anchoring: Anchoring, answer: StandingNow
    ) -> None:
        """Take in the node's answer: its head, and the anchoring if it is true and final."""
        self.head(answer.head)
        if answer.anchored and answer.head - anchoring.block_number >= self.depth:
            self._kept[self._key(department, digest, anchoring)] = anchoring.block_number
            if len(self._kept) > self._size:
                self._kept.popitem(last=False)

    def head(self, head: int) -> None:
        """The node's head now: what is no longer FINAL_DEPTH under it is dropped."""
        if head < self._highest:  # the chain went back: keep only what is still final
            for key, block in list(self._kept.items()):
                if head - block < self.depth:
                    del self._kept[key]
        self._highest = head

    def __len__(self) -> int:
        return len(self._kept)


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class AsyncRpc:
    """A JSON-RPC endpoint asked in batches from the event loop, over kept-alive HTTP/1.1
    connections (at most MAX_CONNECTIONS; more callers wait for one).

    The connections belong to the event loop that opened them: on another loop (a test
    client's) the pool starts anew.
    """

    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ChainError(f"not an http(s) JSON-RPC URL: {parts.scheme}://{parts.hostname}")
        self.url = url
        self._tls = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._tls else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = [
            f"POST {path} HTTP/1.1",
            f"Host: {parts.netloc.rpartition('@')[2]}",
            "Content-Type: application/json",
            "Connection: keep-alive",
        ]
        if parts.username is not None:  # a node behind basic auth, as web3.py allows
            secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            head.append("Authorization: Basic " + base64.b64encode(secret).decode())
        self._head = ("\r\n".join(head) + "\r\nContent-Length: ").encode()
        self._timeout = READ_TIMEOUT_S if timeout is None else timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)

    @property
    def where(self) -> str:
        """Host and port, never the URL's credentials."""
        return f"{self._host}:{self._port}"

    async def call(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        """The results of `calls` in their order, from one POST.

        NodeUnreachableError when the node does not answer within the timeout; ChainError
        when its answer is not a JSON-RPC batch answer to these calls or a call failed."""
        body = json.dumps(
            [
                {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
                for i, (method, params) in enumerate(calls, 1)
            ],
            separators=(",", ":"),
        ).encode()
        request = self._head + b"%d\r\n\r\n" % len(body) + body
        self._own_loop()
        try:
            async with asyncio.timeout(self._timeout), self._slots:
                status, payload = await self._exchange(request)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as exc:
            raise NodeUnreachableError(
                f"the node at {self.where} does not answer ({type(exc).__name__})"
            ) from exc
        if status != 200:
            raise ChainError(f"the node answered HTTP {status} to a batch")
        try:
            answer = json.loads(payload)
        except ValueError as exc:
            raise ChainError("the node's answer to a batch is not JSON") from exc
        return batch_results(answer, range(1, len(calls) + 1))

    def _own_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # connections of another loop (a test client's) are no use
            if self._loop is not None and not self._loop.is_closed():
                self.close()
            # a closed loop cannot close its transports: their finalizers close the sockets
            self._idle.clear()
            self._loop = loop
            self._slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def _exchange(self, request: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):
            kept = bool(self._idle)
            reader, writer = self._idle.pop() if kept else await self._open()
            try:
                writer.write(request)
                status, payload, keep = await _response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                writer.transport.abort()
                # The node may have closed a kept-alive connection meanwhile: a read is safe
                # to send again, once, on a new one (a timeout ends the whole exchange).
                if attempt == 1 and kept:
                    continue
                raise
            except BaseException:  # cancelled or timed out mid-answer: the stream is unusable
                writer.transport.abort()
                raise
            if keep:
                self._idle.append((reader, writer))
            else:
                writer.transport.abort()
            return status, payload
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _open(self) -> _Connection:
        return await asyncio.open_connection(
            self._host, self._port, ssl=True if self._tls else None, limit=MAX_ANSWER_BYTES
        )

    def close(self) -> None:
        """Drop the kept-alive connections."""
        for _, writer in self._idle:
            writer.transport.abort()
        self._idle.clear()


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body and whether the connection stays open, of one HTTP/1.1 response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length: int | None = None
    chunked, keep = False, lines[0].startswith(b"HTTP/1.1")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            keep = value == b"keep-alive" or (keep and value != b"close")
    if chunked:
        parts = []
        total = 0
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            total += size
            if total > MAX_ANSWER_BYTES:
                raise ValueError("the node's answer is too large")
            parts.append(await reader.readexactly(size + 2))
            if size == 0:  # its CRLF read with it (nodes send no trailers)
                return status, b"".join(p[:-2] for p in parts), keep
    if length is None:
        return status, await reader.read(MAX_ANSWER_BYTES), False  # to the close
    if length > MAX_ANSWER_BYTES:
        raise ValueError("the node's answer is too large")
    return status, await reader.readexactly(length), keep


class AsyncStanding:
    """What the contract says of a commitment now, asked from the event loop."""

    def __init__(
        self, rpc: AsyncRpc, contract: str, chain_id: int, final: FinalAnchors | None = None
    ) -> None:
        self.rpc = rpc
        self.contract = contract
        self.chain_id = chain_id
        self.final = final or FinalAnchors()
        self._checked = False  # whether the node's chain id was found to be the deployment's

    async def standing_now(
        self, department: str, digest: Hash32, anchoring: Anchoring | None
    ) -> StandingNow:
        """The head, `isAnchored` (None without an anchoring; from what was kept when final)
        and `statusOf`, of the department's record of `digest`. NodeUnreachableError or
        ChainError when the node cannot answer or answers otherwise than the calls ask."""
        who = department_id(department)
        target = {"to": self.contract}
        calls: list[tuple[str, list[Any]]] = [
            ("eth_blockNumber", []),
            ("eth_call", [{**target, "data": encode_status_of(who, digest)}, "latest"]),
        ]
        if not self._checked:
            calls.append(("eth_chainId", []))
        kept = anchoring is not None and self.final.known(department, digest, anchoring)
        if anchoring is not None and not kept:
            data = encode_is_anchored(who, digest, anchoring.root, anchoring.proof)
            calls.append(("eth_call", [{**target, "data": data}, "latest"]))
        try:
            results = await self.rpc.call(calls)
        except ChainError:  # NodeUnreachableError too: the node may come back as another
            self._checked = False
            raise
        if not self._checked:
            node_chain = hex_quantity(results.pop(2))
            if node_chain != self.chain_id:
                raise ChainError(f"the node is on chain {node_chain}, not {self.chain_id}")
            self._checked = True
        head = hex_quantity(results[0])
        standing = decode_standing(hex_data(results[1]))
        if anchoring is None:
            return StandingNow(head, None, standing)
        if kept:
            self.final.head(head)
            if self.final.known(department, digest, anchoring):
                return StandingNow(head, True, standing)
            # dropped by the head just seen (the chain went back): ask it now
            return await self.standing_now(department, digest, anchoring)
        answer = StandingNow(head, decode_bool(hex_data(results[2])), standing)
        self.final.seen(department, digest, anchoring, answer)
        return answer


# One reader per chain link (a process's), made on first use.
_readers: weakref.WeakKeyDictionary[ChainLink, AsyncStanding] = weakref.WeakKeyDictionary()


def async_standing(link: ChainLink, url: str) -> AsyncStanding:
    """The event loop's reader of `link`'s contract at `url` (made once per link)."""
    reader = _readers.get(link)
    if reader is None or reader.rpc.url != url:
        deployment = link.deployment
        assert deployment is not None  # a link with a node URL has a deployment
        reader = _readers[link] = AsyncStanding(
            AsyncRpc(url), deployment.contract, deployment.chain_id
        )
    return reader

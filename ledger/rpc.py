"""Batched JSON-RPC reads: several calls in one POST over a keep-alive connection.

web3.py spends milliseconds of CPU per view call on middleware, formatters and ABI mapping,
and makes one HTTP round trip per call; a reader that asks a node the same few questions
on every request (the auditors' lookup) sends them here as one batch instead.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import httpx

from .errors import ChainError, NodeUnreachableError

READ_TIMEOUT_S = 2.0

RpcCall = tuple[str, list[Any]]


class RpcBatch:
    """A JSON-RPC endpoint asked in batches; thread-safe (httpx's pool is)."""

    def __init__(self, url: str, *, timeout: float = READ_TIMEOUT_S) -> None:
        self.url = url
        self._client = httpx.Client(
            timeout=timeout,
            headers={"Content-Type": "application/json"},
            limits=httpx.Limits(max_keepalive_connections=32),
        )
        self._ids = iter(range(1, 2**62))
        self._ids_lock = threading.Lock()

    def call(self, calls: Sequence[RpcCall]) -> list[Any]:
        """The results of `calls`, in their order: one POST for all.

        NodeUnreachableError when the node does not answer in time; ChainError when its
        answer is not a JSON-RPC batch answer to these calls, or when any call failed.
        """
        with self._ids_lock:
            ids = [next(self._ids) for _ in calls]
        body = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
            for i, (method, params) in zip(ids, calls, strict=True)
        ]
        try:
            response = self._client.post(self.url, json=body)
        except httpx.TransportError as exc:  # refused, reset, timed out
            raise NodeUnreachableError(
                f"the node at {self.url} does not answer ({type(exc).__name__})"
            ) from exc
        if response.status_code != 200:
            raise ChainError(f"the node answered HTTP {response.status_code} to a batch")
        try:
            answer = response.json()
        except ValueError as exc:
            raise ChainError("the node's answer to a batch is not JSON") from exc
        return _results(answer, ids)

    def close(self) -> None:
        """Close the kept-alive connections."""
        self._client.close()


def _results(answer: object, ids: Sequence[int]) -> list[Any]:
    if not isinstance(answer, list):
        raise ChainError(f"the node answered a batch with {type(answer).__name__}, not a list")
    by_id: dict[object, Any] = {}
    for entry in answer:
        if not isinstance(entry, dict) or "id" not in entry:
            raise ChainError("the node's batch answer holds an entry without an id")
        if entry.get("error") is not None:
            raise ChainError(f"the node refused a call in a batch: {entry['error']!r:.200}")
        if "result" not in entry:
            raise ChainError("the node's batch answer holds an entry without a result")
        by_id[entry["id"]] = entry["result"]
    missing = [i for i in ids if i not in by_id]
    if missing or len(by_id) != len(ids):
        raise ChainError("the node's batch answer does not match the calls sent")
    return [by_id[i] for i in ids]


def hex_quantity(value: object) -> int:
    """A JSON-RPC quantity ("0x1a") as an int; ChainError when it is not one."""
    if not isinstance(value, str) or not value.startswith("0x") or len(value) > 66:
        raise ChainError(f"not a JSON-RPC quantity: {value!r:.80}")
    try:
        return int(value, 16)
    except ValueError as exc:
        raise ChainError(f"not a JSON-RPC quantity: {value!r:.80}") from exc


def hex_data(value: object) -> bytes:
    """JSON-RPC data ("0xabcd") as bytes; ChainError when it is not hex."""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ChainError(f"not JSON-RPC data: {value!r:.80}")
    try:
        return bytes.fromhex(value[2:])
    except ValueError as exc:
        raise ChainError(f"not JSON-RPC data: {value!r:.80}") from exc

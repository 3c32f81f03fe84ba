"""The body limit's fast path: HTTP/1.x requests that cannot have a body pass straight
through; any request that may have one is still bounded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from api.service.middleware import BodyLimitMiddleware

LIMIT = 16


def _scope(http_version: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "http_version": http_version,
        "method": "POST",
        "path": "/x",
        "headers": headers,
        "state": {},
    }


def _run(scope: dict[str, Any], body: bytes) -> tuple[list[dict[str, Any]], list[Any]]:
    """What the middleware sent back, and what the inner app was handed as `receive`."""
    handed: list[Any] = []
    sent: list[dict[str, Any]] = []

    async def app(_scope: Any, receive: Any, send: Any) -> None:
        handed.append(receive)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(BodyLimitMiddleware(app, max_bytes=LIMIT)(scope, receive, send))
    return sent, [h is receive for h in handed]


def test_an_http1_request_without_length_or_chunks_goes_straight_through() -> None:
    sent, same = _run(_scope("1.1", []), b"")
    assert sent[0]["status"] == 204
    assert same == [True]  # the server's own receive: nothing read, nothing replayed


@pytest.mark.parametrize(
    ("http_version", "headers"),
    [
        ("2", []),  # HTTP/2 bodies need no length: still counted
        ("1.1", [(b"transfer-encoding", b"chunked")]),
        ("1.1", [(b"content-length", b"%d" % (LIMIT + 1))]),
    ],
)
def test_a_request_that_may_have_a_body_is_still_bounded(
    http_version: str, headers: list[tuple[bytes, bytes]]
) -> None:
    sent, same = _run(_scope(http_version, headers), b"x" * (LIMIT + 1))
    assert sent[0]["status"] == 413
    assert same == []  # the route never ran

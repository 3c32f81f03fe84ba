"""ASGI middleware: request ids and logs, a catch-all 500, security headers, the body's
size and time limits, wrong tokens throttled."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.service.problems import (
    BAD_CONTENT_LENGTH,
    INTERNAL,
    PAYLOAD_TOO_LARGE,
    RATE_LIMITED,
    REQUEST_TIMEOUT,
    problem_response,
)
from api.service.ratelimit import RateLimiter

log = logging.getLogger("commitledger.service.http")

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'"),
)


def _with_headers(
    headers: Iterable[tuple[bytes, bytes]], extra: Iterable[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    merged = list(headers)
    present = {name.lower() for name, _ in merged}
    merged.extend((name, value) for name, value in extra if name not in present)
    return merged


class RequestMiddleware:
    """Outermost: gives each request an id, adds the security headers to every response,
    logs one structured line per request (route and status, never the query or body), and
    answers an unexpected exception with a 500 problem that shows no trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = (*SECURITY_HEADERS, (b"x-request-id", request_id.encode()))
                message = {**message, "headers": _with_headers(message.get("headers", []), extra)}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id})
            if status:  # the response had begun: nothing sane can follow
                raise
            response = problem_response(
                INTERNAL,
                "the service failed to answer; the error is logged under this request's id",
                request_id=request_id,
            )
            await response(scope, receive, send_with_headers)
        finally:
            route = scope.get("route")
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    # The route's template: a path may hold a search term, the query always can.
                    "route": getattr(route, "path", None) or "unmatched",
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "department": scope["state"].get("department"),
                },
            )


class WrongTokenMiddleware:
    """Throttles token guessing: an address whose wrong tokens (401 answers to a request
    that sent one) have drained `limiter` gets a 429 problem for any request with a token,
    right or wrong, until its bucket refills."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or b"authorization" not in dict(scope["headers"]):
            await self.app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "unknown"
        wait = self.limiter.wait(client)
        if wait > 0:
            retry = self.limiter.retry_after(wait)
            response = problem_response(
                RATE_LIMITED,
                f"too many wrong tokens from this address: try again in {retry} s",
                request_id=scope.get("state", {}).get("request_id"),
                headers={"Retry-After": retry},
            )
            await response(scope, receive, send)
            return
        refused = False

        async def watching(message: Message) -> None:
            nonlocal refused
            if message["type"] == "http.response.start" and message["status"] == 401:
                refused = True
            await send(message)

        await self.app(scope, receive, watching)
        if refused:
            self.limiter.take(client)


def _without_body(scope: Scope, declared: bytes | None, headers: dict[bytes, bytes]) -> bool:
    """An HTTP/1.x request with neither Content-Length nor Transfer-Encoding has no body
    (RFC 9112, 6.3): nothing to bound or wait for. Most requests (the public lookups and
    searches) are such GETs; reading and replaying their empty body under a timer cost a
    third of this middleware stack. Not so for HTTP/2, whose bodies need no length."""
    return (
        declared is None
        and b"transfer-encoding" not in headers
        and scope.get("http_version") in ("1.0", "1.1")
    )


class BodyLimitMiddleware:
    """Refuses request bodies over `max_bytes` with 413, whether declared or streamed, and
    bodies not all received within `timeout` seconds with 408."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout  # seconds for the whole body: a slow client is cut

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if _without_body(scope, declared, headers):
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id")
        if declared is not None:
            if not declared.isdigit():
                response = problem_response(
                    BAD_CONTENT_LENGTH, "Content-Length must be digits", request_id=request_id
                )
                await response(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await self._too_large(scope, receive, send, request_id)
                return
        try:
            async with asyncio.timeout(self.timeout):
                body = await self._read(receive)
        except TimeoutError:
            response = problem_response(
                REQUEST_TIMEOUT,
                f"the body must arrive within {self.timeout:g} s",
                request_id=request_id,
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        if body is None:  # the client went away
            return
        if len(body) > self.max_bytes:
            await self._too_large(scope, receive, send, request_id)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _read(self, receive: Receive) -> bytearray | None:
        body = bytearray()
        more = True
        while more:  # a chunked body declares no length: count what arrives
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                break
        return body

    async def _too_large(
        self, scope: Scope, receive: Receive, send: Send, request_id: str | None
    ) -> None:
        response = problem_response(
            PAYLOAD_TOO_LARGE,
            f"the body may hold at most {self.max_bytes} bytes",
            request_id=request_id,
            max_bytes=self.max_bytes,
        )
        await response(scope, receive, send)

"""The service's edge on a real uvicorn server on 127.0.0.1, as `serve` configures it:
forwarding headers, slow clients."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from support.deployment import Deployment
from support.service_world import open_service

from api.cli import uvicorn_options

DEADLINE_S = 20.0


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {DEADLINE_S} s")
        time.sleep(0.01)


@contextmanager
def served(tmp_path: Path, deployment: Deployment, **settings: Any) -> Iterator[tuple[str, int]]:
    """The service on a real server on a free loopback port: its host and port."""
    world = open_service(tmp_path, deployment, **settings)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    host, port = listener.getsockname()
    # uvicorn's own keep-alive timeout (5 s) set far beyond the deadline: a connection
    # closed in time was closed by the service's own limits.
    options = {**uvicorn_options(world.settings, host, port), "timeout_keep_alive": 600}
    server = uvicorn.Server(uvicorn.Config(world.client.app, **options, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        until(lambda: server.started, "the server started")
        yield host, port
    finally:
        server.should_exit = True
        thread.join(timeout=DEADLINE_S)
        listener.close()
        world.context.close()


def closed_by_server(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (within the deadline)."""
    connection.settimeout(DEADLINE_S)
    received = b""
    try:
        while chunk := connection.recv(4096):
            received += chunk
    except TimeoutError:
        raise AssertionError(f"the connection stayed open {DEADLINE_S} s") from None
    except ConnectionResetError:
        pass
    return received


# ---------------------------------------------------------------------- forwarding headers


def test_x_forwarded_for_is_not_believed_by_default(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    limits = {"rate_limit_burst": 3, "rate_limit_per_second": 0.01}
    with served(tmp_path, embedded_deployment, **limits) as (host, port):
        statuses = [
            httpx.get(
                f"http://{host}:{port}/v1/breaches",
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
                timeout=DEADLINE_S,
            ).status_code
            for n in range(6)
        ]
    assert statuses == [200, 200, 200, 429, 429, 429]


def test_x_forwarded_for_is_believed_from_a_configured_proxy(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    limits = {"rate_limit_burst": 3, "rate_limit_per_second": 0.01}
    proxied = {"trusted_proxies": "127.0.0.1", **limits}
    with served(tmp_path, embedded_deployment, **proxied) as (host, port):
        statuses = {
            httpx.get(
                f"http://{host}:{port}/v1/breaches",
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
                timeout=DEADLINE_S,
            ).status_code
            for n in range(6)
        }
    assert statuses == {200}  # each a client of its own, as the proxy says


# ---------------------------------------------------------------------- slow clients


@pytest.mark.parametrize(
    "partial",
    [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"GET /heal"],
    ids=["nothing", "headers-unfinished", "request-line-unfinished"],
)
def test_a_client_that_never_finishes_its_headers_is_cut(
    tmp_path: Path, embedded_deployment: Deployment, partial: bytes
) -> None:
    with served(tmp_path, embedded_deployment, header_timeout_seconds=0.3) as (host, port):
        with socket.create_connection((host, port)) as connection:
            connection.sendall(partial)
            assert closed_by_server(connection) == b""
        assert httpx.get(f"http://{host}:{port}/healthz", timeout=DEADLINE_S).status_code == 200


def test_a_kept_alive_connection_gets_the_deadline_for_its_next_headers(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    with (
        served(tmp_path, embedded_deployment, header_timeout_seconds=0.3) as (host, port),
        socket.create_connection((host, port)) as connection,
    ):
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        connection.settimeout(DEADLINE_S)
        first = b""
        while not first.endswith(b'{"status":"ok"}'):
            first += connection.recv(4096)
        assert first.startswith(b"HTTP/1.1 200")
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        assert closed_by_server(connection) == b""


def test_a_body_that_does_not_arrive_in_time_is_a_408_and_the_connection_closed(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    with (
        served(tmp_path, embedded_deployment, body_timeout_seconds=0.3) as (host, port),
        socket.create_connection((host, port)) as connection,
    ):
        connection.sendall(
            b"POST /v1/audit/documents HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a"'
        )
        answer = closed_by_server(connection)
    assert answer.startswith(b"HTTP/1.1 408")
    assert b"request-timeout" in answer

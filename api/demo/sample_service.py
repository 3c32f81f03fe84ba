"""A sample department data service over sample_data, with injectable faults for tests."""

from __future__ import annotations

import asyncio
import base64
import hmac
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated

import httpx
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp

from api.demo.sample_data import SOURCES, records
from api.service import BodyLimitMiddleware
from ledger import IdType
from verifier import SourceKey, Subject, answer_bytes

__all__ = [
    "MAX_BATCH",
    "MAX_BODY_BYTES",
    "BatchLookupRequest",
    "Faults",
    "LookupRequest",
    "Signer",
    "create_app",
    "published_key",
    "running",
    "running_apart",
]

# A lookup is a few hundred bytes, a batch of MAX_BATCH about 20 KiB: anything bigger is abuse.
MAX_BODY_BYTES = 64 * 1024
MAX_BATCH = 250
_MAX_FIELDS = 32

FieldName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]


class LookupRequest(BaseModel):
    """Whose record, and which of its fields."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id_type: IdType
    id_number: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[0-9A-Z]+$")]
    fields: Annotated[list[FieldName], Field(max_length=_MAX_FIELDS)]


class SubjectRef(BaseModel):
    """One subject of a batch lookup."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id_type: IdType
    id_number: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[0-9A-Z]+$")]


class BatchLookupRequest(BaseModel):
    """Many subjects' records at once, the same fields of each."""

    model_config = ConfigDict(extra="forbid", strict=True)

    subjects: Annotated[list[SubjectRef], Field(min_length=1, max_length=MAX_BATCH)]
    fields: Annotated[list[FieldName], Field(max_length=_MAX_FIELDS)]


# --- signing -------------------------------------------------------------------------------


class Signer:
    """The department's Ed25519 key for its answers: each subject's answer is signed over
    `verifier.answer_bytes` (source, subject digest, record, time), the key listed at
    ``GET /keys`` under its id."""

    def __init__(self, private_key: Ed25519PrivateKey | None = None) -> None:
        self._key = private_key or Ed25519PrivateKey.generate()
        raw = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public = SourceKey(raw)

    @classmethod
    def from_pem_file(cls, path: str) -> Signer:
        """The key of a PEM file (PKCS#8, unencrypted)."""
        with open(path, "rb") as file:
            key = load_pem_private_key(file.read(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return cls(key)

    @property
    def key_id(self) -> str:
        """The public key's id: the first 16 hex digits of SHA-256 of its raw bytes."""
        return self.public.key_id

    def listing(self) -> dict[str, object]:
        """What ``GET /keys`` serves."""
        raw = base64.b64encode(self.public.public_key).decode()
        return {"keys": [{"key_id": self.key_id, "algorithm": "ed25519", "public_key": raw}]}

    def sign(
        self, source: str, subject: Subject, record: dict[str, object] | None, *, wrong: bool
    ) -> dict[str, object]:
        """The signature fields of one answer (`wrong`: signed over other bytes, a fault)."""
        answered_at = int(time.time())
        data = answer_bytes(source, subject, record, answered_at)
        signature = self._key.sign(b"tampered" + data if wrong else data)
        return {
            "answered_at": answered_at,
            "signature": base64.b64encode(signature).decode(),
            "key_id": self.key_id,
        }


# --- faults --------------------------------------------------------------------------------


@dataclass
class _Failure:
    remaining: int | None  # None: every time
    status: int


@dataclass
class Faults:
    """Misbehaviour to inject per source, and what the service saw per source, for tests.

    ``attempts`` counts requests, ``max_in_flight`` the most answered at once. The
    service runs on another thread, so both sides change these under a lock.
    """

    delays: dict[str, float] = field(default_factory=dict)
    failures: dict[str, _Failure] = field(default_factory=dict)
    garbage: dict[str, bytes] = field(default_factory=dict)
    tampered: set[str] = field(default_factory=set)
    attempts: Counter[str] = field(default_factory=Counter)
    max_in_flight: Counter[str] = field(default_factory=Counter)
    _in_flight: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def slow(self, source: str, seconds: float) -> None:
        """Answer `source` only after `seconds` (beyond a client's timeout: a timeout)."""
        with self._lock:
            self.delays[source] = seconds

    def fail(self, source: str, times: int | None = None, status: int = 500) -> None:
        """Answer `source` with `status`, `times` times then normally (None: always)."""
        with self._lock:
            self.failures[source] = _Failure(times, status)

    def corrupt(self, source: str, body: bytes = b'{"found": tru') -> None:
        """Answer `source` with `body` as if it were JSON."""
        with self._lock:
            self.garbage[source] = body

    def tamper(self, source: str) -> None:
        """Answer `source` with signatures that do not verify (the answer altered)."""
        with self._lock:
            self.tampered.add(source)

    def is_tampered(self, source: str) -> bool:
        """Whether `source`'s answers are to carry a wrong signature."""
        with self._lock:
            return source in self.tampered

    def reset(self) -> None:
        """Forget every fault and every count (requests still in flight stay counted)."""
        with self._lock:
            self.delays.clear()
            self.failures.clear()
            self.garbage.clear()
            self.tampered.clear()
            self.attempts.clear()
            self.max_in_flight = self._in_flight.copy()

    @contextmanager
    def _tracked(self, source: str) -> Iterator[None]:
        with self._lock:
            self.attempts[source] += 1
            self._in_flight[source] += 1
            self.max_in_flight[source] = max(self.max_in_flight[source], self._in_flight[source])
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[source] -= 1

    async def _injected(self, source: str) -> Response | None:
        # Decided on arrival: a slow request still sleeping when a test reconfigures the
        # faults must not consume the next test's failures.
        with self._lock:
            delay = self.delays.get(source, 0.0)
            response: Response | None = None
            failure = self.failures.get(source)
            if failure is not None and failure.remaining != 0:
                if failure.remaining is not None:
                    failure.remaining -= 1
                response = JSONResponse({"detail": "injected fault"}, status_code=failure.status)
            elif source in self.garbage:
                response = Response(self.garbage[source], media_type="application/json")
        if delay:
            await asyncio.sleep(delay)
        return response


# --- the app -------------------------------------------------------------------------------


def create_app(token: str, faults: Faults | None = None, signer: Signer | None = None) -> FastAPI:
    """The sample data service: ``POST /v1/sources/{name}/lookup``, ``GET /keys`` (the
    public key its answers are signed with: `signer`'s, or one made now) and ``GET
    /healthz``."""
    if not token:
        raise ValueError("the sample service needs a bearer token")
    expected = f"Bearer {token}".encode()
    signing = signer or Signer()

    def sign(source: str, subject: Subject, record: dict[str, object] | None) -> dict[str, object]:
        wrong = faults is not None and faults.is_tampered(source)
        return signing.sign(source, subject, record, wrong=wrong)

    def require_token(authorization: Annotated[str, Header()] = "") -> None:
        if not hmac.compare_digest(authorization.encode(), expected):
            raise HTTPException(
                401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
            )

    app = FastAPI(title="Sample department data", docs_url=None, redoc_url=None, openapi_url=None)
    # The service's own limit: the same 413 problem (and 400 for a bad Content-Length).
    app.add_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the input, which here is an ID number.
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/keys")
    async def keys() -> dict[str, object]:
        return signing.listing()

    @app.post("/v1/sources/{name}/lookup", dependencies=[Depends(require_token)])
    async def lookup(name: str, request: LookupRequest) -> Response:
        if name not in SOURCES:
            raise HTTPException(404, "unknown source")
        if faults is None:
            return _answer(name, request, sign)
        with faults._tracked(name):
            return await faults._injected(name) or _answer(name, request, sign)

    @app.post("/v1/sources/{name}/lookup-batch", dependencies=[Depends(require_token)])
    async def lookup_batch(name: str, request: BatchLookupRequest) -> Response:
        if name not in SOURCES:
            raise HTTPException(404, "unknown source")
        if faults is None:
            return _answer_batch(name, request, sign)
        with faults._tracked(name):
            return await faults._injected(name) or _answer_batch(name, request, sign)

    return app


_Sign = Callable[[str, Subject, dict[str, object] | None], dict[str, object]]


def _one(source: str, subject: Subject, wanted: list[str], sign: _Sign) -> dict[str, object]:
    """One subject's signed answer: the fields asked for, or none without a record."""
    record = records(subject, source)
    if record is None:
        return {"found": False, "fields": {}, **sign(source, subject, None)}
    fields = {f: record[f] for f in wanted if f in record}
    return {"found": True, "fields": fields, **sign(source, subject, fields)}


def _answer_batch(source: str, request: BatchLookupRequest, sign: _Sign) -> JSONResponse:
    results = [
        _one(source, Subject(s.id_type, s.id_number), request.fields, sign)
        for s in request.subjects
    ]
    return JSONResponse({"results": results})


def _answer(source: str, request: LookupRequest, sign: _Sign) -> JSONResponse:
    subject = Subject(request.id_type, request.id_number)
    return JSONResponse(_one(source, subject, request.fields, sign))


# --- running it ----------------------------------------------------------------------------


@contextmanager
def running(app: ASGIApp, *, startup_timeout: float = 10.0) -> Iterator[str]:
    """Serve `app` on a free loopback port in a background thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # bound here, so no other process can take the port
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # log_config=None: leave the host's logging alone; slow injected answers get 1 s to end.
    config = uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="sample-service", daemon=True
    )
    thread.start()
    try:
        _wait_until_healthy(base_url, thread, startup_timeout)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        sock.close()


# The token goes by environment, not on the command line, which `ps` shows.
_TOKEN_VARIABLE = "COMMITLEDGER_SAMPLE_TOKEN"  # noqa: S105 - a variable name, not a secret
# The department's answer-signing key (PEM); without it the service makes one at start.
_KEY_VARIABLE = "COMMITLEDGER_SAMPLE_KEY_FILE"


def published_key(base_url: str, timeout: float = 5.0) -> SourceKey:
    """The key a running sample service signs its answers with, from its ``GET /keys``.

    Fetched over the same connection as the data, it proves nothing on its own: a real
    deployment pins the department's key out of band (`--sources-key-file`)."""
    listing = httpx.get(f"{base_url.rstrip('/')}/keys", timeout=timeout).json()
    return SourceKey.from_text(listing["keys"][0]["public_key"])


@contextmanager
def running_apart(token: str, *, startup_timeout: float = 10.0) -> Iterator[str]:
    """Serve the sample service (no faults) in a process of its own on a free loopback port,
    as a department's system would run: its CPU is not taken from the caller's process."""
    if not token:
        raise ValueError("the sample service needs a bearer token")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    process = subprocess.Popen(
        [sys.executable, "-m", "api.demo.sample_service", str(sock.fileno())],
        pass_fds=[sock.fileno()],
        env={**os.environ, _TOKEN_VARIABLE: token},
    )
    try:
        _wait_until_healthy(base_url, lambda: process.poll() is None, startup_timeout)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        sock.close()


def _serve_inherited(fd: int) -> None:
    """The child of `running_apart`: serve on the listening socket it was handed."""
    sock = socket.socket(fileno=fd)
    key_file = os.environ.pop(_KEY_VARIABLE, "")
    signer = Signer.from_pem_file(key_file) if key_file else None
    app = create_app(os.environ.pop(_TOKEN_VARIABLE, ""), signer=signer)
    config = uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=1)
    uvicorn.Server(config).run(sockets=[sock])


def _wait_until_healthy(
    base_url: str, alive: threading.Thread | Callable[[], bool], timeout: float
) -> None:
    is_alive = alive.is_alive if isinstance(alive, threading.Thread) else alive
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive():
            raise RuntimeError("the sample service exited while starting")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.02)
    raise RuntimeError(f"the sample service did not answer /healthz within {timeout} s")


if __name__ == "__main__":
    _serve_inherited(int(sys.argv[1]))

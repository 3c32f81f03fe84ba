"""Every request body goes through the one strict JSON loader, off the event loop: a body
shaped to be slow is refused at once and `/healthz` answers meanwhile; duplicate keys, NUL
and lone surrogates are 400 problems on every route, pydantic bodies included."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from support.deployment import HRSS_ID, Deployment
from support.service_keys import write_all_keys
from support.service_world import ServiceWorld, assert_problem, open_service, snapshot

from ledger import Signature, SignedCommitment, Status, hex32

LIMIT = 256 * 1024  # the service's default body limit
# Many brackets, then one unterminated string of escaped quotes: the old depth check's
# regex retried to the end of the body from every quote (11.6 s for 24 KB).
ADVERSARIAL = b"[" * 300 + b'\\"' * ((LIMIT - 300) // 2)
DEADLINE = httpx.Timeout(10.0)


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    write_all_keys(tmp_path / "keys", embedded_deployment)
    opened = open_service(tmp_path, embedded_deployment)
    yield opened
    opened.context.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """The service as a uvicorn process on loopback (another process: the old depth check's
    regex held the GIL, so no client in this process could have given up on it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "COMMITLEDGER_DATA_DIR": str(tmp_path / "served"),
        "COMMITLEDGER_STORE_URL": f"sqlite:///{tmp_path / 'served.db'}",
        "COMMITLEDGER_DEPLOYMENT_FILE": str(tmp_path / "absent.json"),
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "api.service.app:create_app"]
    server = subprocess.Popen([*command, "--port", str(port), "--log-level", "warning"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _healthy(url):
            assert server.poll() is None, "the service exited"
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.1)  # polling towards the deadline
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()  # stuck in a parse that holds the GIL
            server.wait()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_an_adversarial_body_at_the_limit_is_refused_and_healthz_answers_meanwhile(
    served: str,
) -> None:
    assert len(ADVERSARIAL) <= LIMIT
    with httpx.Client(base_url=served, timeout=DEADLINE) as client:
        with ThreadPoolExecutor(4) as pool:
            posts = [
                pool.submit(client.post, "/v1/audit/documents", content=ADVERSARIAL)
                for _ in range(4)
            ]
            health = client.get("/healthz")
            answers = [post.result() for post in posts]
        assert health.status_code == 200
        for answer in answers:
            body = assert_problem(answer, 400, "malformed-json")
            assert "nested deeper than 256 levels" in body["detail"]


def test_an_adversarial_commitment_is_refused_within_the_deadline(served: str) -> None:
    with httpx.Client(base_url=served, timeout=DEADLINE) as client:
        answer = client.post("/v1/commitments", content=ADVERSARIAL)
    assert_problem(answer, 400, "malformed-json")


def test_a_duplicate_key_in_a_decision_is_refused_and_publishes_nothing(
    world: ServiceWorld,
) -> None:
    digest = world.submit(world.signed())
    world.anchor()
    before = snapshot(world)
    body = b'{"outcome":"kept","note":"x","outcome":"false"}'
    answer = world.client.post(
        f"/v1/verifications/{hex32(digest)}/decision",
        content=body,
        headers={**world.auth(role="verifier"), "Content-Type": "application/json"},
    )
    problem = assert_problem(answer, 400, "malformed-json")
    assert "duplicate key 'outcome'" in problem["detail"]
    assert snapshot(world) == before
    assert world.deployment.ledger.status_of(HRSS_ID, digest).status == Status.NONE


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"document": "\\ud800"}', "lone surrogate \\ud800"),
        (b'{"document": "a\\u0000b"}', "U+0000 (NUL)"),
        (b'{"a": 1, "a": 1}', "duplicate key 'a'"),
    ],
    ids=["lone-surrogate", "nul", "duplicate"],
)
@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_a_document_check_refuses_bad_strings_with_a_400(
    world: ServiceWorld, body: bytes, fragment: str, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    answer = world.client.post("/v1/audit/documents", content=body, headers=headers)
    problem = assert_problem(answer, 400, "malformed-json")
    assert fragment in problem["detail"]


def test_a_commitment_with_an_all_zero_salt_is_refused_and_stores_nothing(
    world: ServiceWorld,
) -> None:
    document = world.signed().document.model_copy(update={"salt": "0x" + "00" * 32})
    key = world.applicant_key
    signature = Signature(
        algorithm=key.algorithm,
        public_key=key.public_key_b64(),
        value=base64.b64encode(key.sign(document.canonical())).decode(),
    )
    weak = SignedCommitment(document=document, signature=signature)
    before = snapshot(world)
    answer = world.client.post("/v1/commitments", content=world.body(weak), headers=world.auth())
    assert "salt: not random" in assert_problem(answer, 422, "invalid-document")["detail"]
    assert snapshot(world) == before

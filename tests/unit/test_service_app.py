"""The service as a whole: health, readiness, problem details, headers, limits, logs, OpenAPI."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import unreachable_rpc
from support.deployment import Deployment
from support.service_keys import write_master_key
from support.service_world import (
    SECURITY_HEADERS,
    ServiceWorld,
    assert_problem,
    open_service,
)

from api.service import DAY_S, ChainLink, JsonFormatter, RateLimiter, Settings, ratelimit
from api.service import Deployment as DeploymentFacts
from api.service.dev_chain import WARNING_EN


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    opened = open_service(tmp_path, embedded_deployment)
    yield opened
    opened.context.close()


# ---------------------------------------------------------------------- health


def test_healthz_answers_while_the_process_serves(world: ServiceWorld) -> None:
    response = world.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def operator(world: ServiceWorld) -> dict[str, str]:
    """The headers of a new operator token's request."""
    token = world.context.tokens.issue("OPERATOR", "operator").token
    return {"Authorization": f"Bearer {token}"}


def test_readyz_reports_store_chain_and_anchoring_backlog(world: ServiceWorld) -> None:
    world.submit(world.signed())
    response = world.client.get("/readyz", headers=operator(world))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["store"] == {"ok": True}
    chain = body["checks"]["chain"]
    assert chain["ok"] is True
    assert chain["block_number"] == world.deployment.chain.block_number()
    assert chain["contract"] == world.deployment.ledger.address
    assert body["anchoring"]["pending"] == 1
    assert body["anchoring"]["oldest_pending_age"] >= 0
    world.anchor()
    anchoring = world.client.get("/readyz", headers=operator(world)).json()["anchoring"]
    assert anchoring["pending"] == 0
    assert anchoring["anchored"] == 1
    assert anchoring["last_anchored_block"] is not None


def test_readyz_is_a_503_problem_when_the_node_does_not_answer(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    world = open_service(tmp_path, embedded_deployment, rpc=unreachable_rpc())
    body = assert_problem(world.client.get("/readyz", headers=operator(world)), 503, "not-ready")
    assert body["checks"]["store"] == {"ok": True}
    assert body["checks"]["chain"]["ok"] is False
    assert "no Ethereum node answers" in body["checks"]["chain"]["error"]
    assert body["anchoring"]["pending"] == 0


def test_readyz_is_a_503_problem_without_a_deployment_file(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    world = open_service(tmp_path, embedded_deployment, with_deployment=False)
    body = assert_problem(world.client.get("/readyz", headers=operator(world)), 503, "not-ready")
    assert body["checks"]["chain"]["error"] == "no deployment file"
    assert "chain" in body["detail"]


def test_the_public_learns_only_whether_the_service_is_ready(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    world = open_service(tmp_path, embedded_deployment)
    world.context.background.add("failing", _fails_with_a_secret, 3600)
    with world.client:  # the background tasks run: the failing one records its error
        until_failed(world)
        public = world.client.get("/readyz")
        assert public.status_code == 200
        # and, on this (embedded) development chain, that its history can be rewritten
        assert public.json() == {"status": "ready", "development_chain": WARNING_EN}
        full = world.client.get("/readyz", headers=operator(world)).json()
        assert full["background"]["failing"]["error"] == "RuntimeError"
        assert full["checks"]["chain"]["ok"] is True
    (tmp_path / "down").mkdir()
    down = open_service(tmp_path / "down", embedded_deployment, rpc=unreachable_rpc())
    body = assert_problem(down.client.get("/readyz"), 503, "not-ready")
    assert not {"checks", "anchoring", "background"} & set(body)
    assert "no Ethereum node" not in down.client.get("/readyz").text


def test_readyz_refuses_a_token_that_is_not_an_operators(world: ServiceWorld) -> None:
    for headers in (world.auth(), {"Authorization": "Bearer clt_" + "x" * 43}):
        assert_problem(world.client.get("/readyz", headers=headers), 401, "unauthorized")


def test_readyz_is_rate_limited_like_the_public_routes(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    world = open_service(
        tmp_path, embedded_deployment, rate_limit_burst=2, rate_limit_per_second=0.01
    )
    assert world.client.get("/readyz").status_code == 200
    assert world.client.get("/readyz").status_code == 200
    assert_problem(world.client.get("/readyz"), 429, "rate-limited")


def _fails_with_a_secret() -> bool:
    raise RuntimeError("cannot open /secret-path/ledger.db")  # only its type is ever shown


def until_failed(world: ServiceWorld) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if any(s.failures for s in world.context.background.states() if s.name == "failing"):
            return
        time.sleep(0.01)
    raise AssertionError("the failing task never ran")


def test_a_dead_node_is_asked_again_only_after_the_retry_interval(
    embedded_deployment: Deployment,
) -> None:
    now = [100.0]
    link = ChainLink(
        DeploymentFacts(
            embedded_deployment.chain.chain_id, embedded_deployment.ledger.address, None
        ),
        unreachable_rpc(),
        retry_seconds=5.0,
        clock=lambda: now[0],
    )
    assert link.ledger() is None
    first_error = link.last_error
    assert first_error is not None
    link.rpc_url = None  # a second attempt would fail differently: it must not happen yet
    now[0] += 4.0
    assert link.ledger() is None
    assert link.last_error == first_error
    now[0] += 2.0
    assert link.ledger() is None
    assert link.last_error != first_error


def test_a_node_on_another_chain_is_not_the_deployment(embedded_deployment: Deployment) -> None:
    facts = DeploymentFacts(1, embedded_deployment.ledger.address, None)
    link = ChainLink(facts, chain=embedded_deployment.chain)
    assert link.ledger() is None
    assert link.last_error is not None
    assert "deployment on 1" in link.last_error


# ---------------------------------------------------------------------- problems and headers


def test_unknown_route_is_a_404_problem(world: ServiceWorld) -> None:
    body = assert_problem(world.client.get("/v1/nothing-here"), 404, "not-found")
    assert "/v1/nothing-here" in body["detail"]


def test_wrong_method_is_a_405_problem(world: ServiceWorld) -> None:
    assert_problem(world.client.delete("/v1/breaches"), 405, "method-not-allowed")


def test_an_unexpected_error_is_a_500_problem_without_trace(
    world: ServiceWorld, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    message = " ".join(("secret", "detail", "at", "/srv/internal/path"))

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(message)  # the message, not this line, is what must not leak

    monkeypatch.setattr(world.context.records, "search_breach_json", broken)
    with caplog.at_level(logging.INFO, logger="commitledger"):
        response = world.client.get("/v1/breaches")
    body = assert_problem(response, 500, "internal")
    assert "secret detail" not in response.text
    assert "/srv/internal" not in response.text
    assert "RuntimeError" not in response.text
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    errors = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert len(errors) == 1
    assert body["instance"] == f"urn:uuid:{errors[0].request_id}"  # type: ignore[attr-defined]
    logged = JsonFormatter().format(errors[0])
    assert json.loads(logged)["exception"] == "RuntimeError"
    assert "secret detail" not in logged  # the message may quote input: type and frames only


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/"),
        ("GET", "/assets/lookup.css"),
        ("GET", "/v1/breaches"),
        ("GET", "/v1/nothing-here"),
        ("POST", "/v1/commitments"),
        ("GET", "/openapi.json"),
    ],
)
def test_security_headers_on_every_response(world: ServiceWorld, method: str, path: str) -> None:
    response = world.client.request(method, path)
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, (path, name)
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert len(response.headers["x-request-id"]) == 32


def test_the_request_id_differs_per_request(world: ServiceWorld) -> None:
    ids = {world.client.get("/healthz").headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3


# ---------------------------------------------------------------------- body limit


@pytest.fixture
def small_body_world(tmp_path: Path, embedded_deployment: Deployment) -> ServiceWorld:
    return open_service(tmp_path, embedded_deployment, max_body_bytes=4096)


def test_a_declared_body_over_the_limit_is_a_413_problem(small_body_world: ServiceWorld) -> None:
    world = small_body_world
    signed = world.signed()
    padded = world.body(signed) + b" " * 5000
    response = world.client.post("/v1/commitments", content=padded, headers=world.auth())
    body = assert_problem(response, 413, "payload-too-large")
    assert body["max_bytes"] == 4096
    assert world.store.get(signed.hash()) is None


def test_a_streamed_body_over_the_limit_is_a_413_problem(small_body_world: ServiceWorld) -> None:
    world = small_body_world

    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
        yield b'{"document": '
        for _ in range(10):
            yield b" " * 1000

    response = world.client.post("/v1/audit/documents", content=chunks())
    assert_problem(response, 413, "payload-too-large")


def test_a_body_under_the_limit_passes(small_body_world: ServiceWorld) -> None:
    world = small_body_world
    signed = world.signed()
    assert len(world.body(signed)) < 4096
    response = world.client.post(
        "/v1/commitments", content=world.body(signed), headers=world.auth()
    )
    assert response.status_code == 202, response.text


def test_the_default_body_limit_is_256_kib() -> None:
    assert Settings().max_body_bytes == 256 * 1024


# ---------------------------------------------------------------------- rate limit


def test_public_routes_are_rate_limited_per_client(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    world = open_service(
        tmp_path, embedded_deployment, rate_limit_burst=2, rate_limit_per_second=0.01
    )
    assert world.client.get("/v1/breaches").status_code == 200
    assert world.client.get("/").status_code == 200
    response = world.client.get("/v1/audit/commitments/0x" + "00" * 32)
    body = assert_problem(response, 429, "rate-limited")
    assert response.headers["retry-after"].isdigit()
    assert 1 <= int(response.headers["retry-after"]) <= 100
    assert response.headers["retry-after"] in body["detail"]
    assert_problem(world.client.get("/v1/breaches"), 429, "rate-limited")
    # Health and the departments' routes (behind a token) are not public routes.
    assert world.client.get("/healthz").status_code == 200
    signed = world.signed()
    world.submit(signed)
    status = world.client.get(
        f"/v1/commitments/0x{signed.hash().hex()}/status", headers=world.auth()
    )
    assert status.status_code == 200


def test_the_token_bucket_refills_and_keeps_clients_apart() -> None:
    now = [0.0]
    limiter = RateLimiter(burst=2, per_second=0.5, clock=lambda: now[0])
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == pytest.approx(2.0)
    assert limiter.take("b") == 0.0  # another address has its own bucket
    now[0] += 1.0
    assert limiter.take("a") == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.take("a") == 0.0
    now[0] += 100.0
    assert limiter.take("a") == 0.0
    assert limiter.take("a") == 0.0  # refilled to the burst, no further
    assert limiter.take("a") > 0
    assert RateLimiter.retry_after(0.2) == "1"
    assert RateLimiter.retry_after(2.5) == "3"


def test_a_flood_of_new_addresses_does_not_refill_a_drained_bucket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ratelimit, "MAX_CLIENTS", 10)
    now = [0.0]
    limiter = RateLimiter(burst=2, per_second=0.01, clock=lambda: now[0])
    limiter.take("victim")
    limiter.take("victim")
    assert limiter.take("victim") > 0
    for n in range(1_000):  # rotating addresses, as X-Forwarded-For once allowed
        limiter.take(f"203.0.{n // 256}.{n % 256}")
        now[0] += 0.01
    assert len(limiter) <= 10 + 1  # the table and the one shared overflow bucket
    assert limiter.take("victim") > 0  # still limited: its bucket was never dropped
    # The new addresses beyond the table share one bucket, which they drained.
    assert limiter.take("198.51.100.7") > 0


def test_refilled_buckets_make_room_for_new_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ratelimit, "MAX_CLIENTS", 3)
    now = [0.0]
    limiter = RateLimiter(burst=2, per_second=1.0, clock=lambda: now[0])
    for client in ("a", "b", "c"):
        limiter.take(client)
    now[0] += 10.0  # all full again: dropping them loses nothing
    assert limiter.take("d") == 0.0
    assert limiter.take("d") == 0.0
    assert limiter.take("d") > 0  # a bucket of its own, not the overflow's
    assert len(limiter) == 1


def test_wrong_tokens_are_throttled_per_address(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    world = open_service(
        tmp_path, embedded_deployment, auth_failure_limit=3, auth_failure_window_seconds=600
    )
    path = "/v1/commitments/0x" + "00" * 32 + "/status"
    wrong = {"Authorization": "Bearer clt_" + "x" * 43}
    for _ in range(3):
        assert_problem(world.client.get(path, headers=wrong), 401, "unauthorized")
    response = world.client.get(path, headers=wrong)
    body = assert_problem(response, 429, "rate-limited")
    assert "wrong tokens" in body["detail"]
    assert response.headers["retry-after"].isdigit()
    # Even the right token waits: a guess that hits must not be told from one that misses.
    assert_problem(world.client.get(path, headers=world.auth()), 429, "rate-limited")
    # Requests without a token are no guesses: the public routes still answer.
    assert world.client.get("/v1/breaches").status_code == 200


def test_an_expired_token_is_a_401(world: ServiceWorld) -> None:
    issued = world.context.tokens.issue(
        "BJ-HRSS", "registrar", now=time.time() - 2 * DAY_S, expires_in_days=1
    )
    response = world.client.get(
        "/v1/commitments/0x" + "00" * 32 + "/status",
        headers={"Authorization": f"Bearer {issued.token}"},
    )
    assert_problem(response, 401, "unauthorized")


def test_right_tokens_are_never_counted_as_wrong(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    world = open_service(tmp_path, embedded_deployment, auth_failure_limit=2)
    signed = world.signed()
    world.submit(signed)
    for _ in range(5):
        status = world.client.get(
            f"/v1/commitments/0x{signed.hash().hex()}/status", headers=world.auth()
        )
        assert status.status_code == 200


# ---------------------------------------------------------------------- logs


def test_request_logs_are_structured_and_hold_no_search_terms(
    world: ServiceWorld, caplog: pytest.LogCaptureFixture
) -> None:
    world.add_breach(name="张三丰贸易有限公司")
    with caplog.at_level(logging.INFO, logger="commitledger"):
        world.client.get("/v1/breaches", params={"name": "张三丰", "credit_code": "91110105X"})
        world.client.get("/", params={"name": "张三丰"})
        signed = world.signed()
        world.client.post("/v1/commitments", content=world.body(signed), headers=world.auth())
    lines = [JsonFormatter().format(r) for r in caplog.records if r.getMessage() == "request"]
    assert len(lines) == 3
    entries = [json.loads(line) for line in lines]
    assert [e["route"] for e in entries] == ["/v1/breaches", "/", "/v1/commitments"]
    assert [e["status"] for e in entries] == [200, 200, 202]
    assert entries[2]["department"] == "BJ-HRSS"
    assert all(e["level"] == "info" and e["duration_ms"] >= 0 for e in entries)
    everything = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    applicant = signed.document.applicant
    for secret in ("张三丰", "91110105X", applicant.name, applicant.id_number):
        assert secret not in everything
    assert world.tokens["BJ-HRSS", "registrar"] not in everything


# ---------------------------------------------------------------------- OpenAPI and settings


def test_openapi_documents_every_route_and_the_problem_shape(world: ServiceWorld) -> None:
    response = world.client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert {
        "/v1/commitments",
        "/v1/commitments/{hash}/status",
        "/v1/commitments/{hash}/withdraw",
        "/v1/verifications/{hash}/decision",
        "/v1/breaches/{record_id}/repair",
        "/v1/audit/commitments/{hash}",
        "/v1/audit/commitments/{hash}/proof",
        "/v1/audit/documents",
        "/v1/reports/{evidence}",
        "/v1/breaches",
        "/v1/breaches/{record_id}",
        "/healthz",
        "/readyz",
        "/",
    } <= set(spec["paths"])
    schemas = spec["components"]["schemas"]
    assert {"SignedCommitment", "Commitment", "ProblemDetails"} <= set(schemas)
    submit = spec["paths"]["/v1/commitments"]["post"]
    body_schema = submit["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema == {"$ref": "#/components/schemas/SignedCommitment"}
    assert "application/problem+json" in submit["responses"]["403"]["content"]
    assert submit["security"] == [{"HTTPBearer": []}]
    assert "security" not in spec["paths"]["/v1/breaches"]["get"]
    assert "/docs" not in spec["paths"]  # a page, not an operation: test_service_docs.py


def test_settings_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMITLEDGER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COMMITLEDGER_STORE", "sqlite:////tmp/elsewhere.db")
    monkeypatch.setenv("COMMITLEDGER_MASTER_KEY_FILE", str(tmp_path / "master.key"))
    monkeypatch.setenv("COMMITLEDGER_CHAIN_RPC_URL", "http://127.0.0.1:8545")
    monkeypatch.setenv("COMMITLEDGER_RATE_LIMIT_BURST", "7")
    settings = Settings()
    assert settings.resolved_store_url == "sqlite:////tmp/elsewhere.db"
    assert settings.resolved_deployment_file == tmp_path / "deployment.json"
    assert settings.master_key_file == tmp_path / "master.key"
    assert settings.chain_rpc_url == "http://127.0.0.1:8545"
    assert settings.rate_limit_burst == 7
    monkeypatch.delenv("COMMITLEDGER_STORE")
    monkeypatch.setenv("COMMITLEDGER_STORE_URL", "sqlite:////tmp/other.db")
    monkeypatch.setenv("COMMITLEDGER_DEPLOYMENT_FILE", str(tmp_path / "d.json"))
    settings = Settings()
    assert settings.resolved_store_url == "sqlite:////tmp/other.db"
    assert settings.resolved_deployment_file == tmp_path / "d.json"
    monkeypatch.delenv("COMMITLEDGER_STORE_URL")
    assert Settings().resolved_store_url == f"sqlite:///{tmp_path / 'ledger.db'}"


def test_the_master_key_file_opens_intake(
    tmp_path: Path, embedded_deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.service import ServiceContext

    key_file = tmp_path / "master.key"
    write_master_key(key_file)
    monkeypatch.delenv("COMMITLEDGER_MASTER_KEY", raising=False)
    settings = Settings(store_url=f"sqlite:///{tmp_path / 'a.db'}", data_dir=tmp_path)
    assert ServiceContext.open(settings).intake is None
    with_key = Settings(
        store_url=f"sqlite:///{tmp_path / 'b.db'}", data_dir=tmp_path, master_key_file=key_file
    )
    assert ServiceContext.open(with_key).intake is not None


def test_without_a_master_key_intake_is_a_503_problem(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    world = open_service(tmp_path, embedded_deployment, with_vault=False)
    signed = world.signed()
    response = world.client.post(
        "/v1/commitments", content=world.body(signed), headers=world.auth()
    )
    body = assert_problem(response, 503, "unavailable")
    assert "master key" in body["detail"]
    assert world.store.status().pending == 0

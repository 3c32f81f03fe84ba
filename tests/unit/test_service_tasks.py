"""A department's work list over HTTP (issue 16): GET /v1/tasks lists the checks a person
makes, POST /v1/tasks/{hash}/{key} records one's result; the last one decides the
commitment. Another department's token sees none of them and completes none."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.deployment import HRSS, MARKET, MARKET_ID, Deployment
from support.service_world import (
    DAY,
    ServiceWorld,
    agreeing_food_licence,
    assert_problem,
    service_with_sources,
)

from ledger import Hash32, Status, hex32

FOOD = "BJ-SAMR-0001"  # a food business licence: its food-safety rules are reviewed by a person
REVIEW = "food_safety_rules_review"


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    with service_with_sources(tmp_path, embedded_deployment) as opened:
        yield opened


def food_licence(world: ServiceWorld) -> Hash32:
    """An anchored food-licence commitment whose department data all agree."""
    return agreeing_food_licence(world)


def run_market(world: ServiceWorld) -> None:
    response = world.client.post(
        "/v1/verifications/run",
        json={"on": DAY.isoformat()},
        headers=world.auth(MARKET, "verifier"),
    )
    assert response.status_code == 200, response.text


def test_the_work_list_and_the_last_task_deciding_the_commitment(world: ServiceWorld) -> None:
    digest = food_licence(world)
    run_market(world)
    assert world.deployment.ledger.status_of(MARKET_ID, digest).status == Status.NEEDS_MANUAL

    listed = world.client.get("/v1/tasks", headers=world.auth(MARKET, "registrar"))
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert (body["department"], body["total"]) == (MARKET, 1)
    [task] = body["tasks"]
    assert (task["commitment_hash"], task["key"], task["status"]) == (hex32(digest), REVIEW, "open")
    assert task["kind"] == "document_review"
    kinds = world.client.get(
        "/v1/tasks", params={"kind": "on_site_check"}, headers=world.auth(MARKET, "verifier")
    )
    assert kinds.json()["total"] == 0
    early = world.client.get(
        "/v1/tasks", params={"due_before": DAY.isoformat()}, headers=world.auth(MARKET)
    )
    assert early.json()["total"] == 0

    path = f"/v1/tasks/{hex32(digest)}/{REVIEW}"
    result = {"result": "passed", "note": "the rules cover purchase checks and cleaning"}
    wrong_role = world.client.post(path, json=result, headers=world.auth(MARKET, "registrar"))
    assert_problem(wrong_role, 403, "wrong-role")
    done = world.client.post(path, json=result, headers=world.auth(MARKET, "verifier"))
    assert done.status_code == 200, done.text
    assert done.json()["outcome"] == "kept"
    assert done.json()["task"]["result"] == "passed"
    assert world.deployment.ledger.status_of(MARKET_ID, digest).status == Status.KEPT
    assert_problem(
        world.client.post(path, json=result, headers=world.auth(MARKET, "verifier")),
        409,
        "action-refused",
    )
    finished = world.client.get(
        "/v1/tasks", params={"status": "done"}, headers=world.auth(MARKET, "verifier")
    )
    assert finished.json()["total"] == 1


def test_another_departments_token_sees_and_completes_none(world: ServiceWorld) -> None:
    digest = food_licence(world)
    run_market(world)
    assert world.client.get("/v1/tasks", headers=world.auth(HRSS)).json()["total"] == 0
    path = f"/v1/tasks/{hex32(digest)}/{REVIEW}"
    refused = world.client.post(
        path, json={"result": "failed", "note": "not ours"}, headers=world.auth(HRSS, "verifier")
    )
    assert_problem(refused, 403, "other-department")
    [task] = world.client.get("/v1/tasks", headers=world.auth(MARKET)).json()["tasks"]
    assert task["status"] == "open"  # nothing changed
    assert world.deployment.ledger.status_of(MARKET_ID, digest).status == Status.NEEDS_MANUAL
    missing = world.client.post(
        f"/v1/tasks/{hex32(digest)}/no_such_task",
        json={"result": "passed", "note": "x"},
        headers=world.auth(MARKET, "verifier"),
    )
    assert_problem(missing, 404, "not-found")
    bad = world.client.post(
        path, json={"result": "maybe", "note": "x"}, headers=world.auth(MARKET, "verifier")
    )
    assert bad.status_code in (400, 422)
    unauthenticated = world.client.get("/v1/tasks")
    assert unauthenticated.status_code == 401
    misspelt = world.client.get("/v1/tasks", params={"kinds": "x"}, headers=world.auth(MARKET))
    assert_problem(misspelt, 422, "invalid-request")


def test_the_public_copy_masks_an_id_in_a_tasks_note() -> None:
    """A task's evidence note is written by a person: the public copy of its report masks
    the applicant's name or ID typed into it, as in the report's own note."""
    from api.service.routes.reports import public_copy

    secrets_ = [("110101199001011234", "110101**********34"), ("张三丰", "张**")]
    task = {"key": "site", "kind": "on_site_check", "status": "done", "result": "failed"}
    report = {
        "outcome": "mismatch",
        "note": "",
        "decided_by": "engine",
        "comparisons": [],
        "tasks": [{**task, "note": "张三丰 (110101199001011234) was not there"}],
    }
    public = public_copy(report, secrets_)
    assert public["tasks"] == [{**task, "note": "张** (110101**********34) was not there"}]
    clean = {**report, "tasks": [task]}
    assert public_copy(clean, secrets_) is clean

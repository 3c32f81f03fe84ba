"""The service's background work: the task runner, anchoring in the app's lifespan,
waiting for the anchor on submit, and the backlog /readyz reports."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.deployment import HRSS, HRSS_ID, Deployment
from support.service_keys import write_all_keys
from support.service_world import ServiceWorld, assert_problem, open_service

from api.service import BackgroundTasks
from ledger import hex32

DEADLINE_S = 30.0


def until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> None:
    """Poll `condition` until it holds; fail naming `what` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.02)


# ---------------------------------------------------------------------- the task runner


def test_a_step_that_did_work_runs_again_at_once_and_one_that_did_not_waits() -> None:
    tasks = BackgroundTasks()
    busy: list[float] = []
    idle: list[float] = []
    tasks.add("busy", lambda: busy.append(time.monotonic()) or len(busy) < 5, 3600.0)
    tasks.add("idle", lambda: idle.append(time.monotonic()), 3600.0)
    tasks.start()
    try:
        until(lambda: len(busy) == 5 and len(idle) == 1, "five busy runs, one idle")
    finally:
        tasks.stop()
    # The idle task waits its hour and the busy one stopped being busy: no more runs.
    assert (len(busy), len(idle)) == (5, 1)
    assert [s.runs for s in tasks.states()] == [5, 1]


def test_a_failing_step_is_retried_and_its_failures_are_counted_by_type() -> None:
    tasks = BackgroundTasks()
    calls = []

    def flaky() -> bool:
        calls.append(1)
        if len(calls) <= 2:
            raise ConnectionError("secret-looking detail 110101199001011234")
        return False

    tasks.add("flaky", flaky, 3600.0)
    tasks.start()
    try:
        until(lambda: tasks.states()[0].runs == 1, "a success after two failures")
    finally:
        tasks.stop()
    [state] = tasks.states()
    assert (len(calls), state.failures, state.last_error) == (3, 0, None)


def test_failures_show_until_the_step_succeeds() -> None:
    tasks = BackgroundTasks()
    tasks.add("down", lambda: 1 / 0, 3600.0)
    tasks.start()
    try:
        until(lambda: tasks.states()[0].failures >= 1, "a failure")
    finally:
        tasks.stop()
    assert tasks.states()[0].last_error == "ZeroDivisionError"
    assert tasks.states()[0].runs == 0


def test_a_task_added_while_running_starts_and_names_are_unique() -> None:
    tasks = BackgroundTasks()
    tasks.start()
    ran = threading.Event()
    try:
        tasks.add("late", lambda: ran.set(), 3600.0)
        assert ran.wait(DEADLINE_S)
        with pytest.raises(ValueError, match="exists already"):
            tasks.add("late", lambda: None, 1.0)
        with pytest.raises(ValueError, match="positive"):
            tasks.add("never", lambda: None, 0)
    finally:
        tasks.stop()
    assert tasks.names() == ["late"]


# ---------------------------------------------------------------------- anchoring in the app


@pytest.fixture
def keyed(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    """A service holding both departments' keys; its lifespan runs inside the test."""
    write_all_keys(tmp_path / "keys", embedded_deployment)
    world = open_service(tmp_path, embedded_deployment, anchor_max_age=0.05, feed=False)
    yield world
    world.context.close()


def test_submit_with_wait_answers_once_anchored_by_the_background_pipeline(
    keyed: ServiceWorld,
) -> None:
    signed = keyed.signed()
    with keyed.client:  # runs the lifespan: the anchoring task starts
        assert "anchoring" in keyed.context.background.names()
        response = keyed.client.post(
            "/v1/commitments?wait=true&timeout=30", content=keyed.body(signed), headers=keyed.auth()
        )
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["hash"] == hex32(signed.hash()) and body["new"] is True
        anchoring = keyed.store.anchoring_of(signed.hash())
        assert anchoring is not None
        batch = body["batch"]
        assert (batch["state"], batch["root"]) == ("anchored", hex32(anchoring[0].root))
        assert batch["transaction"] == hex32(anchoring[0].tx_hash or b"")
        assert keyed.deployment.ledger.batch_of(HRSS_ID, anchoring[0].root).size == batch["size"]
        again = keyed.client.post(
            "/v1/commitments?wait=true", content=keyed.body(signed), headers=keyed.auth()
        )
        assert again.status_code == 200, again.text
        assert again.json()["new"] is False and again.json()["batch"] == batch


def test_submit_with_wait_answers_202_when_the_timeout_passes(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    world = open_service(tmp_path, embedded_deployment)  # no keys: nothing anchors here
    try:
        with world.client:
            # Nothing anchors (a keyless instance still follows and sequences the feed).
            assert world.context.background.names() == ["reconcile", "feed"]
            response = world.client.post(
                "/v1/commitments?wait=true&timeout=0.3",
                content=world.body(world.signed()),
                headers=world.auth(),
            )
        assert response.status_code == 202, response.text
        assert "batch" not in response.json()
    finally:
        world.context.close()


@pytest.mark.parametrize("timeout", ["0", "-1", "61", "soon"])
def test_a_wait_timeout_out_of_bounds_is_a_422_and_stores_nothing(
    keyed: ServiceWorld, timeout: str
) -> None:
    response = keyed.client.post(
        f"/v1/commitments?wait=true&timeout={timeout}",
        content=keyed.body(keyed.signed()),
        headers=keyed.auth(),
    )
    assert_problem(response, 422, "invalid-request")
    assert keyed.store.status().pending == 0


def test_readyz_reports_the_backlog_and_its_draining(keyed: ServiceWorld) -> None:
    hashes = [keyed.submit(keyed.signed()) for _ in range(3)]
    token = keyed.context.tokens.issue("OPERATOR", "operator").token
    operator = {"Authorization": f"Bearer {token}"}
    ready = keyed.client.get("/readyz", headers=operator)
    assert ready.status_code == 200, ready.text
    anchoring = ready.json()["anchoring"]
    assert (anchoring["pending"], anchoring["anchored"], anchoring["background"]) == (3, 0, False)
    assert anchoring["oldest_pending_age"] >= 0
    with keyed.client:

        def drained() -> bool:
            body = keyed.client.get("/readyz", headers=operator).json()
            return bool(body["anchoring"]["anchored"] == 3)

        until(drained, "the backlog anchored")
        body = keyed.client.get("/readyz", headers=operator).json()
    assert body["anchoring"]["pending"] == 0
    assert body["anchoring"]["oldest_pending_age"] is None
    assert body["anchoring"]["background"] is True
    assert body["background"]["anchoring"]["failures"] == 0
    for digest in hashes:
        assert keyed.store.anchoring_of(digest) is not None


def test_anchoring_is_left_alone_without_a_registrar_key(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    write_all_keys(tmp_path / "keys", embedded_deployment)
    (tmp_path / "keys" / HRSS / "registrar.json").unlink()
    world = open_service(tmp_path, embedded_deployment, anchor_max_age=0.05, feed=False)
    try:
        market = world.submit(world.signed("BJ-SAMR"))
        hrss = world.submit(world.signed(HRSS))
        with world.client:
            until(lambda: world.store.anchoring_of(market) is not None, "the market's anchored")
        assert world.store.get(hrss) is not None
        assert world.store.anchoring_of(hrss) is None  # another process anchors for HRSS
    finally:
        world.context.close()

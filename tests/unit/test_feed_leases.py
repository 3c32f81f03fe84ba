"""The registry's reconciliation and the feed under two leases (issue 18): `reconcile` is
sought by any instance with a deployment, `feed` only by one whose feed is on and which
holds the report key of every department it would sign for."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.deployment import HRSS, MARKET, Deployment
from support.service_keys import write_all_keys, write_department_keys
from support.service_world import ServiceWorld, open_service

from api.service.feed_task import (
    RECONCILE_TASK_NAME,
    TASK_NAME,
    feed_departments,
    feed_ready,
    register_feed,
)
from api.service.leased_tasks import FEED_LEASE, RECONCILE_LEASE

DEADLINE_S = 30.0
LEASE_TIMES: dict[str, Any] = {"lease_ttl_seconds": 2.0, "lease_poll_seconds": 0.05}


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {DEADLINE_S} s: {what}"
        time.sleep(0.01)


@pytest.fixture
def opened() -> Iterator[list[ServiceWorld]]:
    """The services a test opens, closed (their keepers stopped) afterwards."""
    worlds: list[ServiceWorld] = []
    yield worlds
    for world in worlds:
        world.context.leases.stop()
        world.context.close()


def service(
    opened: list[ServiceWorld], folder: Path, deployment: Deployment, **settings: Any
) -> ServiceWorld:
    folder.mkdir(parents=True, exist_ok=True)
    world = open_service(folder, deployment, anchoring=False, **{**LEASE_TIMES, **settings})
    opened.append(world)
    return world


def wanted_after_registering(world: ServiceWorld) -> set[str]:
    register_feed(world.context)
    return set(world.context.leases.wanted())


def test_with_the_feed_off_only_reconcile_is_sought(
    tmp_path: Path, embedded_deployment: Deployment, opened: list[ServiceWorld]
) -> None:
    write_all_keys(tmp_path / "keys", embedded_deployment)
    world = service(opened, tmp_path, embedded_deployment, feed=False)
    assert not feed_ready(world.context)
    assert wanted_after_registering(world) == {RECONCILE_LEASE}
    assert world.context.background.names() == [RECONCILE_TASK_NAME]


def test_a_keyless_public_instance_only_reconciles(
    tmp_path: Path, embedded_deployment: Deployment, opened: list[ServiceWorld]
) -> None:
    world = service(opened, tmp_path, embedded_deployment)  # the feed on, no key at all
    assert feed_departments(world.context) == frozenset()
    assert not feed_ready(world.context)
    assert wanted_after_registering(world) == {RECONCILE_LEASE}


def test_without_every_report_key_the_feed_is_not_sought(
    tmp_path: Path, embedded_deployment: Deployment, opened: list[ServiceWorld]
) -> None:
    keys = tmp_path / "keys"
    write_department_keys(keys, HRSS, embedded_deployment.registrar, embedded_deployment.verifier)
    write_department_keys(
        keys,
        MARKET,
        embedded_deployment.other_registrar,
        embedded_deployment.other_verifier,
        report=False,
    )
    world = service(opened, tmp_path, embedded_deployment)
    assert feed_departments(world.context) == {HRSS, MARKET}
    assert not feed_ready(world.context)
    assert wanted_after_registering(world) == {RECONCILE_LEASE}


def test_one_departments_instance_never_seeks_the_feed(
    tmp_path: Path, embedded_deployment: Deployment, opened: list[ServiceWorld]
) -> None:
    # Its own keys, report key included: the other departments' records would wait.
    write_all_keys(tmp_path / "keys", embedded_deployment)
    world = service(opened, tmp_path, embedded_deployment, department=HRSS)
    assert {HRSS, MARKET} < feed_departments(world.context)
    assert not feed_ready(world.context)
    assert wanted_after_registering(world) == {RECONCILE_LEASE}


def test_with_every_report_key_both_leases_are_sought_and_taken(
    tmp_path: Path, embedded_deployment: Deployment, opened: list[ServiceWorld]
) -> None:
    write_all_keys(tmp_path / "keys", embedded_deployment)
    world = service(opened, tmp_path, embedded_deployment)
    assert feed_ready(world.context)
    assert wanted_after_registering(world) == {RECONCILE_LEASE, FEED_LEASE}
    assert set(world.context.background.names()) == {RECONCILE_TASK_NAME, TASK_NAME}
    keeper = world.context.leases
    keeper.start()
    until(lambda: {RECONCILE_LEASE, FEED_LEASE} <= set(keeper.held()), "both leases held")


def test_a_keyless_instance_holding_reconcile_leaves_the_feed_to_a_keyed_one(
    tmp_path: Path, embedded_deployment: Deployment, opened: list[ServiceWorld]
) -> None:
    # One folder, so one store: the keys apart.
    (tmp_path / "none").mkdir()
    keyless = service(
        opened, tmp_path, embedded_deployment, keys_dir=tmp_path / "none", instance_id="pub"
    )
    register_feed(keyless.context)
    keyless.context.leases.start()
    until(lambda: RECONCILE_LEASE in keyless.context.leases.held(), "reconcile held")

    write_all_keys(tmp_path / "keys", embedded_deployment)
    keyed = service(
        opened, tmp_path, embedded_deployment, keys_dir=tmp_path / "keys", instance_id="keyed"
    )
    assert register_feed(keyed.context) is True
    keyed.context.leases.start()
    until(lambda: FEED_LEASE in keyed.context.leases.held(), "the feed held by the keyed one")
    assert RECONCILE_LEASE not in keyed.context.leases.held()  # the keyless one still has it
    assert set(keyless.context.leases.held()) == {RECONCILE_LEASE}

    # The keyless one stops: the keyed one takes reconcile over too; the feed stays put.
    keyless.context.leases.stop()
    until(lambda: RECONCILE_LEASE in keyed.context.leases.held(), "reconcile taken over")
    assert FEED_LEASE in keyed.context.leases.held()


def test_readyz_lists_both_leases_for_an_operator(
    tmp_path: Path, embedded_deployment: Deployment, opened: list[ServiceWorld]
) -> None:
    write_all_keys(tmp_path / "keys", embedded_deployment)
    world = service(opened, tmp_path, embedded_deployment)
    operator = world.context.tokens.issue("OPS", "operator").token
    with world.client:  # the lifespan registers the tasks and starts the keeper
        keeper = world.context.leases
        until(lambda: {RECONCILE_LEASE, FEED_LEASE} <= set(keeper.held()), "both leases held")
        body = world.client.get("/readyz", headers={"Authorization": f"Bearer {operator}"})
        leases = body.json()["leases"]
    assert {RECONCILE_LEASE, FEED_LEASE} <= set(leases["wanted"])
    assert {RECONCILE_LEASE, FEED_LEASE} <= set(leases["held"])

"""The registry's reconciliation and the feed under leases (issue 18): `reconcile` is sought
by any instance with a deployment, `feed` (the sequencer) by any whose feed is on, keys or
none, and `feed-sign:<D>` by one holding D's report key and the master key."""

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
    SIGN_TASK_NAME,
    TASK_NAME,
    feed_ready,
    register_feed,
    signing_departments,
)
from api.service.leased_tasks import FEED_LEASE, RECONCILE_LEASE, feed_sign_lease

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


def test_a_keyless_public_instance_sequences_but_signs_nothing(
    tmp_path: Path, embedded_deployment: Deployment, opened: list[ServiceWorld]
) -> None:
    world = service(opened, tmp_path, embedded_deployment)  # the feed on, no key at all
    assert signing_departments(world.context) == frozenset()
    assert feed_ready(world.context)
    assert wanted_after_registering(world) == {RECONCILE_LEASE, FEED_LEASE}


def test_without_the_master_key_an_instance_signs_nothing(
    tmp_path: Path, embedded_deployment: Deployment, opened: list[ServiceWorld]
) -> None:
    # Its report keys are there, but a record's details come from the sealed documents.
    write_all_keys(tmp_path / "keys", embedded_deployment)
    world = service(opened, tmp_path, embedded_deployment)
    world.context.intake = None
    assert signing_departments(world.context) == frozenset()
    assert wanted_after_registering(world) == {RECONCILE_LEASE, FEED_LEASE}


def test_a_signer_is_sought_for_each_report_key_held_only(
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
    assert signing_departments(world.context) == {HRSS}
    assert wanted_after_registering(world) == {RECONCILE_LEASE, FEED_LEASE, feed_sign_lease(HRSS)}


def test_one_departments_instance_signs_its_own_records_only(
    tmp_path: Path, embedded_deployment: Deployment, opened: list[ServiceWorld]
) -> None:
    # Every key in the folder: the instance of HRSS takes HRSS's only.
    write_all_keys(tmp_path / "keys", embedded_deployment)
    world = service(opened, tmp_path, embedded_deployment, department=HRSS)
    assert signing_departments(world.context) == {HRSS}
    assert wanted_after_registering(world) == {RECONCILE_LEASE, FEED_LEASE, feed_sign_lease(HRSS)}


def test_with_every_report_key_every_lease_is_sought_and_taken(
    tmp_path: Path, embedded_deployment: Deployment, opened: list[ServiceWorld]
) -> None:
    write_all_keys(tmp_path / "keys", embedded_deployment)
    world = service(opened, tmp_path, embedded_deployment)
    assert feed_ready(world.context)
    signs = {feed_sign_lease(HRSS), feed_sign_lease(MARKET)}
    assert wanted_after_registering(world) == {RECONCILE_LEASE, FEED_LEASE, *signs}
    assert set(world.context.background.names()) == {
        RECONCILE_TASK_NAME,
        TASK_NAME,
        SIGN_TASK_NAME,
    }
    keeper = world.context.leases
    keeper.start()
    until(lambda: {RECONCILE_LEASE, FEED_LEASE, *signs} <= set(keeper.held()), "all held")


def test_a_keyless_sequencer_and_a_keyed_signer_share_the_feed_and_take_over(
    tmp_path: Path, embedded_deployment: Deployment, opened: list[ServiceWorld]
) -> None:
    # One folder, so one store: the keys apart.
    (tmp_path / "none").mkdir()
    keyless = service(
        opened, tmp_path, embedded_deployment, keys_dir=tmp_path / "none", instance_id="pub"
    )
    assert register_feed(keyless.context) is True
    keyless.context.leases.start()
    until(
        lambda: {RECONCILE_LEASE, FEED_LEASE} <= set(keyless.context.leases.held()),
        "reconcile and the feed held by the keyless one",
    )

    write_all_keys(tmp_path / "keys", embedded_deployment)
    keyed = service(
        opened, tmp_path, embedded_deployment, keys_dir=tmp_path / "keys", instance_id="keyed"
    )
    assert register_feed(keyed.context) is True
    keyed.context.leases.start()
    signs = {feed_sign_lease(HRSS), feed_sign_lease(MARKET)}
    until(lambda: signs <= set(keyed.context.leases.held()), "the signers held by the keyed one")
    assert not signs & set(keyless.context.leases.held())  # it never seeks them

    # The keyless one stops: the keyed one takes reconcile and the sequencing over too.
    keyless.context.leases.stop()
    until(
        lambda: {RECONCILE_LEASE, FEED_LEASE, *signs} <= set(keyed.context.leases.held()),
        "every feed lease taken over",
    )


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

"""The lifecycle job as the service runs it: on start, then once a day, for each department
whose verifier and report keys it holds; and `commitledger lifecycle run`'s refusals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from support.deployment import HRSS, Deployment
from support.service_keys import write_all_keys, write_department_keys
from support.service_world import ServiceWorld, open_service
from support.verify_cli import cli

from api.service.lifecycle_task import (
    TASK_NAME,
    BackgroundLifecycle,
    lifecycle_departments,
    register_lifecycle,
)

DECIDED = date(2025, 1, 10)  # general severity: published until 2026-01-10


def keyed_service(
    tmp_path: Path, deployment: Deployment, today: date, **settings: object
) -> ServiceWorld:
    write_all_keys(tmp_path / "keys", deployment)
    return open_service(tmp_path, deployment, today=today, feed=False, anchoring=False, **settings)


def test_the_service_runs_each_departments_job_once_a_day_from_its_start(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    days = iter([date(2026, 3, 1), date(2026, 3, 1), date(2026, 3, 2)])
    world = keyed_service(tmp_path, embedded_deployment, date(2026, 3, 1))
    try:
        record = world.add_breach(decision_date=DECIDED)
        today: Callable[[], date] = lambda: next(days)  # noqa: E731
        world.context.today = today
        assert register_lifecycle(world.context)
        assert TASK_NAME in world.context.background.names()
        job = BackgroundLifecycle(world.context)

        assert job.step() == 2  # both departments, on start
        stored = world.context.records.breach(record.id)
        assert stored is not None and stored.status == "expired"
        assert job.step() == 0  # the same day: done already
        assert job.step() == 2  # the next day
    finally:
        world.context.close()


def test_without_keys_or_when_turned_off_the_service_runs_no_job(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    (tmp_path / "bare").mkdir()
    bare = open_service(tmp_path / "bare", embedded_deployment, feed=False, anchoring=False)
    try:
        assert lifecycle_departments(bare.context) == []
        assert not register_lifecycle(bare.context)
    finally:
        bare.context.close()
    off = keyed_service(tmp_path / "off", embedded_deployment, date(2026, 3, 1), lifecycle=False)
    try:
        assert not register_lifecycle(off.context)
    finally:
        off.context.close()
    # A verifier without its report key: no job for that department.
    half = tmp_path / "half"
    write_department_keys(half / "keys", HRSS, None, embedded_deployment.verifier, report=False)
    world = open_service(half, embedded_deployment, feed=False, anchoring=False)
    try:
        assert lifecycle_departments(world.context) == []
    finally:
        world.context.close()


def test_the_command_refuses_a_day_to_come_and_a_department_without_keys(
    tmp_path: Path,
) -> None:
    # The command's today is Beijing's: from 16:00 UTC the machine's date is a day behind.
    beijing_today = datetime.now(timezone(timedelta(hours=8))).date()
    later = (beijing_today + timedelta(days=1)).isoformat()
    future = cli("lifecycle", "run", "--on", later, "--data-dir", tmp_path, "--json")
    assert future.exit_code == 2 and "today" in future.output
    nokeys = cli(
        "lifecycle", "run", "--department", HRSS, "--data-dir", tmp_path, "--json",
        env={"COMMITLEDGER_MASTER_KEY": "0x" + "11" * 32},
    )  # fmt: skip
    assert nokeys.exit_code == 2 and "verifier.json" in nokeys.output

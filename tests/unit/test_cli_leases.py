"""A command doing a role's work outside `serve` takes the role's lease (issue 18): refused
while an instance holds it, waiting for it with `--wait`, and released at the end. Here
`notices deliver` on SQLite and PostgreSQL and `lifecycle run` (no node needed); `pipeline
run` and `feed run` against anvil are in tests/integration/test_cli_leases_anvil.py."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from support.cli import flat, one_json
from support.deployment import HRSS, Deployment
from support.service_keys import write_all_keys
from support.service_world import write_deployment_file
from typer.testing import CliRunner, Result

from api.cli import app, leased
from api.service import FEED_LEASE, LIFECYCLE_LEASE, NOTICES_LEASE, RECONCILE_LEASE
from ledger import MASTER_KEY_ENV, LeaseHeldError, LeaseKeeper, LeaseRow, Leases, Store

RUNNER = CliRunner()


def explain(result: Result) -> str:
    return f"exit {result.exit_code}\nstdout: {result.stdout!r}\nstderr: {result.stderr!r}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory whose settings name a notices gateway (nothing is sent to it: no
    notice is due) and quick leases."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "commitledger.toml").write_text(
        "lease_ttl_seconds = 2.0\n"
        "lease_poll_seconds = 0.2\n"
        "[notice_gateways]\n"
        f'{HRSS} = "http://127.0.0.1:9/notices"\n'
    )
    return folder


def deliver(store: Store, data_dir: Path, *flags: str) -> Result:
    env: Mapping[str, str | None] = {
        "COLUMNS": "1000",
        MASTER_KEY_ENV: None,
        "COMMITLEDGER_CONFIG": None,
        "COMMITLEDGER_STORE": store.url,
    }
    args = ["notices", "deliver", "--data-dir", str(data_dir), *flags]
    return RUNNER.invoke(app, args, env=dict(env))


def lease_row(store: Store) -> Any:
    row = Leases(store).row(NOTICES_LEASE)
    assert row is not None
    return row


def test_a_command_is_refused_while_an_instance_holds_its_lease(
    store: Store, data_dir: Path
) -> None:
    serving = LeaseKeeper(Leases(store), "serving-1", ttl=60.0, poll=1.0)
    serving.want(NOTICES_LEASE)
    try:
        assert serving.held() == {NOTICES_LEASE: 1}
        result = deliver(store, data_dir, "--wait", "0")
        assert result.exit_code == 1, explain(result)
        message = flat(result.stderr)
        assert f"the lease {NOTICES_LEASE} is held by instance serving-1 until 20" in message
        assert "give --wait SECONDS to wait for it" in message
        assert "waiting" not in message  # refused at once
        assert "delivered" not in result.stdout  # nothing ran
        as_json = deliver(store, data_dir, "--json", "--wait", "0")
        assert as_json.exit_code == 1, explain(as_json)
        error = one_json(as_json.stdout)["error"]
        assert error["type"] == "LeaseHeldError"
        assert "serving-1" in error["message"]
        assert serving.held() == {NOTICES_LEASE: 1}  # still the instance's, same token
        row = lease_row(store)
        assert (row.holder, row.token, row.held) == ("serving-1", 1, True)
    finally:
        serving.stop()


def test_with_wait_a_command_runs_once_the_holder_is_gone_and_releases_the_lease(
    store: Store, data_dir: Path
) -> None:
    # An instance killed while holding the lease: never renewed, it runs out after 1 s.
    assert Leases(store).acquire(NOTICES_LEASE, "killed-1", ttl=1.0) == 1
    result = deliver(store, data_dir, "--wait", "60")
    assert result.exit_code == 0, explain(result)
    assert "held by instance killed-1 until" in flat(result.stderr)
    assert "waiting up to 60 s" in flat(result.stderr)
    assert "0 delivered" in result.stdout
    row = lease_row(store)
    assert row.holder.startswith("cli:")
    assert row.token == 2  # taken over under a new token
    assert not row.held  # released at the end: an instance takes the role back at once
    serving = LeaseKeeper(Leases(store), "serving-2", ttl=60.0, poll=1.0)
    try:
        serving.want(NOTICES_LEASE)
        assert serving.held() == {NOTICES_LEASE: 3}
    finally:
        serving.stop()


def test_a_wait_gives_up_after_its_time_while_the_instance_still_holds_the_lease(
    store: Store, data_dir: Path
) -> None:
    serving = LeaseKeeper(Leases(store), "serving-3", ttl=60.0, poll=1.0)
    serving.want(NOTICES_LEASE)
    try:
        result = deliver(store, data_dir, "--wait", "0.3")
        assert result.exit_code == 1, explain(result)
        assert "held by instance serving-3" in flat(result.stderr)
        assert "waited 0.3 s; give --wait SECONDS to wait longer" in flat(result.stderr)
        assert serving.held() == {NOTICES_LEASE: 1}
        # By default it waits the lease time and two polls (2 s and 0.2 s here): long enough
        # for a dead holder's lease to run out, not for one a live instance renews.
        by_default = deliver(store, data_dir)
        assert by_default.exit_code == 1, explain(by_default)
        assert "waiting up to 2.4 s" in flat(by_default.stderr)
        assert "waited 2.4 s" in flat(by_default.stderr)
        assert serving.held() == {NOTICES_LEASE: 1}
    finally:
        serving.stop()


def test_by_default_a_command_waits_out_the_lease_of_a_holder_that_died(
    store: Store, data_dir: Path
) -> None:
    # A command killed part way (its lease, 1 s here, never renewed again): the next run
    # waits it out without being told to.
    assert Leases(store).acquire(NOTICES_LEASE, "cli:host:4242", ttl=1.0) == 1
    result = deliver(store, data_dir)
    assert result.exit_code == 0, explain(result)
    assert "held by instance cli:host:4242 until" in flat(result.stderr)
    assert lease_row(store).token == 2


def test_lifecycle_run_is_refused_while_an_instance_runs_the_lifecycle(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    write_all_keys(tmp_path / "keys", embedded_deployment)
    write_deployment_file(tmp_path / "deployment.json", embedded_deployment, "http://127.0.0.1:1")
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    serving = LeaseKeeper(Leases(store), "serving-4", ttl=60.0, poll=1.0)
    serving.want(LIFECYCLE_LEASE)
    try:
        args = ["lifecycle", "run", "--department", HRSS, "--data-dir", str(tmp_path)]
        result = RUNNER.invoke(
            app,
            [*args, "--wait", "0", "--json"],
            env={
                "COLUMNS": "1000",
                "COMMITLEDGER_CONFIG": None,
                "COMMITLEDGER_STORE": None,
                MASTER_KEY_ENV: "0x" + "11" * 32,
            },
        )
        assert result.exit_code == 1, explain(result)
        error = one_json(result.stdout)["error"]
        assert error["type"] == "LeaseHeldError"
        assert f"the lease {LIFECYCLE_LEASE} is held by instance serving-4" in error["message"]
        assert "departments" not in result.stdout  # no job ran
        assert serving.held() == {LIFECYCLE_LEASE: 1}
    finally:
        serving.stop()
        store.close()


def test_a_command_holds_none_of_its_leases_while_it_waits_for_another(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    serving = LeaseKeeper(Leases(store), "serving-5", ttl=60.0, poll=1.0)
    serving.want(RECONCILE_LEASE)
    seen: list[LeaseRow | None] = []

    def looking(_seconds: float) -> None:  # the command's wait between polls, made instant
        seen.append(Leases(store).row(FEED_LEASE))

    monkeypatch.setattr(leased, "time", SimpleNamespace(monotonic=time.monotonic, sleep=looking))
    try:
        with (
            pytest.raises(LeaseHeldError, match="held by instance serving-5"),
            leased.leased_job(store, [RECONCILE_LEASE, FEED_LEASE], wait=0.3, ttl=2.0, poll=0.1),
        ):
            pytest.fail("the job ran without the lease")
    finally:
        serving.stop()
    assert seen, "the command did not wait"
    # `feed` was free: taken with the first look, then let go until both could be held.
    assert all(row is not None and not row.held for row in seen)

"""`commitledger pipeline run` beside a serving instance, against anvil, on SQLite and
PostgreSQL (issue 18): refused while the instance holds the department's anchoring lease,
nothing anchored; with `--wait`, it takes the lease once the instance is gone, anchors every
commitment exactly once under its own fencing token, and releases the lease at the end. And
`feed run`, refused while an instance holds `reconcile` or `feed`."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cli import flat, one_json
from support.deployment import deploy
from support.pipeline import (
    DEPARTMENT,
    check_exactly_once,
    submit_count,
    write_account_key,
    write_deployment,
)
from support.service_keys import write_master_key
from typer.testing import CliRunner, Result

from api.cli import app
from api.service import FEED_LEASE, RECONCILE_LEASE, anchor_lease
from ledger import MASTER_KEY_ENV, AnvilNode, Chain, LeaseKeeper, Leases, Store

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("anvil_binary", "restore_signals"),
]

RUNNER = CliRunner()
LEASE = anchor_lease(DEPARTMENT)


def explain(result: Result) -> str:
    return f"exit {result.exit_code}\nstdout: {result.stdout!r}\nstderr: {result.stderr!r}"


def test_pipeline_run_waits_for_the_serving_instances_lease_then_anchors_once(
    anvil: AnvilNode, store: Store, tmp_path: Path
) -> None:
    deployment = deploy(Chain.connect(anvil.url, kind="anvil"))
    key = write_account_key(tmp_path / "registrar.json", deployment.registrar)
    deployment_file = write_deployment(tmp_path / "deployment.json", anvil.url, deployment.ledger)
    hashes = submit_count(store, 6)

    def pipeline_run(*flags: str) -> Result:
        args = [
            "pipeline",
            "run",
            "--key",
            str(key),
            "--store",
            store.url,
            "--deployment",
            str(deployment_file),
            "--max-age",
            "0",
            "--until-idle",
            "--timeout",
            "60",
            "--json",
            *flags,
        ]
        env = {
            "COLUMNS": "1000",
            MASTER_KEY_ENV: None,
            "COMMITLEDGER_CONFIG": None,
            "COMMITLEDGER_DATA_DIR": str(tmp_path / "data"),
            "COMMITLEDGER_LEASE_TTL_SECONDS": "3",
            "COMMITLEDGER_LEASE_POLL_SECONDS": "0.5",
        }
        return RUNNER.invoke(app, args, env=env)

    serving = LeaseKeeper(Leases(store), "serving-1", ttl=60.0, poll=1.0)
    serving.want(LEASE)
    try:
        refused = pipeline_run()
        assert refused.exit_code == 1, explain(refused)
        error = one_json(refused.stdout)["error"]
        assert error["type"] == "LeaseHeldError"
        assert f"the lease {LEASE} is held by instance serving-1 until" in error["message"]
        assert store.status().anchored == 0  # nothing done beside the instance
        assert serving.held() == {LEASE: 1}
    finally:
        serving.stop()  # released: token 1 stays the last taking

    # An instance killed while holding it: never renewed, the lease runs out after 1 s.
    assert Leases(store).acquire(LEASE, "killed-2", ttl=1.0) == 2
    ran = pipeline_run("--wait", "60")
    assert ran.exit_code == 0, explain(ran)
    assert "held by instance killed-2 until" in flat(ran.stderr)
    assert one_json(ran.stdout)["anchored"] == len(hashes)
    check_exactly_once(store, deployment.ledger, hashes)
    row = Leases(store).row(LEASE)
    assert row is not None
    assert row.holder.startswith("cli:") and row.token == 3  # its own taking, then released
    assert not row.held


def test_feed_run_is_refused_while_an_instance_reconciles_or_builds_the_feed(
    anvil: AnvilNode, store: Store, tmp_path: Path
) -> None:
    deployment = deploy(Chain.connect(anvil.url, kind="anvil"))
    deployment_file = write_deployment(tmp_path / "deployment.json", anvil.url, deployment.ledger)
    master = tmp_path / "master.key"
    write_master_key(master)
    master.chmod(0o600)
    for lease in (RECONCILE_LEASE, FEED_LEASE):  # either one held is enough to refuse
        serving = LeaseKeeper(Leases(store), f"serving-{lease}", ttl=60.0, poll=1.0)
        serving.want(lease)
        held = serving.held()
        try:
            args = ["feed", "run", "--until-idle", "--store", store.url]
            args += ["--deployment", str(deployment_file), "--master-key-file", str(master)]
            result = RUNNER.invoke(
                app,
                [*args, "--keys-dir", str(tmp_path / "keys"), "--wait", "0", "--json"],
                env={"COLUMNS": "1000", MASTER_KEY_ENV: None, "COMMITLEDGER_CONFIG": None},
            )
            assert result.exit_code == 1, explain(result)
            error = one_json(result.stdout)["error"]
            assert error["type"] == "LeaseHeldError"
            assert f"held by instance serving-{lease}" in error["message"]
            assert serving.held() == held  # still the instance's, under the same token
        finally:
            serving.stop()
    # The command held neither while it was refused (all or nothing).
    assert not any(row.held for row in Leases(store).all())
    # Neither held: the command takes both, follows the chain, and releases both at the end.
    ran = RUNNER.invoke(
        app,
        [*args, "--keys-dir", str(tmp_path / "keys"), "--wait", "0", "--json"],
        env={"COLUMNS": "1000", MASTER_KEY_ENV: None, "COMMITLEDGER_CONFIG": None},
    )
    assert ran.exit_code == 0, explain(ran)
    rows = {row.name: row for row in Leases(store).all()}
    for lease in (RECONCILE_LEASE, FEED_LEASE):
        assert rows[lease].holder.startswith("cli:") and not rows[lease].held

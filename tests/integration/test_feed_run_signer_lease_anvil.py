"""`commitledger feed run` under the signers' leases (issue 18), against anvil, on SQLite and
PostgreSQL: refused while an instance holds `feed-sign:<D>` for a department whose report key
the command holds (nothing signed, nothing held); with it free, it takes `reconcile`, `feed`
and `feed-sign:<D>`, signs under their tokens, publishes D's public key and releases them.
Then `feed check` verifies the feed with public keys only: a `/v1/feed/keys` document
(`--public-keys`) or the store's published keys (`--store-keys`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from support.cli import one_json
from support.deployment import HRSS, deploy
from support.pipeline import write_deployment
from support.service_keys import write_master_key, write_report_key
from typer.testing import CliRunner, Result

from api.cli import app
from api.output import EXIT_CHECK_FAILED
from api.service import FEED_LEASE, RECONCILE_LEASE, feed_sign_lease
from ledger import MASTER_KEY_ENV, AnvilNode, Chain, LeaseKeeper, Leases, Status, Store
from ledger import keccak256 as h32
from verifier.feed import FeedStore, published_keys

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("anvil_binary", "restore_signals"),
]

RUNNER = CliRunner()
SIGN_LEASE = feed_sign_lease(HRSS)
ENV = {
    "COLUMNS": "1000",
    MASTER_KEY_ENV: None,
    "COMMITLEDGER_CONFIG": None,
    "COMMITLEDGER_LEASE_TTL_SECONDS": "3",
    "COMMITLEDGER_LEASE_POLL_SECONDS": "0.5",
}


def explain(result: Result) -> str:
    return f"exit {result.exit_code}\nstdout: {result.stdout!r}\nstderr: {result.stderr!r}"


def test_feed_run_takes_the_signers_lease_and_check_needs_public_keys_only(
    anvil: AnvilNode, store: Store, tmp_path: Path
) -> None:
    deployment = deploy(Chain.connect(anvil.url, kind="anvil"))
    for n in range(3):  # outcomes of HRSS on hashes anchored elsewhere: chain facts only
        target = h32(f"commitment {n}".encode())
        deployment.ledger.anchor(deployment.registrar, target)
        deployment.ledger.record_outcome(deployment.verifier, target, Status.KEPT, h32(b"ok"))
    deployment_file = write_deployment(tmp_path / "deployment.json", anvil.url, deployment.ledger)
    master = tmp_path / "master.key"
    write_master_key(master)
    master.chmod(0o600)
    key = write_report_key(tmp_path / "keys" / HRSS / "report.pem")
    run = ["feed", "run", "--until-idle", "--store", store.url, "--deployment",
           str(deployment_file), "--master-key-file", str(master),
           "--keys-dir", str(tmp_path / "keys"), "--wait", "0", "--json"]  # fmt: skip

    serving = LeaseKeeper(Leases(store), "serving-hrss", ttl=60.0, poll=1.0)
    serving.want(SIGN_LEASE)  # HRSS's instance signs its records
    held = serving.held()
    try:
        refused = RUNNER.invoke(app, run, env=ENV)
        assert refused.exit_code == 1, explain(refused)
        error = one_json(refused.stdout)["error"]
        assert error["type"] == "LeaseHeldError"
        assert f"the lease {SIGN_LEASE} is held by instance serving-hrss" in error["message"]
        assert serving.held() == held  # still the instance's, under the same token
    finally:
        serving.stop()
    feed = FeedStore(store)
    assert feed.head() == 0 and published_keys(store.engine) == []
    assert not any(row.held for row in Leases(store).all())  # all or nothing

    ran = RUNNER.invoke(app, run, env=ENV)
    assert ran.exit_code == 0, explain(ran)
    assert one_json(ran.stdout)["appended"] == 3
    assert feed.head() == 3
    rows = {row.name: row for row in Leases(store).all()}
    for lease in (RECONCILE_LEASE, FEED_LEASE, SIGN_LEASE):
        assert rows[lease].holder.startswith("cli:") and not rows[lease].held
    assert rows[SIGN_LEASE].token == held[SIGN_LEASE] + 1  # its own taking, after the instance's
    [published] = published_keys(store.engine)
    assert (published.department, published.public_key, published.first_sequence) == (
        HRSS,
        key.public_key_b64(),
        1,
    )

    check = ["feed", "check", "--store", store.url, "--deployment", str(deployment_file), "--json"]
    no_keys = ["--keys-dir", str(tmp_path / "no-keys")]  # no private key anywhere
    unverified = RUNNER.invoke(app, [*check, *no_keys], env=ENV)
    assert unverified.exit_code == EXIT_CHECK_FAILED, explain(unverified)
    assert {p["kind"] for p in one_json(unverified.stdout)["problems"]} == {"unverified"}
    document = {"keys": {HRSS: {"algorithm": "ed25519", "public_key": key.public_key_b64()}}}
    pinned = tmp_path / "feed-keys.json"
    pinned.write_text(json.dumps(document))
    for keys in (["--public-keys", str(pinned)], ["--store-keys"]):
        checked = RUNNER.invoke(app, [*check, *no_keys, *keys], env=ENV)
        assert checked.exit_code == 0, explain(checked)
        report = one_json(checked.stdout)
        assert report["ok"] and report["served"] == report["on_chain"] == 3, report
    # With the store's keys no private key is opened: a clear one in --keys-dir, which any
    # opening refuses, does not stop the check.
    clear_dir = tmp_path / "clear-keys" / HRSS
    clear_dir.mkdir(parents=True)
    (clear_dir / "report.pem").write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    clear = ["--keys-dir", str(tmp_path / "clear-keys"), "--store-keys"]
    checked = RUNNER.invoke(app, [*check, *clear], env=ENV)
    assert checked.exit_code == 0, explain(checked)
    both = RUNNER.invoke(app, [*check, "--public-keys", str(pinned), "--store-keys"], env=ENV)
    assert both.exit_code != 0 and "not both" in both.stdout, explain(both)

"""`feed run`'s report keys under the signers' leases (issue 18): a key is used only while the
command holds its department's `feed-sign:<D>` under its job's token; a key found after the
start waits for that lease while an instance holds it, and is used once the command took
it (its writes then fenced by it, and the job checks it with its other leases)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support.deployment import HRSS, MARKET

from api.cli.feed import LeasedSigners
from api.cli.leased import leased_job
from api.service import FEED_LEASE, feed_sign_lease
from ledger import LeaseKeeper, LeaseLostError, Leases, SigningKey, Store

DEADLINE_S = 30.0


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"not within {DEADLINE_S} s: {what}"
        time.sleep(0.02)


def test_a_key_found_later_is_used_once_its_lease_is_the_commands(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    lease = feed_sign_lease(HRSS)
    serving = LeaseKeeper(Leases(store), "serving-hrss", ttl=60.0, poll=1.0)
    serving.want(lease)
    key = SigningKey.generate("ed25519")
    found: dict[str, SigningKey] = {}
    try:
        with leased_job(store, [FEED_LEASE], wait=0, ttl=2.0, poll=0.1) as job:
            signers = LeasedSigners(job, found.get)
            assert signers(HRSS) is None and lease not in job.keeper.wanted()  # no key yet
            found[HRSS] = key  # put there while the command runs
            assert signers(HRSS) is None  # the instance signs HRSS's records
            assert "held by instance serving-hrss" in signers.waiting[HRSS]
            assert signers.fence(HRSS) is None
            serving.stop()  # released: the command's keeper takes it at a poll
            until(lambda: signers(HRSS) is key, "the lease taken by the command")
            assert HRSS not in signers.waiting and signers(MARKET) is None
            assert signers.fence(HRSS) is not None
            job.check()  # held under the token it was taken with
            # Taken over by another holder: the key is no longer used, the job stops.
            with store.engine.begin() as connection:
                connection.exec_driver_sql(
                    "UPDATE leases SET holder = 'thief', token = token + 1 WHERE name = ?",
                    (lease,),
                )
            until(lambda: signers(HRSS) is None, "the key dropped with its lease")
            with pytest.raises(LeaseLostError):
                job.check()
    finally:
        serving.stop()
        store.close()

"""`commitledger lifecycle run` against a real anvil node, killed with SIGKILL at each point
after it sent something, then run again: nothing is recorded twice, on chain or in the store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from support.deployment import HRSS
from support.service_keys import write_department_keys
from support.service_world import write_deployment_file
from support.verifier_world import DAY, POINTS, World, open_world

from ledger import Chain, Status, outcome_outbox
from verifier.engine.lifecycle import CRASH_AT_ENV
from verifier.records import NoticeRecords, breach_records, verifications_table

COMMITLEDGER = Path(sys.executable).parent / "commitledger"
PAST = date(2026, 12, 1)  # a day gone by whatever the machine's date: the CLI runs "today"
TIMEOUT_S = 150.0


@pytest.fixture
def world(tmp_path: Path, anvil_chain: Chain) -> Iterator[World]:
    with open_world(anvil_chain, tmp_path) as opened:
        yield opened


def lifecycle(world: World, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    """`commitledger lifecycle run --json` in a process of its own, on the world's store."""
    env = {
        **os.environ,
        "COMMITLEDGER_DATA_DIR": str(world.tmp_path / "data"),
        "COMMITLEDGER_STORE_URL": f"sqlite:///{world.db_path}",
        "COMMITLEDGER_MASTER_KEY": "0x" + world.vault.master_key.hex(),
        # A run killed part way leaves the lease `lifecycle` to run out before the next run
        # takes it (issue 18): 3 s here rather than the default 15 s.
        "COMMITLEDGER_LEASE_TTL_SECONDS": "3",
        "COMMITLEDGER_LEASE_POLL_SECONDS": "0.5",
    }
    env.pop(CRASH_AT_ENV, None)
    if crash_at is not None:
        env[CRASH_AT_ENV] = crash_at
    return subprocess.run(
        [str(COMMITLEDGER), "lifecycle", "run", "--department", HRSS, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def outbox_rows(world: World) -> Counter[tuple[bytes, int]]:
    with world.store.engine.connect() as connection:
        rows = connection.execute(
            select(outcome_outbox.c.commitment_hash, outcome_outbox.c.status)
        ).all()
    return Counter((bytes(r.commitment_hash), int(r.status)) for r in rows)


def test_a_lifecycle_run_killed_after_each_send_records_nothing_twice(world: World) -> None:
    (world.tmp_path / "data").mkdir()
    d = world.deployment
    write_deployment_file(world.tmp_path / "data" / "deployment.json", d, rpc=str(d.chain.url))
    write_department_keys(world.tmp_path / "data" / "keys", HRSS, d.registrar, d.verifier)
    breached, applicant = world.commit_kind("false", POINTS)
    mismatched, _ = world.commit_kind("mismatch", POINTS)
    world.engine.run(DAY)
    world.publish(DAY)  # proposed, then published: its publication ends below
    # A proposed breach whose notice was delivered and whose defence period ended unanswered.
    lapsed, _ = world.commit_kind("false", POINTS)
    world.engine.run(DAY)
    notices = NoticeRecords(world.store)
    notice = notices.open_for(lapsed)
    assert notice is not None
    notices.delivered(notice.id, 0.0, PAST, PAST)
    # Moved into the past so that the command, run today, finds them due.
    with world.store.engine.begin() as connection:
        connection.execute(
            update(verifications_table)
            .where(verifications_table.c.commitment_hash == mismatched)
            .values(rectify_by=PAST.isoformat())
        )
        row = connection.execute(
            select(breach_records.c.id, breach_records.c.public_json).where(
                breach_records.c.commitment_hash == breached
            )
        ).one()
        public = json.loads(row.public_json)
        public["publication_end"] = PAST.isoformat()
        connection.execute(
            update(breach_records)
            .where(breach_records.c.id == row.id)
            .values(publication_end=PAST.isoformat(), public_json=json.dumps(public))
        )
    assert world.store.is_excluded(world.fingerprint(applicant))

    for stage in ("overdue-sent", "defence-published", "expiry-sent", "expiry-closed"):
        killed = lifecycle(world, crash_at=stage)
        assert killed.returncode == -9, (stage, killed.stdout, killed.stderr[-2000:])
    done = lifecycle(world)
    assert done.returncode == 0, done.stderr[-2000:]
    [summary] = json.loads(done.stdout)["departments"]
    assert summary["overdue"] == summary["expiries_sent"] == 0  # the killed runs sent them
    again = lifecycle(world)
    assert again.returncode == 0, again.stderr[-2000:]
    [rerun] = json.loads(again.stdout)["departments"]
    assert (rerun["overdue"], rerun["expiries_sent"], rerun["expired"]) == (0, 0, [])

    assert rerun["published"] == summary["published"] == []  # the killed runs did it
    assert world.outcome_events(breached) == [
        (Status.ANCHORED, Status.PROPOSED),
        (Status.PROPOSED, Status.BREACHED),
        (Status.BREACHED, Status.EXPIRED),
    ]
    assert world.outcome_events(mismatched) == [
        (Status.ANCHORED, Status.MISMATCH),
        (Status.MISMATCH, Status.PROPOSED),  # notified: its notice is not delivered yet
    ]
    assert world.outcome_events(lapsed) == [
        (Status.ANCHORED, Status.PROPOSED),
        (Status.PROPOSED, Status.BREACHED),
    ]
    assert all(count == 1 for count in outbox_rows(world).values()), outbox_rows(world)
    with world.store.engine.connect() as connection:
        statuses = dict(
            connection.execute(
                select(breach_records.c.commitment_hash, breach_records.c.status)
            ).all()
        )
        records = connection.execute(select(func.count()).select_from(breach_records))
        assert records.scalar_one() == 2
    assert statuses[breached] == "expired" and statuses[lapsed] == "published"
    assert mismatched not in statuses
    assert not world.store.is_excluded(world.fingerprint(applicant))

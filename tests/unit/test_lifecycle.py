"""The lifecycle on schedule (issue #14, finding "Nothing expires"): a department's daily job
expires ended publications on chain, in the store and in the feed, lifts the exclusion, makes
overdue rectifications breaches and counts provisional deadlines again; run twice, it
records nothing twice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from support.feed_world import DAY, FeedWorld, feed_world
from support.verifier_world import POINTS

from ledger import Acknowledgement, Chain, Status, commitments
from verifier import WorkingDays, default_calendar
from verifier.engine import DepartmentActions, run_lifecycle
from verifier.feed import VISIBLE_SCOPES

ONE_DAY = timedelta(days=1)


@pytest.fixture
def fw(tmp_path: Path, embedded_chain: Chain) -> Iterator[FeedWorld]:
    with feed_world(embedded_chain, tmp_path) as opened:
        yield opened


def test_thirty_days_after_its_publication_ends_a_breach_is_expired_everywhere(
    fw: FeedWorld,
) -> None:
    world = fw.world
    commitment, applicant = world.commit_kind("false", POINTS)
    world.engine.run(DAY)
    world.publish(DAY)
    [record] = [
        r
        for r in world.engine.records.search_breaches(DAY).records
        if r.commitment_hash == "0x" + commitment.hex()
    ]
    end = world.engine.records.breach(record.id)
    assert end is not None
    on = end.publication_end + timedelta(days=30)
    assert world.store.is_excluded(world.fingerprint(applicant))
    assert world.engine.records.search_breaches(on).total == 0  # off the list by date alone

    summary = run_lifecycle(world.engine.actions, on)

    assert summary.expired == (record.id,) and summary.expiries_sent == 1
    assert world.status(commitment) == Status.EXPIRED
    stored = world.engine.records.breach(record.id)
    assert stored is not None and stored.status == "expired"
    assert not world.store.is_excluded(world.fingerprint(applicant))
    [again] = world.intake.submit_many([world.sign(world.again(applicant)).to_json_obj()])
    assert isinstance(again, Acknowledgement) and again.new
    follower = fw.follower()
    follower.step()
    bodies, _ = follower.feed.page(0, 1000, VISIBLE_SCOPES["public"])
    mine = [
        json.loads(b)["kind"]
        for b in bodies
        if json.loads(b)["evidence"]["commitment_hash"] == "0x" + commitment.hex()
    ]
    assert mine == ["expiry"]

    events = world.outcome_events(commitment)
    rerun = run_lifecycle(world.engine.actions, on + ONE_DAY)
    assert rerun.expired == () and rerun.expiries_sent == 0 and rerun.overdue == 0
    assert world.outcome_events(commitment) == events
    assert events[-1] == (Status.BREACHED, Status.EXPIRED)


def test_an_overdue_rectification_becomes_a_breach_once(fw: FeedWorld) -> None:
    world = fw.world
    commitment, _ = world.commit_kind("mismatch", POINTS)
    world.engine.run(DAY)
    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.rectify_by is not None
    late = verification.rectify_by + ONE_DAY

    assert run_lifecycle(world.engine.actions, verification.rectify_by).overdue == 0
    # ... and the feed world's own mismatch, decided the same day
    assert run_lifecycle(world.engine.actions, late).overdue == 2
    assert run_lifecycle(world.engine.actions, late).overdue == 0
    for overdue in (commitment, fw.hashes["mismatch"]):
        assert world.status(overdue) == Status.PROPOSED  # notified: not published yet
    world.publish(late)
    for overdue in (commitment, fw.hashes["mismatch"]):
        assert world.status(overdue) == Status.BREACHED
        assert world.outcome_events(overdue) == [
            (Status.ANCHORED, Status.MISMATCH),
            (Status.MISMATCH, Status.PROPOSED),
            (Status.PROPOSED, Status.BREACHED),
        ]


def test_a_provisional_deadline_is_counted_again_once_the_calendar_covers_it(
    fw: FeedWorld,
) -> None:
    world = fw.world
    commitment, _ = world.commit_kind("agree", POINTS)
    made = datetime(2026, 9, 25, 10, tzinfo=UTC)  # before the National Day holiday
    with world.store.engine.begin() as connection:
        connection.execute(
            update(commitments)
            .where(commitments.c.hash == commitment)
            .values(received_at=made.timestamp())
        )
    # Scheduled while the official calendar went up to 2025 only: Monday to Friday in 2026.
    before = WorkingDays()
    before._last_year = 2025
    engine = world.engine
    scheduling = DepartmentActions(
        engine.actions.department,
        store=world.store,
        intake=world.intake,
        ledger=world.ledger,
        catalog=world.catalog,
        calendar=before,
    )
    scheduling.schedule(date(2026, 9, 28))
    window = world.catalog.matter(POINTS).verification_window_days
    provisional = engine.records.verification(commitment)
    assert provisional is not None and provisional.deadline_provisional
    assert provisional.due_on == before.add(made.date(), window).day

    summary = run_lifecycle(engine.actions, date(2026, 10, 9))

    official = default_calendar().add(made.date(), window)
    assert not official.provisional and official.day != provisional.due_on
    counted = engine.records.verification(commitment)
    assert counted is not None
    assert (counted.due_on, counted.deadline_provisional) == (official.day, False)
    assert summary.deadlines_moved == 1
    assert run_lifecycle(engine.actions, date(2026, 10, 9)).deadlines_moved == 0

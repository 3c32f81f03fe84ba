"""Leases spread over the instances of a store (issue 18): each seeks its fair share, hands
its newest excess lease over after the step that uses it, and a dead instance's leases are
all taken over; on SQLite and PostgreSQL. Rounds are driven by hand (`LeaseKeeper.round`),
without the keeper's thread, so each test sees every round."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection
from support.deployment import Deployment
from support.service_world import open_service

from ledger import LeaseKeeper, LeaseLostError, Leases, Store
from ledger.lease_instances import LeaseView

DEADLINE_S = 20.0
FOUR = ["anchor:HRSS", "anchor:SAMR", "feed", "lifecycle"]
LONG = {"ttl": 60.0, "poll": 1.0}  # nothing expires while a test drives its rounds
SHORT = {"ttl": 2.0, "poll": 0.1}  # a dead instance's leases expire within the test


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE_S} s: {what}")
        time.sleep(0.02)


def fenced_write(store: Store, fence: Callable[[Connection], None]) -> None:
    with store.engine.execution_options(immediate=True).begin() as connection:
        fence(connection)


@pytest.fixture
def instances(store: Store) -> Iterator[Callable[..., LeaseKeeper]]:
    """Makes keepers over the store, each on a Store of its own (on PostgreSQL, its own
    sessions, as separate processes would have); all stopped and closed afterwards."""
    made: list[tuple[LeaseKeeper, Store]] = []

    def make(holder: str, wanted: list[str], *, ttl: float, poll: float) -> LeaseKeeper:
        own = Store(store.url)
        keeper = LeaseKeeper(Leases(own), holder, ttl=ttl, poll=poll)
        made.append((keeper, own))
        for name in wanted:
            keeper.want(name)
        return keeper

    yield make
    for keeper, own in made:
        keeper.stop()
        own.close()


def assert_never_two(keepers: list[LeaseKeeper]) -> None:
    """No lease counts as held (a token to act with) by two keepers at once."""
    for name in {n for k in keepers for n in k.wanted()}:
        holding = [k.holder for k in keepers if k.token(name) is not None]
        assert len(holding) <= 1, f"{name} held by {holding}"


def rounds_until(keepers: list[LeaseKeeper], condition: Callable[[], bool], most: int) -> int:
    """Run rounds of each keeper in turn until `condition`; how many turns it took."""
    for turn in range(1, most + 1):
        for keeper in keepers:
            keeper.round()
            assert_never_two(keepers)
        if condition():
            return turn
    pytest.fail(f"not settled within {most} rounds: {[k.held() for k in keepers]}")


# ---------------------------------------------------------------------- shares, without a store


def test_a_share_is_the_ceiling_of_leases_over_the_live_instances_seeking_them() -> None:
    every = frozenset(FOUR)
    view = LeaseView({"a": every, "b": every, "c": every}, {})
    assert [view.share(h) for h in ("a", "b", "c")] == [2, 2, 2]  # ceil(4 / 3)
    alone = LeaseView({"a": every}, {})
    assert alone.share("a") == 4
    assert alone.share("gone") == 0  # not live
    # Eligibility differs: only "a" seeks its department's lease.
    mixed = LeaseView({"a": frozenset({"anchor:HRSS", "feed"}), "b": frozenset({"feed"})}, {})
    assert (mixed.share("a"), mixed.share("b")) == (1, 1)


def test_an_instance_at_its_share_still_takes_a_lease_no_rival_under_its_share_would() -> None:
    view = LeaseView(
        {"a": frozenset({"anchor:HRSS", "feed"}), "b": frozenset({"feed"})},
        {"feed": "b"},
    )
    assert view.may_take("a", "anchor:HRSS", holding=1)  # nobody else seeks it
    busy = LeaseView({"a": frozenset(FOUR), "b": frozenset(FOUR)}, {"feed": "b"})
    assert busy.may_take("a", "lifecycle", holding=1)  # under its share of 2
    assert not busy.may_take("a", "lifecycle", holding=2)  # "b", under its share, takes it


def test_the_newest_excess_lease_goes_to_a_rival_under_its_share_and_never_the_last() -> None:
    every = frozenset(FOUR)
    held = dict.fromkeys(FOUR, "a")
    view = LeaseView({"a": every, "b": every}, held)
    assert view.to_hand_over("a", FOUR) == "lifecycle"  # the newest
    # A lease no rival seeks is kept, the next newest handed over instead.
    view = LeaseView({"a": every, "b": frozenset(FOUR[:3])}, held)
    assert view.to_hand_over("a", FOUR) == "feed"
    # Nobody under its share: nothing moves (no swinging back and forth).
    full = LeaseView({"a": every, "b": every}, {**held, "x": "b", "y": "b"})
    assert full.to_hand_over("a", FOUR) is None
    one = LeaseView({"a": frozenset({"feed"}), "b": frozenset({"feed"})}, {"feed": "a"})
    assert one.to_hand_over("a", ["feed"]) is None  # never below one


# ---------------------------------------------------------------------- on both stores


def test_two_instances_seeking_four_leases_settle_on_two_each(
    store: Store, instances: Callable[..., LeaseKeeper]
) -> None:
    first = instances("one", FOUR, **LONG)
    assert sorted(first.held()) == FOUR  # alone: its share is all four
    second = instances("two", FOUR, **LONG)
    assert second.held() == {}  # all held, and its share is 2 of them
    keepers = [first, second]

    def settled() -> bool:
        return len(first.held()) == 2 and len(second.held()) == 2

    turns = rounds_until(keepers, settled, most=4)  # one hand-over per round
    assert turns <= 3
    assert set(first.held()) | set(second.held()) == set(FOUR)
    # The first handed over its newest leases, each with a new token.
    assert set(second.held()) == {"feed", "lifecycle"}
    assert set(second.held().values()) == {2}
    before = {**first.held(), **second.held()}
    for _ in range(3):  # settled: nothing moves any more
        first.round()
        second.round()
    assert {**first.held(), **second.held()} == before
    held = {row.name: row.holder for row in Leases(store).all() if row.held}
    assert held == {name: ("one" if name in first.held() else "two") for name in FOUR}


def test_three_instances_and_two_leases_one_each_and_none_left_below_one(
    instances: Callable[..., LeaseKeeper],
) -> None:
    two = ["feed", "lifecycle"]
    keepers = [instances(name, two, **LONG) for name in ("one", "two", "three")]

    def settled() -> bool:
        return sorted(len(k.held()) for k in keepers) == [0, 1, 1]

    rounds_until(keepers, settled, most=4)
    assert len(keepers[0].held()) == 1  # the first kept one: never below one


def test_a_lease_only_one_instance_may_hold_is_held_beyond_its_share(
    instances: Callable[..., LeaseKeeper],
) -> None:
    roles = ["feed", "reconcile"]
    own = instances("department", ["anchor:HRSS", *roles], **LONG)
    public = instances("public", roles, **LONG)
    keepers = [own, public]

    def settled() -> bool:
        return "anchor:HRSS" in own.held() and len(public.held()) == 1

    rounds_until(keepers, settled, most=4)
    assert len(own.held()) == 2  # its share: ceil(3 / 2)
    assert set(own.held()) | set(public.held()) == {"anchor:HRSS", *roles}


def test_leases_beyond_every_share_are_taken_one_a_round_so_they_spread(
    store: Store, instances: Callable[..., LeaseKeeper]
) -> None:
    roles = ["feed", "reconcile"]
    # A job of the command line holds the roles while three departments' instances start.
    job = LeaseKeeper(Leases(store), "cli:job", ttl=60.0, poll=1.0, balance=False)
    for name in roles:
        job.want(name)
    departments = [instances(f"d{n}", [f"anchor:D{n}", *roles], **LONG) for n in (1, 2, 3)]
    assert [sorted(k.held()) for k in departments] == [[f"anchor:D{n}"] for n in (1, 2, 3)]
    job.stop()  # both roles free at once; every instance is at its share of one
    departments[0].round()
    assert sorted(departments[0].held()) == ["anchor:D1", "feed"]  # one beyond, not both
    departments[1].round()
    assert sorted(departments[1].held()) == ["anchor:D2", "reconcile"]
    for keeper in departments:  # settled: nobody is under its share to hand anything to
        keeper.round()
    assert [len(k.held()) for k in departments] == [2, 2, 1]


def test_a_hand_over_waits_for_the_step_acting_under_the_lease(
    instances: Callable[..., LeaseKeeper],
) -> None:
    first = instances("one", FOUR, **LONG)
    second = instances("two", FOUR, **LONG)
    newest = FOUR[-1]
    token = first.token(newest)
    assert token is not None
    with first.acting(newest) as acting_token:
        assert acting_token == token
        first.round()  # over its share: the newest chosen for hand-over
        assert first.handing_over() == newest
        assert first.token(newest) is None  # no new step starts under it
        second.round()
        assert newest not in second.held()  # still the first's until its step is done
        fenced_write(first.leases.store, first.leases.fence(newest, "one", token))
    assert first.handing_over() is None  # released as the step ended
    second.round()
    assert second.held()[newest] == token + 1
    with pytest.raises(LeaseLostError):
        fenced_write(first.leases.store, first.leases.fence(newest, "one", token))


def test_a_dead_instances_leases_are_all_taken_over_and_its_stale_tokens_fenced(
    store: Store, instances: Callable[..., LeaseKeeper]
) -> None:
    dying = instances("dying", FOUR, **SHORT)
    living = instances("living", FOUR, **SHORT)
    keepers = [dying, living]
    rounds_until(keepers, lambda: len(living.held()) == 2, most=4)
    lost = dying.held()
    assert len(lost) == 2

    # "dying" is killed: it renews nothing any more, and never releases.
    def all_taken() -> bool:
        living.round()
        assert_never_two(keepers)
        return sorted(living.held()) == FOUR

    until(all_taken, "every lease of the dead instance taken over")
    for name, token in lost.items():
        assert living.held()[name] == token + 1
        with pytest.raises(LeaseLostError):
            fenced_write(store, dying.leases.fence(name, "dying", token))
    view = living.leases.view()
    assert set(view.instances) == {"living"}  # the dead one's heartbeat ran out


def test_a_stopped_instance_withdraws_and_the_others_take_its_share_at_once(
    instances: Callable[..., LeaseKeeper],
) -> None:
    first = instances("one", FOUR, **LONG)
    second = instances("two", FOUR, **LONG)
    rounds_until([first, second], lambda: len(second.held()) == 2, most=4)
    first.stop()  # released and withdrawn: no ttl to wait for
    second.round()
    assert sorted(second.held()) == FOUR
    assert set(second.leases.view().instances) == {"two"}


def test_a_job_of_the_command_line_takes_a_free_lease_and_counts_as_no_instance(
    store: Store, instances: Callable[..., LeaseKeeper]
) -> None:
    serving = instances("serving", ["feed"], **LONG)
    job = LeaseKeeper(Leases(store), "cli:job", ttl=60.0, poll=1.0, balance=False)
    try:
        job.want("feed")
        assert job.held() == {}  # held by the instance
        job.want("lifecycle")
        assert job.held() == {"lifecycle": 1}  # free: taken, whatever the shares
        assert set(job.leases.view().instances) == {"serving"}
        serving.round()
        assert serving.held() == {"feed": 1}
    finally:
        job.stop()
    assert Leases(store).row("lifecycle") is not None
    assert not Leases(store).view().holders.get("lifecycle")  # released at the end


# ---------------------------------------------------------------------- /readyz


def test_readyz_shows_each_instances_leases_and_share_to_an_operator(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    # One folder, so one store: two instances of the service on it, rounds by hand.
    worlds = [
        open_service(tmp_path, embedded_deployment, instance_id=name, lease_ttl_seconds=60.0)
        for name in ("first", "second")
    ]
    try:
        keepers = [world.context.leases for world in worlds]
        for keeper in keepers:
            for name in FOUR:
                keeper.want(name)
        rounds_until(keepers, lambda: [len(k.held()) for k in keepers] == [2, 2], most=4)
        operator = worlds[0].context.tokens.issue("OPS", "operator").token
        shown = [
            world.client.get("/readyz", headers={"Authorization": f"Bearer {operator}"})
            for world in worlds
        ]
        for world, answer in zip(worlds, shown, strict=True):
            assert answer.status_code == 200, answer.text
            leases = answer.json()["leases"]
            assert leases["instance"] == world.context.leases.holder
            assert leases["held"] == world.context.leases.held()
            assert sorted(leases["wanted"]) == FOUR
            assert (leases["share"], leases["live_instances"]) == (2, 2)
            assert leases["handing_over"] is None
        public = worlds[0].client.get("/readyz")
        assert "leases" not in public.json()  # the public learns none of it
    finally:
        for world in worlds:
            world.context.leases.stop()
            world.context.close()

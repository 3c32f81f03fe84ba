"""Leases with fencing tokens and locks across instances, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from sqlalchemy import Connection
from support.deployment import deploy
from support.pipeline import DEPARTMENT, check_exactly_once, submit_count

from ledger import (
    Anchorer,
    Chain,
    LeaseKeeper,
    LeaseLostError,
    Leases,
    LockTimeoutError,
    PipelineConfig,
    Store,
    StoreLocks,
    department_id,
    instance_id,
)

DEADLINE_S = 10.0


def until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE_S} s: {what}")
        time.sleep(0.02)


def fenced_write(store: Store, fence: Callable[[Connection], None]) -> None:
    with store.engine.execution_options(immediate=True).begin() as connection:
        fence(connection)


def test_a_lease_is_held_by_one_and_its_token_grows_with_each_taking(store: Store) -> None:
    leases = Leases(store)
    first = leases.acquire("anchor:HRSS", "a", ttl=30)
    assert first == 1
    assert leases.acquire("anchor:HRSS", "b", ttl=30) is None  # held
    assert leases.acquire("anchor:HRSS", "a", ttl=30) is None  # even by the same name again
    assert leases.acquire("anchor:SAMR", "b", ttl=30) == 1  # another name is free
    assert leases.renew("anchor:HRSS", "a", first, ttl=30)
    assert not leases.renew("anchor:HRSS", "b", first, ttl=30)
    assert leases.release("anchor:HRSS", "a", first)
    second = leases.acquire("anchor:HRSS", "b", ttl=30)
    assert second == 2
    assert not leases.renew("anchor:HRSS", "a", first, ttl=30)  # the old token renews nothing
    [hrss, samr] = leases.all()
    assert (hrss.name, hrss.holder, hrss.token, hrss.held) == ("anchor:HRSS", "b", 2, True)
    assert (samr.holder, samr.token) == ("b", 1)


def test_an_expired_lease_is_taken_over_with_a_new_token_and_fences_its_old_holder(
    store: Store,
) -> None:
    leases = Leases(store)
    old = leases.acquire("feed", "dead", ttl=0.5)
    assert old is not None
    fenced_write(store, leases.fence("feed", "dead", old))  # fine while held
    taken: list[int | None] = [None]

    def take() -> bool:
        taken[0] = leases.acquire("feed", "alive", ttl=30)
        return taken[0] is not None

    until(take, "the expired lease taken over")
    assert taken[0] == old + 1
    assert not leases.renew("feed", "dead", old, ttl=30)
    with pytest.raises(LeaseLostError, match="no longer dead's"):
        fenced_write(store, leases.fence("feed", "dead", old))
    assert taken[0] is not None
    fenced_write(store, leases.fence("feed", "alive", taken[0]))


def test_bad_names_and_ttls_are_refused(store: Store) -> None:
    leases = Leases(store)
    with pytest.raises(ValueError, match="ttl"):
        leases.acquire("feed", "a", ttl=0)
    with pytest.raises(ValueError, match="characters"):
        leases.acquire("x" * 129, "a", ttl=5)
    with pytest.raises(ValueError, match="half its ttl"):
        LeaseKeeper(leases, "a", ttl=2, poll=1.5)


def test_a_keeper_takes_over_what_a_stopped_keeper_held_and_renews_what_it_holds(
    store: Store,
) -> None:
    leases = Leases(store)
    first = LeaseKeeper(leases, "one", ttl=1.0, poll=0.1)
    second = LeaseKeeper(leases, "two", ttl=1.0, poll=0.1)
    first.want("lifecycle")
    second.want("lifecycle")
    first.start()
    second.start()
    try:
        assert first.token("lifecycle") == 1
        assert second.token("lifecycle") is None
        # Renewed beyond its ttl: still the first's, under the same token.
        time.sleep(1.5)  # the lease outlives its ttl by renewal alone
        assert first.held() == {"lifecycle": 1}
        assert second.held() == {}
        first.stop()  # released: the second takes it at its next poll
        until(lambda: second.token("lifecycle") == 2, "the second keeper took it")
        assert first.token("lifecycle") is None
    finally:
        first.stop()
        second.stop()
    assert [row.held for row in leases.all()] == [False]  # released on stop


def test_the_default_instance_id_names_host_and_process() -> None:
    host, pid = instance_id().rsplit(":", 1)
    assert host and int(pid) > 0


def test_a_lock_is_exclusive_across_holders_and_reentrant_in_a_thread(store: Store) -> None:
    # Two StoreLocks over one store stand for two instances (on PostgreSQL, two sessions).
    one, two, three = StoreLocks(store), StoreLocks(Store(store.url)), StoreLocks(Store(store.url))
    entered = threading.Event()
    inside: list[str] = []

    def other() -> None:
        with two.hold("nonce:0xabc"):
            inside.append("two")
            entered.set()

    with one.hold("nonce:0xabc"), one.hold("nonce:0xabc"):  # reentrant
        if store.dialect == "postgresql":
            thread = threading.Thread(target=other)
            thread.start()
            time.sleep(0.3)  # the other instance's chance to get in wrongly
            assert inside == []
            with (
                pytest.raises(LockTimeoutError, match="another instance"),
                three.hold("nonce:0xabc", wait=0.2),
            ):
                pass
        inside.append("one")
    if store.dialect == "postgresql":
        assert entered.wait(DEADLINE_S)
        thread.join()
        assert inside == ["one", "two"]
    with one.hold("nonce:0xabc"):  # free again
        pass
    two.store.close()
    three.store.close()


def test_an_anchorer_whose_lease_was_taken_over_forms_and_sends_nothing(
    store: Store, embedded_chain: Chain
) -> None:
    setup = deploy(embedded_chain)
    leases = Leases(store)
    stale_token = leases.acquire(f"anchor:{DEPARTMENT}", "paused", ttl=0.5)
    assert stale_token is not None
    config = PipelineConfig(batch_size=4, max_age=3600.0)
    stale = Anchorer(store, setup.ledger, {DEPARTMENT: setup.registrar}, config)
    stale.fences = {DEPARTMENT: leases.fence(f"anchor:{DEPARTMENT}", "paused", stale_token)}
    hashes = submit_count(store, 4)
    assert stale.cut_due_batches() == 1  # formed while its lease holds
    # Paused past its ttl; another instance takes the department over.
    taken: list[int | None] = [None]

    def take() -> bool:
        taken[0] = leases.acquire(f"anchor:{DEPARTMENT}", "alive", ttl=30)
        return taken[0] is not None

    until(take, "the department taken over")
    with pytest.raises(LeaseLostError):
        stale.send_built()  # its write-ahead refused: nothing broadcast
    [batch] = store.batches_in("built")
    assert setup.ledger.batch_of(department_id(DEPARTMENT), batch.root).size == 0
    hashes += submit_count(store, 4)
    assert stale.cut_due_batches() == 0  # nor does it form another
    fresh = Anchorer(store, setup.ledger, {DEPARTMENT: setup.registrar}, config)
    assert taken[0] is not None
    fresh.fences = {DEPARTMENT: leases.fence(f"anchor:{DEPARTMENT}", "alive", taken[0])}
    assert fresh.drain(timeout=30)
    check_exactly_once(store, setup.ledger, hashes)

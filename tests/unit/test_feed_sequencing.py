"""The feed's sequencer and signers apart (issue 18), on SQLite and PostgreSQL: places given
in chain order, each department signing its own, the published head never past a place that
waits, readers bounded by it, racing signers, and a round that fails leaving nothing."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from sqlalchemy import Connection, select

from ledger import LeaseLostError, Status, Store, Vault, contract_events, department_id
from verifier.feed import (
    VISIBLE_SCOPES,
    Details,
    FeedRecord,
    FeedStore,
    PendingEvent,
    Subscriptions,
    chain_facts,
    department_codes,
    feed_records,
)
from verifier.feed.store import Entry, Sequenced, assigned_in

CONTRACT = "0x" + "ab" * 20
HRSS, SAMR = "BJ-HRSS", "BJ-SAMR"
DEPARTMENTS = department_codes([HRSS, SAMR])


def add_events(store: Store, departments: Sequence[str], first_block: int = 1) -> None:
    """One OutcomeRecorded event (kept) per entry of `departments`, two a block, in order."""
    rows: list[dict[str, Any]] = []
    for n, department in enumerate(departments):
        commitment = os.urandom(32)
        args = {
            "commitment": "0x" + commitment.hex(),
            "department": "0x" + department_id(department).hex(),
            "from": int(Status.ANCHORED),
            "to": int(Status.KEPT),
            "evidence": "0x" + os.urandom(32).hex(),
            "root": "0x" + bytes(32).hex(),
        }
        rows.append(
            {
                "block_number": first_block + n // 2,
                "block_hash": os.urandom(32),
                "tx_hash": os.urandom(32),
                "log_index": n % 2,
                "name": "OutcomeRecorded",
                "subject": commitment,
                "department": department_id(department),
                "args": json.dumps(args),
            }
        )
    store.add_events(rows)


def record_of(sequence: int, event: PendingEvent) -> FeedRecord:
    """The (unsigned) record of `event` at `sequence`: the store does not check signatures."""
    facts = chain_facts(
        chain_id=1,
        contract=CONTRACT,
        transaction="0x" + event.tx_hash.hex(),
        block=event.block_number,
        log_index=event.log_index,
        block_timestamp=1_700_000_000,
        args=json.loads(event.args),
        departments=DEPARTMENTS,
    )
    return FeedRecord(sequence, facts, Details())


def sequencer(holding: set[str]) -> Callable[[Connection, Sequence[PendingEvent]], list[Entry]]:
    """A sequencer holding the report keys of `holding`: records for those, places else."""

    def build(connection: Connection, events: Sequence[PendingEvent]) -> list[Entry]:
        first = assigned_in(connection) + 1
        entries: list[Entry] = []
        for n, event in enumerate(events):
            record = record_of(first + n, event)
            department = record.facts.department_code
            if department in holding:
                entries.append(record)
            else:
                entries.append(
                    Sequenced(
                        first + n, event.tx_hash, event.log_index, event.block_number, department
                    )
                )
        return entries

    return build


def events_by_place(store: Store) -> dict[tuple[bytes, int], PendingEvent]:
    with store.engine.connect() as connection:
        rows = connection.execute(select(contract_events)).all()
    return {
        (bytes(r.tx_hash), int(r.log_index)): PendingEvent(
            int(r.block_number), bytes(r.tx_hash), int(r.log_index), r.args
        )
        for r in rows
    }


def signer(store: Store) -> Callable[[Connection, Sequence[Sequenced]], list[FeedRecord]]:
    """Rebuilds each place's record from the indexed event (as the builder does)."""
    indexed = events_by_place(store)

    def build(_connection: Connection, places: Sequence[Sequenced]) -> list[FeedRecord]:
        return [record_of(p.sequence, indexed[(p.tx_hash, p.log_index)]) for p in places]

    return build


def sequence_all(feed: FeedStore, holding: set[str]) -> list[Entry]:
    return feed.append(sequencer(holding), safe_block=10**6, window=64, limit=100)


def served(feed: FeedStore) -> list[int]:
    return [seq for seq, _body in feed.bodies()]


def test_places_wait_for_their_signer_and_the_head_stops_at_the_first(store: Store) -> None:
    # H H S H S H: the sequencer holds HRSS's key only.
    add_events(store, [HRSS, HRSS, SAMR, HRSS, SAMR, HRSS])
    feed = FeedStore(store)
    entries = sequence_all(feed, {HRSS})
    assert [type(e).__name__ for e in entries] == [
        "FeedRecord", "FeedRecord", "Sequenced", "FeedRecord", "Sequenced", "FeedRecord",
    ]  # fmt: skip
    assert (feed.head(), feed.assigned(), feed.blocked_on()) == (2, 6, SAMR)
    # Every reader stops at the head: records 4 and 6 are signed, not served.
    assert feed.sequences() == served(feed) == [1, 2]
    bodies, following = feed.page(0, 100, VISIBLE_SCOPES["all"])
    assert [json.loads(b)["sequence"] for b in bodies] == [1, 2] and following == 2
    assert [row.seq for row in feed.stored_rows()] == [1, 2]
    assert feed.unpublished_events() == {
        ("0x" + e.facts.evidence.transaction[2:], e.facts.evidence.log_index)
        if isinstance(e, FeedRecord)
        else ("0x" + e.tx_hash.hex(), e.log_index)
        for e in entries[2:]
    }
    subscriptions = Subscriptions(feed, Vault(os.urandom(32)))
    subscriptions.add_subscriber("http://127.0.0.1:9/hook", "all", os.urandom(32))
    [subscriber] = subscriptions.subscribers()
    undelivered = subscriptions.undelivered(subscriber, VISIBLE_SCOPES["all"], 100)
    assert [seq for seq, _id, _body in undelivered] == [1, 2]
    assert subscriptions.lag(subscriber, VISIBLE_SCOPES["all"])[0] == 2

    # HRSS's signer finds nothing of its own; SAMR's signs both places, the head moves on.
    assert feed.sign(HRSS, signer(store), limit=100) == []
    signed = feed.sign(SAMR, signer(store), limit=100)
    assert [r.sequence for r in signed] == [3, 5]
    assert (feed.head(), feed.assigned(), feed.blocked_on()) == (6, 6, None)
    assert feed.sequences() == served(feed) == [1, 2, 3, 4, 5, 6]
    assert feed.sequenced() == [] and feed.unpublished_events() == set()


def test_a_head_waits_for_the_first_place_even_when_later_ones_are_signed(
    store: Store,
) -> None:
    add_events(store, [SAMR, HRSS, HRSS])
    feed = FeedStore(store)
    sequence_all(feed, set())  # a keyless sequencer: three places
    assert [p.department for p in feed.sequenced()] == [SAMR, HRSS, HRSS]
    assert [r.sequence for r in feed.sign(HRSS, signer(store), limit=100)] == [2, 3]
    assert (feed.head(), feed.blocked_on()) == (0, SAMR)  # never jumps the gap
    assert served(feed) == [] and feed.page(0, 10, VISIBLE_SCOPES["all"]) == ([], 0)
    # A later event goes on behind it.
    add_events(store, [HRSS], first_block=10)
    assert [e.sequence for e in sequence_all(feed, {HRSS})] == [4]
    assert feed.head() == 0
    feed.sign(SAMR, signer(store), limit=100)
    assert feed.head() == feed.assigned() == 4
    assert served(feed) == [1, 2, 3, 4]


def test_racing_signers_of_one_department_sign_each_place_once(store: Store) -> None:
    add_events(store, [SAMR] * 40)
    FeedStore(store).append(sequencer(set()), safe_block=10**6, window=64, limit=100)
    handles = [Store(store.url) for _ in range(4)]
    signed: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def sign_all(handle: Store) -> None:
        feed = FeedStore(handle)
        build = signer(handle)
        try:
            while records := feed.sign(SAMR, build, limit=3):
                with lock:
                    signed.extend(r.sequence for r in records)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sign_all, args=(h,)) for h in handles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for handle in handles:
        handle.close()
    assert not errors, errors
    assert sorted(signed) == list(range(1, 41))  # each place signed by exactly one of them
    feed = FeedStore(store)
    assert feed.head() == 40 and feed.sequenced() == []
    assert feed.sequences() == list(range(1, 41))


def test_a_signer_cannot_fill_another_departments_place(store: Store) -> None:
    add_events(store, [SAMR, HRSS])
    feed = FeedStore(store)
    sequence_all(feed, set())
    indexed = events_by_place(store)
    [samr_place, hrss_place] = feed.sequenced()

    def hrss_record_for_samr(_c: Connection, places: Sequence[Sequenced]) -> list[FeedRecord]:
        # HRSS's event signed into SAMR's place: refused by the store, nothing written.
        event = indexed[(hrss_place.tx_hash, hrss_place.log_index)]
        return [record_of(places[0].sequence, event)]

    with pytest.raises(ValueError, match="does not take a place"):
        feed.sign(SAMR, hrss_record_for_samr, limit=100)
    assert feed.sequenced() == [samr_place, hrss_place]
    assert feed.head() == 0 and _records(store) == 0


def test_a_round_that_fails_midway_leaves_nothing_half_done(store: Store) -> None:
    add_events(store, [HRSS, SAMR, HRSS, SAMR])
    feed = FeedStore(store)

    def dies(connection: Connection, events: Sequence[PendingEvent]) -> list[Entry]:
        sequencer({HRSS})(connection, events)
        raise RuntimeError("killed mid-way")

    with pytest.raises(RuntimeError):
        feed.append(dies, safe_block=10**6, window=64, limit=100)
    assert (feed.head(), feed.assigned(), feed.sequenced(), _records(store)) == (0, 0, [], 0)

    def lost(_connection: Connection) -> None:
        raise LeaseLostError("the lease feed (token 1) is no longer ours")

    with pytest.raises(LeaseLostError):
        feed.append(sequencer({HRSS}), safe_block=10**6, window=64, limit=100, fence=lost)
    assert (feed.assigned(), _records(store)) == (0, 0)

    sequence_all(feed, {HRSS})
    assert (feed.head(), feed.assigned()) == (1, 4)
    with pytest.raises(LeaseLostError):
        feed.sign(SAMR, signer(store), limit=100, fence=lost)
    build = signer(store)

    def signs_then_dies(connection: Connection, places: Sequence[Sequenced]) -> list[FeedRecord]:
        build(connection, places)
        raise RuntimeError("killed mid-way")

    with pytest.raises(RuntimeError):
        feed.sign(SAMR, signs_then_dies, limit=100)
    assert (feed.head(), len(feed.sequenced(SAMR)), _records(store)) == (1, 2, 2)
    feed.sign(SAMR, signer(store), limit=100)
    assert (feed.head(), feed.sequenced(), _records(store)) == (4, [], 4)


def test_a_store_from_before_has_its_head_as_the_last_place_given(store: Store) -> None:
    add_events(store, [HRSS, HRSS])
    feed = FeedStore(store)
    sequence_all(feed, {HRSS})
    assert feed.head() == feed.assigned() == 2
    # Re-opened: the migration ran once; nothing moved.
    again = FeedStore(Store(store.url))
    assert again.head() == again.assigned() == 2
    again.store.close()


def _records(store: Store) -> int:
    with store.engine.connect() as connection:
        return len(connection.execute(select(feed_records.c.seq)).all())


def test_a_breach_stays_public_until_the_record_ending_it_is_published(store: Store) -> None:
    # HRSS's breach, then SAMR's outcome (waiting), then HRSS's repair of the breach.
    add_events(store, [HRSS, SAMR, HRSS])
    with store.engine.begin() as connection:
        rows = connection.execute(
            select(contract_events.c.id, contract_events.c.args).order_by(contract_events.c.id)
        ).all()
        breach, _other, repair = (json.loads(row.args) for row in rows)
        breach.update({"to": int(Status.BREACHED)})
        repair.update(
            {
                "commitment": breach["commitment"],
                "from": int(Status.BREACHED),
                "to": int(Status.REPAIRED),
            }
        )
        for row, args in ((rows[0], breach), (rows[2], repair)):
            connection.execute(
                contract_events.update()
                .where(contract_events.c.id == row.id)
                .values(args=json.dumps(args))
            )
    feed = FeedStore(store)
    sequence_all(feed, {HRSS})
    assert (feed.head(), feed.assigned()) == (1, 3)

    def public() -> list[str]:
        return [json.loads(b)["kind"] for b in feed.page(0, 10, VISIBLE_SCOPES["public"])[0]]

    assert public() == ["breach"]  # its repair is signed, not published yet
    feed.sign(SAMR, signer(store), limit=10)
    assert feed.head() == 3
    assert public() == ["repair"]  # published now: the repair, not the ended breach

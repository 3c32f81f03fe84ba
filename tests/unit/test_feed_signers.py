"""Each department signs its own feed records (issue 18), on the embedded chain: a keyless
sequencer gives the places, the department's signer rebuilds the records from the chain and
the store, the same records one instance with every key builds; a place forged by the
sequencer (another department's event, one not indexed, one withheld) is never signed."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from support.feed_world import HRSS, FeedWorld, feed_world
from support.verifier_world import SAMR

from ledger import (
    Chain,
    SigningKey,
    Status,
    Store,
    commitments,
    contract_events,
    department_id,
)
from ledger import keccak256 as h32
from verifier.feed import FeedFollower, FeedRecord, check_feed, verify_record
from verifier.feed.tables import feed_meta, feed_sequenced


@pytest.fixture
def fw(tmp_path: Path, embedded_chain: Chain) -> Iterator[FeedWorld]:
    with feed_world(embedded_chain, tmp_path) as opened:
        yield opened


def follower_holding(fw: FeedWorld, *departments: str, store: Store | None = None) -> FeedFollower:
    """A follower on `store` (the world's) holding the report keys of `departments` only."""
    keys = {d: fw.keys[d] for d in departments}
    follower = FeedFollower(
        store or fw.world.store, fw.world.ledger, fw.world.catalog, fw.world.vault, keys.get
    )
    fw.followers.append(follower)
    return follower


def add_samr_outcomes(fw: FeedWorld) -> None:
    """Two outcomes of SAMR on a hash of its own, anchored elsewhere (chain facts only)."""
    d = fw.world.deployment
    target = h32(b"a commitment taken in by another store")
    fw.world.ledger.anchor(d.other_registrar, target)
    fw.world.ledger.record_outcome(d.other_verifier, target, Status.KEPT, h32(b"checked"))


def bodies(follower: FeedFollower) -> list[str]:
    return [body for _seq, body in follower.feed.bodies()]


def test_a_keyless_sequencer_and_each_departments_signer_make_the_single_instance_feed(
    fw: FeedWorld, tmp_path: Path
) -> None:
    add_samr_outcomes(fw)
    # The same store before any feed: one instance holding every key builds it there.
    alone = Store(f"sqlite:///{tmp_path / 'alone.db'}")
    with (
        sqlite3.connect(tmp_path / "ledger.db") as source,
        sqlite3.connect(tmp_path / "alone.db") as target,
    ):
        source.backup(target)
    single = follower_holding(fw, HRSS, SAMR, store=alone)
    assert single.step().appended == 8

    sequencer = follower_holding(fw)  # no key at all
    result = sequencer.step()
    assert (result.appended, result.blocked_on) == (0, HRSS)
    feed = sequencer.feed
    assert (feed.head(), feed.assigned()) == (0, 8)
    assert [p.department for p in feed.sequenced()] == [HRSS] * 7 + [SAMR]

    samr = follower_holding(fw, SAMR)
    assert [r.sequence for r in samr.builder.sign(SAMR)] == [8]
    assert (feed.head(), feed.blocked_on()) == (0, HRSS)  # HRSS's records come first
    report = check_feed(feed, fw.world.ledger, fw.world.catalog, fw.public_key)
    assert report.ok and (report.served, report.waiting) == (0, 8), report.problems

    hrss = follower_holding(fw, HRSS)
    assert len(hrss.builder.sign(HRSS)) == 7
    assert (feed.head(), feed.assigned(), feed.blocked_on()) == (8, 8, None)
    assert bodies(sequencer) == bodies(single)  # byte for byte, signatures included
    for body in bodies(sequencer):
        record = FeedRecord.from_json_obj(json.loads(body))
        verify_record(record, fw.public_key(record.facts.department_code))
    report = check_feed(feed, fw.world.ledger, fw.world.catalog, fw.public_key)
    assert report.ok and (report.served, report.waiting) == (8, 0), report.problems
    alone.close()


def test_a_signer_refuses_places_it_must_not_sign_and_the_head_waits_there(
    fw: FeedWorld,
) -> None:
    add_samr_outcomes(fw)
    sequencer = follower_holding(fw)
    sequencer.step()
    feed, engine = sequencer.feed, fw.world.store.engine
    # A sequencer that lies: HRSS's third event given to SAMR, and a place of an event
    # that was never indexed.
    with engine.begin() as connection:
        connection.execute(
            update(feed_sequenced).where(feed_sequenced.c.seq == 3).values(department=SAMR)
        )
        connection.execute(
            feed_sequenced.insert().values(
                seq=9, tx_hash=os.urandom(32), log_index=0, block_number=1,
                department=SAMR, sequenced_at=0.0,
            )
        )  # fmt: skip
        connection.execute(update(feed_meta).values(assigned=9))

    samr = follower_holding(fw, SAMR)
    assert [r.sequence for r in samr.builder.sign(SAMR)] == [8]
    refused = samr.builder.refused
    assert set(refused) == {3, 9}
    assert f"is {HRSS}'s, not {SAMR}'s" in refused[3]
    assert "not in the index" in refused[9]

    hrss = follower_holding(fw, HRSS)
    assert [r.sequence for r in hrss.builder.sign(HRSS)] == [1, 2, 4, 5, 6, 7]
    assert (feed.head(), feed.blocked_on()) == (2, SAMR)  # never past the refused place
    assert [seq for seq, _ in feed.bodies()] == [1, 2]
    assert all(
        FeedRecord.from_json_obj(json.loads(body)).facts.department_code == HRSS
        for _seq, body in feed.bodies()
    )


def test_a_signer_refuses_an_event_the_sequencer_should_have_withheld(fw: FeedWorld) -> None:
    # SAMR records outcomes on HRSS's kept commitment (issue #12): never published.
    d = fw.world.deployment
    target = fw.hashes["kept"]
    fw.world.ledger.anchor(d.other_registrar, target)
    fw.world.ledger.record_outcome(d.other_verifier, target, Status.PROPOSED, h32(b"notice"))
    honest = follower_holding(fw)
    honest.step()
    assert len(honest.builder.withheld) == 1
    assert [p.department for p in honest.feed.sequenced()] == [HRSS] * 7
    engine = fw.world.store.engine
    with engine.connect() as connection:
        [event] = connection.execute(
            select(contract_events).where(
                contract_events.c.name == "OutcomeRecorded",
                contract_events.c.department == department_id(SAMR),
            )
        ).all()
    with engine.begin() as connection:  # a sequencer that gives it a place anyway
        connection.execute(
            feed_sequenced.insert().values(
                seq=8, tx_hash=bytes(event.tx_hash), log_index=event.log_index,
                block_number=event.block_number, department=SAMR, sequenced_at=0.0,
            )
        )  # fmt: skip
        connection.execute(update(feed_meta).values(assigned=8))
    samr = follower_holding(fw, SAMR)
    assert samr.builder.sign(SAMR) == []
    assert "withheld" in samr.builder.refused[8]
    follower_holding(fw, HRSS).builder.sign(HRSS)
    assert (honest.feed.head(), honest.feed.blocked_on()) == (7, SAMR)


def test_a_departments_signer_redacts_its_own_records_only(fw: FeedWorld) -> None:
    add_samr_outcomes(fw)
    follower_holding(fw, HRSS, SAMR).step()
    # An erased HRSS commitment: SAMR's signer leaves its records, HRSS's redacts them.
    with fw.world.store.engine.begin() as connection:
        connection.execute(
            update(commitments)
            .where(commitments.c.hash == fw.hashes["kept"])
            .values(wrapped_key=None)
        )
    assert follower_holding(fw, SAMR).builder.redact([SAMR]) == 0
    assert follower_holding(fw, HRSS).builder.redact([HRSS]) == 1


def test_a_signer_signs_its_departments_places_only_and_a_strangers_key_is_caught(
    fw: FeedWorld,
) -> None:
    # The signer of SAMR, holding SAMR's key only, never signs HRSS's places.
    sequencer = follower_holding(fw)
    sequencer.step()
    other = follower_holding(fw, SAMR)
    assert other.builder.sign(HRSS) == [] and other.builder.sign() == []
    assert sequencer.feed.head() == 0
    stranger = SigningKey.generate("ed25519")
    keys = {HRSS: stranger}
    impostor = FeedFollower(
        fw.world.store, fw.world.ledger, fw.world.catalog, fw.world.vault, keys.get
    )
    fw.followers.append(impostor)
    impostor.builder.sign(HRSS)  # signed with a key that is not HRSS's: the check tells
    report = check_feed(sequencer.feed, fw.world.ledger, fw.world.catalog, fw.public_key)
    assert {p.kind for p in report.problems} == {"bad_signature"}

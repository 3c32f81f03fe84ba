"""The credit feed's records on the embedded chain: one signed record per confirmed status
change, in chain order, masked, scoped; confirmations, erasure, missing keys; `feed check`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from support.feed_world import DAY, HRSS, KINDS, FeedWorld, feed_world
from support.verifier_world import SAMR

from ledger import Chain, SigningKey, Status
from ledger import keccak256 as h32
from verifier import add_months
from verifier.feed import (
    SCOPE_OF_KIND,
    FeedRecord,
    check_feed,
    feed_records,
    sign_record,
    verify_record,
)


@pytest.fixture
def fw(tmp_path: Path, embedded_chain: Chain) -> Iterator[FeedWorld]:
    with feed_world(embedded_chain, tmp_path) as opened:
        yield opened


def served(fw: FeedWorld) -> list[FeedRecord]:
    follower = fw.follower()
    return [FeedRecord.from_json_obj(json.loads(b)) for _, b in follower.feed.bodies()]


def test_each_confirmed_status_change_is_one_signed_record_in_chain_order(fw: FeedWorld) -> None:
    follower = fw.follower()
    result = follower.step()
    assert result.appended == 7 and result.blocked_on is None

    records = served(fw)
    events = fw.world.ledger.events("OutcomeRecorded")
    assert [r.sequence for r in records] == [1, 2, 3, 4, 5, 6, 7]
    # The total order is the chain's: (block, log index) of each OutcomeRecorded event.
    assert [(r.facts.evidence.block, r.facts.evidence.log_index) for r in records] == [
        (int(e["blockNumber"]), int(e["logIndex"])) for e in events
    ]
    by_kind = {r.facts.kind: r for r in records}
    assert set(by_kind) == set(KINDS)  # the breach's notice (proposed) first: issue #14
    for kind, record in by_kind.items():
        assert record.facts.publication_scope == SCOPE_OF_KIND[kind]
        assert record.facts.evidence.commitment_hash == "0x" + fw.hashes[kind].hex()
        assert record.facts.department_code == HRSS
        verify_record(record, fw.public_key(HRSS))
    breach = by_kind["breach"]
    assert breach.facts.publication_scope == "public"
    assert breach.facts.fulfilment_status == "not_fulfilled"
    assert breach.facts.evidence.to_status == Status.BREACHED.name
    assert by_kind["kept"].facts.fulfilment_status == "fully_fulfilled"
    assert by_kind["kept"].facts.publication_scope == "restricted"
    assert by_kind["mismatch"].facts.publication_scope == "not_public"
    # A person is masked: surname and asterisks, the ID's region and last two only.
    details = breach.details
    assert details.committer_category == "自然人"  # the code list's value
    assert details.committer_name is not None and details.committer_name[1:].strip("*") == ""
    assert details.credit_code is not None and "*" * 8 in details.credit_code
    assert details.unfulfilled and details.sanction and details.commitment_code
    assert details.matter_code == "BJ-HRSS-0001" and details.commitment_type
    assert by_kind["mismatch"].details.unfulfilled  # the gap the report found
    # Nothing twice: a second round appends nothing.
    assert not follower.step()
    assert follower.feed.head() == 7


def test_a_record_waits_for_its_confirmations(fw: FeedWorld) -> None:
    chain = fw.world.chain
    last = max(int(e["blockNumber"]) for e in fw.world.ledger.events("OutcomeRecorded"))
    depth = 3
    follower = fw.follower(confirmations=depth)
    follower.step()
    waiting = {r.facts.evidence.block for r in served(fw)}
    assert last not in waiting  # the repair is in the newest block: not deep enough yet
    while chain.block_number() < last + depth:
        chain.fund(fw.world.deployment.outsider.address)  # one block each
    follower.step()
    assert last in {r.facts.evidence.block for r in served(fw)}
    assert [r.sequence for r in served(fw)] == list(range(1, 8))


def test_an_erased_commitment_gives_a_record_without_personal_data(fw: FeedWorld) -> None:
    assert fw.world.store.erase(fw.hashes["kept"])
    fw.follower().step()
    [kept] = [r for r in served(fw) if r.facts.kind == "kept"]
    assert kept.details.personal_data_erased
    assert kept.details.committer_name is None and kept.details.credit_code is None
    assert kept.details.commitment_code is not None  # the code is not personal data
    verify_record(kept, fw.public_key(HRSS))


def test_a_commitment_erased_after_its_records_were_served_is_redacted_in_the_feed(
    fw: FeedWorld,
) -> None:
    follower = fw.follower()
    follower.step()
    breach_hash = "0x" + fw.hashes["breach"].hex()
    before = {r.id: r for r in served(fw)}
    assert fw.world.store.erase(fw.hashes["breach"])

    assert follower.step().redacted == 3  # the notice (proposed), the breach and its repair

    after = {r.id: r for r in served(fw)}
    assert after.keys() == before.keys()
    for record_id, record in after.items():
        mine = record.facts.evidence.commitment_hash == breach_hash
        assert record.details.personal_data_erased == mine
        assert (record.details.committer_name is None) == mine
        assert (record.details.credit_code is None) == mine
        assert record.facts == before[record_id].facts  # same place, same chain facts
        verify_record(record, fw.public_key(HRSS))  # signed again by the department
    assert not follower.step()  # nothing left to redact
    report = check_feed(follower.feed, fw.world.ledger, fw.world.catalog, fw.public_key)
    assert report.ok, report.problems


def test_a_department_without_its_report_key_holds_the_feed_without_a_gap(
    fw: FeedWorld,
) -> None:
    key = fw.keys.pop(HRSS)
    follower = fw.follower()
    result = follower.step()
    assert result.appended == 0 and result.blocked_on == HRSS
    assert follower.feed.head() == 0
    fw.keys[HRSS] = key
    assert follower.step().appended == 7
    assert follower.feed.sequences() == list(range(1, 8))


def test_the_feed_rebuilt_from_the_chain_equals_the_served_one(fw: FeedWorld) -> None:
    follower = fw.follower()
    follower.step()
    report = check_feed(follower.feed, fw.world.ledger, fw.world.catalog, fw.public_key)
    assert report.ok, report.problems
    assert report.served == report.on_chain == 7


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        # the name in the body: the signature no longer verifies
        ("name", "bad_signature"),
        # a restricted record made public in the column the feed filters by
        ("scope", "altered"),
        # the record re-signed with a key that is not the department's
        ("resigned", "bad_signature"),
        # a record removed: a gap, and an event not served
        ("deleted", "missing"),
    ],
)
def test_a_record_altered_in_the_store_is_reported_by_the_check(
    fw: FeedWorld, change: str, problem: str
) -> None:
    follower = fw.follower()
    follower.step()
    [kept] = [r for r in served(fw) if r.facts.kind == "kept"]
    where = feed_records.c.seq == kept.sequence
    with fw.world.store.engine.begin() as connection:
        if change == "name":
            body = kept.to_json_obj()
            body["committer_name"] = "李*"
            connection.execute(update(feed_records).where(where).values(body=json.dumps(body)))
        elif change == "scope":
            connection.execute(update(feed_records).where(where).values(scope="public"))
        elif change == "resigned":
            forged = sign_record(kept, SigningKey.generate("ed25519"))
            connection.execute(update(feed_records).where(where).values(body=forged.to_json()))
        else:
            connection.execute(feed_records.delete().where(where))
    report = check_feed(follower.feed, fw.world.ledger, fw.world.catalog, fw.public_key)
    assert not report.ok
    assert problem in {p.kind for p in report.problems}, report.problems
    assert kept.id in {p.record_id for p in report.problems}


def test_without_a_departments_key_the_check_calls_its_records_unverified(
    fw: FeedWorld,
) -> None:
    follower = fw.follower()
    follower.step()
    [kept] = [r for r in served(fw) if r.facts.kind == "kept"]
    # Re-signed by anyone, a record verifies under the key it carries: only the
    # department's own key tells.
    forged = sign_record(kept, SigningKey.generate("ed25519"))
    with fw.world.store.engine.begin() as connection:
        connection.execute(
            update(feed_records)
            .where(feed_records.c.seq == kept.sequence)
            .values(body=forged.to_json())
        )
    report = check_feed(follower.feed, fw.world.ledger, fw.world.catalog, lambda _d: None)
    assert [p.kind for p in report.problems] == ["unverified"] * 7, report.problems
    assert kept.id in {p.record_id for p in report.problems}


def test_an_expiry_and_a_correction_are_public_records_of_their_own(fw: FeedWorld) -> None:
    world = fw.world
    expiring, _ = world.commit_kind("false")
    corrected, _ = world.commit_kind("false")
    world.engine.run(DAY)
    world.publish(DAY)  # proposed, then published (issue #14)
    by_commitment = {
        r.commitment_hash: r.id for r in world.engine.records.search_breaches(DAY).records
    }
    world.engine.annul(by_commitment["0x" + corrected.hex()], DAY, "mistaken identity")
    world.engine.expire(add_months(DAY, 13))  # general: published 12 months
    fw.follower().step()

    records = served(fw)
    assert [r.sequence for r in records] == list(range(1, len(records) + 1))
    changes = {
        (r.facts.evidence.commitment_hash, r.facts.kind): r
        for r in records
        if r.facts.kind in ("expiry", "correction")
    }
    expiry = changes["0x" + expiring.hex(), "expiry"]
    correction = changes["0x" + corrected.hex(), "correction"]
    assert expiry.facts.publication_scope == correction.facts.publication_scope == "public"
    assert expiry.facts.evidence.from_status == correction.facts.evidence.from_status == "BREACHED"
    assert correction.facts.fulfilment_status == "undetermined"
    assert expiry.details.sanction and correction.details.sanction


def test_another_departments_breach_of_the_same_hash_is_withheld(fw: FeedWorld) -> None:
    """Issue #12 finding 2: SAMR anchors HRSS's kept commitment's hash as its own and
    breaches it. Nothing is published under SAMR for a commitment of HRSS's matter: the
    event is withheld, and the builder says why."""
    d = fw.world.deployment
    target = fw.hashes["kept"]
    fw.world.ledger.anchor(d.other_registrar, target)
    fw.world.ledger.record_outcome(d.other_verifier, target, Status.PROPOSED, h32(b"notice"))
    fw.world.ledger.record_outcome(d.other_verifier, target, Status.BREACHED, h32(b"theirs"))
    follower = fw.follower()
    follower.step()
    assert [r for r in served(fw) if r.facts.department_code == SAMR] == []
    reasons = list(follower.builder.withheld.values())
    assert len(reasons) == 2  # its notice (Proposed) and its breach
    assert all(f"recorded by {SAMR}" in reason for reason in reasons)
    [ours] = [r for r in served(fw) if r.facts.kind == "kept"]
    assert ours.facts.department_code == HRSS and ours.details.committer_name is not None

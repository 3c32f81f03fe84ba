"""The departments' public report keys published in the store by their signers (issue 18): a
record never enters the feed signed by a key not published for its department; a rotated key
adds a row and the old records still verify; `feed check` verifies with public keys only (the
store's table, or a `/v1/feed/keys` document pinned out of band) and fails on a record
re-signed with a stranger's key; a keyless instance serves every published key."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from support.deployment import Deployment
from support.feed_world import HRSS, FeedWorld, feed_world
from support.service_keys import write_department_keys
from support.service_world import ServiceWorld, open_service
from support.verifier_world import SAMR

from api.service.feed_task import BackgroundSigners
from api.service.leased_tasks import feed_sign_lease
from ledger import Chain, SigningKey, Status, Store, commitments
from ledger import keccak256 as h32
from verifier import FeedError
from verifier.feed import (
    FeedFollower,
    FeedRecord,
    FeedStore,
    check_feed,
    keys_by_department,
    keys_from_json,
    publish_own_key,
    published_keys,
    read_keys_file,
    sign_record,
)
from verifier.feed.keys import publish_key
from verifier.feed.tables import feed_records


@pytest.fixture
def fw(tmp_path: Path, embedded_chain: Chain) -> Iterator[FeedWorld]:
    with feed_world(embedded_chain, tmp_path) as opened:
        yield opened


def follower_with(fw: FeedWorld, keys: dict[str, SigningKey]) -> FeedFollower:
    follower = FeedFollower(
        fw.world.store, fw.world.ledger, fw.world.catalog, fw.world.vault, keys.get
    )
    fw.followers.append(follower)
    return follower


def published(store: Store) -> list[tuple[str, str, int | None]]:
    """(department, public key, first sequence) of every published key, in order."""
    return [(k.department, k.public_key, k.first_sequence) for k in published_keys(store.engine)]


def store_keys(store: Store) -> Any:
    found = keys_by_department(published_keys(store.engine))
    return lambda department: found.get(department, [])


def add_hrss_outcome(fw: FeedWorld, name: bytes) -> None:
    """One more outcome of HRSS on a hash anchored elsewhere (chain facts only)."""
    d = fw.world.deployment
    target = h32(name)
    fw.world.ledger.anchor(d.registrar, target)
    fw.world.ledger.record_outcome(d.verifier, target, Status.KEPT, h32(b"checked"))


def test_whoever_signs_publishes_the_key_it_signed_with_and_nothing_else(fw: FeedWorld) -> None:
    d = fw.world.deployment
    target = h32(b"a commitment of SAMR's taken in elsewhere")
    fw.world.ledger.anchor(d.other_registrar, target)
    fw.world.ledger.record_outcome(d.other_verifier, target, Status.KEPT, h32(b"checked"))
    sequencer = follower_with(fw, {})  # keyless: gives places, publishes nothing
    sequencer.step()
    store = fw.world.store
    assert published(store) == []
    samr = follower_with(fw, {SAMR: fw.keys[SAMR]})
    samr.builder.sign(HRSS)  # not its department: signs and publishes nothing of HRSS
    assert published(store) == []
    assert [r.sequence for r in samr.builder.sign(SAMR)] == [8]
    follower_with(fw, {HRSS: fw.keys[HRSS]}).builder.sign(HRSS)
    assert published(store) == [
        (SAMR, fw.public_key(SAMR), 8),
        (HRSS, fw.public_key(HRSS), 1),  # signed after SAMR's, its first record is 1
    ]
    report = check_feed(sequencer.feed, fw.world.ledger, fw.world.catalog, store_keys(store))
    assert report.ok and report.served == 8, report.problems


def test_a_rotated_key_adds_a_row_and_old_records_still_verify(fw: FeedWorld) -> None:
    store = fw.world.store
    old = follower_with(fw, dict(fw.keys))  # one instance, every key: signs at once
    old.step()
    assert published(store) == [(HRSS, fw.public_key(HRSS), 1)]
    rotated = SigningKey.generate("ed25519")
    add_hrss_outcome(fw, b"after the rotation")
    assert follower_with(fw, {HRSS: rotated}).step().appended == 1
    assert published(store) == [
        (HRSS, fw.public_key(HRSS), 1),
        (HRSS, rotated.public_key_b64(), 8),
    ]
    feed = old.feed
    report = check_feed(feed, fw.world.ledger, fw.world.catalog, store_keys(store))
    assert report.ok and report.served == 8, report.problems
    # Pinned to the new key alone, the records signed before the rotation fail.
    only_new = check_feed(
        feed, fw.world.ledger, fw.world.catalog, lambda _d: rotated.public_key_b64()
    )
    assert [p.sequence for p in only_new.problems] == list(range(1, 8))
    assert {p.kind for p in only_new.problems} == {"bad_signature"}


def test_a_record_re_signed_with_a_strangers_key_fails_the_check(
    fw: FeedWorld, tmp_path: Path
) -> None:
    store = fw.world.store
    follower = follower_with(fw, dict(fw.keys))
    follower.step()
    pinned = tmp_path / "keys.json"  # the consumer's copy of /v1/feed/keys, taken before
    pinned.write_text(
        json.dumps({"keys": {HRSS: {"algorithm": "ed25519", "public_key": fw.public_key(HRSS)}}})
    )
    stranger = SigningKey.generate("ed25519")
    with store.engine.begin() as connection:  # someone with the database, not HRSS's key
        body = connection.execute(
            select(feed_records.c.body).where(feed_records.c.seq == 3)
        ).scalar_one()
        forged = sign_record(FeedRecord.from_json_obj(json.loads(body)), stranger)
        connection.execute(
            update(feed_records).where(feed_records.c.seq == 3).values(body=forged.to_json())
        )
    feed, ledger, catalog = follower.feed, fw.world.ledger, fw.world.catalog
    pinned_keys = read_keys_file(pinned)
    for keys in (store_keys(store), lambda d: pinned_keys.get(d, [])):
        report = check_feed(feed, ledger, catalog, keys)
        assert [(p.kind, p.sequence) for p in report.problems] == [("bad_signature", 3)]
        assert "signed by another key than BJ-HRSS's" in report.problems[0].detail


def test_a_redaction_publishes_the_key_it_re_signs_with(fw: FeedWorld) -> None:
    store = fw.world.store
    follower_with(fw, dict(fw.keys)).step()
    with store.engine.begin() as connection:
        connection.execute(
            update(commitments)
            .where(commitments.c.hash == fw.hashes["kept"])
            .values(wrapped_key=None)
        )
    rotated = SigningKey.generate("ed25519")
    assert follower_with(fw, {HRSS: rotated}).builder.redact([HRSS]) == 1
    assert (HRSS, rotated.public_key_b64(), None) in published(store)
    report = check_feed(
        follower_with(fw, {}).feed, fw.world.ledger, fw.world.catalog, store_keys(store)
    )
    assert report.ok, report.problems


def test_publishing_is_idempotent_and_keeps_the_first_sequence_signed(store: Store) -> None:
    FeedStore(store)  # the feed's tables
    key, rotated = SigningKey.generate("ed25519"), SigningKey.generate("ecdsa-p256")
    for sequence, new in ((5, True), (9, False), (2, False), (None, False)):
        with store.engine.begin() as connection:
            assert publish_key(connection, HRSS, key, sequence) is new
    assert publish_own_key(store.engine, HRSS, rotated)
    assert not publish_own_key(store.engine, HRSS, rotated)
    assert published(store) == [
        (HRSS, key.public_key_b64(), 2),
        (HRSS, rotated.public_key_b64(), None),
    ]
    assert [k.algorithm for k in published_keys(store.engine)] == ["ed25519", "ecdsa-p256"]


def test_a_keys_document_is_read_with_its_history_or_refused() -> None:
    view = {"algorithm": "ed25519", "public_key": "AAAA"}
    assert keys_from_json({"keys": {HRSS: view}}) == {HRSS: ["AAAA"]}
    document = {
        "keys": {HRSS: {**view, "public_key": "BBBB"}},
        "history": {HRSS: [view, {**view, "public_key": "BBBB"}], SAMR: [view]},
    }
    assert keys_from_json(document) == {HRSS: ["AAAA", "BBBB"], SAMR: ["AAAA"]}
    bad: Any
    for bad in ([], {"keys": []}, {"keys": {HRSS: {}}}, {"keys": {}, "history": {HRSS: view}}):
        with pytest.raises(FeedError):
            keys_from_json(bad)
    with pytest.raises(FeedError):
        keys_from_json({"keys": {HRSS: {**view, "public_key": "A" * 600}}})


# ---------------------------------------------------------------------- the service


@pytest.fixture
def opened() -> Iterator[list[ServiceWorld]]:
    worlds: list[ServiceWorld] = []
    yield worlds
    for world in worlds:
        world.context.leases.stop()
        world.context.close()


def test_a_keyless_instance_serves_the_key_a_departments_signer_published(
    tmp_path: Path, embedded_deployment: Deployment, opened: list[ServiceWorld]
) -> None:
    times: dict[str, Any] = {"lease_ttl_seconds": 2.0, "lease_poll_seconds": 0.05}
    write_department_keys(tmp_path / "hrss-keys", HRSS, None, None)
    hrss = open_service(tmp_path, embedded_deployment, keys_dir=tmp_path / "hrss-keys", **times)
    opened.append(hrss)
    public = open_service(  # the same store, no key at all
        tmp_path, embedded_deployment, keys_dir=tmp_path / "none", with_vault=False, **times
    )
    opened.append(public)
    assert public.client.get("/v1/feed/keys").json() == {"keys": {}, "history": {}}

    signers = BackgroundSigners(hrss.context, {HRSS})
    assert hrss.context.leases.token(feed_sign_lease(HRSS)) is not None
    assert signers.step() is not False  # under the lease: the key published
    key = hrss.context.report_key(HRSS)
    assert key is not None
    served = public.client.get("/v1/feed/keys")
    assert served.status_code == 200, served.text
    body = served.json()
    assert body["keys"] == {HRSS: {"algorithm": "ed25519", "public_key": key.public_key_b64()}}
    [entry] = body["history"][HRSS]
    assert entry["public_key"] == key.public_key_b64() and entry["first_sequence"] is None
    assert keys_from_json(body) == {HRSS: [key.public_key_b64()]}
    # The instance holding the key serves it as before, the history beside it.
    assert hrss.client.get("/v1/feed/keys").json() == body

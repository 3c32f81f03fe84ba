"""A correction by the multi-signature admin reaches the store, the page and the feed, on a
real anvil node: a 2-of-3 Safe executes `correctBreach` on a breach the service published;
after one pass of the follower (index, reconcile, feed) the public list no longer shows it,
its page says it was corrected and names the two owners who approved it (not the party),
and the feed carries a correction record whose `admin_approval` names them too, valid
against the served schema, signed, and in agreement with `feed check`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from support.appeals import published
from support.deployment import HRSS, HRSS_ID, MARKET, deploy
from support.service_keys import write_all_keys
from support.service_world import ServiceWorld, open_service

from api.service.engines import department_actions
from ledger import (
    AdminCall,
    Chain,
    Hash32,
    SafeAdmin,
    SigningKey,
    Status,
    hand_over_admin,
    hex32,
    keccak256,
    sign_safe_tx,
)
from verifier import default_catalog
from verifier.feed import (
    FeedFollower,
    FeedRecord,
    FeedStore,
    check_feed,
    record_schema,
    verify_record,
)
from verifier.records import NoticeRecords, reconciliation_counts

pytestmark = [pytest.mark.integration]

RULING = keccak256(b"the review board's ruling: the wrong person was recorded")


@dataclass
class Governed:
    """A service on anvil whose ledger's admin is a 2-of-3 Safe; report keys for the feed."""

    world: ServiceWorld
    safe: SafeAdmin
    owners: list[LocalAccount]
    keys: dict[str, SigningKey]


@pytest.fixture
def g(anvil_chain: Chain, tmp_path: Path) -> Iterator[Governed]:
    d = deploy(anvil_chain)
    write_all_keys(tmp_path / "keys", d)
    world = open_service(tmp_path, d, feed=False, anchoring=False)
    owners = [Account.create() for _ in range(3)]
    safe = SafeAdmin.deploy(anvil_chain, d.admin, [o.address for o in owners], 2)
    hand_over_admin(d.ledger, d.admin, safe)
    keys = {HRSS: SigningKey.generate("ed25519"), MARKET: SigningKey.generate("ed25519")}
    try:
        yield Governed(world, safe, owners, keys)
    finally:
        world.context.close()


def correct_through_the_safe(g: Governed, digest: Hash32) -> tuple[bytes, bytes, list[str]]:
    """Two of the three owners approve correctBreach and an outsider executes it: (the
    transaction, the SafeTx hash, the approving owners)."""
    d = g.world.deployment
    call = AdminCall("correctBreach", department=bytes(HRSS_ID), commitment=digest, evidence=RULING)
    tx = g.safe.transaction(d.ledger.address, call.data())
    first, _, third = g.owners
    executed = g.safe.execute(d.outsider, tx, [sign_safe_tx(third, tx), sign_safe_tx(first, tx)])
    return executed, tx.hash(), [first.address, third.address]


def follow(g: Governed) -> None:
    """One pass of the follower the service runs, the reconciler not waiting to settle."""
    d = g.world.deployment
    follower = FeedFollower(g.world.store, d.ledger, default_catalog(), g.world.vault, g.keys.get)
    follower.reconciler.settle_seconds = 0.0
    try:
        follower.step()
    finally:
        follower.close()


def feed_records(g: Governed, digest: Hash32, **params: Any) -> list[dict[str, Any]]:
    page = g.world.client.get("/v1/feed", params={"limit": 500, **params})
    assert page.status_code == 200, page.text
    wanted = hex32(digest)
    return [r for r in page.json()["records"] if r["evidence"]["commitment_hash"] == wanted]


def listed_ids(world: ServiceWorld) -> list[str]:
    return [r["id"] for r in world.client.get("/v1/breaches").json()["records"]]


def test_a_safe_correction_leaves_the_list_and_names_its_approvers(g: Governed) -> None:
    world, d = g.world, g.world.deployment
    digest, record = published(world)
    stored = world.context.records.stored_breach(record.id)
    assert stored is not None and world.store.is_excluded(stored.fingerprint)
    transaction, safe_tx_hash, approvers = correct_through_the_safe(g, digest)
    assert d.ledger.status_of(HRSS_ID, digest).status == Status.CORRECTED
    assert record.id in listed_ids(world)  # the store has not taken it up yet
    assert f"/records/{record.id}" in world.client.get("/").text

    follow(g)

    assert record.id not in listed_ids(world)
    assert f"/records/{record.id}" not in world.client.get("/").text  # the lookup page
    after = world.context.records.breach(record.id)
    assert after is not None and after.status == "corrected"
    assert not world.store.is_excluded(stored.fingerprint)  # the applicant readmitted
    assert reconciliation_counts(world.store) == {"taken_up": 1, "conflicts": 0}

    # The page: corrected, where, and by whose approval; the party no longer named.
    page = world.client.get(f"/records/{record.id}")
    assert page.status_code == 404
    assert "Record corrected" in page.text
    assert "0x" + transaction.hex() in page.text
    assert g.safe.address in page.text
    for owner in approvers:
        assert owner in page.text
    assert g.owners[1].address not in page.text  # the owner who did not approve
    assert record.party_name not in page.text
    assert record.party_code not in page.text

    # The feed: a public correction record, with the Safe's approval, schema-valid and signed.
    [correction] = feed_records(g, digest)
    assert correction["kind"] == "correction"
    assert correction["publication_scope"] == "公开"
    assert correction["evidence"]["transaction"] == "0x" + transaction.hex()
    assert correction["admin_approval"] == {
        "safe": g.safe.address,
        "safe_tx_hash": "0x" + safe_tx_hash.hex(),
        "approved_by": sorted(approvers, key=lambda a: int(a, 16)),
    }
    errors = [
        e.message
        for e in jsonschema_rs.Draft202012Validator(record_schema()).iter_errors(correction)
    ]
    assert errors == []
    parsed = FeedRecord.from_json_obj(correction)
    assert parsed.facts.admin_approval is not None
    assert parsed.to_json_obj() == correction  # reads back exactly as served
    verify_record(parsed, g.keys[HRSS].public_key_b64())
    report = check_feed(
        FeedStore(world.store, world.vault),
        d.ledger,
        default_catalog(),
        lambda code: g.keys[code].public_key_b64() if code in g.keys else None,
    )
    assert report.ok, report.to_json_obj()


def test_a_proposed_breach_annulled_by_the_safe_settles_its_notice(g: Governed) -> None:
    world, d = g.world, g.world.deployment
    signed = world.signed()
    digest = world.submit(signed)
    world.anchor()
    with department_actions(world.context, HRSS) as actions:
        actions.decide(digest, "false", world.context.today(), "verifier", "on-site check")
    assert d.ledger.status_of(HRSS_ID, digest).status == Status.PROPOSED
    notices = NoticeRecords(world.store)
    assert notices.open_for(digest) is not None
    correct_through_the_safe(g, digest)

    follow(g)

    verification = world.context.records.verification(digest)
    assert verification is not None and verification.state == "corrected"
    assert notices.open_for(digest) is None  # no lapsed defence period publishes it later
    assert reconciliation_counts(world.store) == {"taken_up": 1, "conflicts": 0}
    assert feed_records(g, digest) == []  # a proposal annulled was never public
    rows = FeedStore(world.store, world.vault).stored_rows()
    bodies = [json.loads(row.body) for row in rows]
    [correction] = [b for b in bodies if b["kind"] == "correction"]
    assert correction["publication_scope"] == "不公开"
    assert correction["admin_approval"]["safe"] == g.safe.address

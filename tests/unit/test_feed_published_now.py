"""One rule for "published now" in the feed (issue #14, finding "The public feed ignores
publication periods and corrections"): once a breach ends (repaired, expired, corrected),
the public scope serves the record saying so and no longer its body; restricted scopes keep
the whole history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete
from support.feed_world import DAY, FeedWorld, feed_world

from api.demo import running
from api.service import ServiceContext, Settings, create_app
from ledger import Chain
from verifier import add_months
from verifier.feed import VISIBLE_SCOPES, FeedStore
from verifier.feed.tables import feed_migrations


@pytest.fixture
def fw(tmp_path: Path, embedded_chain: Chain) -> Iterator[FeedWorld]:
    with feed_world(embedded_chain, tmp_path) as opened:
        yield opened


def page_of(feed: FeedStore, scope: str) -> list[dict[str, Any]]:
    bodies, _next = feed.page(0, 1000, VISIBLE_SCOPES[scope])  # type: ignore[index]
    return [json.loads(body) for body in bodies]


def kinds_of(records: list[dict[str, Any]], commitment: bytes) -> list[str]:
    wanted = "0x" + commitment.hex()
    return [r["kind"] for r in records if r["evidence"]["commitment_hash"] == wanted]


def test_an_ended_breach_leaves_the_public_feed_and_its_ending_record_stays(
    fw: FeedWorld,
) -> None:
    world = fw.world
    corrected, _ = world.commit_kind("false")
    expiring, _ = world.commit_kind("false")
    world.engine.run(DAY)
    world.publish(DAY)  # proposed, then published (issue #14)
    follower = fw.follower()
    follower.step()
    # Published: the token-less feed serves the breach, masked (`breach 郑* … 未履约`).
    public = page_of(follower.feed, "public")
    assert kinds_of(public, corrected) == ["breach"]
    [body] = [r for r in public if r["evidence"]["commitment_hash"] == "0x" + corrected.hex()]
    assert body["fulfilment_status"] == "未履约" and "*" in body["credit_code"]

    by_commitment = {
        r.commitment_hash: r.id for r in world.engine.records.search_breaches(DAY).records
    }
    world.engine.annul(by_commitment["0x" + corrected.hex()], DAY, "mistaken identity")
    world.engine.expire(add_months(DAY, 13))  # general severity: published 12 months
    follower.step()

    public = page_of(follower.feed, "public")
    assert kinds_of(public, corrected) == ["correction"]
    assert kinds_of(public, expiring) == ["expiry"]
    assert kinds_of(public, fw.hashes["repair"]) == ["repair"]  # the feed world's repaired one
    assert "breach" not in {r["kind"] for r in public}
    exported = [json.loads(b) for _, b in follower.feed.bodies(scopes=VISIBLE_SCOPES["public"])]
    assert exported == public
    for scope in ("restricted", "all"):
        history = page_of(follower.feed, scope)
        # the notice before each breach is not public: only the 'all' scope has it
        told = ["proposed"] if scope == "all" else []
        assert kinds_of(history, corrected) == [*told, "breach", "correction"]
        assert kinds_of(history, expiring) == [*told, "breach", "expiry"]
        assert kinds_of(history, fw.hashes["repair"]) == [*told, "breach", "repair"]


def test_a_public_page_short_of_its_limit_still_moves_past_withheld_records(
    fw: FeedWorld,
) -> None:
    follower = fw.follower()
    follower.step()
    head = follower.feed.head()
    bodies, following = follower.feed.page(0, 100, VISIBLE_SCOPES["public"])
    assert [json.loads(b)["kind"] for b in bodies] == ["repair"]
    assert following == head


def test_a_feed_from_before_the_rule_has_its_ended_breaches_marked_when_opened(
    fw: FeedWorld,
) -> None:
    follower = fw.follower()
    follower.step()
    store = fw.world.store
    with store.engine.begin() as connection:  # the table as migration 3 left it
        connection.exec_driver_sql("DROP INDEX feed_records_published")
        connection.exec_driver_sql("ALTER TABLE feed_records DROP COLUMN ended_by")
        connection.execute(delete(feed_migrations).where(feed_migrations.c.version == 4))

    reopened = FeedStore(store)
    assert {r["kind"] for r in page_of(reopened, "public")} == {"repair"}
    assert {r["kind"] for r in page_of(reopened, "restricted")} == {"breach", "repair", "kept"}


def test_the_token_less_feed_stops_serving_an_annulled_breach_over_http(fw: FeedWorld) -> None:
    """The issue's probe: after an upheld objection the public feed still served
    `breach 郑* 410105**********44 not_fulfilled`."""
    world = fw.world
    annulled, _ = world.commit_kind("false")
    world.engine.run(DAY)
    world.publish(DAY)  # proposed, then published (issue #14)
    follower = fw.follower()
    follower.step()
    settings = Settings(
        data_dir=world.tmp_path / "service",
        store_url=f"sqlite:///{world.db_path}",
        deployment_file=world.tmp_path / "no-deployment.json",
        rate_limit_burst=10_000,
        rate_limit_per_second=1_000.0,
    )
    context = ServiceContext.open(settings, vault=world.vault)
    restricted = context.tokens.issue("FEED", "feed", scope="restricted").token

    def served(token: str | None) -> list[str]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        page = httpx.get(f"{url}/v1/feed", params={"limit": 500}, headers=headers).json()
        return kinds_of(page["records"], annulled)

    with running(create_app(settings, context=context)) as url:
        assert served(None) == ["breach"]
        [record] = [
            r
            for r in world.engine.records.search_breaches(DAY).records
            if r.commitment_hash == "0x" + annulled.hex()
        ]
        world.engine.annul(record.id, DAY, "mistaken identity: another person's record")
        follower.step()
        assert served(None) == ["correction"]
        assert served(restricted) == ["breach", "correction"]

"""A verified world for the feed's tests: every kind of status change on chain, a follower."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ledger import Chain, Hash32, SigningKey
from support.verifier_world import DAY, HRSS, POINTS, SAMR, World, open_world
from verifier import add_months
from verifier.feed import DeliveryPolicy, FeedFollower

# "proposed": the breach's notice (issue #14), on chain before the breach is published.
KINDS = ("kept", "mismatch", "proposed", "breach", "needs_manual", "withdrawal", "repair")


@dataclass
class FeedWorld:
    """A World whose chain holds one of each status change, with the departments' report keys."""

    world: World
    keys: dict[str, SigningKey]
    hashes: dict[str, Hash32]
    followers: list[FeedFollower] = field(default_factory=list)

    def report_key(self, department: str) -> SigningKey | None:
        return self.keys.get(department)

    def public_key(self, department: str) -> str | None:
        key = self.keys.get(department)
        return None if key is None else key.public_key_b64()

    def follower(self, policy: DeliveryPolicy | None = None, **options: object) -> FeedFollower:
        follower = FeedFollower(
            self.world.store,
            self.world.ledger,
            self.world.catalog,
            self.world.vault,
            self.report_key,
            policy=policy,
            **options,  # type: ignore[arg-type]
        )
        self.followers.append(follower)
        return follower


def make_changes(world: World) -> dict[str, Hash32]:
    """Kept, mismatch, breach (then repaired), needs-manual and a withdrawal, on chain."""
    picks = {
        "kept": world.pick("agree"),
        "mismatch": world.pick("mismatch"),
        "breach": world.pick("false"),
        "needs_manual": world.pick("missing"),
        "withdrawal": world.pick("agree"),
    }
    hashes = dict(zip(picks, world.commit(*picks.values()), strict=True))
    world.engine.withdraw(hashes["withdrawal"], DAY, "withdrawn at the counter")
    world.engine.run(DAY)
    world.publish(DAY)  # proposed, then published after its defence (issue #14)
    [breach] = world.engine.records.search_breaches(DAY).records
    world.engine.repair(breach.id, add_months(DAY, 3), "repair decision 京人社修复〔2027〕1号")
    hashes["repair"] = hashes["proposed"] = hashes["breach"]
    return hashes


@contextmanager
def feed_world(chain: Chain, tmp_path: Path) -> Iterator[FeedWorld]:
    """A world with every kind of change on `chain` and report keys for both departments."""
    with open_world(chain, tmp_path) as world:
        hashes = make_changes(world)
        keys = {HRSS: SigningKey.generate("ed25519"), SAMR: SigningKey.generate("ed25519")}
        opened = FeedWorld(world, keys, hashes)
        try:
            yield opened
        finally:
            for follower in opened.followers:
                follower.close()


__all__ = ["DAY", "HRSS", "KINDS", "POINTS", "FeedWorld", "feed_world", "make_changes"]

"""The live instances of a store and each one's fair share of the leases it seeks.

Every instance keeping leases (`ledger.lease_keeper.LeaseKeeper`) announces itself at each round
with a heartbeat row in `lease_instances`: its name, the leases it seeks, and an expiry on
the database's clock, the same ttl as its leases; it is live while that row is unexpired.
From one snapshot of those rows and of the lease table (`LeaseView`) an instance works out
its share: ceil(leases it seeks / live instances seeking any of them). It takes free leases
up to its share; beyond it, only a lease that no live rival under its own share would take
(so no role is left unheld because everybody is at its share), and one such a round, so that
rivals at their share too take the others; and when over its share it hands over its newest
lease that a rival under its share seeks (never its last one).

Each hand-over moves one lease from an instance over its share to one under it, so the
leases settle within a bounded number of rounds (two instances seeking four: two each); a
lease taken beyond a share is handed over only to someone sure to take it, so nothing swings
back and forth. A free lease is left to the rivals under their share, which take it at their
next round: a rival that stopped running rounds counts as live until its heartbeat runs
out, so a role waits at worst one more ttl for an instance that died just after announcing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, Float, MetaData, String, Table, Text

NAME_MAX = 128
HOLDER_MAX = 128
WANTED_MAX = 1000  # leases one instance may seek: departments and a few roles, far fewer

metadata = MetaData()

instances_table = Table(
    "lease_instances",
    metadata,
    Column("holder", String(HOLDER_MAX), primary_key=True),
    Column("wanted", Text, nullable=False),  # the lease names it seeks, one a line
    Column("seen_at", Float, nullable=False),  # the database's clock, Unix seconds
    Column("expires_at", Float, nullable=False),
)


def wanted_text(wanted: list[str]) -> str:
    """The column's form of the leases sought (names never hold a line break)."""
    if len(wanted) > WANTED_MAX:
        raise ValueError(f"an instance seeks at most {WANTED_MAX} leases")
    if any("\n" in name for name in wanted):
        raise ValueError("a lease name holds no line break")
    return "\n".join(sorted(wanted))


def parse_wanted(text: str) -> frozenset[str]:
    """The leases sought, from the column's form."""
    return frozenset(name for name in text.split("\n") if name)


@dataclass(frozen=True)
class LeaseView:
    """One round's snapshot: the live instances (each with the leases it seeks) and the
    holder of every lease held unexpired now."""

    instances: dict[str, frozenset[str]]
    holders: dict[str, str]

    def held_count(self, holder: str) -> int:
        """How many leases `holder` holds now."""
        return sum(1 for who in self.holders.values() if who == holder)

    def share(self, holder: str) -> int:
        """ceil(leases `holder` seeks / live instances seeking any of them), itself included;
        0 for an instance that is not live or seeks nothing."""
        wanted = self.instances.get(holder, frozenset())
        if not wanted:
            return 0
        rivals = sum(1 for seeks in self.instances.values() if seeks & wanted)
        return -(-len(wanted) // rivals)

    def takers(self, name: str, besides: str) -> list[str]:
        """The live instances other than `besides` that seek `name` and hold fewer leases
        than their share: those who would take it if it were free."""
        return sorted(
            holder
            for holder, seeks in self.instances.items()
            if holder != besides and name in seeks and self.held_count(holder) < self.share(holder)
        )

    def may_take(self, holder: str, name: str, holding: int) -> bool:
        """Whether `holder`, holding `holding` leases now, should take the free lease `name`:
        while under its share, or when no rival under its share would take it."""
        return holding < self.share(holder) or not self.takers(name, holder)

    def to_hand_over(self, holder: str, held_oldest_first: list[str]) -> str | None:
        """The newest lease `holder` should hand over, when it holds more than its share (and
        more than one) and a rival under its share seeks it; else None."""
        if len(held_oldest_first) <= max(self.share(holder), 1):
            return None
        for name in reversed(held_oldest_first):
            if self.takers(name, holder):
                return name
        return None

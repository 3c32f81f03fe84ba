"""What one verification run did: the engine's and the outcome sender's counts together."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class RunSummary:
    """What one verification run did."""

    examined: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    transactions: int = 0
    gas_used: int = 0
    recorded: int = 0
    breaches: list[str] = field(default_factory=list)  # published: their record ids
    proposed: list[str] = field(default_factory=list)  # noticed, not published: hashes
    overdue_flagged: int = 0
    abandoned: int = 0

    def to_json_obj(self) -> dict[str, object]:
        """The summary as plain JSON."""
        return {
            "examined": self.examined,
            "outcomes": dict(self.outcomes),
            "transactions": self.transactions,
            "gas_used": self.gas_used,
            "recorded_on_chain": self.recorded,
            "breaches": self.breaches,
            "proposed": self.proposed,
            "overdue_flagged": self.overdue_flagged,
            "abandoned": self.abandoned,
        }

"""`stats --check-chain`: the outcome counters counted again from the contract's events;
`stats --rebuild`: every counter counted again (from the events, the decisions and the
commitments), for a store whose counters are missing or wrong.

Every move of a commitment's status emits `OutcomeRecorded(from, to)` (a breach also emits
BreachRecorded, a repair BreachRepaired, an expiry or correction BreachClosed: the same
moves again, so only OutcomeRecorded is counted). Each is turned into metrics by the very
function the store's writes use (`stats.transition_metrics`), per department (the event's)
and matter (the store's, by commitment hash), and compared with the counters' all-time
totals. Days are not compared: a block's time and the moment the store recorded the
outcome may fall on either side of midnight.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import delete, select, update

from ledger import Hash32, LedgerContract, Status, Store, commitments, decisions_table, hex32
from verifier.records.stats import (
    OUTCOME_METRICS,
    RECEIVED_MARK,
    beijing_day,
    bump_many,
    catch_up_received,
    next_generation,
    stat_counts,
    stat_marks,
    stat_periods,
    transition_metrics,
)
from verifier.records.stats_query import StatsQuery

LOG_BLOCKS = 5_000  # blocks per eth_getLogs request
UNKNOWN_MATTER = "(not in the store)"

Totals = Counter[tuple[str, str, str]]  # (department, matter, metric) -> count


@dataclass(frozen=True)
class CountDifference:
    """One (department, matter, metric) whose counter and chain count differ."""

    department: str
    matter_code: str
    metric: str
    counters: int
    chain: int

    def describe(self) -> str:
        """One line for people."""
        return (
            f"{self.department} {self.matter_code} {self.metric}: counters {self.counters}, "
            f"chain events {self.chain}"
        )


@dataclass
class StatsChainReport:
    """What `stats --check-chain` found."""

    head: int = 0
    events: int = 0
    compared: int = 0  # (department, matter, metric) keys compared
    differences: list[CountDifference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every counter equals the chain's count."""
        return not self.differences

    def to_json_obj(self) -> dict[str, Any]:
        """The report as plain JSON."""
        return {
            "ok": self.ok,
            "head": self.head,
            "events": self.events,
            "compared": self.compared,
            "differences": [asdict(d) for d in self.differences],
        }


def outcome_events(
    ledger: LedgerContract, start: int, end: int
) -> Iterator[tuple[bytes, Hash32, Status, Status, int]]:
    """(department id, commitment, from, to, block) of every OutcomeRecorded from `start`
    to `end`."""
    while start <= end:
        stop = min(end, start + LOG_BLOCKS - 1)
        for entry in ledger.events("OutcomeRecorded", start, stop):
            args = entry["args"]
            yield (
                bytes(args["department"]),
                Hash32(bytes(args["commitment"])),
                Status(int(args["from"])),
                Status(int(args["to"])),
                int(entry["blockNumber"]),
            )
        start = stop + 1


def matters_of(store: Store, hashes: Sequence[bytes]) -> dict[bytes, str]:
    """The matter of each of these commitments that the store holds."""
    found: dict[bytes, str] = {}
    unique = sorted(set(hashes))
    with store.engine.connect() as connection:
        for start in range(0, len(unique), 500):
            rows = connection.execute(
                select(commitments.c.hash, commitments.c.matter_code).where(
                    commitments.c.hash.in_(unique[start : start + 500])
                )
            ).all()
            found.update((bytes(row.hash), row.matter_code) for row in rows)
    return found


def chain_totals(
    ledger: LedgerContract,
    store: Store,
    department_names: dict[bytes, str],
    *,
    from_block: int = 0,
    head: int,
) -> tuple[Totals, int]:
    """The outcome metrics the chain's events count, per (department, matter, metric), and
    how many events were read."""
    moves = list(outcome_events(ledger, from_block, head))
    matters = matters_of(store, [move[1] for move in moves])
    totals: Totals = Counter()
    for department_id, commitment, before, after, _ in moves:
        department = department_names.get(department_id) or hex32(Hash32(department_id))
        matter = matters.get(bytes(commitment), UNKNOWN_MATTER)
        for metric in transition_metrics(before, after):
            totals[(department, matter, metric)] += 1
    return totals, len(moves)


def compare_totals(counters: Totals, chain: Totals) -> list[CountDifference]:
    """Every key whose counts differ, in order."""
    return [
        CountDifference(department, matter, metric, counters[key], chain[key])
        for key in sorted(set(counters) | set(chain))
        for department, matter, metric in [key]
        if counters[key] != chain[key]
    ]


def check_stats_chain(
    ledger: LedgerContract,
    store: Store,
    department_names: dict[bytes, str],
    *,
    from_block: int = 0,
    confirmations: int = 0,
) -> StatsChainReport:
    """Count the outcome metrics from the chain's events up to the confirmed head and
    compare them with the counters' totals."""
    report = StatsChainReport(head=max(0, ledger.chain.block_number() - confirmations))
    chain, report.events = chain_totals(
        ledger, store, department_names, from_block=from_block, head=report.head
    )
    counters = StatsQuery(store).totals(metrics=OUTCOME_METRICS)
    report.compared = len(set(counters) | set(chain))
    report.differences = compare_totals(counters, chain)
    return report


def rebuild_counters(
    ledger: LedgerContract,
    store: Store,
    department_names: dict[bytes, str],
    *,
    from_block: int = 0,
    confirmations: int = 0,
) -> StatsChainReport:
    """Count every counter again, for a store whose counters are missing (written before
    they were kept) or wrong: outcomes from the chain's events, on the Beijing day of their
    block; decisions from the decisions table; received from the commitments. One
    transaction; the report says how many events were read."""
    report = StatsChainReport(head=max(0, ledger.chain.block_number() - confirmations))
    moves = list(outcome_events(ledger, from_block, report.head))
    report.events = len(moves)
    matters = matters_of(store, [move[1] for move in moves])
    days: dict[int, str] = {}
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for department_id, commitment, before, after, block in moves:
        if block not in days:
            stamp = ledger.chain.w3.eth.get_block(block)["timestamp"]
            days[block] = beijing_day(float(stamp))
        department = department_names.get(department_id) or hex32(Hash32(department_id))
        matter = matters.get(bytes(commitment), UNKNOWN_MATTER)
        for metric in transition_metrics(before, after):
            counts[(department, matter, days[block], metric)] += 1
    writer = store.engine.execution_options(immediate=True)
    with writer.begin() as connection:
        decided = connection.execute(
            select(
                decisions_table.c.department,
                decisions_table.c.matter_code,
                decisions_table.c.decided_at,
                decisions_table.c.late,
            )
        )
        for department, matter, decided_at, late in decided:
            day = beijing_day(float(decided_at))
            counts[(department, matter, day, "decided")] += 1
            if late:
                counts[(department, matter, day, "decided_late")] += 1
        connection.execute(delete(stat_counts))
        connection.execute(delete(stat_periods))
        connection.execute(
            update(stat_marks).where(stat_marks.c.name == RECEIVED_MARK).values(value=0)
        )
        next_generation(connection)  # even when nothing is counted again
        bump_many(connection, counts)
    catch_up_received(store)
    report.compared = len({(d, m, metric) for d, m, _, metric in counts})
    return report

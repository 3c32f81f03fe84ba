"""Checks before a verification run starts: data to compare with, and an as-of day that fits.

A run without data sources can only send every commitment due to manual review, on chain
(NEEDS_MANUAL, for good): it starts only when asked for exactly that.

The as-of day dates everything a run makes: every signed report, a breach record's decision
and publication end, a mismatch's rectification deadline. The chain carries no such day:
recordOutcomes takes (commitment, outcome, evidence, root, proof), and what the chain says
about when is the timestamp of the block that records it, which the credit feed reads as a
Beijing day. A run dated any other day than that block's writes records the chain and the
feed contradict (a run 20 days back showed a breach decided on 2026-11-07 that the chain
and the feed date 2026-12-07) and can give a mismatch a rectification deadline that passed
before the applicant could be told, so that the next run breaches at once.

Two sound ways out: the chain carries the as-of (a new contract, its events, the feed's
builder and every deployment), or a run is dated the chain's day and no other. The second
is the smaller change and leaves nothing to reconcile: a run is for today, today is the
platform's (Beijing) day, and the command line also checks it against the day of the block
its outcomes go into. A run may not be back-dated at all, so no deadline it sets has
passed: a rectification window starts on the day the applicant can be told.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from sqlalchemy import func, inspect, select

from api.errors import RunRefusedError
from ledger import LedgerContract, Store, commitments
from verifier.records import verifications_table as verifications

# The platform's days are Beijing days: the credit feed dates a record by its block's
# timestamp in this zone (verifier.feed's CHINA_TIME; a test checks they agree).
PLATFORM_TIME = timezone(timedelta(hours=8))


def today() -> date:
    """The day a run is started on: today in Beijing, whatever zone this machine keeps (a
    test moves it by patching this)."""
    return datetime.now(PLATFORM_TIME).date()


def day_of_block_time(timestamp: int) -> date:
    """The day a block's timestamp falls on, as the feed and the breach records read it."""
    return datetime.fromtimestamp(timestamp, PLATFORM_TIME).date()


def chain_day(ledger: LedgerContract) -> date:
    """The day the chain gives what is recorded now: the pending block's timestamp (on a
    node that mines on demand the latest block may be days old)."""
    block = ledger.chain.w3.eth.get_block("pending")
    return day_of_block_time(int(block["timestamp"]))


def require_sources(has_sources: bool, all_manual: bool, *, flag: str) -> None:
    """Refuse a run without data sources unless `flag` asked for all-manual review."""
    if not has_sources and not all_manual:
        raise RunRefusedError(
            "no department data sources are configured: nothing can be compared, so every "
            "commitment due would be recorded NEEDS_MANUAL on chain; configure the sources, "
            f"or give {flag} to send every case to manual review"
        )


_MADE_ON = func.substr(commitments.c.code, 7, 8)  # the day in the national code: YYYYMMDD


def _day(text: str | None) -> date | None:
    return None if text is None else datetime.strptime(text, "%Y%m%d").date()


def earliest_commitment_day(store: Store, department: str) -> date | None:
    """The earliest day a commitment of the department was made, if it has any: the day in
    its national code (6-digit region, YYYYMMDD, serial), kept in clear beside the hash."""
    with store.engine.connect() as connection:
        day = connection.execute(
            select(func.min(_MADE_ON)).where(commitments.c.department == department)
        ).scalar_one()
    return _day(day)


def latest_undecided_day(store: Store, department: str) -> date | None:
    """The latest day a commitment of the department still to be decided was made (none
    decided yet: awaiting anchoring, or scheduled and due), if there is one."""
    undecided = commitments.c.department == department
    with store.engine.connect() as connection:
        if inspect(connection).has_table(verifications.name):  # else the verifier never ran
            decided = select(verifications.c.commitment_hash).where(verifications.c.state != "due")
            undecided &= commitments.c.hash.not_in(decided)
        day = connection.execute(select(func.max(_MADE_ON)).where(undecided)).scalar_one()
    return _day(day)


def check_run_day(on: date, today: date, earliest: date | None, latest: date | None = None) -> None:
    """Refuse an as-of day other than `today`: one to come, one before the first commitment
    (`earliest`) or the latest one still to decide (`latest`), any day past."""
    if on > today:
        # The contract does not know the due dates: a later day would judge commitments
        # whose applicants still have time, and publish their breaches for good.
        raise RunRefusedError(f"a run is for today ({today}), not {on}")
    if earliest is not None and on < earliest:
        raise RunRefusedError(
            f"a run as of {on} would date reports before the first commitment it decides "
            f"(made {earliest}): a run is for today ({today})"
        )
    if latest is not None and on < latest:
        raise RunRefusedError(
            f"a run as of {on} would date reports before a commitment it decides was made "
            f"({latest}): a run is for today ({today})"
        )
    if on < today:
        raise RunRefusedError(
            f"a run is for today ({today}), not {on}: the chain dates what a run records by "
            "its block, so a run dated a day past would publish breaches and deadlines the "
            "chain and the feed contradict, and a rectification window that closed before "
            "the applicant could be told"
        )


def check_chain_day(on: date, chain: date) -> None:
    """Refuse an as-of day other than the chain's: the block that records the run's outcomes
    dates them on chain and in the feed, and the records it publishes must say the same."""
    if on != chain:
        raise RunRefusedError(
            f"the chain would record this run on {chain}, not {on}: a run is dated the day "
            "of the blocks that record it (the feed and the breach records read that day); "
            "check this machine's clock and the node's"
        )

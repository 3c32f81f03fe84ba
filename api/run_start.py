"""Checks before a verification run starts: data to compare with, and an as-of day that fits.

A run without data sources can only send every commitment due to manual review, on chain
(NEEDS_MANUAL, for good): it starts only when asked for exactly that. Its as-of day dates
every signed report: never one to come, and never one before the commitments it decides
were made.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select

from api.errors import RunRefusedError
from ledger import Store, commitments


def today() -> date:
    """The day a run is started on: the machine's date (a test moves it by patching this)."""
    return date.today()


def require_sources(has_sources: bool, all_manual: bool, *, flag: str) -> None:
    """Refuse a run without data sources unless `flag` asked for all-manual review."""
    if not has_sources and not all_manual:
        raise RunRefusedError(
            "no department data sources are configured: nothing can be compared, so every "
            "commitment due would be recorded NEEDS_MANUAL on chain; configure the sources, "
            f"or give {flag} to send every case to manual review"
        )


def earliest_commitment_day(store: Store, department: str) -> date | None:
    """The earliest day a commitment of the department was made, if it has any: the day in
    its national code (6-digit region, YYYYMMDD, serial), kept in clear beside the hash."""
    made_on = func.min(func.substr(commitments.c.code, 7, 8))
    with store.engine.connect() as connection:
        day = connection.execute(
            select(made_on).where(commitments.c.department == department)
        ).scalar_one()
    return None if day is None else datetime.strptime(day, "%Y%m%d").date()


def check_run_day(on: date, today: date, earliest: date | None) -> None:
    """Refuse an as-of day to come, or one before the first commitment it could decide."""
    if on > today:
        # The contract does not know the due dates: a later day would judge commitments
        # whose applicants still have time, and publish their breaches for good.
        raise RunRefusedError(f"a run is for today ({today}) or a day past, not {on}")
    if earliest is not None and on < earliest:
        raise RunRefusedError(
            f"a run as of {on} would date reports before the first commitment it decides "
            f"(made {earliest}): give a day from {earliest} to {today}"
        )

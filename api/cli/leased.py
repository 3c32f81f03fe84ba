"""Jobs of the command line under the leases the service holds for the same work (issue 18).

`pipeline run` (`anchor:<D>`), `feed run` (`reconcile` and `feed`), `lifecycle run`
(`lifecycle`) and `notices deliver` (`notices`) do what `serve` does in the background. Run
beside instances sharing the store, each takes the same lease first: while an instance holds
it, the command says "held by instance X until T" and waits for it, by default the lease
time and two polls (long enough for the lease of a holder that died to run out, not for one
a running instance renews), or `--wait SECONDS` (0: refuse at once). Held, the lease is
renewed by a thread of its own, the job's writes check its fencing token as the service's
do (the anchoring's in their own transactions, the others before each step), and it is
released at the end, so an instance takes the role back at its next poll. The command does
not count as an instance in the fair shares.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from api.output import console

if TYPE_CHECKING:  # imported inside the functions: SQLAlchemy is slow to load
    from sqlalchemy import Connection

    from ledger import LeaseKeeper, LeaseRow, Store

MAX_WAIT_S = 86400.0

WaitOpt = Annotated[
    float | None,
    typer.Option(
        "--wait",
        min=0.0,
        max=MAX_WAIT_S,
        metavar="SECONDS",
        help="While another instance holds this job's lease, wait up to this long for it "
        "(default: the lease time and two polls, enough for a dead holder's lease to run "
        "out; 0: refuse at once).",
    ),
]


def cli_holder() -> str:
    """This command's name in the lease table: `cli:` and hostname:pid."""
    from ledger import instance_id

    return f"cli:{instance_id()}"[:128]


def held_by(row: LeaseRow | None) -> str:
    """'held by instance X until T' (T in UTC, by the database's clock)."""
    if row is None:
        return "held by another instance"
    until = datetime.fromtimestamp(row.expires_at, UTC).isoformat(timespec="seconds")
    return f"held by instance {row.holder} until {until}"


class LeasedJob:
    """The leases a command holds for its job, with the tokens it took them under."""

    def __init__(self, keeper: LeaseKeeper, tokens: dict[str, int]) -> None:
        self.keeper = keeper
        self.tokens = tokens

    def fence(self, name: str) -> Callable[[Connection], None]:
        """The check a write makes in its own transaction: LeaseLostError once `name` is no
        longer held under the token this job took it with."""
        return self.keeper.leases.fence(name, self.keeper.holder, self.tokens[name])

    def lost(self) -> list[str]:
        """The leases no longer held under the job's tokens (taken over, or not renewed)."""
        return sorted(n for n, t in self.tokens.items() if self.keeper.token(n) != t)

    def check(self) -> None:
        """LeaseLostError when a lease of the job was lost: the job must stop writing."""
        from ledger import LeaseLostError

        lost = self.lost()
        if lost:
            raise LeaseLostError(
                f"the lease {lost[0]} was lost ({held_by(self.keeper.leases.row(lost[0]))}): "
                "stopped; the holder resumes what this run left"
            )

    @contextmanager
    def stopping(self, stop: threading.Event) -> Iterator[None]:
        """Set `stop` as soon as a lease of the job is lost (looked at every poll)."""
        done = threading.Event()

        def watch() -> None:
            while not done.wait(self.keeper.poll):
                if self.lost():
                    stop.set()
                    return

        watcher = threading.Thread(target=watch, name="commitledger-lease-watch", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()


def lease_times() -> tuple[float, float]:
    """The settings' lease ttl and poll interval (those `serve` uses)."""
    from api.service import Settings

    settings = Settings.load()
    return settings.lease_ttl_seconds, settings.lease_poll_seconds


@contextmanager
def leased_job(
    store: Store,
    names: Sequence[str],
    *,
    wait: float | None,
    ttl: float,
    poll: float,
    holder: str | None = None,
) -> Iterator[LeasedJob]:
    """Hold `names` while the block runs: taken at once when free, else waited for up to
    `wait` seconds (None: `ttl` and two polls) and LeaseHeldError after that, nothing done;
    renewed meanwhile and released at the end."""
    from ledger import LeaseKeeper, Leases

    if wait is None:
        wait = ttl + 2 * poll
    keeper = LeaseKeeper(Leases(store), holder or cli_holder(), ttl=ttl, poll=poll, balance=False)
    try:
        for name in names:
            keeper.want(name)
        tokens = _wait_for(keeper, list(names), wait)
        keeper.start()
        yield LeasedJob(keeper, tokens)
    finally:
        keeper.stop()


def _wait_for(keeper: LeaseKeeper, names: list[str], wait: float) -> dict[str, int]:
    from ledger import LeaseHeldError

    deadline = time.monotonic() + wait
    told: set[str] = set()
    while True:
        tokens = {name: keeper.token(name) for name in names}
        missing = [name for name, token in tokens.items() if token is None]
        if not missing:
            return {name: token for name, token in tokens.items() if token is not None}
        if len(missing) < len(names):
            # All or nothing: a lease held while waiting for another would only keep its
            # role from the instance that would do the work meanwhile.
            keeper.stop()
        name = missing[0]
        where = held_by(keeper.leases.row(name))
        left = deadline - time.monotonic()
        if left <= 0:
            hint = "give --wait SECONDS to wait for it"
            if wait > 0:
                hint = f"waited {wait:g} s; give --wait SECONDS to wait longer"
            raise LeaseHeldError(f"the lease {name} is {where}: {hint}")
        if name not in told:
            told.add(name)
            console.print(f"the lease {name} is {where}: waiting up to {wait:g} s", markup=False)
        time.sleep(min(keeper.poll, left))  # the holder renews or frees it by the poll
        keeper.round()

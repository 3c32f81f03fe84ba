"""The keeper of an instance's leases: a thread that announces the instance, renews what it
holds, hands over what is beyond its fair share and takes free leases up to it; the steps of
the service ask it for their tokens (`ledger.leases` keeps the table, `ledger.lease_instances`
works out the shares)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection

from ledger.lease_instances import LeaseView
from ledger.leases import Leases, check_lease

log = logging.getLogger("commitledger.leases")


@dataclass
class _Holding:
    token: int
    valid_until: float  # this process's monotonic clock: renewed before then, or not ours


class LeaseKeeper:
    """Holds the leases this instance wants: a thread runs a `round` every `poll` seconds
    (announce this instance, renew held leases, hand over one beyond the fair share, take
    free ones up to it); `token(name)` says whether (and with which token) a step may act,
    and a step acts inside `acting(name)` so that a hand-over waits for it to finish.

    A lease counts as held locally only until `ttl - poll` after the start of its last
    successful renewal: if the database stops answering, this instance stops acting before
    another could have taken the lease over. With `balance=False` (a job of the command
    line) the keeper does not announce itself and takes every wanted lease that is free.
    """

    def __init__(
        self,
        leases: Leases,
        holder: str,
        *,
        ttl: float = 15.0,
        poll: float = 2.0,
        balance: bool = True,
    ) -> None:
        if not 0 < poll < ttl / 2:
            raise ValueError("a lease's poll interval must be under half its ttl")
        check_lease("x", holder, ttl)
        self.leases = leases
        self.holder = holder
        self.ttl = ttl
        self.poll = poll
        self.balance = balance
        self._wanted: set[str] = set()
        self._held: dict[str, _Holding] = {}  # in the order taken: the newest last
        self._handing_over: str | None = None  # released once no step acts under it
        self._acting: dict[str, int] = {}  # lease -> steps acting under it now
        self._share: int | None = None  # the fair share of the last round
        self._live = 0  # the live instances of the last round, this one included
        self._lock = threading.Lock()  # the fields above
        self._round_lock = threading.RLock()  # one round (or hand-over) at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def want(self, name: str) -> None:
        """Ask for `name` from now on (a round runs at once; if the database does not
        answer now, the thread asks again at a later poll)."""
        check_lease(name, self.holder, self.ttl)
        with self._lock:
            self._wanted.add(name)
        try:
            self.round()
        except Exception as exc:  # the database is away: the thread asks again
            log.warning("lease not taken", extra={"lease": name, "reason": type(exc).__name__})

    def wanted(self) -> list[str]:
        """The leases asked for, held or not."""
        with self._lock:
            return sorted(self._wanted)

    def token(self, name: str) -> int | None:
        """The fencing token of `name` if this instance holds it now (and is not handing it
        over), else None."""
        with self._lock:
            holding = self._held.get(name)
            if holding is None or name == self._handing_over:
                return None
            if time.monotonic() >= holding.valid_until:
                return None
            return holding.token

    @contextmanager
    def acting(self, name: str) -> Iterator[int | None]:
        """Act under `name` while the block runs: yields its token (None when not held
        here); a hand-over of it chosen meanwhile waits until the block ends."""
        with self._lock:
            self._acting[name] = self._acting.get(name, 0) + 1
        token = self.token(name)
        try:
            yield token
        finally:
            with self._lock:
                self._acting[name] -= 1
                if not self._acting[name]:
                    del self._acting[name]
                due = self._handing_over == name and name not in self._acting
            if due:  # the step the hand-over waited for is done: release now
                self._finish_hand_over()

    def fence(self, name: str) -> Callable[[Connection], None] | None:
        """The write check of `name` under the token held now, or None when not held."""
        token = self.token(name)
        return None if token is None else self.leases.fence(name, self.holder, token)

    def held(self) -> dict[str, int]:
        """The leases held now, each with its token."""
        with self._lock:
            names = sorted(self._held)
        found = {name: self.token(name) for name in names}
        return {name: token for name, token in found.items() if token is not None}

    def handing_over(self) -> str | None:
        """The lease being handed over to another instance once its current step ends."""
        with self._lock:
            return self._handing_over

    def share(self) -> dict[str, int | None]:
        """The last round's fair share of this instance and the live instances it saw."""
        with self._lock:
            return {"share": self._share, "live_instances": self._live}

    def start(self) -> None:
        """Keep the wanted leases in a thread of its own until `stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="commitledger-leases", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing and release every lease held, so another instance takes over now;
        no longer count among the live instances."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.ttl)
            self._thread = None
        with self._round_lock, self._lock:
            held, self._held = self._held, {}
            self._handing_over = None
        for name, holding in held.items():
            self._release(name, holding.token)
        if self.balance:
            try:
                self.leases.withdraw(self.holder)
            except Exception as exc:  # the database is away: the heartbeat expires by itself
                log.warning("instance not withdrawn", extra={"reason": type(exc).__name__})

    def round(self) -> None:
        """One round: announce this instance, renew what is held, hand over one lease beyond
        the fair share, take free leases up to it (see `ledger.lease_instances`)."""
        with self._round_lock:
            started = time.monotonic()
            with self._lock:
                wanted = sorted(self._wanted)
                held = dict(self._held)
            if self.balance:
                self.leases.announce(self.holder, wanted, self.ttl)
            for name, holding in held.items():
                self._renew(name, holding.token, started)
            if not self.balance:
                for name in wanted:
                    if name not in self._held:
                        self._take(name, started)
                return
            view = self.leases.view()
            with self._lock:
                self._share, self._live = view.share(self.holder), len(view.instances)
            self._choose_hand_over(view)
            with self._lock:
                holding_count = len(self._held)
            beyond_share = False  # one a round: the others, at their share too, take the rest
            for name in wanted:
                if name in self._held or name in view.holders:
                    continue
                if not view.may_take(self.holder, name, holding_count):
                    continue
                over = holding_count >= view.share(self.holder)
                if over and beyond_share:
                    continue
                if self._take(name, started):
                    holding_count += 1
                    beyond_share = beyond_share or over

    def _loop(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.round()
            except Exception as exc:  # the database is away: held leases run out locally
                log.warning("leases not kept", extra={"reason": type(exc).__name__})

    def _renew(self, name: str, token: int, started: float) -> None:
        if self.leases.renew(name, self.holder, token, self.ttl):
            self._keep(name, token, started)
            return
        log.warning("lease lost", extra={"lease": name, "token": token})
        with self._lock:
            self._held.pop(name, None)
            if self._handing_over == name:
                self._handing_over = None

    def _take(self, name: str, started: float) -> bool:
        token = self.leases.acquire(name, self.holder, self.ttl)
        if token is None:
            return False
        log.info("lease taken", extra={"lease": name, "token": token})
        self._keep(name, token, started)
        return True

    def _keep(self, name: str, token: int, started: float) -> None:
        with self._lock:
            self._held[name] = _Holding(token, started + self.ttl - self.poll)

    def _choose_hand_over(self, view: LeaseView) -> None:
        """Mark the newest lease beyond the fair share for hand-over (one at a time); it is
        released at once if no step acts under it, else when the step ends."""
        with self._lock:
            if self._handing_over is not None:
                return
            name = view.to_hand_over(self.holder, list(self._held))
            if name is None:
                return
            self._handing_over = name
        log.info("lease handed over", extra={"lease": name, "share": view.share(self.holder)})
        self._finish_hand_over()

    def _finish_hand_over(self) -> None:
        with self._round_lock:
            with self._lock:
                name = self._handing_over
                if name is None or name in self._acting:
                    return
                holding = self._held.pop(name, None)
                self._handing_over = None
            if holding is not None:
                self._release(name, holding.token)

    def _release(self, name: str, token: int) -> None:
        try:
            self.leases.release(name, self.holder, token)
        except Exception as exc:  # the database is away: the lease expires by itself
            log.warning("lease not released", extra={"lease": name, "reason": type(exc).__name__})

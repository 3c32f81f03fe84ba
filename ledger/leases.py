"""Leases and locks across service instances sharing one store: who does a job, who signs now.

Two kinds, because two kinds of work need coordinating:

- **Leases** (`Leases`, kept by a `LeaseKeeper`) for roles held for long: a department's
  anchoring, the feed follower, the lifecycle job, the notices. A row per name in the table
  `leases` (holder, fencing token, expiry), on SQLite and PostgreSQL alike. A lease is taken
  only when free or expired, and every taking gets a fencing token one above the last, so a
  holder that was paused past its expiry and wakes up is told by its token that it holds
  nothing any more: writes that a stale holder could spoil (a batch formed, marked sent) check
  the token in their own transaction (`Leases.fence`). A holder killed with SIGKILL stops
  renewing; its lease is free once its time is out, and another instance's keeper takes it at
  its next poll: within ttl + one poll interval. Expiry is read from the database's clock, the
  one clock every instance shares, so skew between machines does not matter.

  Leases spread over the instances: each announces itself with a heartbeat row and seeks at
  most its fair share of the leases it is eligible for, handing its newest excess lease over
  (gracefully: after the step that uses it) to a rival under its share
  (`ledger.lease_instances`; the keeper's thread is `ledger.lease_keeper`). A job run from
  the command line takes the same lease without announcing itself (`balance=False`).

  PostgreSQL's advisory locks alone would not do here: they are free the instant a
  connection drops (a network hiccup hands the role over while the old holder still works),
  they carry no token a stale holder could be fenced with, they exist on PostgreSQL only
  (the single-instance SQLite store needs the same code path), and nobody but the holder's
  session can see who holds one (`/readyz` and the operator can read the table).

- **Locks** (`StoreLocks.hold`) for short exclusive sections that must never run twice at
  once and must be free the moment their holder dies: signing and broadcasting with an
  account (its nonce), and a department's actions (its outcome outbox). On PostgreSQL a
  session-level advisory lock on a connection of its own: waiting blocks in the server
  without polling, and a dead holder's connection takes its locks with it. On SQLite, where
  one instance serves the store, a lock of this process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Float,
    MetaData,
    String,
    Table,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from ledger.errors import StoreError
from ledger.lease_instances import (
    HOLDER_MAX,
    NAME_MAX,
    LeaseView,
    instances_table,
    parse_wanted,
    wanted_text,
)
from ledger.store import Store
from ledger.tables import apply_migrations, migrations_table

log = logging.getLogger("commitledger.leases")

TTL_MIN_S, TTL_MAX_S = 0.5, 3600.0
LOCK_WAIT_S = 30.0  # how long `StoreLocks.hold` waits by default

metadata = MetaData()
lease_migrations = migrations_table("lease_migrations", metadata)

leases_table = Table(
    "leases",
    metadata,
    Column("name", String(NAME_MAX), primary_key=True),
    Column("holder", String(HOLDER_MAX), nullable=False),
    Column("token", BigInteger, nullable=False),  # one above the previous taking's
    Column("acquired_at", Float, nullable=False),  # the database's clock, Unix seconds
    Column("expires_at", Float, nullable=False),
)


def _create_v1(connection: Connection) -> None:
    metadata.create_all(connection, tables=[leases_table])


def _create_v2(connection: Connection) -> None:
    instances_table.create(connection)


MIGRATIONS = {1: _create_v1, 2: _create_v2}
GONE_AFTER_S = 86400.0  # an instance's heartbeat row is dropped a day after it expired


class LeaseLostError(StoreError):
    """A write made under a lease found the lease held by another token (or expired): this
    instance no longer holds the role, and must not write as if it did."""


class LeaseHeldError(StoreError):
    """Another instance held the lease for longer than this one would wait for it."""


class LockTimeoutError(StoreError, TimeoutError):
    """Another instance held the lock for longer than this one would wait."""


def instance_id() -> str:
    """This process's default name as a lease holder: hostname:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"[:HOLDER_MAX]


def _db_now(dialect: str) -> ColumnElement[float]:
    """The database's clock in Unix seconds, as an SQL expression."""
    if dialect == "postgresql":
        return func.extract("epoch", func.clock_timestamp()).cast(Float)
    return (func.julianday("now") - 2440587.5) * 86400.0


@dataclass(frozen=True)
class LeaseRow:
    """A lease as the table holds it; `held` is whether it is unexpired now."""

    name: str
    holder: str
    token: int
    acquired_at: float
    expires_at: float
    held: bool


def check_lease(name: str, holder: str, ttl: float) -> None:
    """ValueError unless the name, holder and ttl of a lease are in their bounds."""
    if not 0 < len(name) <= NAME_MAX or not 0 < len(holder) <= HOLDER_MAX:
        raise ValueError(f"a lease name and holder have 1 to {NAME_MAX} characters")
    if not TTL_MIN_S <= ttl <= TTL_MAX_S:
        raise ValueError(f"a lease's ttl is {TTL_MIN_S} to {TTL_MAX_S} seconds")


class Leases:
    """The lease table of a store: acquire, renew, release, fence."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._writer = store.engine.execution_options(immediate=True)
        self._now = _db_now(store.dialect)
        try:
            with self._writer.begin() as connection:
                apply_migrations(connection, lease_migrations, MIGRATIONS)
        except IntegrityError:  # another instance created the table at the same moment
            with self._writer.begin() as connection:
                apply_migrations(connection, lease_migrations, MIGRATIONS)

    def acquire(self, name: str, holder: str, ttl: float) -> int | None:
        """Take `name` for `ttl` seconds if it is free or expired: its new fencing token (one
        above the last taking's), or None while another holds it (or just took it)."""
        check_lease(name, holder, ttl)
        try:
            with self._writer.begin() as connection:
                now = float(connection.execute(select(self._now)).scalar_one())
                row = connection.execute(
                    select(leases_table).where(leases_table.c.name == name).with_for_update()
                ).first()
                values = {"holder": holder, "acquired_at": now, "expires_at": now + ttl}
                if row is None:
                    connection.execute(leases_table.insert().values(name=name, token=1, **values))
                    return 1
                if row.expires_at > now:
                    return None
                token = int(row.token) + 1
                taken = connection.execute(
                    update(leases_table)
                    .where(leases_table.c.name == name, leases_table.c.token == row.token)
                    .values(token=token, **values)
                ).rowcount
                return token if taken == 1 else None
        except IntegrityError:  # PostgreSQL: another instance inserted the first row first
            return None

    def renew(self, name: str, holder: str, token: int, ttl: float) -> bool:
        """Extend a lease held unexpired by `holder` under `token` to `ttl` from now; False
        when it is lost (expired, or taken by another)."""
        check_lease(name, holder, ttl)
        with self._writer.begin() as connection:
            renewed = connection.execute(
                update(leases_table)
                .where(
                    leases_table.c.name == name,
                    leases_table.c.holder == holder,
                    leases_table.c.token == token,
                    leases_table.c.expires_at > self._now,
                )
                .values(expires_at=self._now + literal(ttl, Float))
            ).rowcount
        return renewed == 1

    def release(self, name: str, holder: str, token: int) -> bool:
        """Give the lease up at once (another may take it at its next poll); the row stays,
        so the next token is still one above this one. False when it was not held so."""
        with self._writer.begin() as connection:
            released = connection.execute(
                update(leases_table)
                .where(
                    leases_table.c.name == name,
                    leases_table.c.holder == holder,
                    leases_table.c.token == token,
                )
                .values(expires_at=self._now)
            ).rowcount
        return released == 1

    def fence(self, name: str, holder: str, token: int) -> Callable[[Connection], None]:
        """A check for a write's own transaction: LeaseLostError unless `name` is still held
        unexpired by `holder` under `token`. On PostgreSQL it locks the lease row for share,
        so nobody takes the lease over until the write commits."""

        def check(connection: Connection) -> None:
            found = connection.execute(
                select(leases_table.c.token)
                .where(
                    leases_table.c.name == name,
                    leases_table.c.holder == holder,
                    leases_table.c.token == token,
                    leases_table.c.expires_at > self._now,
                )
                .with_for_update(read=True)
            ).first()
            if found is None:
                raise LeaseLostError(f"the lease {name} (token {token}) is no longer {holder}'s")

        return check

    def all(self) -> list[LeaseRow]:
        """Every lease ever taken, by name, with whether it is held now."""
        with self.store.engine.connect() as connection:
            now = float(connection.execute(select(self._now)).scalar_one())
            rows = connection.execute(select(leases_table).order_by(leases_table.c.name)).all()
        return [
            LeaseRow(
                r.name, r.holder, int(r.token), r.acquired_at, r.expires_at, r.expires_at > now
            )
            for r in rows
        ]

    def row(self, name: str) -> LeaseRow | None:
        """The lease `name` as the table holds it (None if never taken)."""
        return next((r for r in self.all() if r.name == name), None)

    def announce(self, holder: str, wanted: list[str], ttl: float) -> None:
        """Write `holder`'s heartbeat: live for `ttl` from now, seeking `wanted`; drop the
        rows of instances gone for a day."""
        check_lease("x", holder, ttl)
        values = {
            "wanted": wanted_text(wanted),
            "seen_at": self._now,
            "expires_at": self._now + literal(ttl, Float),
        }
        row = instances_table.c
        for _ in range(2):  # a first insert racing nobody but a restart of the same name
            try:
                with self._writer.begin() as connection:
                    connection.execute(
                        instances_table.delete().where(
                            row.expires_at < self._now - literal(GONE_AFTER_S, Float)
                        )
                    )
                    updated = connection.execute(
                        update(instances_table).where(row.holder == holder).values(**values)
                    ).rowcount
                    if updated == 0:
                        connection.execute(instances_table.insert().values(holder=holder, **values))
                return
            except IntegrityError:
                continue

    def withdraw(self, holder: str) -> None:
        """Remove `holder`'s heartbeat: it no longer counts among the live instances."""
        with self._writer.begin() as connection:
            connection.execute(instances_table.delete().where(instances_table.c.holder == holder))

    def view(self) -> LeaseView:
        """One snapshot of the live instances and the leases held now (`LeaseView`)."""
        with self.store.engine.connect() as connection, connection.begin():
            now = float(connection.execute(select(self._now)).scalar_one())
            live = connection.execute(
                select(instances_table.c.holder, instances_table.c.wanted).where(
                    instances_table.c.expires_at > now
                )
            ).all()
            held = connection.execute(
                select(leases_table.c.name, leases_table.c.holder).where(
                    leases_table.c.expires_at > now
                )
            ).all()
        return LeaseView(
            {r.holder: parse_wanted(r.wanted) for r in live}, {r.name: r.holder for r in held}
        )


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for `name`."""
    digest = hashlib.sha256(b"commitledger/lock/" + name.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class StoreLocks:
    """Exclusive sections across the instances of one store, reentrant within a thread."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._local: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._depths = threading.local()  # name -> how deep the calling thread holds it

    def _thread_lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._local.setdefault(name, threading.Lock())

    @contextmanager
    def hold(self, name: str, wait: float = LOCK_WAIT_S) -> Iterator[None]:
        """Hold `name` while the block runs; LockTimeoutError after `wait` seconds."""
        depths: dict[str, int] = self._depths.__dict__.setdefault("held", {})
        if depths.get(name):
            depths[name] += 1
            try:
                yield
            finally:
                depths[name] -= 1
            return
        local = self._thread_lock(name)
        if not local.acquire(timeout=wait):
            raise LockTimeoutError(f"{name} is held in this process for over {wait:.0f} s")
        depths[name] = 1
        try:
            if self.store.dialect == "postgresql":
                with self._advisory(name, wait):
                    yield
            else:
                yield
        finally:
            depths.pop(name, None)
            local.release()

    @contextmanager
    def _advisory(self, name: str, wait: float) -> Iterator[None]:
        key = _lock_key(name)
        connection = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            connection.execute(text(f"SET lock_timeout = {int(wait * 1000)}"))
            try:
                connection.execute(select(func.pg_advisory_lock(key)))
            except Exception as exc:
                if "lock timeout" in str(exc).lower():
                    raise LockTimeoutError(
                        f"another instance held {name} for over {wait:.0f} s"
                    ) from None
                raise
            try:
                yield
            finally:
                try:
                    connection.execute(select(func.pg_advisory_unlock(key)))
                    connection.execute(text("SET lock_timeout = 0"))
                except Exception:  # the session is broken: dropping it frees the lock
                    connection.invalidate()
        finally:
            connection.close()

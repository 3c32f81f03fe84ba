"""Webhook subscribers of the feed and how far delivery got: their rows, leases, dead letters.

The tables are the feed's (`verifier.feed.tables`, same migrations); this is their use.
Each subscriber's signing secret is kept sealed under the master key (`Vault.seal_secret`);
secrets a store kept in clear are sealed when it is first opened here with the vault.
A subscriber of the government scope (the credit platform) has its X25519 public key in
`feed_platform_keys` (its own table: created here when missing), which the deliverer seals
each record's full identity to (`verifier.feed.sharing`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from ledger import Vault, VaultError, is_sealed_secret
from verifier.errors import FeedError
from verifier.feed.records import Scope
from verifier.feed.sharing import GOVERNMENT_SCOPE, key_id, parse_platform_key, shared_body
from verifier.feed.store import FeedStore, in_scope, published
from verifier.feed.tables import feed_dead_letters, feed_meta, feed_records, feed_subscribers

_platform_metadata = MetaData()
feed_platform_keys = Table(
    "feed_platform_keys",
    _platform_metadata,
    Column("subscriber_id", Integer, primary_key=True, autoincrement=False),
    Column("kid", String(16), nullable=False),
    Column("public_key", LargeBinary(32), nullable=False),  # raw X25519
)


@dataclass(frozen=True)
class Subscriber:
    """A webhook subscriber and how far its deliveries got."""

    id: int
    url: str
    scope: str
    secret: bytes
    created_at: float
    delivered_seq: int
    attempts: int
    next_attempt_at: float
    last_error: str | None
    active: bool


@dataclass(frozen=True)
class DeadLetter:
    """A record given up on for one subscriber after the allowed tries."""

    subscriber_id: int
    seq: int
    record_id: str
    attempts: int
    last_error: str
    dead_at: float


SECRET_PURPOSE = b"feed-webhook-secret"


def _secret(stored: bytes, vault: Vault | None) -> bytes:
    if not is_sealed_secret(stored):
        return stored  # a store from before sealing, opened without the vault
    return b"" if vault is None else vault.open_secret(stored, SECRET_PURPOSE)


def _subscriber(row: Any, vault: Vault | None) -> Subscriber:
    return Subscriber(
        row.id,
        row.url,
        row.scope,
        _secret(bytes(row.secret), vault),  # b"": sealed, and no vault to open it
        row.created_at,
        int(row.delivered_seq),
        row.attempts,
        row.next_attempt_at,
        row.last_error,
        bool(row.active),
    )


def _platform_key(scope: str, platform_key: str | bytes | None) -> bytes | None:
    if scope == GOVERNMENT_SCOPE and platform_key is None:
        raise FeedError(
            "the government scope carries identities sealed to the credit platform's key: "
            "give its X25519 public key (--platform-key)"
        )
    if scope != GOVERNMENT_SCOPE and platform_key is not None:
        raise FeedError(f"a platform key is for the {GOVERNMENT_SCOPE} scope only, not {scope!r}")
    return None if platform_key is None else parse_platform_key(platform_key)


class Subscriptions:
    """Subscribers, their delivery positions and dead letters, on the feed's tables."""

    def __init__(self, feed: FeedStore, vault: Vault | None = None) -> None:
        self.feed = feed  # opened first: it applies the tables' migrations
        self._engine = feed.store.engine
        self._writer = feed.store.engine.execution_options(immediate=True)
        self._vault = vault
        self._create_platform_keys()
        if vault is not None:
            self._seal_clear_secrets(vault)

    def _create_platform_keys(self) -> None:
        """The platform keys' table, made once (looked for without the write lock)."""
        with self._engine.connect() as connection:
            if inspect(connection).has_table(feed_platform_keys.name):
                return
        try:
            with self._writer.begin() as connection:
                feed_platform_keys.create(connection, checkfirst=True)
        except DBAPIError:  # another process created it at the same moment (PostgreSQL)
            with self._engine.connect() as connection:
                if not inspect(connection).has_table(feed_platform_keys.name):
                    raise

    def _seal_clear_secrets(self, vault: Vault) -> None:
        """Seal the secrets a store from before sealing kept in clear (once; in place)."""
        with self._writer.begin() as connection:
            rows = connection.execute(select(feed_subscribers.c.id, feed_subscribers.c.secret))
            for row in rows.all():
                secret = bytes(row.secret)
                if not is_sealed_secret(secret):
                    connection.execute(
                        update(feed_subscribers)
                        .where(feed_subscribers.c.id == row.id)
                        .values(secret=vault.seal_secret(secret, SECRET_PURPOSE))
                    )

    def add_subscriber(
        self,
        url: str,
        scope: str,
        secret: bytes,
        *,
        from_start: bool = True,
        now: float | None = None,
        platform_key: str | bytes | None = None,
    ) -> int:
        """Register a webhook: it receives every record (or, not `from_start`, the new ones).
        Needs the vault: the secret is kept sealed. The government scope needs the
        platform's X25519 `platform_key` (base64 of the raw 32 bytes, or PEM), and only it
        takes one; a refused subscriber stores nothing."""
        raw_key = _platform_key(scope, platform_key)
        if self._vault is None:
            raise VaultError("a webhook's secret is kept sealed: give the master key")
        sealed = self._vault.seal_secret(secret, SECRET_PURPOSE)
        stamp = time.time() if now is None else now
        with self._writer.begin() as connection:
            head = int(connection.execute(select(feed_meta.c.head)).scalar_one())
            inserted = connection.execute(
                feed_subscribers.insert().values(
                    url=url,
                    scope=scope,
                    secret=sealed,
                    created_at=stamp,
                    delivered_seq=0 if from_start else head,
                    attempts=0,
                    next_attempt_at=0.0,
                    lease_until=0.0,
                    active=True,
                )
            ).inserted_primary_key
            assert inserted is not None
            if raw_key is not None:
                connection.execute(
                    feed_platform_keys.insert().values(
                        subscriber_id=int(inserted[0]), kid=key_id(raw_key), public_key=raw_key
                    )
                )
        return int(inserted[0])

    def platform_key(self, subscriber_id: int) -> bytes | None:
        """The raw X25519 key a government-scope subscriber's identities are sealed to."""
        with self._engine.connect() as connection:
            found = connection.execute(
                select(feed_platform_keys.c.public_key).where(
                    feed_platform_keys.c.subscriber_id == subscriber_id
                )
            ).scalar_one_or_none()
        return None if found is None else bytes(found)

    def platform_key_by_kid(self, kid: str) -> bytes | None:
        """The registered platform key whose key id is `kid` (None: no subscriber has it)."""
        with self._engine.connect() as connection:
            found = connection.execute(
                select(feed_platform_keys.c.public_key)
                .where(feed_platform_keys.c.kid == kid)
                .limit(1)
            ).scalar_one_or_none()
        return None if found is None else bytes(found)

    def shared(self, body: str, platform_key: bytes) -> str:
        """A record body with the committer's identity sealed to `platform_key` added (as
        it is when the store cannot name the committer: erased, elsewhere, no vault)."""
        return shared_body(body, self.feed.store, self._vault, platform_key)

    def subscribers(self) -> list[Subscriber]:
        """Every subscriber, oldest first."""
        with self._engine.connect() as connection:
            rows = connection.execute(select(feed_subscribers).order_by(feed_subscribers.c.id))
            return [_subscriber(row, self._vault) for row in rows]

    def claim(self, now: float, lease_s: float) -> list[Subscriber]:
        """Active subscribers due for a try that no other deliverer holds; leased to this one."""
        due = select(feed_subscribers).where(
            feed_subscribers.c.active.is_(True),
            feed_subscribers.c.next_attempt_at <= now,
            feed_subscribers.c.lease_until <= now,
        )
        with self._engine.connect() as connection:
            # Looked at first without the write lock: most rounds have nobody due.
            if connection.execute(due.limit(1)).first() is None:
                return []
        with self._writer.begin() as connection:
            rows = connection.execute(due.with_for_update(skip_locked=True)).all()
            if rows:
                connection.execute(
                    update(feed_subscribers)
                    .where(feed_subscribers.c.id.in_([row.id for row in rows]))
                    .values(lease_until=now + lease_s)
                )
        return [_subscriber(row, self._vault) for row in rows]

    def undelivered(
        self, subscriber: Subscriber, scopes: Sequence[Scope], limit: int
    ) -> list[tuple[int, str, str]]:
        """(sequence, record id, body) of the next records for `subscriber`, in order."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(feed_records.c.seq, feed_records.c.record_id, feed_records.c.body)
                .where(
                    feed_records.c.seq > subscriber.delivered_seq,
                    published(),  # in order: never a record past one awaiting its signer
                    in_scope(scopes),
                )
                .order_by(feed_records.c.seq)
                .limit(limit)
            ).all()
        return [(int(row.seq), row.record_id, row.body) for row in rows]

    def delivered(self, subscriber_id: int, seq: int) -> None:
        """Everything up to `seq` reached the subscriber: move on, clear the failures."""
        with self._writer.begin() as connection:
            connection.execute(
                update(feed_subscribers)
                .where(feed_subscribers.c.id == subscriber_id)
                .values(delivered_seq=seq, attempts=0, next_attempt_at=0.0, last_error=None)
            )

    def failed(self, subscriber_id: int, attempts: int, retry_at: float, error: str) -> None:
        """A try failed: wait until `retry_at`, release the lease."""
        with self._writer.begin() as connection:
            connection.execute(
                update(feed_subscribers)
                .where(feed_subscribers.c.id == subscriber_id)
                .values(
                    attempts=attempts, next_attempt_at=retry_at, last_error=error, lease_until=0.0
                )
            )

    def dead(
        self, subscriber_id: int, seq: int, record_id: str, attempts: int, error: str, now: float
    ) -> None:
        """Give up on one record for a subscriber: a dead letter, and on to the next."""
        with self._writer.begin() as connection:
            exists = connection.execute(
                select(feed_dead_letters.c.id).where(
                    feed_dead_letters.c.subscriber_id == subscriber_id,
                    feed_dead_letters.c.seq == seq,
                )
            ).first()
            if exists is None:
                connection.execute(
                    feed_dead_letters.insert().values(
                        subscriber_id=subscriber_id,
                        seq=seq,
                        record_id=record_id,
                        attempts=attempts,
                        last_error=error,
                        dead_at=now,
                    )
                )
            connection.execute(
                update(feed_subscribers)
                .where(feed_subscribers.c.id == subscriber_id)
                .values(
                    delivered_seq=seq,
                    attempts=0,
                    next_attempt_at=0.0,
                    last_error=error,
                    lease_until=0.0,
                )
            )

    def release(self, subscriber_id: int) -> None:
        """Let another deliverer take the subscriber."""
        with self._writer.begin() as connection:
            connection.execute(
                update(feed_subscribers)
                .where(feed_subscribers.c.id == subscriber_id)
                .values(lease_until=0.0)
            )

    def dead_letters(self, subscriber_id: int | None = None) -> list[DeadLetter]:
        """Dead letters, oldest first."""
        query = select(feed_dead_letters).order_by(feed_dead_letters.c.id)
        if subscriber_id is not None:
            query = query.where(feed_dead_letters.c.subscriber_id == subscriber_id)
        with self._engine.connect() as connection:
            return [
                DeadLetter(
                    r.subscriber_id, int(r.seq), r.record_id, r.attempts, r.last_error, r.dead_at
                )
                for r in connection.execute(query)
            ]

    def lag(self, subscriber: Subscriber, scopes: Sequence[Scope]) -> tuple[int, float | None]:
        """Records not yet delivered to `subscriber`, and when the oldest entered the feed."""
        with self._engine.connect() as connection:
            count, oldest = connection.execute(
                select(func.count(), func.min(feed_records.c.appended_at)).where(
                    feed_records.c.seq > subscriber.delivered_seq,
                    published(),  # in order: never a record past one awaiting its signer
                    in_scope(scopes),
                )
            ).one()
        return int(count), None if oldest is None else float(oldest)


def shared_page(feed: FeedStore, bodies: Sequence[str], kid: str) -> list[str]:
    """Record bodies as a government-scope reader pulls them: each with the committer's
    identity sealed to the registered platform key `kid`; FeedError when no subscriber
    registered that key (a reader cannot name a key of its own choosing)."""
    key = Subscriptions(feed).platform_key_by_kid(kid)
    if key is None:
        raise FeedError(f"no government subscriber registered the platform key {kid!r}")
    return [shared_body(body, feed.store, feed.vault, key) for body in bodies]

"""Pushes feed records to webhook subscribers: at least once, in order, signed, with backoff.

Each POST carries one record, `Idempotency-Key: <record id>` (a receiver that stores the
key once gets each record exactly once), and `Feed-Signature: t=<unix>,v1=<hex>`, the
HMAC-SHA256 under the subscriber's secret of "<t>." followed by the body. A failed try
waits `backoff_initial_s * 2**(tries - 1)` (capped) before the next; after `max_attempts`
tries the record becomes a dead letter and delivery goes on with the next one.

A subscriber of the government scope gets each record with `sealed_identity` added at
delivery (`verifier.feed.sharing.shared_body`): the committer's full identity sealed to its
platform key, never stored or logged in clear.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from ledger import sign_webhook_body, verify_webhook_body
from verifier.errors import FeedError
from verifier.feed.records import VISIBLE_SCOPES, ConsumerScope
from verifier.feed.sharing import GOVERNMENT_SCOPE
from verifier.feed.subscribers import Subscriber, Subscriptions

log = logging.getLogger("commitledger.feed.webhooks")

SIGNATURE_HEADER = "Feed-Signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a public marker, not a secret


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard delivery tries."""

    max_attempts: int = 8
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 300.0
    timeout_s: float = 5.0
    per_step: int = 200  # records sent to one subscriber in one step at most
    lease_s: float = 120.0

    def backoff(self, attempts: int) -> float:
        """The wait after `attempts` failed tries."""
        return float(min(self.backoff_max_s, self.backoff_initial_s * 2 ** (attempts - 1)))


def new_secret() -> tuple[str, bytes]:
    """A subscriber's signing secret: (the text shown once, its bytes)."""
    raw = secrets.token_bytes(32)
    return SECRET_PREFIX + raw.hex(), raw


def parse_secret(text: str) -> bytes:
    """The bytes of a secret as `new_secret` shows it."""
    try:
        raw = bytes.fromhex(text.removeprefix(SECRET_PREFIX))
    except ValueError:
        raise FeedError("not a webhook secret") from None
    if len(raw) != 32:
        raise FeedError("not a webhook secret")
    return raw


def sign_body(secret: bytes, body: bytes, timestamp: int) -> str:
    """The Feed-Signature header value of `body` sent at `timestamp` (the notices to
    applicants are signed the same way: `ledger.sign_webhook_body`)."""
    return sign_webhook_body(secret, body, timestamp)


def verify_body(
    secret: bytes, header: str, body: bytes, now: float | None = None, tolerance_s: float = 300
) -> bool:
    """Whether a Feed-Signature header is ours over `body` and recent (for receivers)."""
    return verify_webhook_body(secret, header, body, now, tolerance_s)


def check_url(url: str) -> str:
    """A subscriber URL: http(s) with a host; FeedError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 2000:
        raise FeedError(f"a webhook URL is http(s)://host/...: {url[:80]!r}")
    return url


class WebhookDeliverer:
    """One delivery step at a time over every subscriber due (leased, so several may run)."""

    def __init__(
        self,
        subscriptions: Subscriptions,
        policy: DeliveryPolicy | None = None,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.subscriptions = subscriptions
        self.policy = policy or DeliveryPolicy()
        self._client = client or httpx.Client(timeout=self.policy.timeout_s)
        self._owns_client = client is None
        self._clock = clock

    def close(self) -> None:
        """Close the HTTP connections."""
        if self._owns_client:
            self._client.close()

    def deliver(self) -> int:
        """Try every due subscriber once; how many records were delivered or dead-lettered."""
        done = 0
        now = self._clock()
        lease_until = now + self.policy.lease_s
        for subscriber in self.subscriptions.claim(now, self.policy.lease_s):
            try:
                done += self._deliver_to(subscriber, lease_until)
            except Exception:
                self.subscriptions.release(subscriber.id)
                raise
        return done

    def _deliver_to(self, subscriber: Subscriber, lease_until: float) -> int:
        scope: ConsumerScope = subscriber.scope  # type: ignore[assignment]
        pending = self.subscriptions.undelivered(
            subscriber, VISIBLE_SCOPES[scope], self.policy.per_step
        )
        attempts = subscriber.attempts
        done = 0
        platform_key = (
            self.subscriptions.platform_key(subscriber.id) if scope == GOVERNMENT_SCOPE else None
        )
        for seq, record_id, body in pending:
            if self._clock() + self.policy.timeout_s > lease_until:
                # Past its lease another deliverer may take the subscriber: two would send
                # at once, and the slower one move its position back.
                break
            if platform_key is not None:
                body = self.subscriptions.shared(body, platform_key)
            error = self._post(subscriber, record_id, seq, body.encode("utf-8"))
            if error is None:
                self.subscriptions.delivered(subscriber.id, seq)
                attempts = 0
                done += 1
                continue
            attempts += 1
            now = self._clock()
            if attempts >= self.policy.max_attempts:
                log.warning(
                    "record given up after %d tries", attempts, extra={"subscriber": subscriber.id}
                )
                self.subscriptions.dead(subscriber.id, seq, record_id, attempts, error, now)
                done += 1
            else:
                retry_at = now + self.policy.backoff(attempts)
                self.subscriptions.failed(subscriber.id, attempts, retry_at, error)
            return done  # the lease is released; the next step goes on
        self.subscriptions.release(subscriber.id)
        return done

    def _post(self, subscriber: Subscriber, record_id: str, seq: int, body: bytes) -> str | None:
        """None when the receiver took the record (2xx), else why not (no personal data)."""
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": record_id,
            "Feed-Sequence": str(seq),
            SIGNATURE_HEADER: sign_body(subscriber.secret, body, int(self._clock())),
        }
        try:
            response = self._client.post(subscriber.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return type(exc).__name__
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

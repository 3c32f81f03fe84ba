"""Delivers the notices of proposed breaches to each department's messaging gateway: at least
once, signed, with backoff and dead letters.

Each POST carries one notice as JSON (`{"notice": <signed notice>, ...}`) with
`Idempotency-Key: <the notice's evidence hash>` (a gateway that stores the key once sends
each notice once), `Notice-Signature: t=<unix>,v1=<hex>` (HMAC-SHA256 under the gateway's
secret of "<t>." and the body, as the feed's webhooks sign) when a secret is set, and
`Authorization: Bearer <token>` when a token is. A 2xx answer is delivery: the defence
period is counted again from that day (never shorter than counted from the issue day). A
failed try waits `backoff_initial_s * 2**(tries - 1)` (capped) before the next; after
`max_attempts` tries the notice becomes a dead letter, listed for the department by
`notices list --dead` until `notices deliver --retry-dead` tries it again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date

import httpx

from ledger import Store, hex32, sign_webhook_body
from verifier.calendar import WorkingDays
from verifier.catalog import Catalog
from verifier.engine.notices import defence_deadline
from verifier.records import Delivery, Notice, NoticeRecords

log = logging.getLogger("commitledger.verifier.notify")

SIGNATURE_HEADER = "Notice-Signature"


@dataclass(frozen=True)
class NoticeGateway:
    """A department's messaging gateway: where its notices go, and how they are signed."""

    url: str
    secret: bytes | None = field(default=None, repr=False)  # HMAC-SHA256 of the body
    token: str | None = field(default=None, repr=False)  # Authorization: Bearer


@dataclass(frozen=True)
class NoticePolicy:
    """How hard delivery tries."""

    max_attempts: int = 8
    backoff_initial_s: float = 30.0
    backoff_max_s: float = 3600.0
    timeout_s: float = 10.0
    per_step: int = 100  # notices one department sends in one step at most

    def backoff(self, attempts: int) -> float:
        """The wait after `attempts` failed tries."""
        return float(min(self.backoff_max_s, self.backoff_initial_s * 2 ** (attempts - 1)))


@dataclass
class DeliverySummary:
    """What one delivery step did."""

    delivered: int = 0
    failed: int = 0  # tries that failed and will be retried
    dead: int = 0  # notices that became dead letters now

    def to_json_obj(self) -> dict[str, int]:
        """The summary as plain JSON."""
        return {"delivered": self.delivered, "failed": self.failed, "dead": self.dead}


def notice_payload(notice: Notice) -> bytes:
    """The body POSTed for `notice`: the signed notice and where it stands, compact JSON."""
    body = {
        "notice_id": notice.id,
        "department": notice.department,
        "commitment_hash": hex32(notice.commitment_hash),
        "evidence": hex32(notice.evidence),
        "notice": notice.signed,
    }
    return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


class NoticeDeliverer:
    """One delivery step at a time for each department with a gateway."""

    def __init__(
        self,
        store: Store,
        gateways: Mapping[str, NoticeGateway],
        *,
        catalog: Catalog,
        calendar: WorkingDays,
        today: Callable[[], date],
        policy: NoticePolicy | None = None,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.records = NoticeRecords(store)
        self.gateways = dict(gateways)
        self.catalog = catalog
        self.calendar = calendar
        self.today = today
        self.policy = policy or NoticePolicy()
        self._client = client or httpx.Client(timeout=self.policy.timeout_s)
        self._owns_client = client is None
        self._clock = clock

    def close(self) -> None:
        """Close the HTTP connections."""
        if self._owns_client:
            self._client.close()

    def deliver(self, departments: list[str] | None = None) -> DeliverySummary:
        """Try each due notice of the departments (all with a gateway) once."""
        summary = DeliverySummary()
        for department in departments if departments is not None else sorted(self.gateways):
            gateway = self.gateways.get(department)
            if gateway is None:
                continue  # no gateway: its notices wait, listed, never dead for that
            due = self.records.due_deliveries(department, self._clock(), self.policy.per_step)
            for delivery in due:
                self._try(gateway, delivery, summary)
        return summary

    def _try(self, gateway: NoticeGateway, delivery: Delivery, summary: DeliverySummary) -> None:
        notice = self.records.notice(delivery.notice_id)
        if notice is None:
            return
        body = notice_payload(notice)
        now = self._clock()
        headers = {"Content-Type": "application/json", "Idempotency-Key": hex32(notice.evidence)}
        if gateway.secret is not None:
            headers[SIGNATURE_HEADER] = sign_webhook_body(gateway.secret, body, int(now))
        if gateway.token is not None:
            headers["Authorization"] = f"Bearer {gateway.token}"
        error = None
        try:
            response = self._client.post(gateway.url, content=body, headers=headers)
            if not 200 <= response.status_code < 300:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__  # never the body or the URL's query
        if error is None:
            on = self.today()
            matter = self.catalog.matter(str(notice.body["matter_code"]))
            defence_by = max(notice.defence_by, defence_deadline(self.calendar, on, matter))
            self.records.delivered(notice.id, now, on, defence_by)
            summary.delivered += 1
            log.info("notice %d delivered", notice.id)
            return
        attempts = delivery.attempts + 1
        dead = attempts >= self.policy.max_attempts
        self.records.failed(notice.id, attempts, now + self.policy.backoff(attempts), error, dead)
        if dead:
            summary.dead += 1
            log.warning("notice %d is a dead letter after %d tries: %s", notice.id, attempts, error)
        else:
            summary.failed += 1

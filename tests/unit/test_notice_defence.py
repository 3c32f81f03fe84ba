"""Notice and defence before publication (issue #14): a FALSE finding is a proposed breach,
notified through the department's messaging gateway, published only when the defence period
ends or an officer confirms it; an accepted statement leaves no breach."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from support.verifier_world import DAY, World, open_world

from api.demo import running
from ledger import Chain, Hash32, Status, hex32, verify_webhook_body
from verifier import SignedReport, verify_report
from verifier.engine import (
    LAPSED,
    NoticeDeliverer,
    NoticeGateway,
    NoticePolicy,
    confirm_breach,
    decide_statement,
    file_statement,
    run_lifecycle,
)
from verifier.records import NoticeClosedError, NoticeRecords, StatementError

SECRET = b"s" * 32


@pytest.fixture
def world(tmp_path: Path, embedded_chain: Chain) -> Iterator[World]:
    with open_world(embedded_chain, tmp_path) as opened:
        yield opened


class Gateway:
    """A department's messaging gateway on loopback: can fail, checks the signature."""

    def __init__(self) -> None:
        self.failing = False
        self.tries = 0
        self.received: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/healthz", lambda _r: PlainTextResponse("ok")),
                Route("/notices", self.hook, methods=["POST"]),
            ]
        )

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self.tries += 1
            if self.failing:
                return PlainTextResponse("down", status_code=503)
            if not verify_webhook_body(SECRET, request.headers["notice-signature"], body):
                return PlainTextResponse("bad signature", status_code=400)
            self.received[request.headers["idempotency-key"]] = json.loads(body)
        return PlainTextResponse("sent")


_OPEN: list[NoticeDeliverer] = []


@pytest.fixture
def gateway() -> Iterator[tuple[Gateway, str]]:
    receiver = Gateway()
    with running(receiver.app) as url:
        yield receiver, f"{url}/notices"
        while _OPEN:
            _OPEN.pop().close()


def deliverer(world: World, url: str, on: date, **policy: Any) -> NoticeDeliverer:
    """A deliverer to the gateway at `url`, its day `on`; closed with the gateway."""
    made = NoticeDeliverer(
        world.store,
        {"BJ-HRSS": NoticeGateway(url, secret=SECRET)},
        catalog=world.catalog,
        calendar=world.engine.calendar,
        today=lambda: on,
        policy=NoticePolicy(backoff_initial_s=0.0, backoff_max_s=0.0, **policy),
    )
    _OPEN.append(made)
    return made


def proposed(world: World) -> Hash32:
    commitment, _ = world.commit_kind("false")
    summary = world.engine.run(DAY)
    assert summary.breaches == []
    return commitment


def no_breach(world: World, commitment: Hash32, fingerprint: bytes) -> None:
    assert world.engine.records.search_breaches(DAY + timedelta(days=30)).total == 0
    assert world.ledger.open_breaches() == 0
    assert not world.store.is_excluded(fingerprint)
    assert world.status(commitment) != Status.BREACHED


def test_a_false_finding_is_proposed_notified_and_not_published(
    world: World, gateway: tuple[Gateway, str]
) -> None:
    receiver, url = gateway
    commitment, signed = world.commit_kind("false")
    summary = world.engine.run(DAY)

    assert summary.breaches == []
    assert world.outcome_events(commitment) == [(Status.ANCHORED, Status.PROPOSED)]
    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.state == "proposed"
    no_breach(world, commitment, world.fingerprint(signed))

    notice = NoticeRecords(world.store).open_for(commitment)
    assert notice is not None and notice.delivered_on is None
    # the chain's evidence of the Proposed move is the signed notice's hash
    assert verification.evidence == notice.evidence
    report = SignedReport.from_json_obj(notice.signed)
    verify_report(report)
    assert report.evidence == notice.evidence
    body = notice.body
    assert body["commitment_hash"] == hex32(commitment)
    assert body["outcome"] == "false" and body["comparisons"]
    assert body["defence_working_days"] == 5
    assert body["answer"]["route"] == f"POST /v1/commitments/{hex32(commitment)}/statement"
    assert signed.applicant.id_number not in json.dumps(body, ensure_ascii=False)
    assert signed.applicant.name not in json.dumps(body, ensure_ascii=False)

    delivered_on = DAY + timedelta(days=2)
    sent = deliverer(world, url, delivered_on).deliver()
    assert sent.delivered == 1
    [got] = receiver.received.values()
    assert got["notice"] == notice.signed
    assert list(receiver.received) == [hex32(notice.evidence)]
    after = NoticeRecords(world.store).open_for(commitment)
    assert after is not None and after.delivered_on == delivered_on
    # five working days counted from the delivery day, not from the finding
    assert after.defence_by == world.engine.calendar.add(delivered_on, 5).day
    assert deliverer(world, url, delivered_on).deliver().delivered == 0  # once is enough
    no_breach(world, commitment, world.fingerprint(signed))


def test_a_failing_gateway_dead_letters_then_a_retry_delivers(
    world: World, gateway: tuple[Gateway, str]
) -> None:
    receiver, url = gateway
    commitment = proposed(world)
    receiver.failing = True
    sender = deliverer(world, url, DAY, max_attempts=3)
    results = [sender.deliver() for _ in range(4)]
    assert [(r.failed, r.dead) for r in results] == [(1, 0), (1, 0), (0, 1), (0, 0)]
    records = NoticeRecords(world.store)
    [dead] = records.deliveries("BJ-HRSS", dead=True)
    assert dead.attempts == 3 and dead.last_error == "HTTP 503"
    notice = records.open_for(commitment)
    assert notice is not None and notice.delivered_on is None
    # undelivered: the lifecycle never publishes, however late
    late = run_lifecycle(world.engine.actions, DAY + timedelta(days=60))
    assert late.published == ()
    assert world.status(commitment) == Status.PROPOSED

    receiver.failing = False
    assert records.retry_dead("BJ-HRSS") == 1
    assert sender.deliver().delivered == 1
    assert receiver.tries == 4
    assert records.deliveries("BJ-HRSS", dead=True) == []


def test_the_lifecycle_publishes_when_the_defence_period_ends(
    world: World, gateway: tuple[Gateway, str]
) -> None:
    _receiver, url = gateway
    commitment, signed = world.commit_kind("false")
    world.engine.run(DAY)
    deliverer(world, url, DAY).deliver()
    notice = NoticeRecords(world.store).open_for(commitment)
    assert notice is not None

    # on the last day to answer nothing is published yet
    assert run_lifecycle(world.engine.actions, notice.defence_by).published == ()
    no_breach(world, commitment, world.fingerprint(signed))

    after = notice.defence_by + timedelta(days=1)
    summary = run_lifecycle(world.engine.actions, after)
    assert summary.published == (hex32(commitment),)
    assert world.outcome_events(commitment) == [
        (Status.ANCHORED, Status.PROPOSED),
        (Status.PROPOSED, Status.BREACHED),
    ]
    page = world.engine.records.search_breaches(after)
    assert page.total == 1 and page.records[0].commitment_hash == hex32(commitment)
    assert page.records[0].decision_date == after
    assert world.store.is_excluded(world.fingerprint(signed))
    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.report is not None
    # the publication names what decided it: the period's end, not the engine
    assert verification.report["report"]["decided_by"] == LAPSED
    settled = NoticeRecords(world.store).latest_for(commitment)
    assert settled is not None and settled.state == "published"
    assert settled.decision_evidence == verification.evidence
    # a second run publishes nothing twice
    assert run_lifecycle(world.engine.actions, after).published == ()
    assert world.ledger.open_breaches() == 1


def test_an_officer_confirms_a_proposed_breach_early(world: World) -> None:
    commitment, signed = world.commit_kind("false")
    world.engine.run(DAY)
    confirm_breach(world.engine.actions, commitment, DAY, "officer Wang", "the finding stands")
    assert world.status(commitment) == Status.BREACHED
    assert world.engine.records.search_breaches(DAY).total == 1
    assert world.store.is_excluded(world.fingerprint(signed))
    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.report is not None
    report = verification.report["report"]
    assert report["decided_by"] == "officer Wang"
    assert "the finding stands" in report["note"]
    with pytest.raises(Exception, match="no proposed breach"):
        confirm_breach(world.engine.actions, commitment, DAY, "officer Wang", "again")


def test_an_accepted_statement_leaves_no_breach(world: World) -> None:
    commitment, signed = world.commit_kind("false")
    world.engine.run(DAY)
    text = "我已于上月补缴社保，附缴费凭证。"
    statement = file_statement(world.store, world.vault, commitment, text, on=DAY)
    records = NoticeRecords(world.store)
    notice = records.open_for(commitment)
    assert notice is not None
    assert records.statement_text(notice, statement, world.vault) == text
    # sealed: the text is nowhere in the database file in clear
    assert text.encode("utf-8") not in world.db_path.read_bytes()

    # a statement filed: the period's end does not publish over it
    late = run_lifecycle(world.engine.actions, notice.defence_by + timedelta(days=1))
    assert late.published == () and late.awaiting_officer == 0  # not delivered: not lapsed
    decide_statement(
        world.engine.actions,
        commitment,
        DAY,
        "officer Li",
        accept=True,
        reasons="payment proven",
        outcome="kept",
    )
    assert world.outcome_events(commitment) == [
        (Status.ANCHORED, Status.PROPOSED),
        (Status.PROPOSED, Status.KEPT),
    ]
    no_breach(world, commitment, world.fingerprint(signed))
    settled = records.latest_for(commitment)
    assert settled is not None and settled.state == "defended" and settled.outcome == "kept"
    assert records.reasons_text(settled, world.vault) is not None
    assert "payment proven" in (records.reasons_text(settled, world.vault) or "")
    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.state == "kept"
    assert verification.report is not None
    assert verification.report["report"]["decided_by"] == "officer Li"
    with pytest.raises(NoticeClosedError):
        file_statement(world.store, world.vault, commitment, "too late", on=DAY)


def test_a_rejected_statement_publishes_with_the_reasons(world: World) -> None:
    commitment = proposed(world)
    file_statement(world.store, world.vault, commitment, "I disagree", filed_by="officer")
    decide_statement(
        world.engine.actions, commitment, DAY, "officer Li", accept=False, reasons="no proof"
    )
    assert world.status(commitment) == Status.BREACHED
    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.report is not None
    assert "no proof" in verification.report["report"]["note"]


@pytest.mark.parametrize("text", ["", "   ", "x" * 5001, 42, "bad\x00text"])
def test_a_statement_out_of_bounds_stores_nothing(world: World, text: object) -> None:
    commitment = proposed(world)
    with pytest.raises(StatementError):
        file_statement(world.store, world.vault, commitment, text)
    notice = NoticeRecords(world.store).open_for(commitment)
    assert notice is not None and NoticeRecords(world.store).statements_of(notice) == []


def test_a_statement_needs_a_proposed_breach(world: World) -> None:
    [kept] = world.commit(world.pick("agree"))
    world.engine.run(DAY)
    with pytest.raises(NoticeClosedError):
        file_statement(world.store, world.vault, kept, "nothing to answer")
    assert NoticeRecords(world.store).latest_for(kept) is None

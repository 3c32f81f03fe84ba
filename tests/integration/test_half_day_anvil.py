"""Issue 15's Done-when on anvil: commitments received online and at the counter across a
weekend, National Day 2026 and its make-up working days; decided, some late; exactly the
late ones are late in the decision records, and the records are anchored on chain.

`half_day` (the fixture) is the world other checks reuse: the service on anvil, each case's
commitment stored with its receipt time, decided at its decision time (two left undecided,
one long overdue), the decision records anchored.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from support.deployment import HRSS, deploy
from support.service_world import ServiceWorld, open_service

from api.demo import sample_commitments
from ledger import (
    AnvilNode,
    Chain,
    DecisionRecord,
    Hash32,
    department_id,
    hex32,
    keccak256,
    sign_commitment,
)
from verifier import BEIJING


def bj(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BEIJING)


@dataclass(frozen=True)
class Case:
    """One commitment: how and when it was received, when due, when decided (None: not
    yet), and whether that decision is late."""

    name: str
    channel: str
    received: datetime
    due: datetime | None
    decided: datetime | None
    late: bool


ONLINE, COUNTER = "online", "counter"
# Office hours 09:00-12:00 and 13:00-17:00: half a working day online is 3.5 hours.
CASES = (
    # A weekend: Friday 16:00 -> 1 h Friday, 2.5 h Monday.
    Case("weekend-online", ONLINE, bj(12, 4, 16), bj(12, 7, 11, 30), bj(12, 7, 11), False),
    Case("weekend-online-late", ONLINE, bj(12, 4, 16, 30), bj(12, 7, 12), bj(12, 7, 12, 10), True),
    # National Day, Oct 1-7: Wednesday Sep 30 15:00 -> 2 h, then 1.5 h on Thursday Oct 8.
    Case("holiday-online", ONLINE, bj(9, 30, 15), bj(10, 8, 10, 30), bj(10, 8, 10), False),
    Case("holiday-online-late", ONLINE, bj(9, 30, 16), bj(10, 8, 11, 30), bj(10, 8, 13, 30), True),
    # Saturday Oct 10 is a make-up working day: due there, not on Monday.
    Case("make-up-online-late", ONLINE, bj(10, 9, 16), bj(10, 10, 11, 30), bj(10, 12, 9, 5), True),
    Case("on-make-up-day", ONLINE, bj(10, 10, 14), bj(10, 12, 9, 30), bj(10, 12, 9, 20), False),
    # At the counter: the end of the office period of receipt, or of the next one.
    # Saturday Sep 19 is a plain weekend day; Sunday Sep 20 a make-up working day.
    Case("weekend-counter", COUNTER, bj(9, 19, 10), bj(9, 20, 12), bj(9, 20, 11), False),
    Case("holiday-counter-late", COUNTER, bj(10, 1, 10), bj(10, 8, 12), bj(10, 8, 14), True),
    Case("lunch-counter", COUNTER, bj(12, 7, 12, 30), bj(12, 7, 17), bj(12, 7, 16, 50), False),
    Case("weekend-counter-late", COUNTER, bj(12, 4, 16, 30), bj(12, 4, 17), bj(12, 7, 9), True),
)  # fmt: skip
LATE = frozenset(case.name for case in CASES if case.late)
_serials = itertools.count(1)


@dataclass
class HalfDay:
    """The service on anvil with every case's commitment, decided and anchored."""

    world: ServiceWorld
    hashes: dict[str, Hash32] = field(default_factory=dict)
    cases: dict[str, Case] = field(default_factory=dict)

    def receive(self, case: Case) -> Hash32:
        """Check and seal a signed commitment of `case.channel` as intake does, and store it
        as received at `case.received` (intake itself stamps the clock's time)."""
        document = list(sample_commitments(next(_serials), seed=7, department=HRSS))[-1]
        signed = sign_commitment(
            document.model_copy(update={"channel": case.channel}), self.world.applicant_key
        )
        intake = self.world.context.intake
        assert intake is not None
        item = intake.checker.check(signed)
        assert item.channel == case.channel
        assert self.world.store.add_commitments([item], now=case.received.timestamp()) == [True]
        self.hashes[case.name] = item.hash
        self.cases[case.name] = case
        return item.hash


def open_half_day(tmp_path: Path, node: AnvilNode) -> HalfDay:
    """Every case received and decided (through the department's decision desk, at its
    time), an overdue and a fresh online commitment left undecided, all anchored."""
    d = deploy(Chain.connect(node.url, kind="anvil"))
    world = open_service(tmp_path, d, rpc=node.url)
    half_day = HalfDay(world)
    desk = world.context.decision_desk()
    for case in CASES:
        digest = half_day.receive(case)
        if case.decided is not None:
            desk.decide(digest, "approved", "clerk-7", HRSS, now=case.decided)
    # Undecided: one received 40 days ago (long overdue whatever today is), one just now.
    now = datetime.fromtimestamp(time.time(), UTC)
    for name, at in (("overdue-undecided", now - timedelta(days=40)), ("fresh-undecided", now)):
        half_day.receive(Case(name, "online", at, None, None, False))
    world.anchor()
    return half_day


@pytest.fixture
def half_day(tmp_path: Path, anvil: AnvilNode) -> Iterator[HalfDay]:
    opened = open_half_day(tmp_path, anvil)
    try:
        yield opened
    finally:
        opened.world.context.close()


def test_exactly_the_late_decisions_are_late(half_day: HalfDay) -> None:
    store = half_day.world.store
    for case in CASES:
        decided = store.decision_of(half_day.hashes[case.name])
        assert decided is not None, case.name
        record = decided.record
        assert record.channel == case.channel, case.name
        assert record.received_at == case.received, case.name
        assert record.due_at == case.due, case.name
        assert record.decided_at == case.decided, case.name
        assert record.late is case.late, case.name
    with store.engine.connect() as connection:
        rows = connection.execute(text("SELECT commitment_hash, late FROM decisions")).all()
    names = {digest: name for name, digest in half_day.hashes.items()}
    assert {names[Hash32(bytes(row.commitment_hash))] for row in rows if row.late} == LATE
    assert len(rows) == len(CASES)  # the undecided have no record
    for name in ("overdue-undecided", "fresh-undecided"):
        assert store.decision_of(half_day.hashes[name]) is None


def test_a_decision_over_http_is_late_by_the_clock(half_day: HalfDay) -> None:
    world = half_day.world
    overdue = half_day.hashes["overdue-undecided"]
    answer = world.client.post(
        f"/v1/commitments/{hex32(overdue)}/decision",
        json={"result": "refused"},
        headers=world.auth(),
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["late"] is True
    fresh = half_day.hashes["fresh-undecided"]
    answer = world.client.post(
        f"/v1/commitments/{hex32(fresh)}/decision",
        json={"result": "approved"},
        headers=world.auth(),
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["late"] is False  # half a working day is still ahead


def test_the_decision_records_are_anchored_on_chain(half_day: HalfDay) -> None:
    world = half_day.world
    ledger = world.deployment.ledger
    department = department_id(HRSS)
    for case in CASES:
        digest = half_day.hashes[case.name]
        decided = world.store.decision_of(digest)
        assert decided is not None
        # The stored record is the one hashed: its JSON read back hashes to the leaf.
        again = DecisionRecord.from_json_obj(decided.record.to_json_obj())
        assert again.hash() == decided.hash == keccak256(decided.record.canonical())
        assert decided.state == "anchored", case.name
        anchoring = world.store.decision_anchoring(digest)
        assert anchoring is not None
        batch, proof = anchoring
        assert batch.state == "anchored" and batch.block_number is not None
        assert ledger.is_anchored(department, decided.hash, batch.root, proof), case.name
        # A decision moved back within its limit is no longer what the chain holds.
        moved = DecisionRecord(**{**decided.record.__dict__, "decided_at": decided.record.due_at})
        if case.late:
            assert not ledger.is_anchored(department, moved.hash(), batch.root, proof)
        shown = world.client.get(
            f"/v1/commitments/{hex32(digest)}/decision", headers=world.auth()
        ).json()
        assert shown["late"] is case.late and shown["state"] == "anchored"
        assert shown["anchoring"]["root"] == hex32(batch.root)
        assert shown["anchoring"]["block_number"] == batch.block_number

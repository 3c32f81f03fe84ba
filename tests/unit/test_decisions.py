"""Deciding applications: due times from the store's receipt, late or not, each decided once."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from support.deployment import MARKET, Deployment
from support.privacy import cli, explain
from support.service_world import ServiceWorld, assert_problem, open_service

from ledger import DecisionRecord, Hash32, NewCommitment, Store, hex32, keccak256
from verifier import BEIJING, OfficeHours, WorkingDays, default_catalog
from verifier.engine import DecisionDesk, DecisionRefusedError
from verifier.records import StatsQuery, VerifierRecords

HRSS, MATTER = "BJ-HRSS", "BJ-HRSS-0001"
FRIDAY_16 = datetime(2026, 12, 4, 16, tzinfo=BEIJING)


def bj(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=BEIJING)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    VerifierRecords(opened)  # the statistics counters' tables
    yield opened
    opened.close()


@pytest.fixture
def desk(store: Store) -> DecisionDesk:
    return DecisionDesk(store, default_catalog(), OfficeHours.parse("09:00-12:00,13:00-17:00"))


def received(
    store: Store, n: int, at: datetime, channel: str | None = "online", department: str = HRSS
) -> Hash32:
    """A commitment of `department` stored as received at `at` through `channel`."""
    item = NewCommitment(
        hash=keccak256(f"document {n}".encode()),
        code=f"C{n:06d}",
        matter_code=MATTER if department == HRSS else "BJ-SAMR-0001",
        department=department,
        applicant_fingerprint=keccak256(f"applicant {n}".encode()),
        sealed=b"sealed",
        wrapped_key=b"key",
        channel=channel,
    )
    assert store.add_commitments([item], now=at.timestamp()) == [True]
    return item.hash


def test_an_online_decision_within_half_a_day_is_not_late(store: Store, desk: DecisionDesk) -> None:
    digest = received(store, 1, FRIDAY_16)
    decided = desk.decide(digest, "approved", "a1b2c3d4e5f6", HRSS, now=bj(12, 7, 11, 29))
    record = decided.record
    assert record.due_at == bj(12, 7, 11, 30)  # 1 h on Friday, 2.5 h on Monday
    assert record.received_at == FRIDAY_16
    assert (record.channel, record.result, record.decided_by) == (
        "online",
        "approved",
        "a1b2c3d4e5f6",
    )
    assert not record.late
    assert decided.hash == record.hash()
    assert decided.state == "pending"  # waits for the department's next batch
    assert store.decision_of(digest) == decided


def test_an_online_decision_past_half_a_day_is_late(store: Store, desk: DecisionDesk) -> None:
    digest = received(store, 1, FRIDAY_16)
    decided = desk.decide(digest, "refused", "a1b2c3d4e5f6", HRSS, now=bj(12, 7, 11, 31))
    assert decided.record.late
    assert decided.record.result == "refused"


def test_the_counter_decides_within_the_period_of_receipt(store: Store, desk: DecisionDesk) -> None:
    on_time = received(store, 1, bj(12, 7, 12, 30), channel="counter")  # lunch: by 17:00
    late = received(store, 2, bj(12, 7, 9, 5), channel="counter")  # by noon
    assert not desk.decide(on_time, "approved", "clerk-7", HRSS, now=bj(12, 7, 16, 59)).record.late
    decided = desk.decide(late, "approved", "clerk-7", HRSS, now=bj(12, 7, 12, 1))
    assert decided.record.due_at == bj(12, 7, 12)
    assert decided.record.late


def test_holidays_do_not_count_and_make_up_days_do(store: Store, desk: DecisionDesk) -> None:
    eve = received(store, 1, bj(9, 30, 16))
    friday = received(store, 2, bj(10, 9, 16))
    assert desk.decide(eve, "approved", "clerk-7", HRSS, now=bj(10, 8, 11)).record.due_at == bj(
        10, 8, 11, 30
    )
    # Saturday Oct 10 is a make-up working day: the half day ends there.
    decided = desk.decide(friday, "approved", "clerk-7", HRSS, now=bj(10, 12, 9))
    assert decided.record.due_at == bj(10, 10, 11, 30)
    assert decided.record.late


def test_a_commitment_stored_without_its_channel_counts_as_online(
    store: Store, desk: DecisionDesk
) -> None:
    digest = received(store, 1, FRIDAY_16, channel=None)
    decided = desk.decide(digest, "approved", "clerk-7", HRSS, now=bj(12, 7, 11))
    assert decided.record.channel == "online"


def test_another_departments_commitment_is_refused_and_nothing_stored(
    store: Store, desk: DecisionDesk
) -> None:
    digest = received(store, 1, FRIDAY_16, department="BJ-SAMR")
    with pytest.raises(DecisionRefusedError, match="another department") as refused:
        desk.decide(digest, "approved", "clerk-7", HRSS, now=bj(12, 7, 11))
    assert refused.value.reason == "other-department"
    assert store.decision_of(digest) is None
    stored = store.get(digest)
    assert stored is not None and stored.decided_at is None


def test_an_unknown_commitment_is_refused(desk: DecisionDesk) -> None:
    with pytest.raises(DecisionRefusedError) as refused:
        desk.decide(keccak256(b"nothing"), "approved", "clerk-7", HRSS, now=bj(12, 7, 11))
    assert refused.value.reason == "unknown"


def test_a_second_decision_is_refused_and_the_first_kept(store: Store, desk: DecisionDesk) -> None:
    digest = received(store, 1, FRIDAY_16)
    first = desk.decide(digest, "approved", "clerk-7", HRSS, now=bj(12, 7, 11))
    with pytest.raises(DecisionRefusedError) as refused:
        desk.decide(digest, "refused", "clerk-8", HRSS, now=bj(12, 7, 11, 5))
    assert refused.value.reason == "decided"
    assert store.decision_of(digest) == first


def test_an_erased_commitment_is_not_decided(store: Store, desk: DecisionDesk) -> None:
    digest = received(store, 1, FRIDAY_16)
    assert store.erase(digest)
    with pytest.raises(DecisionRefusedError) as refused:
        desk.decide(digest, "approved", "clerk-7", HRSS, now=bj(12, 7, 11))
    assert refused.value.reason == "erased"


def test_the_counter_runs_in_the_decisions_transaction(store: Store) -> None:
    seen: list[DecisionRecord] = []

    def count(connection: Connection, record: DecisionRecord) -> None:
        # Inside the transaction, the commitment is already marked decided.
        marked = connection.execute(
            text("SELECT decided_at FROM commitments WHERE hash = :h"), {"h": record.commitment}
        ).scalar_one()
        assert marked == pytest.approx(record.decided_at.timestamp())
        seen.append(record)

    hours = OfficeHours.parse("09:00-12:00,13:00-17:00", WorkingDays())
    desk = DecisionDesk(store, default_catalog(), hours, counter=count)
    digest = received(store, 1, FRIDAY_16)
    decided = desk.decide(digest, "approved", "clerk-7", HRSS, now=bj(12, 7, 11))
    assert seen == [decided.record]


def test_a_failing_counter_leaves_nothing_decided(store: Store) -> None:
    def broken(_connection: Connection, _record: DecisionRecord) -> None:
        raise RuntimeError("the counters table is gone")

    hours = OfficeHours.parse("09:00-12:00,13:00-17:00")
    desk = DecisionDesk(store, default_catalog(), hours, counter=broken)
    digest = received(store, 1, FRIDAY_16)
    with pytest.raises(RuntimeError):
        desk.decide(digest, "approved", "clerk-7", HRSS, now=bj(12, 7, 11))
    assert store.decision_of(digest) is None
    stored = store.get(digest)
    assert stored is not None and stored.decided_at is None


def test_a_person_s_name_is_not_an_account(store: Store, desk: DecisionDesk) -> None:
    digest = received(store, 1, FRIDAY_16)
    with pytest.raises(ValueError, match="decided_by"):
        desk.decide(digest, "approved", "张 三", HRSS, now=bj(12, 7, 11))
    assert store.decision_of(digest) is None


# ------------------------------------------------------------------ over HTTP


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    opened = open_service(tmp_path, embedded_deployment)
    yield opened
    opened.context.close()


def _url(digest: Hash32) -> str:
    return f"/v1/commitments/{hex32(digest)}/decision"


def test_a_registrar_decides_over_http_and_reads_it_back(world: ServiceWorld) -> None:
    late = received(world.store, 1, FRIDAY_16)  # due Monday Dec 7 11:30, long past
    on_time = received(world.store, 2, datetime.now(UTC))
    answer = world.client.post(_url(late), json={"result": "refused"}, headers=world.auth())
    assert answer.status_code == 201, answer.text
    shown = answer.json()
    assert shown["schema"] == "commitledger.decision/1"
    assert shown["received_at"] == "2026-12-04T08:00:00.000Z"
    assert shown["due_at"] == "2026-12-07T03:30:00.000Z"
    assert shown["late"] is True and shown["result"] == "refused"
    assert shown["due_provisional"] is False
    token_id = world.context.tokens.lookup(world.tokens[HRSS, "registrar"])
    assert token_id is not None and shown["decided_by"] == token_id.token_id
    stored = world.store.decision_of(late)
    assert stored is not None and shown["record_hash"] == hex32(stored.hash)
    assert shown["state"] == "pending" and shown["anchoring"] is None
    read = world.client.get(_url(late), headers=world.auth(role="verifier"))
    assert read.status_code == 200 and read.json() == shown
    fresh = world.client.post(_url(on_time), json={"result": "approved"}, headers=world.auth())
    assert fresh.status_code == 201 and fresh.json()["late"] is False


def test_another_departments_registrar_is_refused_and_nothing_stored(
    world: ServiceWorld,
) -> None:
    digest = received(world.store, 1, FRIDAY_16)
    answer = world.client.post(
        _url(digest), json={"result": "approved"}, headers=world.auth(MARKET)
    )
    assert_problem(answer, 403, "other-department")
    assert world.store.decision_of(digest) is None
    assert_problem(
        world.client.get(_url(digest), headers=world.auth(MARKET)), 403, "other-department"
    )


def test_a_second_decision_is_a_409_and_undecided_is_a_404(world: ServiceWorld) -> None:
    digest = received(world.store, 1, FRIDAY_16)
    assert_problem(world.client.get(_url(digest), headers=world.auth()), 404, "not-found")
    first = world.client.post(_url(digest), json={"result": "approved"}, headers=world.auth())
    assert first.status_code == 201
    again = world.client.post(_url(digest), json={"result": "refused"}, headers=world.auth())
    assert_problem(again, 409, "action-refused")
    assert world.client.get(_url(digest), headers=world.auth()).json() == first.json()


@pytest.mark.parametrize(
    ("body", "role", "status", "slug"),
    [
        ({"result": "maybe"}, "registrar", 422, "invalid-request"),
        ({"result": "approved", "by": "x"}, "registrar", 422, "invalid-request"),
        ({"result": "approved"}, "verifier", 403, "wrong-role"),
    ],
)
def test_bad_requests_are_problems(
    world: ServiceWorld, body: dict[str, str], role: str, status: int, slug: str
) -> None:
    digest = received(world.store, 1, FRIDAY_16)
    answer = world.client.post(_url(digest), json=body, headers=world.auth(role=role))
    assert_problem(answer, status, slug)
    assert world.store.decision_of(digest) is None


def test_unknown_and_unauthenticated(world: ServiceWorld) -> None:
    unknown = keccak256(b"nothing")
    answer = world.client.post(_url(unknown), json={"result": "approved"}, headers=world.auth())
    assert_problem(answer, 404, "not-found")
    digest = received(world.store, 1, FRIDAY_16)
    assert_problem(
        world.client.post(_url(digest), json={"result": "approved"}), 401, "unauthorized"
    )


def test_the_desk_counts_decisions_and_late_ones_in_the_statistics(
    store: Store, desk: DecisionDesk
) -> None:
    on_time = received(store, 1, FRIDAY_16)
    late = received(store, 2, FRIDAY_16)
    desk.decide(on_time, "approved", "clerk-7", HRSS, now=bj(12, 7, 11))
    desk.decide(late, "approved", "clerk-7", HRSS, now=bj(12, 7, 15))
    rows = StatsQuery(store).counts(
        department=HRSS, start=bj(12, 7, 0).date(), end=bj(12, 7, 0).date(), catch_up=False
    )
    assert [(r.matter_code, r.count("decided"), r.count("decided_late")) for r in rows] == [
        (MATTER, 2, 1)
    ]


# ------------------------------------------------------------------ on the command line


def test_the_command_line_decides_once_and_shows_the_decision(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = Store(f"sqlite:///{data / 'ledger.db'}")
    digest = received(store, 1, FRIDAY_16)
    store.close()
    args = ("--department", HRSS, "--data-dir", data, "--json")
    made = cli("decide", hex32(digest), "--result", "approved", "--by", "clerk-7", *args)
    assert made.exit_code == 0, explain(made)
    shown = json.loads(made.stdout)["decision"]
    assert (shown["decided_by"], shown["late"]) == ("clerk-7", True)  # due Dec 7, 03:30 UTC
    assert shown["due_at"] == "2026-12-07T03:30:00.000Z"
    read = cli("decision", hex32(digest), *args)
    assert read.exit_code == 0 and json.loads(read.stdout)["decision"] == shown
    again = cli("decide", hex32(digest), "--result", "refused", "--by", "clerk-8", *args)
    assert again.exit_code == 1 and "decided already" in again.stdout
    other = ("--department", MARKET, "--data-dir", data, "--json")
    assert cli("decision", hex32(digest), *other).exit_code == 1
    bad = cli("decide", hex32(digest), "--result", "maybe", "--by", "clerk-7", *args)
    assert bad.exit_code == 2
    human = cli("decision", hex32(digest), "--department", HRSS, "--data-dir", data)
    assert human.exit_code == 0 and "LATE" in human.stdout and "clerk-7" in human.stdout


def test_a_due_time_in_an_unpublished_year_is_shown_provisional(
    store: Store, desk: DecisionDesk
) -> None:
    last = desk.hours.calendar.last_year
    eve = datetime(last, 12, 31, 16, tzinfo=BEIJING)
    digest = received(store, 1, eve)
    desk.decide(
        digest, "approved", "clerk-7", HRSS, now=datetime(last + 1, 1, 4, 9, tzinfo=BEIJING)
    )
    shown = desk.view(digest)
    assert shown is not None and shown["due_provisional"] is True
    inside = received(store, 2, FRIDAY_16)
    desk.decide(inside, "approved", "clerk-7", HRSS, now=bj(12, 7, 11))
    inside_shown = desk.view(inside)
    assert inside_shown is not None and inside_shown["due_provisional"] is False

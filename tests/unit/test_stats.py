"""Statistics counters: bumped in the transactions that record outcomes, breaches and
decisions, read back per day, week and month with their rates, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update
from support.breach_records import CARD, HRSS, POINTS, SAMR, breach, commitment, fingerprint
from support.deployment import Deployment
from support.service_world import DAY as SERVICE_DAY
from support.service_world import ServiceWorld, assert_problem, open_service

from ledger import LedgerContract, Status, Store, commitments, keccak256
from verifier import RecordsError, default_catalog
from verifier.feed import department_codes
from verifier.records import (
    ALL_MATTERS,
    METRICS,
    RecordedOutcome,
    StatsAnswers,
    StatsQuery,
    VerifierRecords,
    beijing_day,
    bounded_range,
    bump,
    catch_up_received,
    check_stats_chain,
    count_decision,
    counters_generation,
    rebuild_counters,
    rebuild_rollups,
    stat_counts,
    stat_periods,
    stats_csv,
    transition_metrics,
    verifications_table,
)

# 2026-12-07 20:00 in Beijing: the counters' day is Beijing's.
MONDAY_EVENING = datetime(2026, 12, 7, 12, 0, tzinfo=UTC).timestamp()
MONDAY = date(2026, 12, 7)
DEMO_COUNT = 200  # as tests/unit/test_demo.py: a rectification, breaches and a repair


@dataclass(frozen=True)
class Deadline:
    day: date
    provisional: bool = False


@dataclass(frozen=True)
class Decision:
    """The fields of ledger.DecisionRecord that count_decision reads."""

    department: str
    matter_code: str
    decided_at: datetime
    late: bool


@pytest.fixture
def records(store: Store) -> VerifierRecords:
    return VerifierRecords(store)


def totals(store: Store, **kwargs: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    for (_, _, metric), n in StatsQuery(store).totals(**kwargs).items():
        found[metric] = found.get(metric, 0) + n
    return found


def outcome(n: int, state: str, rectify_by: date | None = None) -> RecordedOutcome:
    status = {"kept": 3, "mismatch": 4, "manual": 5, "breached": 6, "proposed": 10}[state]
    return RecordedOutcome(
        commitment(n),
        state,  # type: ignore[arg-type]
        status,
        keccak256(f"evidence {n} {state}".encode()),
        {"n": n},
        keccak256(b"tx"),
        7,
        rectify_by,
    )


def test_a_bump_adds_to_its_counter_and_makes_it_when_missing(records: VerifierRecords) -> None:
    store = records.store
    with store.engine.begin() as connection:
        bump(connection, HRSS, POINTS.code, MONDAY, "kept")
        bump(connection, HRSS, POINTS.code, "2026-12-07", "kept", 2)
        bump(connection, HRSS, POINTS.code, MONDAY, "verified", 4)
    with store.engine.begin() as connection:
        bump(connection, HRSS, POINTS.code, MONDAY, "kept")
    [row] = StatsQuery(store).counts(today=MONDAY)
    assert (row.department, row.matter_code, row.start) == (HRSS, POINTS.code, MONDAY)
    assert row.counts == {"kept": 4, "verified": 4}
    assert row.kept_rate == 1.0 and row.breach_rate == 0.0 and row.late_rate is None


def test_a_bump_with_a_bad_metric_or_day_is_refused(records: VerifierRecords) -> None:
    with records.store.engine.begin() as connection:
        with pytest.raises(RecordsError, match="unknown statistics metric"):
            bump(connection, HRSS, POINTS.code, MONDAY, "lost")  # type: ignore[arg-type]
        with pytest.raises(RecordsError, match="YYYY-MM-DD"):
            bump(connection, HRSS, POINTS.code, "2026-12", "kept")


def test_outcomes_are_counted_as_they_are_recorded(records: VerifierRecords) -> None:
    store = records.store
    for n in range(1, 6):
        records.schedule(commitment(n), POINTS.code, HRSS, Deadline(date(2026, 12, 31)))
    records.record_outcomes(
        [
            outcome(1, "kept"),
            outcome(2, "mismatch", date(2026, 12, 20)),
            outcome(3, "proposed"),
            outcome(4, "manual"),
        ],
        now=MONDAY_EVENING,
    )
    records.record_outcomes([outcome(2, "kept"), outcome(3, "breached")], now=MONDAY_EVENING)
    records.record_outcomes([outcome(1, "kept")], now=MONDAY_EVENING)  # a retry: no move
    records.set_state(commitment(5), "withdrawn", now=MONDAY_EVENING)
    assert totals(store) == {
        "verified": 4,
        "kept": 2,
        "mismatch": 1,
        "mismatch_closed": 1,
        "proposed": 1,
        "proposed_closed": 1,
        "false": 1,
        "breach": 1,
        "manual": 1,
        "withdrawn": 1,
    }
    standing = StatsQuery(store).standing()[(HRSS, POINTS.code)]
    assert standing == {
        "kept": 2,
        "mismatch": 0,
        "needs_manual": 1,
        "proposed": 0,
        "breached": 1,
        "corrected": 0,
        "withdrawn": 1,
    }
    [row] = StatsQuery(store).counts(today=MONDAY)
    assert row.start == date.fromisoformat(beijing_day(MONDAY_EVENING))
    assert row.kept_rate == 0.5 and row.breach_rate == 0.25


def test_a_refused_move_counts_nothing(records: VerifierRecords) -> None:
    records.schedule(commitment(1), POINTS.code, HRSS, Deadline(date(2026, 12, 31)))
    records.record_outcomes([outcome(1, "kept")], now=MONDAY_EVENING)
    with pytest.raises(RecordsError, match="cannot become"):
        records.record_outcomes([outcome(1, "breached")], now=MONDAY_EVENING)
    with pytest.raises(RecordsError, match="cannot become"):
        records.set_state(commitment(1), "manual")
    assert totals(records.store) == {"verified": 1, "kept": 1}


def test_repairs_expiries_and_corrections_of_breach_records_are_counted(
    records: VerifierRecords,
) -> None:
    for n in (1, 2, 3):
        records.add_breach(breach(n, of=CARD, decided=date(2026, 1, 20)), fingerprint(n))
    records.update_breach_status(breach(1, of=CARD).id, "repaired", date(2026, 1, 21))
    records.annul_breach(breach(2, of=CARD).id)
    records.expire_breaches(date(2030, 1, 1))  # the third only: the others left the list
    assert totals(records.store) == {"repair": 1, "correction": 1, "expired": 1}
    with pytest.raises(RecordsError):
        records.annul_breach(breach(1, of=CARD).id)  # repaired: nothing more to count
    assert totals(records.store) == {"repair": 1, "correction": 1, "expired": 1}


def test_a_decision_is_counted_on_its_beijing_day_and_late_ones_apart(
    records: VerifierRecords,
) -> None:
    store = records.store
    evening = datetime(2026, 12, 7, 16, 30, tzinfo=UTC)  # 00:30 on the 8th in Beijing
    with store.engine.begin() as connection:
        count_decision(connection, Decision(HRSS, POINTS.code, evening, late=True))
        count_decision(connection, Decision(HRSS, POINTS.code, evening, late=False))
        count_decision(connection, Decision(SAMR, "BJ-SAMR-0001", evening, late=False))
    rows = StatsQuery(store).counts(today=date(2026, 12, 8), metrics=["decided", "decided_late"])
    assert [(r.department, r.start, r.counts) for r in rows] == [
        (HRSS, date(2026, 12, 8), {"decided": 2, "decided_late": 1}),
        (SAMR, date(2026, 12, 8), {"decided": 1}),
    ]
    assert rows[0].late_rate == 0.5 and rows[1].late_rate == 0.0


def test_weeks_start_on_monday_and_months_on_the_first(records: VerifierRecords) -> None:
    store = records.store
    with store.engine.begin() as connection:
        for day in (date(2026, 11, 29), date(2026, 11, 30), date(2026, 12, 6), date(2026, 12, 7)):
            bump(connection, HRSS, POINTS.code, day, "verified")
            bump(connection, HRSS, POINTS.code, day, "breach")
    query = StatsQuery(store)
    start, end = date(2026, 11, 1), date(2026, 12, 31)
    weeks = query.counts(period="week", start=start, end=end)
    assert [(r.label, r.count("verified")) for r in weeks] == [
        ("2026-W48", 1),
        ("2026-W49", 2),
        ("2026-W50", 1),
    ]
    months = query.counts(period="month", start=start, end=end)
    assert [(r.label, r.count("breach"), r.breach_rate) for r in months] == [
        ("2026-11", 2, 1.0),
        ("2026-12", 2, 1.0),
    ]
    only = query.counts(period="day", start=date(2026, 12, 6), end=date(2026, 12, 6))
    assert [r.label for r in only] == ["2026-12-06"]
    assert query.counts(department=SAMR, start=start, end=end) == []
    assert query.counts(matter="BJ-HRSS-0004", start=start, end=end) == []


def test_a_query_s_inputs_are_bounded() -> None:
    assert bounded_range("day", None, None, today=MONDAY) == (MONDAY - timedelta(days=29), MONDAY)
    assert bounded_range("week", None, None, today=MONDAY)[0].weekday() == 0
    with pytest.raises(RecordsError, match="after end"):
        bounded_range("day", MONDAY, MONDAY - timedelta(days=1))
    with pytest.raises(RecordsError, match="longer than 366 days"):
        bounded_range("day", date(2025, 1, 1), MONDAY)
    assert bounded_range("month", date(2025, 1, 1), MONDAY)[0] == date(2025, 1, 1)
    with pytest.raises(RecordsError, match="period"):
        bounded_range("year", None, None)  # type: ignore[arg-type]


def test_bad_filters_are_refused(records: VerifierRecords) -> None:
    query = StatsQuery(records.store)
    with pytest.raises(RecordsError, match="department"):
        query.counts(department="x" * 65)
    with pytest.raises(RecordsError, match="matter"):
        query.counts(matter="")
    with pytest.raises(RecordsError, match="unknown metrics"):
        query.counts(metrics=["kept", "secret"])  # type: ignore[list-item]


def test_received_is_caught_up_from_the_commitments_once_each(records: VerifierRecords) -> None:
    store = records.store

    def take_in(n: int, received_at: float) -> None:
        with store.engine.begin() as connection:
            connection.execute(
                insert(commitments).values(
                    hash=commitment(n),
                    code=f"11010520261207{n:06d}",
                    matter_code=POINTS.code,
                    department=HRSS,
                    applicant_fingerprint=fingerprint(n),
                    received_at=received_at,
                    state="pending",
                    sealed=b"sealed",
                )
            )

    # Long ago: PostgreSQL waits SETTLE_SECONDS for a row (an older id may still commit).
    evening = datetime(2026, 11, 2, 12, 0, tzinfo=UTC).timestamp()
    take_in(1, evening)
    take_in(2, evening + 4 * 3600)  # past midnight in Beijing
    query = StatsQuery(store)
    rows = query.counts(today=date(2026, 11, 3), metrics=["received"])
    assert [(r.label, r.count("received")) for r in rows] == [("2026-11-02", 1), ("2026-11-03", 1)]
    take_in(3, evening)
    again = query.counts(today=date(2026, 11, 3), metrics=["received"])
    assert [r.count("received") for r in again] == [2, 1]
    assert query.counts(today=date(2026, 11, 3), metrics=["received"]) == again


def test_transitions_count_the_same_for_the_chain_and_the_store() -> None:
    assert transition_metrics(Status.ANCHORED, Status.KEPT) == ("verified", "kept")
    assert transition_metrics(Status.NONE, Status.PROPOSED) == ("verified", "proposed", "false")
    assert transition_metrics(Status.MISMATCH, Status.PROPOSED) == (
        "proposed",
        "mismatch_closed",
    )
    assert transition_metrics(Status.NEEDS_MANUAL, Status.PROPOSED) == (
        "proposed",
        "false",
        "manual_closed",
    )
    assert transition_metrics(Status.PROPOSED, Status.CORRECTED) == (
        "defended",
        "proposed_closed",
    )
    assert transition_metrics(Status.BREACHED, Status.CORRECTED) == ("correction",)
    assert transition_metrics(Status.BREACHED, Status.REPAIRED) == ("repair",)
    assert transition_metrics(Status.KEPT, Status.KEPT) == ()
    assert set(METRICS) >= {"received", "decided", "decided_late", "false", "correction"}


def test_counters_are_one_row_per_key(records: VerifierRecords) -> None:
    store = records.store
    with store.engine.begin() as connection:
        for _ in range(3):
            bump(connection, HRSS, POINTS.code, MONDAY, "kept")
        connection.execute(update(stat_counts).values(count=stat_counts.c.count * 10))
    assert totals(store) == {"kept": 30}


# --------------------------------------------------------------------------- the demo's data


@dataclass
class DemoWorld:
    summary: dict[str, Any]
    store: Store
    ledger: LedgerContract


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoWorld]:
    """`commitledger demo`'s story, its store kept in a directory of the test's and its
    embedded chain held, so the statistics can be read afterwards."""
    from api.demo import story

    folder = tmp_path_factory.mktemp("demo")
    deployed: list[LedgerContract] = []
    deploy = story._deploy

    def kept_deploy(*args: Any) -> Any:
        ledger, parties = deploy(*args)
        deployed.append(ledger)
        return ledger, parties

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(story, "_deploy", kept_deploy)
        patch.setattr(
            story,
            "tempfile",
            SimpleNamespace(TemporaryDirectory=lambda prefix: nullcontext(str(folder))),
        )
        summary = story.run_demo(DEMO_COUNT, quiet=True)
    store = Store(f"sqlite:///{folder}/demo.db")
    try:
        yield DemoWorld(summary, store, deployed[0])
    finally:
        store.close()


def _stored_outcomes(store: Store) -> dict[tuple[str, str], dict[str, int]]:
    """Where each commitment ended, by the store's verifications table (the demo's table)."""
    found: dict[tuple[str, str], dict[str, int]] = {}
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(
                verifications_table.c.department,
                verifications_table.c.matter_code,
                verifications_table.c.state,
                func.count(),
            ).group_by(
                verifications_table.c.department,
                verifications_table.c.matter_code,
                verifications_table.c.state,
            )
        ).all()
    for department, matter, state, n in rows:
        named = "needs_manual" if state == "manual" else state
        found.setdefault((department, matter), {})[named] = n
    return found


def test_the_demo_s_statistics_equal_its_outcome_table(demo: DemoWorld) -> None:
    assert demo.summary["ok"] is True
    query = StatsQuery(demo.store)
    standing = query.standing()
    shown = {key: {s: n for s, n in states.items() if n} for key, states in standing.items()}
    assert shown == _stored_outcomes(demo.store)
    overall: Counter[str] = Counter()
    for states in shown.values():
        overall.update(states)
    assert dict(sorted(overall.items())) == demo.summary["outcomes"]
    every = totals(demo.store)
    assert every["verified"] == DEMO_COUNT
    assert every["repair"] == (demo.summary["repair"] is not None) == 1
    assert every["breach"] == demo.summary["outcomes"]["breached"]
    assert every["mismatch"] >= 2 and every["false"] >= 1
    assert catch_up_received(demo.store) == DEMO_COUNT  # every commitment taken in, once
    assert catch_up_received(demo.store) == 0
    assert sum(query.totals(metrics=["received"]).values()) == DEMO_COUNT


def test_the_demo_s_statistics_agree_with_the_chain_s_events(demo: DemoWorld) -> None:
    names = department_codes(default_catalog().departments())
    report = check_stats_chain(demo.ledger, demo.store, names)
    assert report.ok, [d.describe() for d in report.differences]
    assert report.events >= DEMO_COUNT
    assert report.compared == len(StatsQuery(demo.store).totals())


def test_a_tampered_counter_is_named_by_the_chain_check(demo: DemoWorld) -> None:
    names = department_codes(default_catalog().departments())
    key = stat_counts.c
    where = (key.metric == "breach") & (key.department == HRSS)
    with demo.store.engine.begin() as connection:
        first = connection.execute(select(stat_counts).where(where).limit(1)).one()
        one = (
            (key.department == first.department)
            & (key.matter_code == first.matter_code)
            & (key.day == first.day)
            & (key.metric == "breach")
        )
        connection.execute(update(stat_counts).where(one).values(count=key.count - 1))
    try:
        report = check_stats_chain(demo.ledger, demo.store, names)
        assert not report.ok
        [difference] = report.differences
        assert (difference.department, difference.matter_code, difference.metric) == (
            HRSS,
            first.matter_code,
            "breach",
        )
        assert difference.chain == difference.counters + 1
    finally:
        with demo.store.engine.begin() as connection:
            connection.execute(update(stat_counts).where(one).values(count=key.count + 1))


# --------------------------------------------------------------------------- GET /v1/stats


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    opened = open_service(tmp_path, embedded_deployment, feed=False, anchoring=False)
    with opened.store.engine.begin() as connection:
        for department, matter, metric, n in (
            (HRSS, POINTS.code, "verified", 4),
            (HRSS, POINTS.code, "kept", 3),
            (HRSS, POINTS.code, "breach", 1),
            (HRSS, POINTS.code, "decided", 2),
            (HRSS, POINTS.code, "decided_late", 1),
            (SAMR, "BJ-SAMR-0001", "verified", 2),
            (SAMR, "BJ-SAMR-0001", "mismatch", 2),
        ):
            bump(connection, department, matter, SERVICE_DAY, metric, n)  # type: ignore[arg-type]
    yield opened
    opened.context.close()


def test_the_public_sees_breaches_and_kept_rates_per_department_and_matter(
    world: ServiceWorld,
) -> None:
    answer = world.client.get("/v1/stats")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["scope"] == "public"
    assert body["end"] == SERVICE_DAY.isoformat()
    assert [(r["department"], r["counts"], r["rates"]) for r in body["rows"]] == [
        (HRSS, {"verified": 4, "kept": 3, "breach": 1}, {"kept_rate": 0.75, "breach_rate": 0.25}),
        (SAMR, {"verified": 2, "kept": 0, "breach": 0}, {"kept_rate": 0.0, "breach_rate": 0.0}),
    ]
    assert "decided" not in answer.text and "mismatch" not in answer.text
    one = world.client.get("/v1/stats", params={"department": SAMR, "period": "month"})
    assert [r["label"] for r in one.json()["rows"]] == ["2026-11"]


def test_a_department_token_reads_its_own_department_in_full(world: ServiceWorld) -> None:
    answer = world.client.get("/v1/stats", headers=world.auth(HRSS, "verifier"))
    body = answer.json()
    assert (body["scope"], body["department"]) == ("department", HRSS)
    [row] = body["rows"]
    assert row["counts"]["decided_late"] == 1 and row["rates"]["late_rate"] == 0.5
    other = world.client.get(
        "/v1/stats", params={"department": SAMR}, headers=world.auth(HRSS, "registrar")
    )
    assert_problem(other, 403, "other-department")


def test_a_supervisor_reads_every_department_in_full(world: ServiceWorld) -> None:
    issued = world.context.tokens.issue("SUPERVISOR", "supervisor")
    auth = {"Authorization": f"Bearer {issued.token}"}
    body = world.client.get("/v1/stats", headers=auth).json()
    assert body["scope"] == "supervisor"
    assert [(r["department"], r["counts"]["mismatch"]) for r in body["rows"]] == [
        (HRSS, 0),
        (SAMR, 2),
    ]
    csv_text = world.client.get("/v1/stats", params={"format": "csv"}, headers=auth).text
    assert csv_text.startswith("\ufeffdepartment,matter_code,period,label,received,")
    assert len(csv_text.strip().splitlines()) == 3


def test_bad_statistics_queries_are_refused(world: ServiceWorld) -> None:
    for params in (
        {"period": "year"},
        {"start": "2026-12-01", "end": "2026-11-01"},
        {"start": "2020-01-01", "end": "2026-11-01"},
        {"departmnet": HRSS},
        {"matter": "x" * 65},
    ):
        assert_problem(world.client.get("/v1/stats", params=params), 422, "invalid-request")
    bad = world.client.get("/v1/stats", headers={"Authorization": "Bearer nope"})
    assert_problem(bad, 401, "unauthorized")


def test_csv_guards_cells_a_spreadsheet_would_run(records: VerifierRecords) -> None:
    with records.store.engine.begin() as connection:
        bump(connection, "=cmd()", "@SUM(A1)", MONDAY, "kept", 2)
    rows = StatsQuery(records.store).counts(today=MONDAY, metrics=["verified", "kept"])
    text = stats_csv(rows, ["verified", "kept"])
    assert text.splitlines() == [
        "\ufeffdepartment,matter_code,period,label,verified,kept,kept_rate",
        "'=cmd(),'@SUM(A1),day,2026-12-07,0,2,",
    ]


def test_week_and_month_counters_rebuilt_from_the_days_are_the_ones_bumped(
    records: VerifierRecords,
) -> None:
    store = records.store
    with store.engine.begin() as connection:
        for day, matter, n in (
            (date(2026, 11, 29), POINTS.code, 1),
            (date(2026, 11, 30), POINTS.code, 2),
            (date(2026, 12, 1), CARD.code, 3),
        ):
            bump(connection, HRSS, matter, day, "kept", n)
    snapshot = select(stat_periods).order_by(*stat_periods.primary_key.columns)
    with store.engine.begin() as connection:
        bumped = connection.execute(snapshot).all()
        # 3 weeks and 2 months of matters, the department's 3 days, 2 weeks, 2 months
        assert rebuild_rollups(connection) == len(bumped) == 12
        assert connection.execute(snapshot).all() == bumped


def test_a_department_s_matters_add_up_by_department(records: VerifierRecords) -> None:
    with records.store.engine.begin() as connection:
        bump(connection, HRSS, POINTS.code, MONDAY, "verified", 3)
        bump(connection, HRSS, CARD.code, MONDAY, "verified", 1)
        bump(connection, HRSS, CARD.code, MONDAY, "breach", 1)
        bump(connection, SAMR, "BJ-SAMR-0001", MONDAY, "verified", 2)
    rows = StatsQuery(records.store).counts(period="month", today=MONDAY, by="department")
    assert [(r.department, r.matter_code, r.counts, r.breach_rate) for r in rows] == [
        (HRSS, ALL_MATTERS, {"verified": 4, "breach": 1}, 0.25),
        (SAMR, ALL_MATTERS, {"verified": 2}, 0.0),
    ]
    with pytest.raises(RecordsError, match="by"):
        StatsQuery(records.store).counts(by="person")  # type: ignore[arg-type]


def test_counters_lost_are_counted_again_from_the_chain_and_the_store(demo: DemoWorld) -> None:
    names = department_codes(default_catalog().departments())
    query = StatsQuery(demo.store)
    catch_up_received(demo.store)
    before = query.totals(metrics=METRICS)
    with demo.store.engine.begin() as connection:
        connection.execute(delete(stat_counts))
        connection.execute(delete(stat_periods))
    assert query.standing() == {}
    report = rebuild_counters(demo.ledger, demo.store, names)
    assert report.events >= DEMO_COUNT
    assert query.totals(metrics=METRICS) == before
    assert check_stats_chain(demo.ledger, demo.store, names).ok


def test_concurrent_bumps_of_one_counter_lose_nothing(records: VerifierRecords) -> None:
    writer = records.store.engine.execution_options(immediate=True)

    def bump_often() -> None:
        for _ in range(25):
            with writer.begin() as connection:
                bump(connection, HRSS, POINTS.code, MONDAY, "kept")
                bump(connection, HRSS, CARD.code, MONDAY, "kept")

    threads = [threading.Thread(target=bump_often) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [month] = StatsQuery(records.store).counts(period="month", today=MONDAY, by="department")
    assert month.counts == {"kept": 300}
    assert totals(records.store) == {"kept": 300}


# --------------------------------------------------------------------------- kept answers


def _render_counting(store: Store, calls: list[int]) -> Any:
    def render() -> bytes:
        calls.append(1)
        rows = StatsQuery(store).counts(today=MONDAY, catch_up=False)
        return repr([(r.department, r.counts) for r in rows]).encode()

    return render


def test_a_kept_answer_is_served_until_a_new_outcome_lands(records: VerifierRecords) -> None:
    store = records.store
    answers = StatsAnswers(store)
    calls: list[int] = []
    render = _render_counting(store, calls)
    for n in range(1, 4):
        records.schedule(commitment(n), POINTS.code, HRSS, Deadline(date(2026, 12, 31)))
    records.record_outcomes([outcome(1, "kept")], now=MONDAY_EVENING)
    first = answers.answer("q", render, received=False)
    assert answers.answer("q", render, received=False) == first and len(calls) == 1
    records.record_outcomes([outcome(2, "proposed")], now=MONDAY_EVENING)
    second = answers.answer("q", render, received=False)
    assert len(calls) == 2 and second != first and b"'proposed': 1" in second
    records.record_outcomes([outcome(2, "proposed")], now=MONDAY_EVENING)  # a retry: no move
    assert answers.answer("q", render, received=False) == second
    with store.engine.begin() as connection:
        count_decision(connection, Decision(HRSS, POINTS.code, datetime.now(UTC), late=True))
    answers.answer("q", render, received=False)
    assert len(calls) == 3  # a decision counted moves the generation too
    answers.answer("other", render, received=False)
    assert len(calls) == 4  # kept per question


def test_counters_rebuilt_or_caught_up_move_the_generation(records: VerifierRecords) -> None:
    store = records.store
    with store.engine.connect() as connection:
        before = counters_generation(connection)
    with store.engine.begin() as connection:
        rebuild_rollups(connection)
        after = counters_generation(connection)
    assert after > before
    answers = StatsAnswers(store)
    calls: list[int] = []
    render = _render_counting(store, calls)
    answers.answer("q", render, received=True)
    with store.engine.begin() as connection:
        connection.execute(
            insert(commitments).values(
                hash=commitment(1),
                code="11010520261102000001",
                matter_code=POINTS.code,
                department=HRSS,
                applicant_fingerprint=fingerprint(1),
                received_at=datetime(2026, 11, 2, 12, 0, tzinfo=UTC).timestamp(),
                state="pending",
                sealed=b"sealed",
            )
        )
    answers.answer("q", render, received=True)
    assert len(calls) == 2  # the received counter caught up: a new generation


def test_kept_answers_are_bounded_in_bytes(records: VerifierRecords) -> None:
    answers = StatsAnswers(records.store, max_bytes=400)
    for n in range(10):
        answers.answer(n, lambda n=n: bytes(90) + bytes([n]), received=False)  # type: ignore[misc]
    assert answers._size <= 400 and len(answers._kept) == 4
    assert list(answers._kept) == [6, 7, 8, 9]  # the least recently asked went first


def test_the_next_http_answer_shows_a_new_outcome(world: ServiceWorld) -> None:
    auth = world.auth(HRSS, "verifier")
    for headers in ({}, auth):
        first = world.client.get("/v1/stats", headers=headers).json()
        assert world.client.get("/v1/stats", headers=headers).json() == first
    with world.store.engine.begin() as connection:
        bump(connection, HRSS, POINTS.code, SERVICE_DAY, "kept", 1)
        bump(connection, HRSS, POINTS.code, SERVICE_DAY, "verified", 1)
    public = world.client.get("/v1/stats").json()
    assert public["rows"][0]["counts"] == {"verified": 5, "kept": 4, "breach": 1}
    own = world.client.get("/v1/stats", headers=auth).json()
    assert (own["rows"][0]["counts"]["kept"], own["scope"]) == (4, "department")
    # The public's kept answer is never the department's, nor the other way round.
    assert "decided" not in world.client.get("/v1/stats").text

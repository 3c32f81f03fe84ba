"""Methods beyond a comparison with department data (issue 16): checks a person makes
(document review, on-site inspection, a request for assistance to another department),
sampling, exemption, any-of conditions, future obligations and the decision time limit,
each end to end through a verification run on the embedded chain."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.method_world import (
    ANNUAL_REPORT,
    ASSIST,
    ASSISTED,
    CRIMINAL,
    EITHER,
    EXEMPT_ORG,
    EXEMPT_PERSON,
    LIMITED,
    PREMISES,
    RATE,
    REVIEW,
    SAMPLED,
    SEED,
    TASKS,
    catalog_json,
    independent_selection,
    method_catalog,
    open_method_world,
    pick,
    report_of,
)
from support.verifier_world import DAY, HRSS, SAMR, World

from ledger import Chain, Hash32, InvalidDocumentError, Status, Store
from verifier import Catalog
from verifier.engine import SAMPLING_RULE, TaskDesk, sampled
from verifier.records import TaskError, TaskRecords


@pytest.fixture
def world(tmp_path: Path, embedded_chain: Chain) -> Iterator[World]:
    with open_method_world(embedded_chain, tmp_path) as opened:
        yield opened


# ---------------------------------------------------------------------- sampling


def test_sampling_selects_by_the_published_rule_and_a_rerun_selects_the_same(
    world: World,
) -> None:
    hashes = world.commit(*(pick(world, "agree", SAMPLED) for _ in range(12)))
    expected = {h for h in hashes if independent_selection(h, SAMPLED, SEED, RATE)}
    assert 0 < len(expected) < len(hashes)  # a sample, not all or none (fixed by the seed)

    summary = world.engine.run(DAY)
    assert summary.outcomes == Counter(
        {"needs_manual": len(expected), "kept": len(hashes) - len(expected)}
    )
    desk = world.engine.tasks
    opened = {h for h in hashes if desk.records.tasks_of(h)}
    assert opened == expected
    for commitment in hashes:
        report = report_of(world.engine, commitment)
        chosen = commitment in expected
        assert ("Sampling: selected" in report.note) == chosen
        assert SAMPLING_RULE in report.note and SEED in report.note
        assert world.status(commitment) == (Status.NEEDS_MANUAL if chosen else Status.KEPT)
        assert [t["key"] for t in report.tasks()] == (["site_visit"] if chosen else [])

    # A rerun (another engine, the catalog loaded again) selects the same and opens nothing.
    again = world.restarted()
    assert again.run(DAY).examined == 0
    reloaded = method_catalog().matter(SAMPLED)
    assert {h for h in hashes if sampled(h, reloaded)} == expected
    assert sum(len(again.tasks.records.tasks_of(h)) for h in hashes) == len(expected)


# ---------------------------------------------------------------------- tasks


def test_open_tasks_keep_the_outcome_manual_until_the_last_is_done(world: World) -> None:
    [commitment] = world.commit(pick(world, "agree", TASKS))
    assert world.engine.run(DAY).outcomes == Counter({"needs_manual": 1})
    assert world.status(commitment) == Status.NEEDS_MANUAL
    report = report_of(world.engine, commitment)
    assert [(t["key"], t["status"]) for t in report.tasks()] == [
        ("site_visit", "open"),
        ("papers", "open"),
    ]

    desk = world.engine.tasks
    page = desk.records.work_list(HRSS)
    assert {(hex_, t.key) for hex_, t in ((t.commitment_hash, t) for t in page.tasks)} == {
        (commitment, "site_visit"),
        (commitment, "papers"),
    }
    assert [t.key for t in desk.records.work_list(HRSS, kind="on_site_check").tasks] == [
        "site_visit"
    ]
    assert desk.records.work_list(HRSS, due_before=DAY).total == 0  # due 20 days later
    assert desk.records.work_list(HRSS, due_before=DAY + timedelta(days=21)).total == 2
    assert desk.records.work_list(HRSS, limit=1).total == 2
    assert len(desk.records.work_list(HRSS, limit=1, offset=1).tasks) == 1

    first = desk.complete(commitment, "site_visit", "passed", "officer 7", "premises seen", DAY)
    assert first.outcome is None and world.status(commitment) == Status.NEEDS_MANUAL
    with pytest.raises(TaskError, match="done already"):
        desk.complete(commitment, "site_visit", "failed", "officer 8", "again", DAY)

    last = desk.complete(commitment, "papers", "passed", "officer 7", "contract read", DAY)
    assert last.outcome == "kept"
    assert world.status(commitment) == Status.KEPT
    decided = report_of(world.engine, commitment)
    assert decided.outcome == "kept"
    assert [(t["key"], t["status"], t["result"], t["done_by"]) for t in decided.tasks()] == [
        ("site_visit", "done", "passed", "officer 7"),
        ("papers", "done", "passed", "officer 7"),
    ]
    assert desk.records.work_list(HRSS).total == 0
    assert desk.records.work_list(HRSS, status="done").total == 2


def test_a_failed_on_site_check_makes_a_mismatch(world: World) -> None:
    [commitment] = world.commit(pick(world, "agree", TASKS))
    world.engine.run(DAY)
    desk = world.engine.tasks
    desk.complete(commitment, "papers", "passed", "officer 7", "contract read", DAY)
    settled = desk.complete(commitment, "site_visit", "failed", "officer 7", "no shop", DAY)
    assert settled.outcome == "mismatch"
    assert world.status(commitment) == Status.MISMATCH
    report = report_of(world.engine, commitment)
    assert all(c.verdict == "agree" for c in report.comparisons())  # the data agreed
    assert "Failed checks: site_visit (on_site_check)" in report.note
    verification = world.engine.records.verification(commitment)
    assert verification is not None and verification.rectify_by is not None


def test_another_department_cannot_complete_a_task(world: World) -> None:
    [commitment] = world.commit(pick(world, "agree", TASKS))
    world.engine.run(DAY)
    market = TaskDesk(world.new_engine(SAMR).actions)
    with pytest.raises(TaskError, match="not BJ-SAMR's"):
        market.complete(commitment, "site_visit", "passed", "officer 1", "", DAY)
    assert market.records.work_list(SAMR).total == 0
    assert world.engine.tasks.records.work_list(HRSS).total == 2


def test_an_assistance_request_is_answered_by_the_department_asked(world: World) -> None:
    [commitment] = world.commit(pick(world, "agree", ASSISTED))
    world.engine.run(DAY)
    market = world.new_engine(SAMR)
    [asked] = market.tasks.records.work_list(SAMR).tasks
    assert (asked.key, asked.assist_department, asked.department) == ("ask_market", SAMR, HRSS)

    answered = market.tasks.complete(commitment, "ask_market", "passed", "clerk 3", "known", DAY)
    assert answered.outcome is None  # HRSS decides its own commitment
    assert world.status(commitment) == Status.NEEDS_MANUAL
    assert world.engine.tasks.settle(commitment, DAY) == "kept"
    assert world.status(commitment) == Status.KEPT
    [task] = report_of(world.engine, commitment).tasks()
    assert (task["assist_department"], task["done_by"]) == (SAMR, "clerk 3")


def test_a_run_decides_a_commitment_whose_last_task_another_department_did(
    world: World,
) -> None:
    [commitment] = world.commit(pick(world, "agree", ASSISTED))
    world.engine.run(DAY)
    market = world.new_engine(SAMR)
    market.tasks.complete(commitment, "ask_market", "failed", "clerk 3", "unknown firm", DAY)
    assert world.status(commitment) == Status.NEEDS_MANUAL
    world.engine.run(DAY)
    assert world.status(commitment) == Status.MISMATCH
    recorded = world.engine.records.verification(commitment)
    world.engine.run(DAY)  # nothing more to decide
    assert world.engine.records.verification(commitment) == recorded


def test_a_persons_decision_takes_open_tasks_off_the_work_list(world: World) -> None:
    [commitment] = world.commit(pick(world, "agree", TASKS))
    world.engine.run(DAY)
    assert world.engine.tasks.records.work_list(HRSS).total == 2
    world.engine.decide(commitment, "kept", DAY, "officer 9", "checked everything at once")
    assert world.engine.tasks.records.work_list(HRSS).total == 0


def test_tasks_done_before_the_run_are_decided_by_it(world: World) -> None:
    """Opened by a run that found the data source down (the outcome not recorded as the
    store was rolled back), completed, then decided by the next run with their results."""
    [commitment] = world.commit(pick(world, "agree", TASKS))
    desk = world.engine.tasks
    matter = world.catalog.matter(TASKS)
    desk.records.open_tasks(commitment, HRSS, TASKS, matter.tasks, DAY)
    desk.complete(commitment, "site_visit", "passed", "officer 7", "", DAY)
    desk.complete(commitment, "papers", "failed", "officer 7", "forged contract", DAY)
    assert world.engine.run(DAY).outcomes == Counter({"mismatch": 1})
    report = report_of(world.engine, commitment)
    assert [t["result"] for t in report.tasks()] == ["passed", "failed"]


# ---------------------------------------------------------------------- claims


def test_any_of_is_met_by_one_agreeing_claim(world: World) -> None:
    met, unmet = world.commit(pick(world, "agree", EITHER), pick(world, "mismatch", EITHER))
    assert world.engine.run(DAY).outcomes == Counter({"kept": 1, "mismatch": 1})
    assert world.status(met) == Status.KEPT
    verdicts = {c.key: c.verdict for c in report_of(world.engine, met).comparisons()}
    assert verdicts == {"work_years_2": "agree", "work_years_100": "disagree"}
    assert world.status(unmet) == Status.MISMATCH


def test_an_exempt_applicant_is_not_compared_and_the_report_says_so(world: World) -> None:
    [firm] = world.commit(pick(world, "false", EXEMPT_ORG))
    [person] = world.commit(pick(world, "false", EXEMPT_PERSON))
    market = world.new_engine(SAMR)
    assert market.run(DAY).outcomes == Counter({"kept": 1})
    report = report_of(market, firm)
    assert [c.key for c in report.comparisons()] == ["premises_area_sqm"]
    assert "Exempt (not compared): no_criminal_record." in report.note
    # The same claim binds a natural person, who has a record: false.
    # (only the criminal record can make it false)
    assert world.engine.run(DAY).outcomes == Counter({"false": 1})
    assert world.engine.records.verification(person) is not None


def test_a_future_obligation_waits_until_it_falls_due_then_is_checked(world: World) -> None:
    filed, missed = world.commit(
        pick(world, "agree", ANNUAL_REPORT), pick(world, "false", ANNUAL_REPORT)
    )
    stored = world.store.get(filed)
    assert stored is not None
    made_on = date(int(stored.code[6:10]), int(stored.code[10:12]), int(stored.code[12:14]))
    due_day = made_on + timedelta(days=365)

    first = world.engine.run(DAY)
    assert first.examined == 0
    waiting = world.engine.records.verification(filed)
    assert waiting is not None and waiting.state == "due" and waiting.due_on > due_day
    assert world.engine.run(due_day - timedelta(days=1)).examined == 0

    fell_due = world.engine.run(due_day)
    assert fell_due.outcomes == Counter({"kept": 1, "mismatch": 1})
    assert world.status(filed) == Status.KEPT and world.status(missed) == Status.MISMATCH
    checked = {c.key: c.verdict for c in report_of(world.engine, missed).comparisons()}
    assert checked == {"holds_residence_permit": "agree", "annual_report_filed": "disagree"}


# ---------------------------------------------------------------------- the catalog


def test_the_catalog_takes_a_decision_time_limit_and_refuses_bad_methods() -> None:
    assert method_catalog().matter(LIMITED).decision_limit_working_days == 0.5
    assert method_catalog().matter(TASKS).decision_limit_working_days is None

    def refused(code: str, **change: Any) -> None:
        document = catalog_json()
        for matter in document["matters"]:
            if matter["code"] == code:
                matter.update(change)
        with pytest.raises(ValueError, match="validation error"):
            Catalog.model_validate(document)

    refused(LIMITED, decision_limit_working_days=0)
    refused(SAMPLED, sampling_rate=1.5)
    unasked = {**ASSIST, "assist_department": None}
    refused(ASSISTED, conditions=[{"text": "ask", "task": unasked}])
    refused(TASKS, conditions=[{"text": "x", "task": {**REVIEW, "assist_department": SAMR}}])
    refused(EITHER, conditions=[{"text": "x", "claims": ["work_years_2"], "any_of": True}])
    # intake would ask the exempt for a required claim
    refused(EXEMPT_ORG, claims=[PREMISES, {**CRIMINAL, "required": True}])


def test_task_records_bound_their_inputs(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'tasks.db'}")
    try:
        records = TaskRecords(store)
        with pytest.raises(TaskError):
            records.work_list(HRSS, limit=0)
        with pytest.raises(TaskError, match="no task"):
            records.complete(Hash32(bytes(32)), "x", HRSS, "passed", "me", "", DAY)
        with pytest.raises(TaskError, match="note"):
            records.complete(Hash32(bytes(32)), "x", HRSS, "passed", "me", "n" * 2001, DAY)
        assert TaskRecords(store).work_list(HRSS).total == 0  # the migration runs once
    finally:
        store.close()


def test_a_chunks_tasks_open_at_once_and_keep_what_was_done(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'tasks.db'}")
    try:
        records = TaskRecords(store)
        tasks = method_catalog().matter(TASKS).tasks
        first, second = Hash32(bytes([1]) * 32), Hash32(bytes([2]) * 32)
        records.open_tasks(first, HRSS, TASKS, tasks, DAY)
        records.complete(first, "papers", HRSS, "passed", "officer 7", "read", DAY)
        opened = records.open_many([(first, TASKS, tasks), (second, TASKS, tasks)], HRSS, DAY)
        assert [(t.key, t.status) for t in opened[bytes(first)]] == [
            ("site_visit", "open"),
            ("papers", "done"),
        ]
        assert [(t.key, t.status) for t in opened[bytes(second)]] == [
            ("site_visit", "open"),
            ("papers", "open"),
        ]
        assert records.work_list(HRSS).total == 3
    finally:
        store.close()


def test_an_unknown_method_field_is_still_refused() -> None:
    document = catalog_json()
    document["matters"][-1]["sampling_frequency"] = 2
    with pytest.raises((ValueError, InvalidDocumentError)):
        Catalog.model_validate(document)


def test_task_queries_on_each_backend(store: Store) -> None:
    """The work list, `all_done` and `postpone` on SQLite and PostgreSQL."""
    from verifier import default_calendar
    from verifier.records import VerifierRecords

    verifications = VerifierRecords(store)
    records = TaskRecords(store)
    tasks = method_catalog().matter(TASKS).tasks
    first, second = Hash32(bytes([1]) * 32), Hash32(bytes([2]) * 32)
    for commitment in (first, second):
        due = default_calendar().add(DAY, 60)
        verifications.schedule(commitment, TASKS, HRSS, due, now=1.0)
        verifications.set_state(commitment, "manual", now=2.0)
    records.open_many([(first, TASKS, tasks), (second, TASKS, tasks)], HRSS, DAY, now=3.0)
    assert records.work_list(HRSS).total == 4
    for key in ("site_visit", "papers"):
        records.complete(first, key, HRSS, "passed", "officer 7", "ok", DAY, now=4.0)
    assert records.all_done(HRSS) == [first]
    verifications.set_state(second, "kept", now=5.0)  # a person decided it for good
    assert records.work_list(HRSS).total == 0
    assert records.work_list(HRSS, status="done", limit=1).total == 2
    assert not records.postpone(first, DAY + timedelta(days=400))  # not awaiting verification

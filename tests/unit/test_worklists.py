"""Work lists on both backends: each list shows what waits in the department, late ones by
the deadline that counts (the office hours for decisions), filtered, sorted, paged and
counted, never another department's rows; each query walks an index."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text
from support.deployment import MARKET, Deployment
from support.service_keys import write_all_keys
from support.service_world import ServiceWorld, assert_problem, open_service

from api.service import SUPERVISOR
from ledger import Hash32, Store, Vault, commitments, hex32, keccak256, outcome_outbox
from verifier.records import (
    WORK_CSV_COLUMNS,
    WORK_LISTS,
    WORK_SORTS,
    AppealRecords,
    NoticeRecords,
    TaskRecords,
    VerifierRecords,
    WorkListError,
    WorkLists,
    breach_records,
)
from verifier.records.worklists import WorkFilter
from verifier.working_time import BEIJING, OfficeHours

HRSS, SAMR = "BJ-HRSS", "BJ-SAMR"
MATTER, SLOW = "BJ-HRSS-0001", "BJ-HRSS-0002"
TODAY = date(2026, 12, 9)  # a Wednesday
# Wednesday 2026-12-09 15:00 Beijing: the afternoon period runs to 17:00.
NOW = datetime(2026, 12, 9, 15, 0, tzinfo=BEIJING)


class _Due:
    def __init__(self, day: date) -> None:
        self.day, self.provisional = day, False


def _hash(label: str) -> Hash32:
    return Hash32(keccak256(label.encode()))


def _commit(
    store: Store,
    label: str,
    received: datetime,
    channel: str | None,
    *,
    matter: str = MATTER,
    department: str = HRSS,
    decided: bool = False,
) -> Hash32:
    digest = _hash(label)
    with store.engine.begin() as connection:
        connection.execute(
            insert(commitments).values(
                hash=digest,
                code=label[:20],
                matter_code=matter,
                department=department,
                applicant_fingerprint=os.urandom(32),
                received_at=received.timestamp(),
                state="anchored",
                sealed=b"sealed",
                channel=channel,
                decided_at=received.timestamp() + 60 if decided else None,
            )
        )
    return digest


@pytest.fixture
def lists(store: Store) -> WorkLists:
    hours = OfficeHours.parse("09:00-12:00,13:00-17:00")
    return WorkLists(store, hours, {SLOW: 2.0})


def _page(lists: WorkLists, name: str, department: str = HRSS, **kw: Any) -> Any:
    return lists.page(name, department, today=TODAY, now=NOW, **kw)


def _hashes(page: Any) -> list[str]:
    return ["0x" + bytes(item.commitment).hex() for item in page.items]


def _hx(digest: Hash32) -> str:
    return "0x" + bytes(digest).hex()


def test_awaiting_decision_counts_time_left_and_late_by_office_hours(
    lists: WorkLists, store: Store
) -> None:
    # Online, half a day: received Tuesday 14:00 -> due Wednesday 09:30 (3.5 h), late now.
    late_online = _commit(
        store, "late-online", datetime(2026, 12, 8, 14, 0, tzinfo=BEIJING), "online"
    )
    # Online, half a day: received Wednesday 13:30 -> due 17:00 today, in time.
    fresh = _commit(store, "fresh", datetime(2026, 12, 9, 13, 30, tzinfo=BEIJING), "online")
    # At the counter: due the end of the period it came in: 12:00 today, late now.
    counter = _commit(store, "counter", datetime(2026, 12, 9, 10, 0, tzinfo=BEIJING), "counter")
    # Two working days for SLOW: received Tuesday 15:00 -> due Thursday 15:00, in time.
    slow = _commit(
        store, "slow", datetime(2026, 12, 8, 15, 0, tzinfo=BEIJING), "online", matter=SLOW
    )
    _commit(store, "decided", datetime(2026, 12, 8, 9, 0, tzinfo=BEIJING), "online", decided=True)
    _commit(store, "legacy", datetime(2026, 12, 1, 9, 0, tzinfo=BEIJING), None)
    _commit(store, "other", datetime(2026, 12, 8, 9, 0, tzinfo=BEIJING), "online", department=SAMR)

    page = _page(lists, "awaiting-decision")
    assert page.total == 4
    assert _hashes(page) == [_hx(h) for h in (late_online, slow, counter, fresh)]
    by_hash = {_hx(i.commitment): i for i in page.items}
    item = by_hash[_hx(late_online)]
    assert (item.late, item.status, item.reference) == (True, "late", "online")
    assert item.due == "2026-12-09T01:30:00.000Z"  # 09:30 Beijing
    assert item.left == pytest.approx(-4.5 / 7, abs=1e-3)  # 09:30-12:00, 13:00-15:00
    assert by_hash[_hx(fresh)].left == pytest.approx(2.0 / 7, abs=1e-3)  # 15:00-17:00
    assert by_hash[_hx(counter)].due == "2026-12-09T04:00:00.000Z"
    assert not by_hash[_hx(slow)].late

    late = _page(lists, "awaiting-decision", late=True)
    assert set(_hashes(late)) == {_hx(late_online), _hx(counter)}
    assert late.total == 2
    assert _hashes(_page(lists, "awaiting-decision", late=True, matter=SLOW)) == []
    assert _hashes(_page(lists, "awaiting-decision", matter=SLOW)) == [_hx(slow)]
    newest = _page(lists, "awaiting-decision", order="desc", limit=1)
    assert (_hashes(newest), newest.total) == ([_hx(fresh)], 4)
    on_day = _page(lists, "awaiting-decision", since=TODAY, until=TODAY)
    assert set(_hashes(on_day)) == {_hx(fresh), _hx(counter)}
    assert _page(lists, "awaiting-decision", department=SAMR).total == 1


def test_late_cutoff_is_exact_at_the_boundary(lists: WorkLists, store: Store) -> None:
    # Due 09:30 today for receipt Tuesday 14:00; at 09:30:00.000 it is not late yet.
    received = datetime(2026, 12, 8, 14, 0, tzinfo=BEIJING)
    digest = _commit(store, "edge", received, "online")
    due = datetime(2026, 12, 9, 9, 30, tzinfo=BEIJING)
    at_due = lists.page("awaiting-decision", HRSS, late=True, now=due)
    after = lists.page("awaiting-decision", HRSS, late=True, now=due + timedelta(seconds=1))
    assert (at_due.total, _hashes(after)) == (0, [_hx(digest)])


def test_how_late_over_weeks_and_holidays_is_counted_as_office_hours_count(
    lists: WorkLists, store: Store
) -> None:
    hours = OfficeHours.parse("09:00-12:00,13:00-17:00")
    # Across National Day (1-7 October 2026) and its make-up working days.
    received = datetime(2026, 9, 28, 16, 0, tzinfo=BEIJING)
    _commit(store, "weeks-ago", received, "online")
    [item] = _page(lists, "awaiting-decision").items
    due = hours.decision_due(received, "online", 0.5)
    assert item.left == pytest.approx(-hours.between(due, NOW), abs=1e-4)
    assert item.late
    later = NOW + timedelta(days=7)  # the cached parts are the row's own: a week on, as counted
    [again] = lists.page("awaiting-decision", HRSS, now=later).items
    assert again.left == pytest.approx(-hours.between(due, later), abs=1e-4)


def _schedule(records: VerifierRecords, label: str, due: date, department: str = HRSS) -> Hash32:
    digest = _hash(label)
    records.schedule(
        digest, MATTER if department == HRSS else "BJ-SAMR-0001", department, _Due(due)
    )
    return digest


def test_rectification_overdue_and_manual_lists(store: Store, lists: WorkLists) -> None:
    records = VerifierRecords(store)
    passed = _schedule(records, "passed", date(2026, 11, 20))
    records.set_state(passed, "mismatch", rectify_by=date(2026, 12, 1))
    open_ = _schedule(records, "open", date(2026, 11, 20))
    records.set_state(open_, "mismatch", rectify_by=date(2026, 12, 20))
    samr = _schedule(records, "samr", date(2026, 11, 20), SAMR)
    records.set_state(samr, "mismatch", rectify_by=date(2026, 12, 2))
    overdue = _schedule(records, "overdue", date(2026, 12, 1))
    _schedule(records, "not-yet", date(2026, 12, 30))
    records.flag_overdue(TODAY, HRSS)
    manual = _schedule(records, "manual", date(2026, 12, 3))
    records.set_state(manual, "manual")

    rect = _page(lists, "rectification")
    assert _hashes(rect) == [_hx(passed), _hx(open_)]
    assert [(i.late, i.left) for i in rect.items] == [(True, -8.0), (False, 11.0)]
    assert _hashes(_page(lists, "rectification", late=True)) == [_hx(passed)]
    assert _hashes(_page(lists, "rectification", order="desc")) == [_hx(open_), _hx(passed)]
    assert _hashes(_page(lists, "rectification", department=SAMR)) == [_hx(samr)]

    over = _page(lists, "overdue")
    assert (_hashes(over), over.items[0].due, over.items[0].left) == (
        [_hx(overdue)],
        "2026-12-01",
        -8.0,
    )
    tasks = TaskRecords(store)
    from verifier.catalog import Task

    review = Task(key="review", kind="document_review", description="查验材料", due_days=3)
    tasks.open_tasks(overdue, HRSS, MATTER, [review], date(2026, 12, 7))
    man = _page(lists, "manual")
    assert [(i.status, i.reference, i.due) for i in man.items] == [
        ("manual", None, "2026-12-03"),
        ("document_review", "review", "2026-12-10"),
    ]
    assert man.total == 2
    assert _page(lists, "manual", late=True).total == 1


def _breach(store: Store, record_id: str, commitment: Hash32, department: str = HRSS) -> None:
    with store.engine.begin() as connection:
        connection.execute(
            insert(breach_records).values(
                id=record_id,
                commitment_hash=commitment,
                applicant_fingerprint=os.urandom(32),
                public_json="{}",
                status="published",
                party_name="北京某某有限公司",
                party_code="91110105MA0000000X",
                decision_date="2026-11-30",
                publication_end="2027-11-30",
                severity="general",
                department=department,
                matter_code=MATTER,
                chain_id=31337,
                tx_hash=os.urandom(32),
                block_number=1,
                updated_at=0.0,
            )
        )


def test_defence_appeals_and_refused_lists(store: Store, lists: WorkLists) -> None:
    records = VerifierRecords(store)
    proposed = _schedule(records, "proposed", date(2026, 11, 20))
    notices = NoticeRecords(store)
    notices.issue(proposed, HRSS, {"report": {}}, _hash("ev"), date(2026, 12, 1), 5, TODAY)
    lapsed = _schedule(records, "lapsed", date(2026, 11, 20))
    notices.issue(
        lapsed, HRSS, {"report": {}}, _hash("ev2"), date(2026, 11, 20), 5, date(2026, 11, 27)
    )
    defence = _page(lists, "defence")
    assert _hashes(defence) == [_hx(lapsed), _hx(proposed)]
    assert [(i.late, i.left, i.started) for i in defence.items] == [
        (True, -12.0, "2026-11-20"),
        (False, 0.0, "2026-12-01"),
    ]
    assert _page(lists, "defence", late=True).total == 1

    breached = _hash("breached")
    _breach(store, "BR-1", breached)
    appeals = AppealRecords(store, Vault(os.urandom(32)))
    objection = appeals.add(
        "objection", "BR-1", HRSS, "applicant", date(2026, 12, 1), date(2026, 12, 8), "不是我"
    )
    repair = appeals.add(
        "repair", "BR-1", HRSS, "applicant", date(2026, 12, 2), date(2026, 12, 20), "已纠正"
    )
    listed = _page(lists, "appeals")
    assert [(i.status, i.reference, i.late) for i in listed.items] == [
        ("objection", objection.id, True),
        ("repair", repair.id, False),
    ]
    assert all(_hx(i.commitment) == _hx(breached) for i in listed.items)
    assert "不是我" not in str(listed.to_json_obj())  # the sealed text stays sealed

    refused = _commit(store, "refused", datetime(2026, 12, 1, 9, 0, tzinfo=BEIJING), "online")
    with store.engine.begin() as connection:
        connection.execute(
            insert(outcome_outbox).values(
                commitment_hash=refused,
                department=HRSS,
                status=3,
                evidence=os.urandom(32),
                report="{}",
                created_at=NOW.timestamp(),
                recorded_at=NOW.timestamp(),
                abandoned="the contract refused: OutcomeNotAllowed",
            )
        )
    [item] = _page(lists, "refused").items
    assert (item.status, item.matter_code, item.note) == (
        "kept",
        MATTER,
        "the contract refused: OutcomeNotAllowed",
    )
    assert _page(lists, "refused", department=SAMR).total == 0


def test_bad_names_sorts_and_pages_are_refused(lists: WorkLists) -> None:
    with pytest.raises(WorkListError, match="no work list"):
        lists.page("everything", HRSS)
    with pytest.raises(WorkListError, match="sorts by"):
        lists.page("rectification", HRSS, sort="applicant")
    with pytest.raises(WorkListError, match="a page is"):
        lists.page("overdue", HRSS, limit=501)
    with pytest.raises(WorkListError, match="ends before"):
        lists.page("overdue", HRSS, since=TODAY, until=TODAY - timedelta(days=1))
    assert lists.page("overdue", HRSS, limit=500).limit == 500


_TABLES = {"commitments", "verifications", "notices", "appeals", "method_tasks", "outcome_outbox"}


def test_each_list_walks_an_index(tmp_path: Path) -> None:
    """No page nor count of any list scans a table whole (SQLite's query plans: the plan's
    words are SQLite's, so this one runs on SQLite alone rather than skip on PostgreSQL)."""
    store = Store(f"sqlite:///{tmp_path / 'plans.db'}")
    lists = WorkLists(store, OfficeHours.parse("09:00-12:00,13:00-17:00"), {SLOW: 2.0})
    for name in WORK_LISTS:
        for late in (False, True):
            wanted = WorkFilter(HRSS, None, late, None, None, TODAY, NOW.astimezone(UTC))
            sort = WORK_SORTS[name][0]
            for query in lists.statements(name, wanted, sort, "asc", 0, 50)[:2]:
                compiled = query.compile(store.engine, compile_kwargs={"literal_binds": True})
                with store.engine.connect() as connection:
                    plan = [
                        str(row[-1])
                        for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
                    ]
                whole = [
                    step for step in plan if step.startswith("SCAN ") and step.split()[1] in _TABLES
                ]
                assert whole == [], (name, late, plan)


# ---------------------------------------------------------------------- over HTTP


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    write_all_keys(tmp_path / "keys", embedded_deployment)
    opened = open_service(tmp_path, embedded_deployment, feed=False, anchoring=False)
    yield opened
    opened.context.close()


def test_a_decided_commitment_leaves_the_list_served(world: ServiceWorld) -> None:
    first, second = world.submit(world.signed()), world.submit(world.signed())
    listed = world.client.get("/v1/worklists/awaiting-decision", headers=world.auth())
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total"] == 2
    assert {i["commitment_hash"] for i in body["items"]} == {hex32(first), hex32(second)}
    assert all(set(i) == set(WORK_CSV_COLUMNS) for i in body["items"])
    decided = world.client.post(
        f"/v1/commitments/{hex32(first)}/decision",
        json={"result": "approved"},
        headers=world.auth(),
    )
    assert decided.status_code in (200, 201), decided.text
    again = world.client.get("/v1/worklists/awaiting-decision", headers=world.auth()).json()
    assert [i["commitment_hash"] for i in again["items"]] == [hex32(second)]


def test_a_department_reads_its_own_and_a_supervisor_any(world: ServiceWorld) -> None:
    world.submit(world.signed(department=MARKET))
    path = "/v1/worklists/awaiting-decision"
    other = world.client.get(path, params={"department": MARKET}, headers=world.auth())
    assert_problem(other, 403, "other-department")
    assert world.client.get(path, headers=world.auth()).json()["total"] == 0
    issued = world.context.tokens.issue(SUPERVISOR, "supervisor")
    supervisor = {"Authorization": f"Bearer {issued.token}"}
    seen = world.client.get(path, params={"department": MARKET}, headers=supervisor)
    assert (seen.status_code, seen.json()["total"]) == (200, 1)
    assert_problem(world.client.get(path, headers=supervisor), 422, "invalid-request")
    assert world.client.get(path).status_code == 401


def test_bad_parameters_are_422_and_csv_has_a_bom(world: ServiceWorld) -> None:
    digest = world.submit(world.signed())
    path = "/v1/worklists/awaiting-decision"
    for params in ({"latte": "true"}, {"sort": "name"}, {"limit": "501"}, {"offset": "-1"}):
        assert_problem(
            world.client.get(path, params=params, headers=world.auth()), 422, "invalid-request"
        )
    assert world.client.get("/v1/worklists/everything", headers=world.auth()).status_code == 422
    got = world.client.get(path, params={"format": "csv"}, headers=world.auth())
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/csv")
    assert got.content.startswith("\ufeff".encode())
    lines = got.content.decode("utf-8-sig").splitlines()
    assert lines[0] == ",".join(WORK_CSV_COLUMNS)
    assert lines[1].startswith(f"awaiting-decision,{hex32(digest)},")


# ---------------------------------------------------------------------- the command line


def test_the_command_line_lists_late_ones_as_lines_json_and_csv(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from api.cli import app as cli_app
    from api.service import Settings

    store = Store(Settings(data_dir=tmp_path).resolved_store_url)
    try:
        WorkLists(store)
        long_ago = _commit(store, "long-ago", datetime(2026, 11, 2, 9, 0, tzinfo=BEIJING), "online")
    finally:
        store.close()
    runner = CliRunner()
    base = ["worklist", "awaiting-decision", "--department", HRSS, "--data-dir", str(tmp_path)]
    env = {"COLUMNS": "1000"}
    lines = runner.invoke(cli_app, [*base, "--late"], env=env)
    assert lines.exit_code == 0, lines.output
    assert (
        f"{_hx(long_ago)} {MATTER} late LATE due 2026-11-02T05:30:00.000Z" in lines.output
    )  # 13:30
    as_json = runner.invoke(cli_app, [*base, "--json"], env=env)
    assert json.loads(as_json.output)["total"] == 1
    as_csv = runner.invoke(cli_app, [*base, "--csv"], env=env)
    assert as_csv.output.startswith("\ufefflist,commitment_hash,")
    bad = runner.invoke(
        cli_app,
        ["worklist", "everything", "--department", HRSS, "--data-dir", str(tmp_path)],
        env=env,
    )
    assert bad.exit_code == 2 and "no work list" in bad.output


def test_manual_pages_across_its_parts_are_slices_of_the_whole(
    store: Store, lists: WorkLists
) -> None:
    from verifier.catalog import Task

    records, tasks = VerifierRecords(store), TaskRecords(store)
    for n, day in enumerate((3, 8, 1, 5)):
        digest = _schedule(records, f"manual-{n}", date(2026, 12, day))
        records.set_state(digest, "manual")
    for n, days in enumerate((1, 6, 3)):
        review = Task(key=f"r{n}", kind="document_review", description="查验", due_days=days)
        tasks.open_tasks(_hash(f"task-{n}"), HRSS, MATTER, [review], date(2026, 12, 1))
    for order in ("asc", "desc"):
        whole = _page(lists, "manual", order=order, limit=100)
        dues = [i.due for i in whole.items]
        assert dues == sorted(dues, reverse=order == "desc") and whole.total == 7
        for offset in range(0, 7, 2):
            page = _page(lists, "manual", order=order, offset=offset, limit=2)
            assert _hashes(page) == _hashes(whole)[offset : offset + 2]
            assert [i.reference for i in page.items] == [
                i.reference for i in whole.items[offset : offset + 2]
            ]
            assert page.total == 7

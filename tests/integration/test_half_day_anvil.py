"""Issue 15's Done-when on anvil: commitments received online and at the counter across a
weekend, National Day 2026 and its make-up working days; decided, some late; exactly the
late ones are late in the decision records (anchored on chain), the late list, the
statistics and the workbench.

`half_day` (the fixture) is the world other checks reuse: the service on anvil, each case's
commitment stored with its receipt time, decided at its decision time (six left undecided:
three received in the past and one 40 days ago, late now; two received now, in time), the
decision records anchored. Whether an undecided one is late is worked out here from the
office hours and the moment each page was asked for, never hard-coded.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import text
from support.deployment import HRSS, MARKET, deploy
from support.service_world import ServiceWorld, open_service
from support.workbench_pages import Row, section, sign_in, table_rows

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
from verifier import BEIJING, OfficeHours, default_catalog
from verifier.records import bounded_range, check_stats_chain, rebuild_counters


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
# Left undecided, received in the past (late now, whatever today is) ...
UNDECIDED_PAST = (
    # At the counter on National Day: due at the end of the first period after it.
    Case("holiday-counter-undecided", COUNTER, bj(10, 3, 10), None, None, False),
    # Online on a make-up Saturday afternoon: due on Monday morning.
    Case("make-up-online-undecided", ONLINE, bj(10, 10, 16, 30), None, None, False),
    # Online on a plain Saturday: due on the Monday after it.
    Case("weekend-online-undecided", ONLINE, bj(9, 26, 11), None, None, False),
)  # fmt: skip
# ... and those the fixture receives at the wall clock's time: one long overdue, two fresh,
# in time whether now is in office hours or not (at the counter: until its period closes).
RECEIVED_NOW = ("overdue-undecided", "fresh-online-undecided", "fresh-counter-undecided")
UNDECIDED = frozenset({case.name for case in UNDECIDED_PAST} | set(RECEIVED_NOW))
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
    time); past, overdue and fresh commitments left undecided; all anchored."""
    d = deploy(Chain.connect(node.url, kind="anvil"))
    # The service's day is the real Beijing day: the workbench's today is today.
    world = open_service(tmp_path, d, rpc=node.url, today=datetime.now(BEIJING).date())
    half_day = HalfDay(world)
    desk = world.context.decision_desk()
    for case in CASES:
        digest = half_day.receive(case)
        if case.decided is not None:
            desk.decide(digest, "approved", "clerk-7", HRSS, now=case.decided)
    for case in UNDECIDED_PAST:
        half_day.receive(case)
    # Undecided: one received 40 days ago (long overdue whatever today is), two just now.
    now = datetime.fromtimestamp(time.time(), UTC)
    for name, channel, at in (
        ("overdue-undecided", ONLINE, now - timedelta(days=40)),
        ("fresh-online-undecided", ONLINE, now),
        ("fresh-counter-undecided", COUNTER, now),
    ):
        half_day.receive(Case(name, channel, at, None, None, False))
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
    for name in UNDECIDED:
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
    fresh = half_day.hashes["fresh-online-undecided"]
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


# --------------------------------------------------------------- late now, by the clock

T = TypeVar("T")


@dataclass(frozen=True)
class LateNow:
    """Which undecided commitments are late at a moment asked between `before` and `after`:
    late throughout, in time throughout, and (falling due in between) either."""

    late: frozenset[str]
    in_time: frozenset[str]
    due: dict[str, datetime]

    @property
    def either(self) -> frozenset[str]:
        return UNDECIDED - self.late - self.in_time

    def check(self, shown_late: set[str], shown: set[str] | None = None) -> None:
        """`shown_late` are exactly the late ones; `shown` (all rows) every undecided one."""
        assert shown_late - self.either == self.late
        if shown is not None:
            assert shown == UNDECIDED
            assert (shown - shown_late) - self.either == self.in_time


def due_times(half_day: HalfDay) -> dict[str, datetime]:
    """Each undecided commitment's decision due time, by the settings' office hours and its
    matter's online limit in the catalog (worked out here, not read from the service)."""
    hours = OfficeHours.parse(half_day.world.settings.office_hours)
    catalog = default_catalog()
    due = {}
    for name in UNDECIDED:
        stored = half_day.world.store.get(half_day.hashes[name])
        assert stored is not None and stored.decided_at is None
        limit = catalog.matter(stored.matter_code).online_decision_working_days
        case = half_day.cases[name]
        due[name] = hours.decision_due(case.received, case.channel, limit)  # type: ignore[arg-type]
    return due


def asked(half_day: HalfDay, ask: Callable[[], T]) -> tuple[T, LateNow]:
    """`ask()`'s answer and what is late at the moment it was answered. The service counts
    late at its clock's second (`due < now`, now rounded down)."""
    before = datetime.now(UTC) - timedelta(seconds=1)
    answer = ask()
    after = datetime.now(UTC)
    due = due_times(half_day)
    late = frozenset(name for name, at in due.items() if at < before)
    in_time = frozenset(name for name, at in due.items() if at >= after)
    found = LateNow(late, in_time, due)
    # The design holds: the past ones and the long overdue one are late; the one received
    # online now has half a working day ahead (the one at the counter now, unless its office
    # period closed since).
    assert found.late >= {case.name for case in UNDECIDED_PAST} | {"overdue-undecided"}
    assert "fresh-online-undecided" in found.in_time
    return answer, found


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_late_list_holds_exactly_the_undecided_past_their_due(half_day: HalfDay) -> None:
    world = half_day.world
    names = {hex32(digest): name for name, digest in half_day.hashes.items()}
    url = "/v1/worklists/awaiting-decision"

    def get(query: str, headers: dict[str, str] | None = None) -> Any:
        answer = world.client.get(f"{url}?{query}", headers=headers or world.auth())
        assert answer.status_code == 200, answer.text
        return answer

    answer, now = asked(half_day, lambda: get("late=true&limit=500").json())
    assert answer["list"] == "awaiting-decision" and answer["department"] == HRSS
    assert answer["total"] == len(answer["items"])
    now.check({names[item["commitment_hash"]] for item in answer["items"]})
    for item in answer["items"]:
        name = names[item["commitment_hash"]]
        assert item["late"] is True and item["status"] == "late", name
        assert item["left"] < 0 and item["left_unit"] == "working_days", name
        assert item["reference"] == half_day.cases[name].channel, name
        assert abs(moment(item["due"]) - now.due[name]) < timedelta(milliseconds=1), name
    # The whole list: every undecided one, the late ones marked, no decided one.
    answer, now = asked(half_day, lambda: get("limit=500").json())
    shown = {names[item["commitment_hash"]]: item for item in answer["items"]}
    now.check({name for name, item in shown.items() if item["late"]}, set(shown))
    for name in now.in_time:
        assert shown[name]["status"] == "awaiting" and shown[name]["left"] > 0, name
    # The CSV export says the same.
    exported, now = asked(half_day, lambda: get("late=true&format=csv").text)
    assert exported.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(exported.removeprefix("\ufeff"))))
    assert {row["late"] for row in rows} == {"true"}
    now.check({names[row["commitment_hash"]] for row in rows})
    # The supervisor reads the department's list; another department sees none of it.
    supervisor = world.context.tokens.issue("SUPERVISOR", "supervisor").token
    answer, now = asked(
        half_day,
        lambda: get(f"late=true&department={HRSS}", {"Authorization": f"Bearer {supervisor}"}),
    )
    now.check({names[item["commitment_hash"]] for item in answer.json()["items"]})
    other = get("late=true", world.auth(MARKET)).json()
    assert other["department"] == MARKET and other["total"] == 0 and other["items"] == []
    # The decided ones: exactly those whose decision record says late were late.
    decided_late = set()
    for name, digest in half_day.hashes.items():
        shown_decision = world.client.get(
            f"/v1/commitments/{hex32(digest)}/decision", headers=world.auth()
        )
        if name in UNDECIDED:
            assert shown_decision.status_code == 404, name
            continue
        assert shown_decision.status_code == 200, shown_decision.text
        if shown_decision.json()["late"]:
            decided_late.add(name)
    assert decided_late == LATE


# --------------------------------------------------------------------------- statistics

FIRST_DAY = date(2026, 9, 1)
LAST_DAY = FIRST_DAY + timedelta(days=365)  # a year of days: the longest span asked for
Tally = Counter[tuple[str, str, str]]  # (matter, period start, metric) -> count


def expected_tally(half_day: HalfDay, period: str = "day") -> Tally:
    """`received` on each commitment's day of receipt, `decided` and `decided_late` on each
    decision's day (Beijing), per matter, counted from the cases."""

    def start(moment: datetime) -> str:
        day = moment.astimezone(BEIJING).date()
        return (day.replace(day=1) if period == "month" else day).isoformat()

    tally: Tally = Counter()
    for name, case in half_day.cases.items():
        stored = half_day.world.store.get(half_day.hashes[name])
        assert stored is not None
        if FIRST_DAY <= case.received.astimezone(BEIJING).date() <= LAST_DAY:
            tally[(stored.matter_code, start(case.received), "received")] += 1
        if case.decided is not None:
            tally[(stored.matter_code, start(case.decided), "decided")] += 1
            if case.late:
                tally[(stored.matter_code, start(case.decided), "decided_late")] += 1
    return tally


def stats(world: ServiceWorld, token: str | None, **query: str) -> dict[str, Any]:
    query = {"start": FIRST_DAY.isoformat(), "end": LAST_DAY.isoformat(), **query}
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    answer = world.client.get("/v1/stats", params=query, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def tally_of(body: dict[str, Any]) -> Tally:
    """The rows' counts of received, decided and decided late (every other count is 0:
    nothing was verified), each row's late rate checked."""
    tally: Tally = Counter()
    for row in body["rows"]:
        assert row["department"] == HRSS, row
        counts = row["counts"]
        for metric, count in counts.items():
            if metric in ("received", "decided", "decided_late"):
                if count:
                    tally[(row["matter_code"], row["start"], metric)] = count
            else:
                assert count == 0, (metric, row)
        late_rate = counts["decided_late"] / counts["decided"] if counts["decided"] else None
        assert row["rates"]["late_rate"] == (None if late_rate is None else round(late_rate, 6))
    return tally


def test_the_statistics_count_exactly_the_late_decisions(half_day: HalfDay) -> None:
    world = half_day.world
    registrar = world.tokens[HRSS, "registrar"]
    supervisor = world.context.tokens.issue("SUPERVISOR", "supervisor").token
    expected = expected_tally(half_day)
    mine = stats(world, registrar)
    assert mine["scope"] == "department" and mine["department"] == HRSS
    assert tally_of(mine) == expected
    metric_totals = Counter[str]()
    for (_, _, metric), count in expected.items():
        metric_totals[metric] += count
    assert metric_totals["decided"] == len(CASES)
    assert metric_totals["decided_late"] == len(LATE)
    # The reform office: every department (only HRSS has any), or HRSS named.
    everyone = stats(world, supervisor)
    assert everyone["scope"] == "supervisor" and everyone["department"] is None
    assert everyone["rows"] == mine["rows"]
    assert stats(world, supervisor, department=HRSS)["rows"] == mine["rows"]
    # Per month, and the department's totals per day (its matters added up).
    assert tally_of(stats(world, registrar, period="month")) == expected_tally(half_day, "month")
    per_day: Tally = Counter()
    for (_, day, metric), count in expected.items():
        per_day[("*", day, metric)] += count
    totals = stats(world, supervisor, by="department")
    assert tally_of(totals) == per_day
    # The public subset counts no decisions at all.
    public = stats(world, None)
    assert public["scope"] == "public" and "decided_late" not in public["metrics"]
    # The outcome counters agree with the chain's events (none yet: nothing verified), and
    # counting everything again (outcomes from the events, decisions from their records)
    # gives the very counts kept as each decision was made.
    ledger = world.deployment.ledger
    departments = {bytes(department_id(code)): code for code in (HRSS, MARKET)}
    report = check_stats_chain(ledger, world.store, departments)
    assert report.ok, report.to_json_obj()
    rebuilt = rebuild_counters(ledger, world.store, departments)
    assert rebuilt.ok
    assert stats(world, registrar)["rows"] == mine["rows"]
    assert stats(world, supervisor, by="department")["rows"] == totals["rows"]


# ---------------------------------------------------------------------------- workbench


def late_rows(rows: list[Row]) -> set[str]:
    """The commitments of the rows marked late (the row's class and its late mark agree)."""
    for row in rows:
        assert (row.css == "late") == row.late_mark, row
    return {row.commitment for row in rows if row.css == "late"}


def test_the_workbench_marks_exactly_the_late_ones(half_day: HalfDay) -> None:
    world = half_day.world
    names = {hex32(digest): name for name, digest in half_day.hashes.items()}
    client = world.client
    sign_in(client, world.tokens[HRSS, "registrar"])

    def page(path: str) -> str:
        answer = client.get(path, follow_redirects=False)
        assert answer.status_code == 200, answer.text
        shown: str = answer.text
        return shown

    # Today: the late ones under "already late", counted; those due today and in time next.
    today, now = asked(half_day, lambda: page("/workbench/today"))
    late_part = section(today, '<h2 id="late">', '<h2 id="due">')
    counted = re.search(r'<span class="late-mark">(\d+)</span></h2>', late_part)
    assert counted is not None
    assert len(now.late) <= int(counted.group(1)) <= len(now.late | now.either)
    rows = table_rows(late_part)
    assert all(row.css == "late" and row.late_mark for row in rows)
    now.check({names[row.commitment] for row in rows})
    due_part = section(today, '<h2 id="due">', "<h2>")
    day = world.context.today()
    due_today = {name for name in now.in_time if now.due[name].astimezone(BEIJING).date() == day}
    shown_due = {names[row.commitment] for row in table_rows(due_part)}
    assert shown_due - now.either == due_today
    # Nowhere on the page is a decided commitment, or one in time, marked late.
    now.check({names[digest] for digest in late_rows(table_rows(today))})
    # The list of those awaiting a decision, late only and whole.
    listed, now = asked(half_day, lambda: page("/workbench/lists/awaiting-decision?late=1"))
    rows = table_rows(listed)
    assert all(row.css == "late" for row in rows)
    now.check({names[digest] for digest in late_rows(rows)})
    listed, now = asked(half_day, lambda: page("/workbench/lists/awaiting-decision"))
    rows = table_rows(listed)
    now.check({names[d] for d in late_rows(rows)}, {names[row.commitment] for row in rows})
    # The charts: decisions within and past the half-day limit, month by month.
    charts = page("/workbench/charts?period=month")
    figure = section(charts, "审批决定是否在半个工作日内", "</figure>")
    first, last = bounded_range("month", None, None, day)
    expected: dict[str, tuple[int, int]] = {}
    for case in CASES:
        assert case.decided is not None
        decided_on = case.decided.astimezone(BEIJING).date()
        if first <= decided_on <= last:
            month = decided_on.strftime("%Y-%m")
            in_time, past = expected.get(month, (0, 0))
            expected[month] = (in_time + (not case.late), past + case.late)
    shown_months: dict[str, tuple[int, int]] = {}
    for row in table_rows(figure):
        month, decided, within, late, _rate = row.cells
        assert int(decided) == int(within) + int(late), row
        assert (row.css == "late") == (int(late) > 0), row
        if int(decided):
            shown_months[month] = (int(within), int(late))
    assert shown_months == expected and expected  # all ten, while 2026 is in the span
    bars = dict.fromkeys(("within the limit", "past the limit"), 0)
    for kind, count in re.findall(r"(within the limit|past the limit): (\d+)</title>", figure):
        bars[kind] += int(count)
    assert bars == {
        "within the limit": sum(w for w, _ in expected.values()),
        "past the limit": sum(n for _, n in expected.values()),
    }
    # The reform office's today: HRSS's late ones counted beside every department.
    sign_in(client, world.context.tokens.issue("SUPERVISOR", "supervisor").token)
    overview, now = asked(half_day, lambda: page("/workbench/today"))
    by_department = {row.cells[0]: row for row in table_rows(overview)}
    assert by_department[HRSS].cells[2] == str(len(UNDECIDED))
    assert len(now.late) <= int(by_department[HRSS].cells[1]) <= len(now.late | now.either)
    assert by_department[MARKET].cells[1:] == ["0", "0"]

"""Public breach search at scale: the trigram name index, bounded counts and page depth, the
stored JSON served as is; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert
from support.breach_records import CARD, FOOD, ON, breach, company, fingerprint, person
from support.deployment import Deployment
from support.service_world import assert_problem, open_service

from ledger import Store, apply_migrations
from verifier import RecordsError
from verifier.records import (
    MAX_RESULTS,
    MIGRATIONS,
    VerifierRecords,
    breach_records,
    verifier_migrations,
)
from verifier.records import search as breach_search
from verifier.records.breach_store import _breach_row


@pytest.fixture
def records(store: Store) -> VerifierRecords:
    return VerifierRecords(store)


def names(records: VerifierRecords, **filters: object) -> list[str]:
    return [r.party_name for r in records.search_breaches(ON, **filters).records]


def test_names_of_three_characters_or_more_are_found_anywhere_in_the_name(
    records: VerifierRecords,
) -> None:
    records.add_breach(breach(1, company("北京恒达科技有限公司")), fingerprint(1))
    records.add_breach(breach(2, company("北京华信商贸有限公司"), of=FOOD), fingerprint(2))
    records.add_breach(breach(3, person(3, "SMITH JOHN")), fingerprint(3))
    records.add_breach(breach(4, person(4, "欧阳修文")), fingerprint(4))
    assert names(records, name="恒达科技") == ["北京恒达科技有限公司"]
    both = ["北京华信商贸有限公司", "北京恒达科技有限公司"]
    assert sorted(names(records, name="有限公司")) == both
    assert names(records, name="s**** j") == ["S**** J***"]  # ASCII case ignored
    assert names(records, name="欧阳**") == ["欧阳**"]
    assert names(records, name="恒达科技X") == []
    assert names(records, name='"恒达" OR 华信') == []  # the index's query syntax is text here
    assert names(records, name="%%%") == []


def test_a_name_finds_exactly_the_names_that_hold_it_as_shown(
    records: VerifierRecords,
) -> None:
    # Without letters that have case, the trigram index alone decides on SQLite: the same
    # records as a substring match of the names as shown.
    shown = ["北京恒达科技有限公司", "欧阳**", "阳**", "张***", "张*", "AB张**C", "100%达标公司"]
    for n, name in enumerate(shown, start=1):
        records.add_breach(breach(n, company(name)), fingerprint(n))
    for term in ["阳**", "张**", "**C", "ab张", "达科技", "0%达", "***", "_**", "北京 恒"]:
        folded = term.lower()
        expected = sorted(name for name in shown if folded in name.lower())
        assert sorted(names(records, name=term)) == expected, term


def test_a_record_stored_before_the_name_index_is_found_through_it(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'old.db'}")
    with store.engine.begin() as connection:  # a store at verifier version 1, with a record
        apply_migrations(connection, verifier_migrations, {1: MIGRATIONS[1]})
        record = breach(1, company("北京恒达科技有限公司"))
        row = _breach_row(record, fingerprint(1), 0.0)
        connection.execute(insert(breach_records), [row])
    records = VerifierRecords(store)  # applies version 2: indexes, the name index rebuilt
    assert names(records, name="恒达科技") == ["北京恒达科技有限公司"]
    records.rebuild_name_index()
    assert names(records, name="恒达科技") == ["北京恒达科技有限公司"]
    store.close()


def test_totals_are_counted_up_to_a_bound_and_pages_go_no_deeper(
    records: VerifierRecords, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(breach_search, "MAX_RESULTS", 4)
    for n in range(1, 7):
        records.add_breach(breach(n, decided=date(2026, 1, n)), fingerprint(n))
    first = records.search_breaches(ON, page_size=2)
    assert (first.total, first.total_capped) == (4, True)
    assert [r.decision_date.day for r in first.records] == [6, 5]
    assert [r.decision_date.day for r in records.search_breaches(ON, page=2, page_size=2)[0]] == [
        4,
        3,
    ]
    with pytest.raises(RecordsError, match="narrow the search"):
        records.search_breaches(ON, page=3, page_size=2)
    exact = records.search_breaches(ON, decided_from=date(2026, 1, 5))
    assert (exact.total, exact.total_capped) == (2, False)


@pytest.mark.parametrize("stored", range(8))
def test_every_page_has_the_exact_total_whether_counted_or_seen_to_its_end(
    records: VerifierRecords, monkeypatch: pytest.MonkeyPatch, stored: int
) -> None:
    # A covering index's search counts only when the rows up to the page's end are all
    # there: a page that ends the list gives the total itself. Every page of every size
    # must agree with the list as a whole (a page that starts within the bound is shown
    # whole, as on PostgreSQL).
    monkeypatch.setattr(breach_search, "MAX_RESULTS", 4)
    for n in range(1, stored + 1):
        records.add_breach(breach(n, decided=date(2026, 1, n)), fingerprint(n))
    listed = [date(2026, 1, n) for n in range(stored, 0, -1)]
    for size in (1, 2, 3):
        for page in range(1, -(-4 // size) + 1):
            found = records.search_breaches(ON, page=page, page_size=size)
            shown = [r.decision_date for r in found.records]
            assert shown == listed[(page - 1) * size : page * size], (size, page)
            assert (found.total, found.total_capped) == (min(stored, 4), stored > 4)


def test_the_bounded_count_goes_in_by_the_search_index(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'count.db'}")
    records = VerifierRecords(store)
    for n in range(1, 4):
        records.add_breach(breach(n, of=FOOD, decided=date(2026, 1, n)), fingerprint(n))
    executed: list[str] = []
    event.listen(store.engine, "connect", lambda c, _r: c.set_trace_callback(executed.append))
    store.engine.dispose()
    found = records.search_breach_json(ON, matter=FOOD.code, department="BJ-SAMR", page_size=1)
    store.engine.dispose()
    assert found.total == 3
    counts = [s for s in executed if s.startswith("SELECT count(*)")]
    assert len(counts) == 1  # the page was full: the rest is counted
    with store.engine.connect() as connection:
        plan = " | ".join(
            row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + counts[0])
        )
    store.close()
    assert "COVERING INDEX breach_records_by_" in plan, plan


def test_a_search_leaves_no_read_transaction_open(tmp_path: Path) -> None:
    # SQLite: the search reads on a pooled driver connection in a transaction of its own;
    # left open, it would hold back checkpoints and fail the next search's BEGIN.
    store = Store(f"sqlite:///{tmp_path / 'snapshot.db'}")
    records = VerifierRecords(store)
    records.add_breach(breach(1), fingerprint(1))
    for _ in range(3):  # the same pooled connection again
        assert records.search_breach_json(ON).total == 1
    pooled = store.engine.raw_connection()
    try:
        assert not pooled.driver_connection.in_transaction  # type: ignore[union-attr]
    finally:
        pooled.close()
    records.add_breach(breach(2), fingerprint(2))  # a writer is not held back
    assert records.search_breach_json(ON).total == 2
    store.close()


def test_a_date_range_ending_after_the_day_lists_only_records_decided_by_then(
    records: VerifierRecords,
) -> None:
    records.add_breach(breach(1, decided=date(2026, 2, 1)), fingerprint(1))
    records.add_breach(breach(2, decided=date(2026, 4, 1)), fingerprint(2))  # not yet decided
    found = records.search_breaches(ON, decided_to=date(2026, 12, 31))
    assert [r.decision_date for r in found.records] == [date(2026, 2, 1)]


def test_the_json_search_serves_the_stored_text(records: VerifierRecords) -> None:
    record = breach(1)
    records.add_breach(record, fingerprint(1))
    page = records.search_breach_json(ON)
    assert [json.loads(text) for text in page.texts] == [record.to_public_json()]
    assert records.listed_breach_json(record.id, ON) == page.texts[0]


def test_only_listed_records_are_served_by_id(records: VerifierRecords) -> None:
    listed, repaired, future = breach(1), breach(2, of=CARD), breach(3, decided=date(2026, 5, 1))
    for n, record in enumerate((listed, repaired, future)):
        records.add_breach(record, fingerprint(n))
    records.update_breach_status(repaired.id, "repaired", date(2026, 1, 20))
    assert records.listed_breach_json(listed.id, ON) is not None
    assert records.listed_breach_json(repaired.id, ON) is None
    assert records.listed_breach_json(future.id, ON) is None
    assert records.listed_breach_json("BR-unknown", ON) is None


def test_the_service_pages_no_deeper_than_the_bound(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    world = open_service(tmp_path, embedded_deployment)
    record = world.add_breach()
    listed = world.client.get("/v1/breaches").json()
    assert (listed["total"], listed["total_capped"]) == (1, False)
    assert listed["records"] == [record.to_public_json()]
    assert world.client.get(f"/v1/breaches/{record.id}").json() == record.to_public_json()
    deep = {"page": str(MAX_RESULTS // 20 + 1), "page_size": "20"}
    body = assert_problem(world.client.get("/v1/breaches", params=deep), 422, "invalid-request")
    assert "narrow the search" in body["detail"]
    assert body["errors"][0]["location"] == ["query", "page"]
    last = {"page": str(MAX_RESULTS // 20), "page_size": "20"}
    assert world.client.get("/v1/breaches", params=last).json()["records"] == []
    page = world.client.get("/", params=deep)
    assert page.status_code == 400
    assert f"No records on page {deep['page']}; there are 1" in page.text  # not a cap
    world.context.close()


@pytest.mark.parametrize(
    ("search", "way_in"),
    [
        ({}, "breach_records_listed"),
        ({"name": "恒达科技"}, "breach_names VIRTUAL TABLE"),
        ({"name": "张"}, "breach_records_by_name"),  # too short for trigrams: whole names
        ({"credit_code": "91110108MA01ABCD0X"}, "breach_records_by_code"),
        ({"matter": "BJ-SAMR-0001", "department": "BJ-SAMR"}, "breach_records_by_"),
        ({"department": "BJ-SAMR"}, "breach_records_by_department"),
        ({"decided_from": date(2026, 1, 1), "page": 2}, "breach_records_listed"),
    ],
)
def test_each_search_goes_in_by_its_index(
    tmp_path: Path, search: dict[str, Any], way_in: str
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'plans.db'}")
    records = VerifierRecords(store)
    executed: list[str] = []  # as SQLite ran them, values in place (the driver's trace)

    def trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(executed.append)

    event.listen(store.engine, "connect", trace)
    store.engine.dispose()
    records.search_breach_json(ON, **search)
    event.remove(store.engine, "connect", trace)
    store.engine.dispose()
    selects = [s for s in executed if s.startswith("SELECT") and "FROM breach_records" in s]
    with store.engine.connect() as connection:
        plans = [
            " | ".join(row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + s))
            for s in selects
        ]
    store.close()
    assert plans
    for plan in plans:  # each statement of the search: its way in, and no scan of the table
        assert way_in in plan, plan
        assert "SCAN breach_records" not in plan, plan

"""The public search by a person's masked name ("张**") on SQLite: by the name's covering
index when every name holding it is one of its whole forms, else through the trigram index;
the same pages and totals either way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from support.breach_records import CARD, FOOD, ON, breach, company, fingerprint, person

from ledger import Store
from verifier import RecordsError
from verifier.records import VerifierRecords
from verifier.records import search as breach_search

# Whole forms of "张**" and "李**", shorter and longer masks, and a compound surname.
_ORDERED = "SELECT breach_records.rowid"  # a search's ordered read (not the index's own)
PEOPLE = ("张三丰", "张三", "张三丰子", "李四光", "李四", "欧阳修文", "王五六")


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'masked.db'}")
    yield store
    store.close()


@pytest.fixture
def records(sqlite_store: Store) -> VerifierRecords:
    """Records of masked persons decided over four years: listed, ended, not yet decided on
    ON, and some expired."""
    records = VerifierRecords(sqlite_store)
    for n in range(1, 141):
        decided = ON - timedelta(days=11 * n - 40)  # a few after ON: not listed then
        record = breach(n, person(n, PEOPLE[n % len(PEOPLE)]), (FOOD, CARD)[n % 2], decided)
        records.add_breach(record, fingerprint(n))
        if n % 5 == 0 and record.publication_end < ON:
            records.update_breach_status(record.id, "expired", ON)
    return records


def _searches(records: VerifierRecords, name: str) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = []
    for page_size in (1, 7, 20, 100):
        for page in range(1, 5):
            try:
                got = records.search_breach_json(ON, name=name, page=page, page_size=page_size)
            except RecordsError as error:  # beyond the bound: refused either way
                found.append(([], str(error), None))
                continue
            found.append((got.texts, got.total, got.total_capped))
    for decided_from in (date(2024, 1, 1), ON - timedelta(days=30)):
        got = records.search_breach_json(ON, name=name, decided_from=decided_from)
        found.append((got.texts, got.total, got.total_capped))
    return found


def _statements(records: VerifierRecords, store: Store, name: str) -> list[str]:
    executed: list[str] = []

    def trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(executed.append)

    event.listen(store.engine, "connect", trace)
    store.engine.dispose()
    try:
        records.search_breach_json(ON, name=name)
    finally:
        event.remove(store.engine, "connect", trace)
        store.engine.dispose()
    return executed


@pytest.mark.parametrize("name", ["张**", "李**", "张***", "阳**", "王**", "五**", "王五*"])
def test_a_masked_name_finds_the_same_pages_either_way(
    records: VerifierRecords, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    fast = _searches(records, name)
    monkeypatch.setattr(breach_search, "_only_whole_masks", lambda *_: False)
    through_trigrams = _searches(records, name)
    assert fast == through_trigrams
    assert any(texts for texts, _, _ in fast) == (name not in ("五**", "王五*"))  # no such names


def test_the_same_total_with_more_matches_than_the_bound(
    records: VerifierRecords, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(breach_search, "MAX_RESULTS", 4)
    fast = _searches(records, "张**")
    monkeypatch.setattr(breach_search, "_only_whole_masks", lambda *_: False)
    assert fast == _searches(records, "张**")
    assert fast[0][1:] == (4, True)


def test_a_masked_name_goes_in_by_the_name_index_without_reading_rows(
    records: VerifierRecords, sqlite_store: Store
) -> None:
    store = sqlite_store
    executed = _statements(records, store, "张**")
    searches = [s for s in executed if s.startswith(_ORDERED)]
    with store.engine.connect() as connection:
        plans = [
            " | ".join(row[3] for row in connection.exec_driver_sql("EXPLAIN QUERY PLAN " + s))
            for s in searches
        ]
    assert plans
    for plan in plans:
        assert "COVERING INDEX breach_records_by_name" in plan, plan
        assert "breach_names" not in plan, plan


def test_a_name_holding_the_mask_elsewhere_keeps_the_trigram_index(
    records: VerifierRecords, sqlite_store: Store
) -> None:
    records.add_breach(breach(900, company("北京张**科技有限公司")), fingerprint(900))
    found = records.search_breach_json(ON, name="张**")
    assert any("北京张**科技有限公司" in text for text in found.texts)
    executed = _statements(records, sqlite_store, "张**")
    searches = [s for s in executed if s.startswith(_ORDERED)]
    assert searches
    assert all("breach_names MATCH" in s for s in searches)


def test_names_that_are_not_masks_keep_the_trigram_index() -> None:
    for name in ("北京恒达", "**张", "张*三", "A**", "***", "张"):
        assert not breach_search._as_masked(name), name
    for name in ("张**", "欧阳**", "张*", "5**"):
        assert breach_search._as_masked(name), name

"""The appeals table on both backends: one open appeal of each kind per record, decisions
once, overdue flags once, texts sealed and opened, the department's own in its lists."""

from __future__ import annotations

import os
from datetime import date

import pytest

from ledger import Store, Vault
from verifier import RecordsError
from verifier.records import AppealRecords

FILED = date(2026, 12, 7)
LIMIT = date(2026, 12, 28)


@pytest.fixture
def appeals(store: Store) -> AppealRecords:
    return AppealRecords(store, Vault(os.urandom(32)))


def test_one_open_appeal_of_each_kind_per_record(appeals: AppealRecords) -> None:
    first = appeals.add("objection", "BR-1", "BJ-HRSS", "applicant", FILED, LIMIT, "不是我")
    appeals.add("repair", "BR-1", "BJ-HRSS", "officer", FILED, LIMIT, "已纠正")  # another kind
    with pytest.raises(RecordsError, match="already has an objection open"):
        appeals.add("objection", "BR-1", "BJ-HRSS", "officer", FILED, LIMIT, "再次")
    appeals.decide(first.id, "rejected", FILED, "BJ-HRSS verifier", "理由")
    again = appeals.add("objection", "BR-1", "BJ-HRSS", "officer", FILED, LIMIT, "新证据")
    objections = [a.id for a in appeals.for_record("BR-1") if a.kind == "objection"]
    assert objections == [first.id, again.id]  # in the order filed


def test_a_decision_is_taken_once_and_its_reasons_are_sealed(appeals: AppealRecords) -> None:
    filed = appeals.add(
        "objection", "BR-2", "BJ-HRSS", "applicant", FILED, LIMIT, "身份被冒用", ["证明"]
    )
    decided = appeals.decide(filed.id, "upheld", LIMIT, "BJ-HRSS verifier", "异议成立")
    assert (decided.state, decided.decided_on) == ("upheld", LIMIT)
    with pytest.raises(RecordsError, match="already decided"):
        appeals.decide(filed.id, "rejected", LIMIT, "BJ-HRSS verifier", "改判")
    texts = appeals.texts(filed.id)
    assert (texts.text, texts.evidence, texts.reasons) == ("身份被冒用", ("证明",), "异议成立")
    stranger = AppealRecords(appeals.store, Vault(os.urandom(32)))
    with pytest.raises(Exception, match="do not open"):
        stranger.texts(filed.id)  # another master key opens nothing


def test_overdue_appeals_are_flagged_once_and_only_the_departments(
    appeals: AppealRecords,
) -> None:
    late = appeals.add("objection", "BR-3", "BJ-HRSS", "applicant", FILED, LIMIT, "a")
    appeals.add("objection", "BR-4", "BJ-SAMR", "applicant", FILED, LIMIT, "b")
    decided = appeals.add("repair", "BR-5", "BJ-HRSS", "applicant", FILED, LIMIT, "c")
    appeals.decide(decided.id, "refused", FILED, "BJ-HRSS verifier", "d")
    assert appeals.flag_overdue("BJ-HRSS", LIMIT) == []  # the limit day itself is in time
    [flagged] = appeals.flag_overdue("BJ-HRSS", date(2026, 12, 29))
    assert flagged.id == late.id
    assert appeals.flag_overdue("BJ-HRSS", date(2026, 12, 30)) == []
    assert [a.id for a in appeals.listed("BJ-HRSS", "objection")] == [late.id]
    assert appeals.listed("BJ-HRSS", "objection")[0].overdue_flagged
    assert appeals.open_objections_among(["BR-3", "BR-4", "BR-5"]).keys() == {"BR-3", "BR-4"}

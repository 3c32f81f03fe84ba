"""Nothing published under the wrong department (issue #12): the rule
(`publication_conflict`) and the breach registry's own guard (`add_breach`), which every
path that publishes a breach goes through (the outcome sender, the chain reconciler)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.breach_records import HRSS, POINTS, SAMR, breach, commitment, fingerprint

from ledger import NewCommitment, Store
from verifier import RecordsError, default_catalog
from verifier.records import VerifierRecords, publication_conflict


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield opened
    opened.close()


def _taken_in(store: Store, n: int, department: str, matter_code: str) -> None:
    """A store row for the n-th commitment, taken in for `department`."""
    store.add_commitments(
        [
            NewCommitment(
                hash=commitment(n),
                code=f"11010520260115{n:06d}",
                matter_code=matter_code,
                department=department,
                applicant_fingerprint=fingerprint(n),
                sealed=b"sealed",
                wrapped_key=b"wrapped",
            )
        ]
    )


def test_the_rule_asks_for_the_department_of_the_commitments_matter() -> None:
    catalog = default_catalog()
    assert publication_conflict(catalog, HRSS, POINTS.code) is None
    assert publication_conflict(catalog, HRSS, POINTS.code, SAMR) is None  # the matter rules
    conflict = publication_conflict(catalog, SAMR, POINTS.code, SAMR)
    assert (
        conflict
        == f"recorded by {SAMR}, but matter {POINTS.code} is {HRSS}'s: withheld from publication"
    )
    # a matter the catalog no longer knows: the department the store took it in for
    assert publication_conflict(catalog, SAMR, "BJ-GONE-0001", SAMR) is None
    assert publication_conflict(catalog, SAMR, "BJ-GONE-0001", HRSS) is not None
    assert publication_conflict(catalog, SAMR, "BJ-GONE-0001") is not None


def test_a_breach_recorded_by_another_department_than_its_matters_is_refused(
    store: Store,
) -> None:
    records = VerifierRecords(store)
    with pytest.raises(RecordsError, match=f"recorded by {SAMR}, but matter"):
        records.add_breach(breach(1), fingerprint(1), recorded_by=SAMR)
    assert records.breach(breach(1).id) is None
    assert records.add_breach(breach(1), fingerprint(1), recorded_by=HRSS)


def test_a_breach_of_a_commitment_taken_in_for_another_department_is_refused(
    store: Store,
) -> None:
    """The store took the commitment in for SAMR, its matter is HRSS's: whoever builds the
    record (the sender, the reconciler), the registry does not publish it."""
    _taken_in(store, 1, SAMR, POINTS.code)
    _taken_in(store, 2, HRSS, POINTS.code)
    records = VerifierRecords(store)
    with pytest.raises(RecordsError, match=f"taken in for {SAMR}, but matter"):
        records.add_breach(breach(1), fingerprint(1))
    assert records.breach(breach(1).id) is None
    assert records.search_breaches(breach(1).decision_date).records == []
    assert records.add_breach(breach(2), fingerprint(2))
    # published before its row said SAMR (an older store): its correction is not published
    assert records.add_breach(breach(3), fingerprint(3))
    _taken_in(store, 3, SAMR, POINTS.code)
    with pytest.raises(RecordsError, match=f"taken in for {SAMR}"):
        records.correct_breach(breach(3).id, breach(3, corrects=breach(3)), fingerprint(3))
    assert records.breach(breach(3).id) == breach(3)  # the correction changed nothing

"""Signed verification reports: the evidence hash is of exactly what was signed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ledger import (
    Hash32,
    InvalidDocumentError,
    SignatureError,
    SigningKey,
    canonical_bytes,
    keccak256,
)
from verifier import (
    SignedReport,
    VerificationReport,
    evidence_hash,
    report_bytes,
    sign_report,
    verify_report,
)


def _report(outcome: str = "kept") -> VerificationReport:
    return VerificationReport(
        commitment_hash=Hash32(keccak256(b"commitment")),
        matter_code="BJ-HRSS-0001",
        department="BJ-HRSS",
        outcome=outcome,  # type: ignore[arg-type]
        comparisons=({"key": "k", "verdict": "agree", "observed": 84.5},),
        as_of=date(2026, 11, 27),
        decided_at=datetime(2026, 11, 27, 8, 0, tzinfo=UTC),
        decided_by="engine",
    )


@pytest.mark.parametrize("algorithm", ["ed25519", "ecdsa-p256"])
def test_a_signed_report_verifies_and_its_evidence_is_its_hash(algorithm: str) -> None:
    signed = sign_report(_report(), SigningKey.generate(algorithm))  # type: ignore[arg-type]
    verify_report(signed)
    assert signed.evidence == keccak256(canonical_bytes(signed.report))
    assert evidence_hash(signed.report) == evidence_hash(canonical_bytes(signed.report))
    again = SignedReport.from_json_obj(signed.to_json_obj())
    assert again == signed


def test_a_changed_report_fails_and_changes_its_evidence() -> None:
    signed = sign_report(_report(), SigningKey.generate("ed25519"))
    forged_body = {**signed.report, "outcome": "false"}
    forged = SignedReport.from_json_obj({**signed.to_json_obj(), "report": forged_body})
    assert forged.evidence != signed.evidence
    with pytest.raises(SignatureError):
        verify_report(forged)


def test_the_report_names_no_person() -> None:
    text = canonical_bytes(_report().to_json_obj()).decode()
    assert "applicant" not in text
    assert "id_number" not in text


# Any JSON value a report may carry: floats, huge integers and non-ASCII keys included
# (report_bytes must notice them and take the full RFC 8785 encoder).
_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=8)
_ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_TEXT, children, max_size=4),
    max_leaves=25,
)


@pytest.mark.property
@settings(max_examples=400, deadline=None)
@given(_ANY_JSON)
@example({"observed": 84.5})
@example({"\U0001f600": 1, "\ufb01": 2})  # sorted by UTF-16 units in JCS, not code points
@example({"months": [1e21, 1e-7, -0.0]})
def test_report_bytes_are_exactly_rfc8785(value: Any) -> None:
    assert report_bytes({"report": value}) == canonical_bytes({"report": value})


def test_report_bytes_refuse_integers_json_cannot_hold_exactly() -> None:
    with pytest.raises(InvalidDocumentError):
        report_bytes({"observed": 2**53})

"""Signed verification reports: the evidence hash is of exactly what was signed."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ledger import SignatureError, SigningKey, canonical_bytes, keccak256
from ledger.types import Hash32
from verifier.reports import SignedReport, VerificationReport, sign_report, verify_report


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

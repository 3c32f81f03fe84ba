"""A signed report is stored in the outcome outbox as the text it was signed as (made where
it was signed), not encoded a second time; one without that text is encoded as before."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from ledger import OutcomeEntry, SigningKey, Status, Store, keccak256
from ledger import outcome_outbox as outbox_table
from verifier import SignedReport, VerificationReport, sign_report, verify_report
from verifier.engine.sending import outcome_outbox

HRSS = "BJ-HRSS"


def _signed() -> SignedReport:
    report = VerificationReport(
        commitment_hash=keccak256(b"commitment"),
        matter_code="BJ-HRSS-0001",
        department=HRSS,
        outcome="mismatch",
        comparisons=({"key": "k", "verdict": "disagree", "detail": "核查 ✓", "observed": 3},),
        as_of=date(2026, 11, 27),
        decided_at=datetime(2026, 11, 27, 8, 0, tzinfo=UTC),
        decided_by="engine",
    )
    return sign_report(report, SigningKey.generate("ed25519"))


def test_a_signed_reports_stored_text_is_its_json_and_verifies() -> None:
    signed = _signed()
    assert signed.stored_json is not None
    assert json.loads(signed.stored_json) == signed.to_json_obj()
    again = SignedReport.from_json_obj(json.loads(signed.stored_json))
    assert again == signed and again.evidence == signed.evidence
    verify_report(again)


@pytest.mark.parametrize("made", [True, False])
def test_the_outbox_stores_a_reports_text_or_encodes_it(store: Store, made: bool) -> None:
    signed = _signed()
    if not made:
        signed = SignedReport.from_json_obj(signed.to_json_obj())  # read back: no text
        assert signed.stored_json is None
    outbox = outcome_outbox(store)
    outbox.enqueue(HRSS, [OutcomeEntry(keccak256(b"commitment"), Status.MISMATCH, signed)])
    [queued] = outbox.open(HRSS)
    assert queued.report == signed
    assert queued.evidence == signed.evidence
    with store.engine.connect() as connection:
        text = connection.execute(select(outbox_table.c.report)).scalar_one()
    assert json.loads(text) == signed.to_json_obj()
    assert (text == signed.stored_json) is made  # stored as signed, not encoded again

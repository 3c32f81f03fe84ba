"""What an objection or a repair application may say: bounded text, checked before anything
is sealed or stored (the HTTP routes bound it too; the command line and the applicant's
view reach these checks directly)."""

from __future__ import annotations

import pytest

from verifier.records import AppealTextError, bounded_evidence, bounded_text
from verifier.records.appeals import MAX_EVIDENCE_ITEMS, MAX_EVIDENCE_TEXT, MAX_TEXT


def test_a_text_is_stripped_and_kept() -> None:
    assert bounded_text("reason", "  身份被冒用 \n") == "身份被冒用"
    assert bounded_text("reason", "x" * MAX_TEXT) == "x" * MAX_TEXT


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("   ", "must not be empty"),
        ("x" * (MAX_TEXT + 1), "at most"),
        ("a\x00b", "NUL"),
        ("\udbe8 from undecodable argv bytes", "lone surrogate"),
    ],
)
def test_what_is_not_a_bounded_text_is_refused(text: str, why: str) -> None:
    with pytest.raises(AppealTextError, match=why):
        bounded_text("reason", text)


def test_evidence_is_bounded_in_number_and_length() -> None:
    assert bounded_evidence([" 缴费凭证 "]) == ("缴费凭证",)
    with pytest.raises(AppealTextError, match="items of evidence"):
        bounded_evidence(["x"] * (MAX_EVIDENCE_ITEMS + 1))
    with pytest.raises(AppealTextError, match="at most"):
        bounded_evidence(["x" * (MAX_EVIDENCE_TEXT + 1)])


def test_a_bad_text_is_the_command_lines_bad_input() -> None:
    from api.output import EXIT_BAD_INPUT, exit_code_of

    assert exit_code_of(AppealTextError("blank")) == EXIT_BAD_INPUT

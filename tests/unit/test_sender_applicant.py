"""Who committed, for a notice or a breach record: the decider's copy when the document is
still there, else the document itself (so an erasure since the check is found)."""

from __future__ import annotations

from typing import Any

import pytest

from ledger import Applicant, Hash32, keccak256
from verifier.engine.sending import OutcomeSender
from verifier.errors import VerificationError

COMMITMENT = keccak256(b"commitment")
KNOWN = Applicant.model_validate(
    {"kind": "person", "name": "张三", "id_type": "resident_id", "id_number": "110101199003074514"}
)


class _Store:
    def __init__(self, wrapped: bytes | None) -> None:
        self.wrapped = wrapped

    def sealed(self, commitment: Hash32) -> tuple[bytes, bytes | None]:
        return b"sealed", self.wrapped

    def get(self, commitment: Hash32) -> Any:
        raise AssertionError("the whole commitment is not read to learn whether it is erased")


class _Intake:
    opened = 0

    def open_document(self, commitment: Hash32) -> None:
        self.opened += 1
        return None  # erased: nothing to open


def _sender(wrapped: bytes | None, known: Applicant | None) -> tuple[OutcomeSender, _Intake]:
    sender = OutcomeSender.__new__(OutcomeSender)
    intake = _Intake()
    sender.store = _Store(wrapped)  # type: ignore[assignment]
    sender.intake = intake  # type: ignore[assignment]
    sender.recent_applicant = lambda commitment: known
    return sender, intake


def test_the_deciders_applicant_serves_while_the_document_is_there() -> None:
    sender, intake = _sender(b"wrapped key", KNOWN)
    assert sender._applicant(COMMITMENT) == KNOWN
    assert intake.opened == 0


@pytest.mark.parametrize("known", [KNOWN, None])
def test_an_erased_or_unknown_document_is_opened_and_erased_says_so(
    known: Applicant | None,
) -> None:
    sender, intake = _sender(None, known)
    with pytest.raises(VerificationError, match="no document"):
        sender._applicant(COMMITMENT)
    assert intake.opened == 1

"""What an applicant files from their session: a statement and defence, rectification
evidence, an objection, a repair application. Each is handed to the function of the part of
the verifier that decides it; a kind whose part the service does not have yet answers
"not yet available" (501), and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from api.service.applicant_models import FilingKind
from ledger import Hash32, Intake
from verifier.records import VerifierRecords

NOT_YET_AVAILABLE = {
    "statement": ("陈述申辩", "a statement and defence"),
    "rectification": ("整改材料", "rectification evidence"),
    "objection": ("异议申诉", "an objection"),
    "repair": ("信用修复申请", "a repair application"),
}


class FilingUnavailableError(Exception):
    """The service cannot take this kind of filing yet."""

    def __init__(self, kind: FilingKind) -> None:
        zh, en = NOT_YET_AVAILABLE[kind]
        super().__init__(f"filing {en} is not yet available in this service")
        self.kind = kind
        self.zh = f"本服务暂不能受理{zh}（尚未开通）"
        self.en = f"Filing {en} is not yet available in this service"


class FilingRefusedError(Exception):
    """The filing was refused (late, wrong state, unknown record): why, nothing stored."""


@dataclass(frozen=True)
class Filing:
    """One filing by the authenticated applicant of `commitment`."""

    kind: FilingKind
    commitment: Hash32
    text: str
    breach_id: str | None
    on: date


Filer = Callable[[Intake, VerifierRecords, Filing], dict[str, Any]]
# The kinds this service can take, each with the function that takes it.
_FILERS: dict[str, Filer] = {}


def filing_available(kind: FilingKind) -> bool:
    """Whether the service takes filings of `kind`."""
    return kind in _FILERS


def file_for_applicant(intake: Intake, records: VerifierRecords, filing: Filing) -> dict[str, Any]:
    """Hand the filing to its part of the verifier: what it answered (JSON-able);
    FilingUnavailableError or FilingRefusedError (nothing stored) otherwise."""
    filer = _FILERS.get(filing.kind)
    if filer is None:
        raise FilingUnavailableError(filing.kind)
    return filer(intake, records, filing)

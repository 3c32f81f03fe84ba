"""What an applicant files from their session: a statement and defence, rectification
evidence, an objection, a repair application. Each is handed to the function of the part of
the service that decides it (`api.service.appeals` for objections and repair,
`api.service.rectifications` for rectification evidence); a kind whose
part the service does not have yet answers "not yet available" (501), and nothing is stored.

An objection or a repair names a breach record: it must be a record of the commitment filed
for, which the session may see; another's is not found (404), whoever holds its id.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from api.service.appeals import apply_for_repair, file_objection
from api.service.applicant_models import FilingKind
from api.service.context import ServiceContext
from api.service.problems import ACTION_REFUSED, INVALID_REQUEST, NOT_FOUND, ProblemError
from api.service.rectifications import file_rectification
from ledger import Hash32, hex32
from verifier import BreachRecord
from verifier.engine import file_statement
from verifier.records import NoticeClosedError, StatementError

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


@dataclass(frozen=True)
class Filing:
    """One filing by the authenticated applicant of `commitment`."""

    kind: FilingKind
    commitment: Hash32
    text: str
    breach_id: str | None


Filer = Callable[[ServiceContext, Filing], dict[str, Any]]


def _own_record(context: ServiceContext, filing: Filing) -> BreachRecord:
    """The breach record the filing names, if it is the filed commitment's."""
    if not filing.breach_id:
        raise ProblemError(
            INVALID_REQUEST, f"name the breach record (breach_id) of the {filing.kind}"
        )
    record = context.records.breach(filing.breach_id[:64])
    if record is None or record.commitment_hash != hex32(filing.commitment):
        raise ProblemError(NOT_FOUND, f"no breach record {filing.breach_id[:64]!r} of yours")
    return record


def _objection(context: ServiceContext, filing: Filing) -> dict[str, Any]:
    record = _own_record(context, filing)
    appeal = file_objection(context, record.id, by="applicant", reason=filing.text)
    return {"appeal": appeal.to_json_obj()}


def _repair(context: ServiceContext, filing: Filing) -> dict[str, Any]:
    record = _own_record(context, filing)
    appeal = apply_for_repair(context, record.id, filing.text, by="applicant")
    return {"appeal": appeal.to_json_obj()}


def _statement(context: ServiceContext, filing: Filing) -> dict[str, Any]:
    """A statement and defence against the commitment's open notice of a proposed breach."""
    assert context.intake is not None  # _file checked
    try:
        statement = file_statement(
            context.store,
            context.intake.vault,
            filing.commitment,
            filing.text,
            filed_by="applicant",
            on=context.today(),
        )
    except StatementError as exc:
        raise ProblemError(INVALID_REQUEST, str(exc)) from None
    except NoticeClosedError as exc:
        raise ProblemError(ACTION_REFUSED, str(exc)) from None
    return {"statement": {"id": statement.id, "notice_id": statement.notice_id}}


def _rectification(context: ServiceContext, filing: Filing) -> dict[str, Any]:
    """Evidence for the commitment's open mismatch, within its rectification window."""
    assert context.intake is not None  # _file checked
    filed = file_rectification(
        context.store,
        context.records,
        context.intake.vault,
        context.today(),
        filing.commitment,
        filing.text,
        by="applicant",
    )
    return {"rectification": filed.to_json_obj()}


# The kinds this service can take, each with the function that takes it.
_FILERS: dict[str, Filer] = {
    "statement": _statement,
    "rectification": _rectification,
    "objection": _objection,
    "repair": _repair,
}


def filing_available(kind: FilingKind) -> bool:
    """Whether the service takes filings of `kind`."""
    return kind in _FILERS


def file_for_applicant(context: ServiceContext, filing: Filing) -> dict[str, Any]:
    """Hand the filing to its part of the service: what it answered (JSON-able);
    FilingUnavailableError, or a ProblemError of that part (nothing stored), otherwise."""
    filer = _FILERS.get(filing.kind)
    if filer is None:
        raise FilingUnavailableError(filing.kind)
    return filer(context, filing)

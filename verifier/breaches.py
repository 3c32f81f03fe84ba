"""Breach records as public credit sites show them: masking, publication periods, repair."""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, ClassVar, Literal, NamedTuple

from pydantic import ConfigDict, TypeAdapter, ValidationError

from ledger import Applicant, Hash32, IdType, hex32, to_hash32
from verifier.catalog import Matter, Severity
from verifier.errors import BreachError, BreachStateError, RepairTooEarlyError

__all__ = [
    "BreachError",
    "BreachEvidence",
    "BreachRecord",
    "BreachStateError",
    "BreachStatus",
    "PartyKind",
    "PublicationPeriod",
    "RepairTooEarlyError",
    "add_months",
    "can_repair",
    "corrected",
    "earliest_repair",
    "expired",
    "make_breach_record",
    "mask_id_number",
    "mask_person_name",
    "publication_over",
    "publication_period",
    "publicly_listed",
    "repaired",
]

PartyKind = Literal["person", "organisation"]
BreachStatus = Literal["published", "repaired", "expired", "corrected"]

# Two-character surnames: "欧阳修文" shows as "欧阳**", not "欧***".
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 钟离".split()  # noqa: SIM905
)
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
# Separators inside transliterated names (阿依古丽·买买提) are not part of any name.
_NAME_SEPARATORS = frozenset("·•・")
_WORD = re.compile(r"\S+")
_REVISION = re.compile(r"-(\d+)$")
MASK = "*"


# --------------------------------------------------------------------------- masking


def mask_person_name(name: str) -> str:
    """A person's name as public sites show it: Chinese keeps the surname, Latin initials.

    "张三" -> "张*", "欧阳修文" -> "欧阳**", "SMITH JOHN" -> "S**** J***".
    """
    if _HAN.search(name):
        surname = 2 if len(name) > 2 and name[:2] in COMPOUND_SURNAMES else 1
        rest = "".join(c if c in _NAME_SEPARATORS else MASK for c in name[surname:])
        return name[:surname] + rest
    return _WORD.sub(lambda word: word[0][0] + MASK * (len(word[0]) - 1), name)


def mask_id_number(id_type: IdType, number: str) -> str:
    """An identity number as public sites show it; credit codes are public and stay whole.

    Resident IDs (and 18-character permanent-residence IDs) keep the 6-digit region and
    the last 2 characters. The 8-digit birth date is the most identifying part: with the
    region and the last 4 shown (a common practice) only the birth date is hidden, some
    36,500 days a century, of which the check digit leaves about 3,300 candidates;
    hiding two more digits leaves about 330,000.
    Passports keep their first and last 2 characters; 2017 permanent-residence cards
    their 3-letter nationality and last 2.
    """
    if id_type == "uscc":
        return number  # an organisation's credit code is public by law
    if id_type == "passport":
        head, tail = 2, 2
    elif id_type == "foreign_permanent_resident_id" and len(number) == 15:
        head, tail = 3, 2
    else:
        head, tail = 6, 2
    if head + tail > len(number) // 2:
        # A short number would otherwise be nearly whole: never show more than half.
        head = tail = len(number) // 4
    hidden = len(number) - head - tail
    return number[:head] + MASK * hidden + number[len(number) - tail :]


# --------------------------------------------------------------------------- periods


class PublicationPeriod(NamedTuple):
    """Calendar months from the decision: before repair is allowed, and until it expires."""

    months_before_repair: int
    months_published: int


# DOMAIN.md: minor up to 3 months (repairable at once), general 3 months to 1 year,
# serious 1 to 3 years. Minor breaches are published too: an unpublished record would
# leave the public unable to check why an applicant was refused the commitment route.
_PERIODS: dict[Severity, PublicationPeriod] = {
    "minor": PublicationPeriod(0, 3),
    "general": PublicationPeriod(3, 12),
    "serious": PublicationPeriod(12, 36),
}


def publication_period(severity: Severity) -> PublicationPeriod:
    """The minimum (before repair) and maximum publication period of a severity."""
    return _PERIODS[severity]


def add_months(day: date, months: int) -> date:
    """`day` moved by calendar months; the 31st becomes the last day of a shorter month."""
    years, month_index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month_index + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# --------------------------------------------------------------------------- the record


@dataclass(frozen=True)
class BreachEvidence:
    """Where the BreachRecorded event is on chain: anyone can look it up and compare."""

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid", strict=True)

    chain_id: int
    contract: str
    transaction: str
    block: int
    commitment_hash: str


@dataclass(frozen=True)
class BreachRecord:
    """A record of dishonesty (失信记录) as published: no unmasked personal data."""

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(extra="forbid", strict=True)

    id: str
    commitment_hash: str
    party_kind: PartyKind
    party_name: str
    party_code: str
    matter_code: str
    matter_name: str
    facts: str
    decision: str
    document_number: str
    legal_basis: str
    department: str
    department_name: str
    decision_date: date
    publication_end: date
    severity: Severity
    status: BreachStatus
    evidence: BreachEvidence
    superseded_by: str | None = None
    repaired_on: date | None = None

    def to_public_json(self) -> dict[str, Any]:
        """The record as the public portal serves it (dates as ISO text)."""
        return _RECORD_JSON.dump_python(self, mode="json")  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> BreachRecord:
        """Parse a record written by `to_public_json`; BreachError naming what is wrong."""
        text = data if isinstance(data, str | bytes) else json.dumps(dict(data))
        try:
            return _RECORD_JSON.validate_json(text)
        except ValidationError as exc:
            raise BreachError(f"not a breach record: {exc}") from None


_RECORD_JSON = TypeAdapter(BreachRecord)


def make_breach_record(
    applicant: Applicant,
    matter: Matter,
    commitment_hash: Hash32 | str,
    facts: str,
    decision: str,
    document_number: str,
    decision_date: date,
    evidence: BreachEvidence,
    *,
    corrects: BreachRecord | None = None,
) -> BreachRecord:
    """Build the published record of a breach, masking the applicant if a person.

    A correction of a record for the same commitment (`corrects`) gets the next revision
    id, "BR-<16 hex>-2", so the superseded record keeps its own id and history.
    """
    commitment = hex32(to_hash32(commitment_hash))
    if evidence.commitment_hash.lower() != commitment:
        raise BreachError(
            f"the evidence is for commitment {evidence.commitment_hash}, not {commitment}"
        )
    for label, text in (
        ("facts", facts),
        ("decision", decision),
        ("document number", document_number),
    ):
        if not text.strip():
            raise BreachError(f"the breach {label} must not be empty")
    if applicant.kind == "person":
        _refuse_personal_data(applicant, facts=facts, decision=decision)
        party_name = mask_person_name(applicant.name)
        party_code = mask_id_number(applicant.id_type, applicant.id_number)
    else:
        party_name, party_code = applicant.name, applicant.id_number
    return BreachRecord(
        id=_record_id(commitment, corrects),
        commitment_hash=commitment,
        party_kind=applicant.kind,
        party_name=party_name,
        party_code=party_code,
        matter_code=matter.code,
        matter_name=matter.name,
        facts=facts,
        decision=decision,
        document_number=document_number,
        legal_basis=matter.legal_basis,
        department=matter.department,
        department_name=matter.department_name,
        decision_date=decision_date,
        publication_end=add_months(
            decision_date, publication_period(matter.severity).months_published
        ),
        severity=matter.severity,
        status="published",
        evidence=evidence,
    )


def _refuse_personal_data(applicant: Applicant, **texts: str) -> None:
    # The record is public: a name or ID number typed into the facts would undo the masking.
    for label, text in texts.items():
        for secret in (applicant.name, applicant.id_number):
            if secret in text:
                raise BreachError(
                    f"the breach record's {label} shows the applicant's unmasked name or ID: "
                    f"write {mask_person_name(applicant.name)!r} or 'the applicant' instead"
                )


def _record_id(commitment: str, corrects: BreachRecord | None) -> str:
    base = "BR-" + commitment[2:18]
    if corrects is None or corrects.commitment_hash != commitment:
        return base
    found = _REVISION.search(corrects.id.removeprefix(base))
    return f"{base}-{int(found[1]) + 1 if found else 2}"


# --------------------------------------------------------------------------- transitions


def earliest_repair(record: BreachRecord) -> date:
    """The first day the record may be repaired: the decision plus the minimum period."""
    return add_months(
        record.decision_date, publication_period(record.severity).months_before_repair
    )


def publication_over(record: BreachRecord, on: date) -> bool:
    """Whether the publication end date has passed (the end date itself is still listed)."""
    return on > record.publication_end


def publicly_listed(record: BreachRecord, on: date) -> bool:
    """Whether the public list shows the record on `on`: published and within its period."""
    return record.status == "published" and record.decision_date <= on <= record.publication_end


def can_repair(record: BreachRecord, on: date) -> bool:
    """Whether a listed record may be repaired on `on` (its minimum period has passed)."""
    return publicly_listed(record, on) and on >= earliest_repair(record)


def repaired(record: BreachRecord, on: date) -> BreachRecord:
    """The record repaired on `on`: it leaves the public list; RepairTooEarlyError if early."""
    if not publicly_listed(record, on):
        raise BreachStateError(
            f"breach {record.id} is not listed on {on.isoformat()} (status {record.status}, "
            f"published {record.decision_date} to {record.publication_end}): "
            "only a listed record can be repaired"
        )
    earliest = earliest_repair(record)
    if on < earliest:
        months = publication_period(record.severity).months_before_repair
        raise RepairTooEarlyError(record.id, record.severity, months, earliest, on)
    return replace(record, status="repaired", repaired_on=on)


def expired(record: BreachRecord, on: date) -> BreachRecord:
    """The record expired: its publication end has passed on `on` without a repair."""
    if record.status != "published":
        raise BreachStateError(f"breach {record.id} is {record.status}, not published")
    if not publication_over(record, on):
        raise BreachStateError(
            f"breach {record.id} is published until {record.publication_end.isoformat()}: "
            f"it cannot expire on {on.isoformat()}"
        )
    return replace(record, status="expired")


def corrected(record: BreachRecord, by: BreachRecord) -> BreachRecord:
    """The record superseded by a correction (after an objection); it leaves the list."""
    if record.status == "corrected":
        raise BreachStateError(
            f"breach {record.id} was already corrected by {record.superseded_by}"
        )
    if by.id == record.id or by.status != "published" or by.superseded_by is not None:
        raise BreachStateError(
            f"breach {by.id} cannot correct {record.id}: a correction is a new, published record"
        )
    return replace(record, status="corrected", superseded_by=by.id)

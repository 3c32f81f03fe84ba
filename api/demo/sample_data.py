"""Deterministic department records for sample applicants, derived only from their ID."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import date, timedelta
from typing import Literal

from ledger import make_uscc
from verifier import Subject, UnknownSourceError

__all__ = [
    "LAST_PAID_MONTH",
    "MAIN_SOURCES",
    "SOURCES",
    "Planted",
    "employer_uscc_for",
    "planted",
    "records",
]

Planted = Literal["agree", "mismatch", "false", "missing"]

# Not a secret: the key only keeps these draws independent of any other hash of an ID.
_KEY = b"commitment-ledger/sample-data/v1"
# Shares in basis points: 3% mismatch, 1% false, 2% missing, the rest agree.
_MISMATCH_BELOW, _FALSE_BELOW, _MISSING_BELOW = 300, 400, 600

LAST_PAID_MONTH = "2026-10"
_LAST_MONTH_INDEX = 2026 * 12 + 10 - 1  # months since year 0, January = 0
_REQUIRED_RUN = 84  # BJ-HRSS-0001: seven years of consecutive contributions
_GAP = 14  # DOMAIN.md scenario 1

# The first claim of each matter: with no record here the matter cannot be decided.
MAIN_SOURCES = frozenset(
    {
        "hrss_social_insurance",
        "education_degrees",
        "housing_registry",
        "hrss_employment",
        "samr_enterprise",
        "edu_qualifications",
        "housing_practitioners",
        "health_practitioners",
    }
)


def _draw(id_number: str, purpose: str, low: int, high: int) -> int:
    """A number in [low, high] fixed by the ID and what it is drawn for."""
    message = f"{purpose}\x00{id_number}".encode()
    digest = hmac.new(_KEY, message, hashlib.sha256).digest()
    return low + int.from_bytes(digest[:8], "big") % (high - low + 1)


def planted(id_number: str) -> Planted:
    """What verification should find for this applicant: agree, mismatch, false or missing."""
    bucket = _draw(id_number, "planted", 0, 9_999)
    if bucket < _MISMATCH_BELOW:
        return "mismatch"
    if bucket < _FALSE_BELOW:
        return "false"
    if bucket < _MISSING_BELOW:
        return "missing"
    return "agree"


def employer_uscc_for(id_number: str) -> str:
    """The employer the records name for this applicant (samples state the same code)."""
    return make_uscc("110105", f"{_draw(id_number, 'employer', 0, 10**8 - 1):08d}")


def _other_employer(id_number: str) -> str:
    # Another district's code, so it can never equal employer_uscc_for(id_number).
    return make_uscc("110108", f"{_draw(id_number, 'other employer', 0, 10**8 - 1):08d}")


def _month(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _months_paid(id_number: str, kind: Planted) -> list[str]:
    if kind != "mismatch":
        span = _draw(id_number, "months", 90, 180)
        return [_month(_LAST_MONTH_INDEX - back) for back in reversed(range(span))]
    # A 14-month gap ending `recent` months before the last paid month, inside the last 84;
    # the runs before and after it are both shorter than 84, though 84 months were paid.
    recent = _draw(id_number, "gap end", 1, _REQUIRED_RUN - _GAP)
    span = _draw(id_number, "months", _REQUIRED_RUN + _GAP, _REQUIRED_RUN - 1 + _GAP + recent)
    gap = range(recent, recent + _GAP)
    return [_month(_LAST_MONTH_INDEX - back) for back in reversed(range(span)) if back not in gap]


def _social_insurance(id_number: str, kind: Planted) -> dict[str, object]:
    return {
        "social_insurance_months": _months_paid(id_number, kind),
        "insured_in_beijing": True,
        "below_retirement_age": True,
        "unemployment_insurance_months": _short_or_enough(id_number, kind, "ui months", 12, 120),
        "not_insured_by_unit": _holds(kind),
        "work_injury_insured": _holds(kind),
        "insurance_relation_closed": _holds(kind),
    }


def _holds(kind: Planted) -> bool:
    """A yes-or-no fact of the newer matters: no for a planted mismatch or false."""
    return kind in ("agree", "missing")


def _short_or_enough(id_number: str, kind: Planted, purpose: str, needed: int, high: int) -> int:
    """A count at least `needed` (up to `high`), or below it for a planted mismatch or false."""
    if kind in ("mismatch", "false"):
        return _draw(id_number, purpose, max(0, needed // 4), needed - 1)
    return _draw(id_number, purpose, needed, high)


def _residence(id_number: str, kind: Planted) -> dict[str, object]:
    return {
        "holds_residence_permit": True,
        "age_years": _draw(id_number, "age", 22, 59),
        "beijing_hukou": _holds(kind),
    }


def _criminal(id_number: str, kind: Planted) -> dict[str, object]:
    return {"no_criminal_record": kind != "false"}


def _degrees(id_number: str, kind: Planted) -> dict[str, object]:
    if kind == "mismatch":  # no bachelor's degree, graduated before this year's cohort
        level, graduated = "associate", date(2025, 6, 1)
    else:
        level = ("bachelor", "master", "doctorate")[_draw(id_number, "degree", 0, 2)]
        graduated = date(2026, 1, 1)
    graduated += timedelta(days=_draw(id_number, "graduation day", 0, 180))
    return {
        "degree_level": level,
        "graduation_date": graduated.isoformat(),
        "diploma_and_degree_held": True,
    }


def _employment(id_number: str, kind: Planted) -> dict[str, object]:
    years = 1 if kind == "mismatch" else _draw(id_number, "work years", 2, 15)
    employer = _other_employer(id_number) if kind == "false" else employer_uscc_for(id_number)
    return {"relevant_work_years": years, "employer_uscc": employer}


def _cards(id_number: str, kind: Planted) -> dict[str, object]:
    held = {"mismatch": 1, "false": 2}.get(kind, 0)
    return {
        "active_card_count": held,
        "card_ever_issued": _holds(kind),
        "original_card_frozen": held == 0,
        "card_account_settled": _holds(kind),
    }


def _employment_services(id_number: str, kind: Planted) -> dict[str, object]:
    certified = date(2026, 1, 1) + timedelta(days=_draw(id_number, "certificate day", 0, 280))
    if kind == "mismatch":  # a certificate from before this year's scheme
        certified = date(2025, 1, 1) + timedelta(days=_draw(id_number, "certificate day", 0, 300))
    return {
        "unemployment_registered": _holds(kind),
        "separation_involuntary": _holds(kind),
        "skill_certificate_date": certified.isoformat(),
        "no_prior_skill_subsidy": _holds(kind),
        "certified_staff_count": _short_or_enough(id_number, kind, "staff", 5, 40),
    }


def _enterprise(id_number: str, kind: Planted) -> dict[str, object]:
    return {
        "entity_registered": _holds(kind),
        "registered_capital_wan": _short_or_enough(id_number, kind, "capital", 200, 5_000),
        "net_assets_wan": _short_or_enough(id_number, kind, "net assets", 800, 20_000),
    }


def _education_qualifications(id_number: str, kind: Planted) -> dict[str, object]:
    level = "3A" if kind == "mismatch" else ("1A", "1B", "2A", "2B")[_draw(id_number, "pth", 0, 3)]
    return {
        "putonghua_level": level,
        "qualified_teacher_count": _short_or_enough(id_number, kind, "teachers", 5, 60),
    }


def _construction_practitioners(id_number: str, kind: Planted) -> dict[str, object]:
    return {
        "registered_constructors": _short_or_enough(id_number, kind, "constructors", 5, 30),
        "technical_lead_years": _short_or_enough(id_number, kind, "lead years", 5, 25),
        "safety_managers_certified": _holds(kind),
    }


def _health_practitioners(id_number: str, kind: Planted) -> dict[str, object]:
    return {
        "physician_qualified": _holds(kind),
        "nurse_exam_passed": _holds(kind),
        "staff_health_certified": _holds(kind),
    }


def _premises(id_number: str, kind: Planted) -> dict[str, object]:
    low, high = (120, 299) if kind == "mismatch" else (300, 4_000)  # tenths of a m²
    return {
        "premises_area_sqm": _draw(id_number, "area", low, high) / 10,
        "teaching_area_sqm": _short_or_enough(id_number, kind, "teaching area", 200, 2_000),
    }


def _training(id_number: str, kind: Planted) -> dict[str, object]:
    return {"food_safety_officer_certified": kind != "false"}


_RECORDS: dict[str, Callable[[str, Planted], dict[str, object]]] = {
    "hrss_social_insurance": _social_insurance,
    "police_residence": _residence,
    "police_criminal": _criminal,
    "education_degrees": _degrees,
    "employer_records": _employment,
    "hrss_cards": _cards,
    "housing_registry": _premises,
    "samr_training": _training,
    "hrss_employment": _employment_services,
    "samr_enterprise": _enterprise,
    "edu_qualifications": _education_qualifications,
    "housing_practitioners": _construction_practitioners,
    "health_practitioners": _health_practitioners,
}
SOURCES: tuple[str, ...] = tuple(_RECORDS)


def records(subject: Subject, source: str) -> dict[str, object] | None:
    """The record `source` holds on `subject`, or None if it has none.

    Per planted outcome: "agree" satisfies every claim of every shipped matter; "mismatch"
    falls short (a 14-month gap in social insurance, an associate degree graduated in 2025,
    one year of work, a card already held, under 30 m² of premises, and every count below
    its matter's threshold); "false" contradicts flatly (a criminal record, another
    employer, two cards held, no certified officer, no qualification, no registration);
    "missing" has no record in the main sources, and agreeing records elsewhere.
    """
    build = _RECORDS.get(source)
    if build is None:
        raise UnknownSourceError(source, SOURCES)
    kind = planted(subject.id_number)
    if kind == "missing" and source in MAIN_SOURCES:
        return None
    return build(subject.id_number, kind)

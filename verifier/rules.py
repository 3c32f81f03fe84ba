"""Comparison of one committed claim with the value a department's data hold."""

from __future__ import annotations

import functools
import math
import operator
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, NoReturn

__all__ = ["BOOKING_LAG_MONTHS", "Comparison", "Verdict", "compare", "normalise_text"]

Verdict = Literal["agree", "disagree", "undecidable"]

# Contributions for a month are booked during the following weeks, so the current month
# and the one before may be missing without meaning anything; a record older than this
# means the source has not caught up, and an old run must not be read as a broken one.
BOOKING_LAG_MONTHS = 2

# Any: the operands are narrowed to one comparable type by the rule before the call.
_Check = Callable[[Any, Any], bool]
_ORDER_OPS: dict[str, _Check] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_EQUALITY_OPS = {op: _ORDER_OPS[op] for op in ("==", "!=")}
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_ISO_MONTH = re.compile(r"\d{4}-\d{2}", re.ASCII)
# JSON numbers are doubles: larger integers would not survive hashing (ledger.canonical).
_MAX_SAFE_INTEGER = 2**53 - 1
# Deeper than any real record; bounds recursion on garbage that nests or contains itself.
_MAX_JSON_DEPTH = 32

_Number = int | float | Decimal


@dataclass(frozen=True)
class Comparison:
    """The verdict on one claim, with the values compared and one sentence on why.

    `claimed` is ``{"op": ..., "value": ...}``; `observed` is the department's value as
    compared (a summary for consecutive months, the raw value when it could not be read);
    `detail` never quotes free text from either side, which may be personal data; `gaps`
    lists, for consecutive months, each gap's first and last missing month ("YYYY-MM").

    Provenance, so that anyone can check what was compared: `source` names the data source
    that answered, `answered_at` when (UTC seconds), and `data_hash` is the hex keccak256
    of the RFC 8785 bytes of the record that source returned for the subject (the JSON
    null when it had none; None when the source failed). Reports made before provenance
    was recorded lack the three, and read back with `source` empty. A source that signs its
    answers adds `data_signature` (base64 Ed25519 over `verifier.sources.answer_bytes`) and
    `data_key_id` (the department key's id); unsigned answers and older reports lack both.
    """

    key: str
    verdict: Verdict
    claimed: object
    observed: object
    detail: str
    gaps: tuple[tuple[str, str], ...] = ()
    source: str = ""
    answered_at: int | None = None
    data_hash: str | None = None
    data_signature: str | None = None
    data_key_id: str | None = None

    def to_json_obj(self) -> dict[str, object]:
        """A JSON-like dict that `ledger.canonical_bytes` accepts, for evidence and hashing."""
        obj: dict[str, object] = {
            "key": self.key,
            "verdict": self.verdict,
            "claimed": _jsonable(self.claimed),
            "observed": _jsonable(self.observed),
            "detail": self.detail,
            "gaps": [[first, last] for first, last in self.gaps],
        }
        if self.source:
            obj["source"] = self.source
            obj["answered_at"] = self.answered_at
            obj["data_hash"] = self.data_hash
            if self.data_signature is not None:
                obj["data_signature"] = self.data_signature
                obj["data_key_id"] = self.data_key_id
        return obj

    @classmethod
    def from_json_obj(cls, obj: Mapping[str, Any]) -> Comparison:
        """A comparison as `to_json_obj` wrote it (with or without its provenance)."""
        answered_at = obj.get("answered_at")
        data_hash = obj.get("data_hash")
        signature, key_id = obj.get("data_signature"), obj.get("data_key_id")
        return cls(
            obj["key"],
            obj["verdict"],
            obj["claimed"],
            obj["observed"],
            obj["detail"],
            tuple((first, last) for first, last in obj.get("gaps", ())),
            str(obj.get("source") or ""),
            answered_at if isinstance(answered_at, int) else None,
            data_hash if isinstance(data_hash, str) else None,
            signature if isinstance(signature, str) else None,
            key_id if isinstance(key_id, str) else None,
        )


class _UndecidableError(Exception):
    """Raised inside a rule when the values cannot decide the claim; never leaves `compare`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class _Outcome:
    holds: bool
    observed: object
    detail: str
    gaps: tuple[tuple[str, str], ...] = ()


def compare(
    key: str, claim_type: str, op: str, claimed: object, observed: object, *, as_of: date
) -> Comparison:
    """Compare the claimed value with the observed one under `op`; never raises.

    No record (`observed is None`), a value of the wrong type or shape, or a claim the
    rules do not define (unknown type, op not valid for the type) give "undecidable":
    a source returning garbage must lead to a person deciding, never to a breach.
    `as_of` is the verification date, used by consecutive-month claims only.
    """
    claim = {"op": op, "value": _jsonable(claimed)}
    if observed is None:
        return Comparison(key, "undecidable", claim, None, "Cannot decide: no record was found.")
    rule = _RULES.get(claim_type)
    try:
        if rule is None:
            _undecidable(f"claim type {claim_type!r} is not one the rules know")
        outcome = rule(op, claimed, observed, as_of)
    except _UndecidableError as exc:
        detail = f"Cannot decide: {exc.reason}."
        return Comparison(key, "undecidable", claim, _jsonable(observed), detail)
    verdict: Verdict = "agree" if outcome.holds else "disagree"
    return Comparison(key, verdict, claim, outcome.observed, outcome.detail, outcome.gaps)


def normalise_text(text: str) -> str:
    """Text as compared: NFKC (full-width to half-width), case-folded, whitespace collapsed.

    NFKC is applied again after case folding because folding can leave text that is no
    longer normalised (Unicode's compatibility caseless matching).
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return " ".join(folded.split())


def _number_rule(op: str, claimed: object, observed: object, as_of: date) -> _Outcome:
    check = _op_for(op, _ORDER_OPS, "number")
    want, got = _as_number(claimed, "claimed"), _as_number(observed, "recorded")
    holds = check(got, want)
    return _Outcome(holds, _jsonable(got), _sentence(f"Recorded value {got}", holds, op, want))


def _date_rule(op: str, claimed: object, observed: object, as_of: date) -> _Outcome:
    check = _op_for(op, _ORDER_OPS, "date")
    want, got = _as_date(claimed, "claimed"), _as_date(observed, "recorded")
    holds = check(got, want)
    detail = _sentence(f"Recorded date {got.isoformat()}", holds, op, want.isoformat())
    return _Outcome(holds, got.isoformat(), detail)


def _string_rule(op: str, claimed: object, observed: object, as_of: date) -> _Outcome:
    check = _op_for(op, _EQUALITY_OPS, "string")
    want, got = _as_text(claimed, "claimed"), _as_text(observed, "recorded")
    holds = check(got, want)
    same = "matches" if got == want else "differs from"
    detail = f"The recorded text {same} the claimed text after normalisation, so {op} "
    return _Outcome(holds, observed, detail + ("holds." if holds else "does not hold."))


def _boolean_rule(op: str, claimed: object, observed: object, as_of: date) -> _Outcome:
    check = _op_for(op, _EQUALITY_OPS, "boolean")
    want, got = _as_boolean(claimed, "claimed"), _as_boolean(observed, "recorded")
    holds = check(got, want)
    return _Outcome(holds, got, _sentence(f"Recorded value {_json_word(got)}", holds, op, want))


def _set_rule(op: str, claimed: object, observed: object, as_of: date) -> _Outcome:
    if op != "in":
        _undecidable(f"op {op!r} is not defined for set claims (use: in)")
    if not isinstance(claimed, list | tuple) or not claimed:
        _undecidable("the claim's allowed values are not a non-empty list")
    allowed = {_as_text(value, "allowed") for value in claimed}
    values = observed if isinstance(observed, list | tuple) else [observed]
    if not values:
        _undecidable("the record is an empty list")
    outside = sum(_as_text(value, "recorded") not in allowed for value in values)
    holds = outside == 0
    among = f"among the {len(allowed)} allowed values"
    if len(values) == 1:
        detail = f"The recorded value is {'' if holds else 'not '}{among}."
    else:
        detail = f"{outside} of the {len(values)} recorded values are not {among}."
    return _Outcome(holds, _jsonable(observed), detail)


def _consecutive_months_rule(op: str, claimed: object, observed: object, as_of: date) -> _Outcome:
    check = _op_for(op, _ORDER_OPS, "consecutive_months")
    want = _as_number(claimed, "claimed")
    if not isinstance(want, int) or want < 0:
        _undecidable("the claimed month count is not a whole number of 0 or more")
    paid = _paid_by_month(observed)
    now = as_of.year * 12 + as_of.month - 1
    # Later months (prepaid, or mis-keyed) cannot count towards a run that ends by as_of.
    paid = {month: was_paid for month, was_paid in paid.items() if month <= now}
    if not paid:
        _undecidable(f"no monthly record is dated on or before {_month_text(now)}")
    first, latest = min(paid), max(paid)
    if latest < now - BOOKING_LAG_MONTHS:
        _undecidable(
            f"the latest monthly record is {_month_text(latest)}, more than "
            f"{BOOKING_LAG_MONTHS} months before {_month_text(now)}, so the data are stale"
        )
    run = 0
    while latest - run >= first and paid.get(latest - run, False):
        run += 1
    gaps = _gaps(paid, first, latest)
    holds = check(run, want)
    summary = {
        "consecutive_months": run,
        "through": _month_text(latest),
        "records_from": _month_text(first),
    }
    subject = f"A run of {run} consecutive paid months through {_month_text(latest)}"
    detail = _sentence(subject, holds, op, want)
    if gaps:
        spans = ", ".join(f"{start} to {end}" for start, end in gaps)
        counted = f"{len(gaps)} gap" + ("s" if len(gaps) > 1 else "")
        detail = f"{detail[:-1]}; the records since {_month_text(first)} show {counted}: {spans}."
    return _Outcome(holds, summary, detail, gaps)


_Rule = Callable[[str, object, object, date], _Outcome]
_RULES: dict[str, _Rule] = {
    "number": _number_rule,
    "date": _date_rule,
    "string": _string_rule,
    "boolean": _boolean_rule,
    "set": _set_rule,
    "consecutive_months": _consecutive_months_rule,
}


def _paid_by_month(observed: object) -> dict[int, bool]:
    """Month index (year * 12 + month - 1) to whether any record of it says paid."""
    if not isinstance(observed, list | tuple):
        _undecidable(f"the record is {_kind(observed)}, not a list of monthly records")
    if not observed:
        _undecidable("the record is an empty list of months")
    paid: dict[int, bool] = {}
    for position, record in enumerate(observed, start=1):
        # Years of monthly records per applicant, the same few hundred months for all:
        # a well-formed month text is parsed once (cached), not once per record.
        month = _month_index(record) if isinstance(record, str) else None
        if month is not None:
            was_paid = True
        elif isinstance(record, str):  # malformed: say how
            where = f"monthly record {position} of {len(observed)}"
            month, was_paid = _parse_month(record, where), True
        elif isinstance(record, Mapping):
            where = f"monthly record {position} of {len(observed)}"
            stated = record.get("paid")
            if not isinstance(stated, bool):
                _undecidable(f"{where} has no true/false 'paid' field")
            month, was_paid = _parse_month(record.get("month"), where), stated
        else:
            where = f"monthly record {position} of {len(observed)}"
            _undecidable(f"{where} is {_kind(record)}, not a month or a month object")
        # Two records of one month (a change of employer, a correction) count as paid if
        # either does: a duplicate must not turn a paid month into a gap.
        paid[month] = paid.get(month, False) or was_paid
    return paid


def _gaps(paid: dict[int, bool], first: int, latest: int) -> tuple[tuple[str, str], ...]:
    """Each run of missing or unpaid months in [first, latest], as (first, last) months."""
    gaps: list[tuple[str, str]] = []
    start: int | None = None
    for month in range(first, latest + 2):
        missing = month <= latest and not paid.get(month, False)
        if missing and start is None:
            start = month
        elif not missing and start is not None:
            gaps.append((_month_text(start), _month_text(month - 1)))
            start = None
    return tuple(gaps)


@functools.lru_cache(maxsize=4096)
def _month_index(value: str) -> int | None:
    """`_parse_month` of a well-formed month text, None for any other text."""
    if not _ISO_MONTH.fullmatch(value):
        return None
    year, month = int(value[:4]), int(value[5:])
    if year == 0 or not 1 <= month <= 12:
        return None
    return year * 12 + month - 1


def _parse_month(value: object, where: str) -> int:
    if not isinstance(value, str):
        _undecidable(f"{where} has {_kind(value)} where a 'YYYY-MM' month is expected")
    if not _ISO_MONTH.fullmatch(value):
        _undecidable(f"{where} has a month that is not in 'YYYY-MM' form")
    year, month = int(value[:4]), int(value[5:])
    if year == 0 or not 1 <= month <= 12:
        _undecidable(f"{where} has month {value}, which does not exist")
    return year * 12 + month - 1


def _month_text(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _op_for(op: str, ops: Mapping[str, _Check], claim_type: str) -> _Check:
    check = ops.get(op)
    if check is None:
        known = " ".join(ops)
        _undecidable(f"op {op!r} is not defined for {claim_type} claims (use one of: {known})")
    return check


def _as_number(value: object, role: str) -> _Number:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        _undecidable(f"the {role} value is {_kind(value)}, not a number")
    finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
    if not finite:
        _undecidable(f"the {role} value is not a finite number")
    return value


def _as_date(value: object, role: str) -> date:
    if isinstance(value, datetime):
        # A timestamp's calendar date depends on the time zone: guessing could shift it.
        _undecidable(f"the {role} value is a timestamp where a date is expected")
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        _undecidable(f"the {role} value is {_kind(value)}, not a 'YYYY-MM-DD' date")
    if not _ISO_DATE.fullmatch(value):
        _undecidable(f"the {role} value is not in 'YYYY-MM-DD' form")
    try:
        return date.fromisoformat(value)
    except ValueError:
        _undecidable(f"the {role} value {value} is not a real calendar date")


def _as_text(value: object, role: str) -> str:
    if not isinstance(value, str):
        _undecidable(f"the {role} value is {_kind(value)}, not text")
    text = normalise_text(value)
    if not text:
        _undecidable(f"the {role} text is empty")
    return text


def _as_boolean(value: object, role: str) -> bool:
    if not isinstance(value, bool):
        _undecidable(f"the {role} value is {_kind(value)}, not true or false")
    return value


def _sentence(subject: str, holds: bool, op: str, want: object) -> str:
    verb = "satisfies" if holds else "does not satisfy"
    return f"{subject} {verb} the claim {op} {_json_word(want)}."


def _json_word(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _undecidable(reason: str) -> NoReturn:
    raise _UndecidableError(reason)


def _kind(value: object) -> str:
    """The JSON name of a value's type, for messages that must not quote the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def _jsonable(value: object, depth: int = 0) -> object:
    """`value` as JSON that canonical hashing accepts; what JSON cannot hold becomes text."""
    if depth > _MAX_JSON_DEPTH:
        return "<nested too deeply>"
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if abs(value) <= _MAX_SAFE_INTEGER else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(item, depth + 1) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    return f"<{type(value).__name__}>"

"""Matter terms: what intake binds a commitment to (department, notice versions, claims).

The catalog lives in `verifier`, which `ledger` may not import: the catalog hands intake
these plain values (`verifier.Catalog.intake_terms()`), and `check_terms` holds a
commitment to them. They are frozen dataclasses so that they pickle to intake's workers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, timedelta, timezone

from ledger.documents import Claim, Commitment, shown
from ledger.errors import InvalidDocumentError
from ledger.types import Hash32

__all__ = ["BEIJING", "ClaimTerm", "MatterTerms", "NoticeTerm", "check_terms"]

# Notice validity dates are Beijing dates: a commitment signed at 23:30 UTC on 31 December
# was signed on 1 January in Beijing.
BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

ClaimValue = int | bool | str | tuple[str, ...]
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ORDER = {">=", "<=", ">", "<"}


@dataclass(frozen=True)
class NoticeTerm:
    """One version of a matter's notice: its hash and the Beijing dates it is in force
    (both inclusive; `valid_to` None: still in force)."""

    hash: Hash32
    version: int
    valid_from: date
    valid_to: date | None = None

    def in_force(self, day: date) -> bool:
        """Whether a commitment signed on Beijing date `day` may name this version."""
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class ClaimTerm:
    """A claim the matter knows: the condition `op value` a stated claim must imply.

    `value` None: the applicant states the value (the claim must use `op`, any value of
    `type`). `type` is the catalog's claim type (number, date, string, boolean, set,
    consecutive_months). `required`: every commitment must state it.
    """

    key: str
    type: str
    op: str
    value: ClaimValue | None
    required: bool = True

    def condition(self) -> str:
        """The condition as an error names it, e.g. ``>= 84``."""
        if self.value is None:
            return f"{self.op} (a value the applicant states)"
        return f"{self.op} {_text(self.value)}"


@dataclass(frozen=True)
class MatterTerms:
    """What intake holds a commitment to one matter to: the responsible department, the
    versions of the notice an applicant may have signed, and the claims the matter knows."""

    department: str
    notices: tuple[NoticeTerm, ...]
    claims: tuple[ClaimTerm, ...]


def check_terms(commitment: Commitment, terms: MatterTerms) -> None:
    """Raise InvalidDocumentError naming the first way `commitment` breaks its matter's
    terms: another department, a notice not in force when signed, a required claim left
    out, a claim the matter does not know, or a claim weaker than the matter's condition."""
    matter = commitment.matter_code
    if terms.department != commitment.department:
        raise InvalidDocumentError(
            f"matter {matter} belongs to {terms.department}, not {commitment.department}"
        )
    _check_notice(commitment, terms)
    known = {term.key: term for term in terms.claims}
    stated = {claim.key: claim for claim in commitment.claims}
    unknown = sorted(set(stated) - set(known))
    if unknown:
        raise InvalidDocumentError(
            f"claims: matter {matter} has no claim {', '.join(unknown)}; "
            f"its claims: {', '.join(sorted(known))}"
        )
    for term in terms.claims:
        claim = stated.get(term.key)
        if claim is None:
            if term.required:
                raise InvalidDocumentError(
                    f"claims: the required claim {term.key} is missing: matter {matter} "
                    f"needs {term.key} {term.condition()}"
                )
            continue
        problem = _weaker(claim, term)
        if problem:
            raise InvalidDocumentError(f"claims: claim {term.key} {problem}")


def _check_notice(commitment: Commitment, terms: MatterTerms) -> None:
    matter = commitment.matter_code
    by_hash = {"0x" + notice.hash.hex(): notice for notice in terms.notices}
    notice = by_hash.get(commitment.notice_hash)
    if notice is None:
        versions = ", ".join(str(n.version) for n in terms.notices)
        raise InvalidDocumentError(
            f"notice_hash: {commitment.notice_hash} is not a version of the notice of "
            f"matter {matter} (versions {versions}): sign the notice the matter shows now"
        )
    day = commitment.signed_at.astimezone(BEIJING).date()
    if not notice.in_force(day):
        until = "" if notice.valid_to is None else f" to {notice.valid_to.isoformat()}"
        raise InvalidDocumentError(
            f"notice_hash: version {notice.version} of the notice of matter {matter} was in "
            f"force from {notice.valid_from.isoformat()}{until}, not on {day.isoformat()} "
            "(Beijing date of signed_at): sign the version in force that day"
        )


def _weaker(claim: Claim, term: ClaimTerm) -> str:
    """Why `claim` does not imply the term's condition; empty when it does."""
    value = tuple(claim.value) if isinstance(claim.value, list) else claim.value
    if term.value is None:
        if claim.op != term.op:
            return f"must use op {term.op!r} (the matter's condition), not {claim.op!r}"
        if not _well_typed(value, term.type, claim.op):
            return f"must state a {_type_name(term.type, claim.op)}"
        return ""
    # The messages are written only when a claim fails: building them for every good
    # claim cost intake more than the comparison itself.
    if not _comparable(value, term.value, claim.op, term.type):
        return (
            f"{claim.op} {_text(value)} does not compare with the matter's condition "
            f"{term.condition()}"
        )
    if _implies(claim.op, value, term.op, term.value):
        return ""
    condition = term.condition()
    return (
        f"{claim.op} {_text(value)} is weaker than the matter's condition {condition}: "
        f"state {term.key} {condition}"
    )


def _implies(op: str, value: ClaimValue, spec_op: str, spec: ClaimValue) -> bool:
    """Whether `x op value` implies `x spec_op spec`, for values already comparable."""
    if spec_op in _ORDER:
        if op not in _ORDER | {"=="}:
            return False
        w, v = _key(value), _key(spec)
        below = spec_op in ("<=", "<")
        if below:  # mirror: x <= v  <=>  -x >= -v, so flip the ops and compare reversed
            op = {"<=": ">=", "<": ">", ">=": "<=", ">": "<", "==": "=="}[op]
            w, v = v, w
            spec_op = {"<=": ">=", "<": ">"}[spec_op]
        if spec_op == ">=":
            return op in (">=", ">", "==") and w >= v
        return (op == ">" and w >= v) or (op in (">=", "==") and w > v)
    if spec_op == "==":
        return op == "==" and _same(value, spec)
    if spec_op == "!=":
        return (op == "!=" and _same(value, spec)) or (op == "==" and not _same(value, spec))
    if spec_op == "in":
        allowed = set(spec) if isinstance(spec, tuple) else set()
        if op == "in" and isinstance(value, tuple):
            return set(value) <= allowed
        return op == "==" and isinstance(value, str) and value in allowed
    return False


def _same(a: ClaimValue, b: ClaimValue) -> bool:
    # True == 1 in Python; a boolean condition is met only by a boolean.
    return type(a) is type(b) and a == b


def _key(value: ClaimValue) -> int:
    """An ordered value as an int: a date as its day number (both sides are of one kind)."""
    if isinstance(value, str):
        return date.fromisoformat(value).toordinal()
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not an integer or a date: {value!r}")  # _comparable rules it out
    return value


def _kind(value: ClaimValue) -> str:
    """The kind of a value as compared: integer, date, boolean, text or list."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, tuple):
        return "list"
    if _ISO_DATE.fullmatch(value):
        try:
            date.fromisoformat(value)
        except ValueError:
            return "text"
        return "date"
    return "text"


def _comparable(value: ClaimValue, spec: ClaimValue, op: str, claim_type: str) -> bool:
    """Whether a stated value may be compared with the condition's: never across types."""
    if isinstance(spec, tuple):  # 'in' a set: a list of texts, or one text
        return isinstance(value, (tuple, str))
    if op == "in":
        return False
    if claim_type == "date" or _kind(spec) == "date":
        return _kind(value) == "date" == _kind(spec)
    return _kind(value) == _kind(spec)


def _well_typed(value: ClaimValue, claim_type: str, op: str) -> bool:
    kind = _kind(value)
    if claim_type in ("number", "consecutive_months"):
        return kind == "integer"
    if claim_type == "date":
        return kind == "date"
    if claim_type == "boolean":
        return kind == "boolean"
    if claim_type == "set" and op == "in":
        return kind == "list"
    return kind in ("text", "date")  # a string (a date is a string too)


def _type_name(claim_type: str, op: str) -> str:
    return {
        "number": "whole number",
        "consecutive_months": "whole number of months",
        "date": "date written YYYY-MM-DD",
        "boolean": "boolean (true or false)",
        "set": "list of strings" if op == "in" else "string",
    }.get(claim_type, "string")


def _text(value: ClaimValue) -> str:
    """A value as a commitment writes it (JSON), bounded so an error stays short."""
    plain = list(value) if isinstance(value, tuple) else value
    text = json.dumps(plain, ensure_ascii=False)
    return text if len(text) <= 60 else shown(text)

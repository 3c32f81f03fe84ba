"""Verification methods beyond a comparison with department data: sampling (抽查), future
obligations, exemptions, and how the checks a person makes join the comparisons' outcome.

Sampling is deterministic and auditable: a commitment is selected for its matter's tasks
iff keccak256(commitment hash ‖ matter code ‖ sampling seed), read as a big-endian integer,
is below rate × 2^256. Anyone holding the commitment hash and the catalog can recompute it,
and a rerun selects the same commitments.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from fractions import Fraction

from ledger import Hash32, keccak256
from verifier.catalog import Matter
from verifier.reports import Outcome
from verifier.rules import Comparison

SAMPLING_RULE = "keccak256(commitment_hash || matter_code || sampling_seed) < rate * 2^256"
_SPACE = 1 << 256
# How bad an outcome is: the worse of the claims' and the tasks' is the commitment's.
_RANK: dict[str, int] = {"kept": 0, "needs_manual": 1, "mismatch": 2, "false": 3}


def sampling_draw(commitment: Hash32, matter: Matter) -> int:
    """The commitment's draw for its matter's sample: an integer below 2^256."""
    material = bytes(commitment) + matter.code.encode("utf-8") + matter.sampling_seed.encode()
    return int.from_bytes(keccak256(material), "big")


def sampling_threshold(rate: float) -> int:
    """rate × 2^256, exactly (the rate as the binary fraction the catalog holds)."""
    return int(Fraction(rate) * _SPACE)


def sampled(commitment: Hash32, matter: Matter) -> bool:
    """Whether the commitment is selected for its matter's tasks (rate 1: every one)."""
    return sampling_draw(commitment, matter) < sampling_threshold(matter.sampling_rate)


def sampling_note(commitment: Hash32, matter: Matter) -> str:
    """What the report says of the sample, for a matter that samples (rate below 1)."""
    if matter.sampling_rate >= 1.0:
        return ""
    chosen = "selected" if sampled(commitment, matter) else "not selected"
    return (
        f"Sampling: {chosen} for checks by a person (rate {matter.sampling_rate}, seed "
        f"{matter.sampling_seed!r}, rule {SAMPLING_RULE})."
    )


def commitment_day(code: str) -> date:
    """The day a commitment was made, from its national code (region, YYYYMMDD, serial)."""
    return date(int(code[6:10]), int(code[10:12]), int(code[12:14]))


def obligation_day(matter: Matter, made_on: date) -> date | None:
    """The day the matter's last future obligation falls due (None: it has none)."""
    days = [spec.due_after_days for spec in matter.claims if spec.due_after_days is not None]
    return made_on + timedelta(days=max(days)) if days else None


def exempt_keys(matter: Matter, applicant_kind: str) -> tuple[str, ...]:
    """The matter's claims an applicant of this kind is exempt from."""
    return tuple(
        spec.key
        for spec in matter.claims
        if spec.exempt_when is not None and applicant_kind in spec.exempt_when.applicant_kinds
    )


def exempt_note(keys: Sequence[str]) -> str:
    """What the report says of the claims not compared because the applicant is exempt."""
    if not keys:
        return ""
    return f"Exempt (not compared): {', '.join(keys)}."


def worse(first: Outcome, second: Outcome) -> Outcome:
    """The worse of two outcomes: false, then mismatch, then needs_manual, then kept."""
    return first if _RANK[first] >= _RANK[second] else second


def claims_outcome(matter: Matter, comparisons: Sequence[Comparison]) -> Outcome:
    """The outcome the comparisons alone give: FALSE beats MISMATCH beats NEEDS_MANUAL beats
    KEPT; undecidable never breaches. An any-of condition counts as one: met when one of its
    claims agrees, else as the mildest of its claims' verdicts."""
    specs = {spec.key: spec for spec in matter.claims}
    by_key = {c.key: c for c in comparisons}
    grouped: set[str] = set()
    outcome: Outcome = "kept"
    for condition in matter.conditions:
        if not condition.any_of:
            continue
        members = [by_key[key] for key in condition.claims if key in by_key]
        grouped.update(condition.claims)
        if any(c.verdict == "agree" for c in members):
            continue
        if not members or any(c.verdict == "undecidable" for c in members):
            outcome = worse(outcome, "needs_manual")
            continue
        mildest = min((specs[c.key].on_disagree for c in members), key=_RANK.__getitem__)
        outcome = worse(outcome, mildest)
    for comparison in comparisons:
        if comparison.key in grouped:
            continue
        if comparison.verdict == "disagree":
            outcome = worse(outcome, specs[comparison.key].on_disagree)
        elif comparison.verdict == "undecidable":
            outcome = worse(outcome, "needs_manual")
    return outcome


def any_of_keys(matter: Matter) -> frozenset[str]:
    """The claims that belong to an any-of condition (compared even when left out)."""
    return frozenset(key for c in matter.conditions if c.any_of for key in c.claims)

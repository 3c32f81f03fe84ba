"""The matter catalog: what each approval requires, as data from `verifier/matters/*.json`."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ledger import (
    ClaimTerm,
    Hash32,
    InvalidDocumentError,
    MatterTerms,
    NoticeTerm,
    canonical_bytes,
    keccak256,
)

MATTERS_DIR = Path(__file__).resolve().parent / "matters"

ClaimType = Literal["number", "date", "string", "boolean", "set", "consecutive_months"]
Severity = Literal["minor", "general", "serious"]
# The national system's two kinds: a commitment instead of certificates (证明事项告知承诺),
# or instead of the checks before a business licence (涉企经营许可事项告知承诺).
CommitmentType = Literal["certificate_replacing", "approval_replacing"]


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Notice(_Data):
    """The notice (告知书) shown to applicants; its hash is part of every commitment.

    `valid_from` and `valid_to` (both inclusive, Beijing dates) bound the days on which a
    commitment may be signed under this version; `valid_to` None: still in force.
    """

    version: int
    conditions: str
    liability: str
    valid_from: date = date(2026, 1, 1)
    valid_to: date | None = None

    def shown(self, matter_code: str) -> dict[str, object]:
        """What the applicant was shown, as hashed: matter code, version, conditions, liability."""
        return {
            "matter_code": matter_code,
            "version": self.version,
            "conditions": self.conditions,
            "liability": self.liability,
        }


class Exemption(_Data):
    """Who is exempt from a claim: applicants of these kinds (legal persons from a claim
    only a natural person can make, say)."""

    applicant_kinds: tuple[Literal["person", "organisation"], ...] = Field(min_length=1)


class ClaimSpec(_Data):
    """A claim an applicant may commit to, and where its truth is checked."""

    key: str
    type: ClaimType
    op: Literal[">=", "<=", "==", "!=", ">", "<", "in"]
    value: int | bool | str | list[str] | None  # None: the applicant states the value
    description: str
    source: str
    field: str | None = None  # the source's field compared, when not named like the claim
    # A disagreement on most claims can be put right in the rectification window; on some
    # (a criminal record that was denied) the commitment is simply false.
    on_disagree: Literal["mismatch", "false"] = "mismatch"
    # Every commitment to the matter must state a required claim (intake refuses one that
    # leaves it out or states it weaker than `op value`).
    required: bool = True
    # Methods beyond a comparison (`verifier.engine.methods`): applicants exempt from the
    # claim (not compared; the report says so), and a future obligation (an annual report
    # due a year after the commitment): the claim is checked once it falls due.
    exempt_when: Exemption | None = None
    due_after_days: int | None = Field(default=None, ge=1, le=3660)

    @model_validator(mode="after")
    def _exempt_claims_are_optional(self) -> ClaimSpec:
        # Intake asks every applicant for a required claim, the exempt too; the engine
        # compares an exempt-able claim for every applicant not exempt, stated or not.
        if self.exempt_when is not None and self.required:
            raise ValueError(f"claim {self.key}: a claim with exempt_when has required: false")
        return self

    @property
    def source_field(self) -> str:
        """The field of the data source that this claim is compared with."""
        return self.field or self.key


TaskKind = Literal["document_review", "on_site_check", "assistance_request"]


class Task(_Data):
    """A check no data source can make: a person does it, and until it is done the
    commitment cannot be reported fulfilled (the engine leaves it to a person)."""

    key: str
    kind: TaskKind
    description: str
    # What a failed check makes the outcome; an assistance request names the department
    # asked (部门协查); `due_days`: calendar days a person has from the task's creation.
    on_fail: Literal["mismatch", "false"] = "mismatch"
    assist_department: str | None = Field(default=None, min_length=1, max_length=64)
    due_days: int = Field(default=20, ge=1, le=366)

    @model_validator(mode="after")
    def _assistance_names_department(self) -> Task:
        if (self.kind == "assistance_request") != (self.assist_department is not None):
            raise ValueError(
                f"task {self.key}: an assistance_request, and only one, names assist_department"
            )
        return self


class Condition(_Data):
    """One condition of the notice, and what checks it: claims (by key) or a task."""

    text: str
    claims: tuple[str, ...] = ()
    task: Task | None = None
    # The condition is met when at least one of its claims agrees (either certificate A or B).
    any_of: bool = False


class Matter(_Data):
    """One approval matter (事项) under the notification-commitment system."""

    code: str
    name: str
    name_en: str
    department: str
    department_name: str
    legal_basis: str
    notice: Notice
    claims: tuple[ClaimSpec, ...]
    verification_window_days: int
    rectification_window_days: int
    severity: Severity
    # Sampling (抽查): the share of commitments whose tasks a person does (claims are always
    # compared); the selection is keccak256(commitment ‖ code ‖ sampling_seed) < rate·2^256.
    sampling_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    sampling_seed: str = Field(default="", max_length=64)
    # The decision time limit (办结时限) in working days, 0.5 for a half day; None: none set.
    decision_limit_working_days: float | None = Field(default=None, gt=0, le=60)
    # An online application's approval decision is due this many working days of office time
    # after receipt (网上办理半日办结: half a day); at the counter it is made on the spot
    # (`verifier.OfficeHours.decision_due`).
    online_decision_working_days: float = Field(default=0.5, gt=0, le=60)
    commitment_type: CommitmentType = "certificate_replacing"
    # Each condition of the notice and what checks it; `earlier_notices`: versions that were
    # in force before `notice` (commitments signed then still name their hashes).
    conditions: tuple[Condition, ...] = ()
    earlier_notices: tuple[Notice, ...] = ()
    # The statement-and-defence period (陈述申辩期) of a proposed breach, in working days from
    # the notice's delivery: the breach is published only after it ends without a defence.
    defence_working_days: int = Field(default=5, ge=1, le=60)

    @model_validator(mode="after")
    def _conditions_name_known_claims(self) -> Matter:
        known = {spec.key for spec in self.claims}
        for condition in self.conditions:
            unknown = sorted(set(condition.claims) - known)
            if unknown:
                raise ValueError(
                    f"matter {self.code}: condition {condition.text!r} names unknown "
                    f"claims {', '.join(unknown)}"
                )
            if condition.any_of and len(condition.claims) < 2:
                raise ValueError(
                    f"matter {self.code}: condition {condition.text!r} is any_of with fewer "
                    "than two claims"
                )
            if not condition.claims and condition.task is None:
                raise ValueError(
                    f"matter {self.code}: condition {condition.text!r} has neither a claim "
                    "nor a task"
                )
        return self

    def notice_hash(self) -> Hash32:
        """Hash of the current notice exactly as shown: matter code, version, conditions,
        liability."""
        return keccak256(canonical_bytes(self.notice.shown(self.code)))

    def notices(self) -> tuple[tuple[Hash32, Notice], ...]:
        """Every version of the notice with its hash, the current one first."""
        return tuple(
            (keccak256(canonical_bytes(notice.shown(self.code))), notice)
            for notice in (self.notice, *self.earlier_notices)
        )

    @property
    def tasks(self) -> tuple[Task, ...]:
        """The checks a person must make for every commitment to this matter."""
        return tuple(c.task for c in self.conditions if c.task is not None)

    def intake_terms(self) -> MatterTerms:
        """What intake binds a commitment to this matter to: department, notice versions
        with their validity, and each claim's condition (`ledger.check_terms`)."""
        notices = tuple(
            NoticeTerm(digest, notice.version, notice.valid_from, notice.valid_to)
            for digest, notice in self.notices()
        )
        claims = tuple(
            ClaimTerm(
                spec.key,
                spec.type,
                spec.op,
                tuple(spec.value) if isinstance(spec.value, list) else spec.value,
                spec.required,
            )
            for spec in self.claims
        )
        return MatterTerms(self.department, notices, claims)

    def unmapped_conditions(self) -> tuple[str, ...]:
        """The notice's conditions (split at '；') that no `conditions` entry maps."""
        mapped = {c.text for c in self.conditions}
        parts = [p.strip().rstrip("。") for p in self.notice.conditions.split("；")]
        return tuple(p for p in parts if p and p not in mapped)


class Catalog(_Data):
    """Every matter known, by code."""

    catalog_version: int
    region: str
    matters: tuple[Matter, ...]

    def matter(self, code: str) -> Matter:
        """The matter with `code`; InvalidDocumentError naming the known ones otherwise."""
        for matter in self.matters:
            if matter.code == code:
                return matter
        known = ", ".join(m.code for m in self.matters)
        raise InvalidDocumentError(f"unknown matter {code!r}; known matters: {known}")

    def department_of(self, matter_code: str) -> str:
        """The department responsible for a matter; InvalidDocumentError if it is unknown."""
        return self.matter(matter_code).department

    def departments(self) -> list[str]:
        """The departments responsible for some matter, sorted."""
        return sorted({matter.department for matter in self.matters})

    def matter_departments(self) -> dict[str, str]:
        """Matter code -> responsible department (intake binds with `intake_terms()`)."""
        return {matter.code: matter.department for matter in self.matters}

    def intake_terms(self) -> dict[str, MatterTerms]:
        """Matter code -> the terms intake binds each commitment to (`ledger.Intake`):
        department, notice versions in force, and the claims and conditions it knows."""
        return {matter.code: matter.intake_terms() for matter in self.matters}

    def unmapped_conditions(self) -> dict[str, tuple[str, ...]]:
        """Matter code -> the notice conditions nothing checks, for matters with any.

        Loading does not insist on it (a catalog without `conditions` still loads), but a
        catalog put in service must map every condition: see `check_conditions_mapped`."""
        gaps = {matter.code: matter.unmapped_conditions() for matter in self.matters}
        return {code: gap for code, gap in gaps.items() if gap}

    def check_conditions_mapped(self) -> None:
        """Raise InvalidDocumentError naming each notice condition no claim or task checks."""
        gaps = self.unmapped_conditions()
        if gaps:
            listed = "; ".join(f"{code}: {', '.join(gap)}" for code, gap in gaps.items())
            raise InvalidDocumentError(
                f"catalog {self.region} v{self.catalog_version}: notice conditions that no "
                f"claim or task checks: {listed}; map each in the matter's `conditions`"
            )


def load_catalog(path: Path) -> Catalog:
    """Load and validate one catalog file."""
    try:
        return Catalog.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        raise InvalidDocumentError(f"catalog {path.name} is invalid: {exc}") from None


def default_catalog() -> Catalog:
    """The catalog of the configured directory (`verifier.configure_catalog_dir`; default
    the shipped `verifier/matters`, one file per department), every condition mapped;
    loaded once per directory."""
    from verifier.catalog_files import configured_catalog  # it imports this module

    return configured_catalog()

"""The matter catalog: what each approval requires, as data from `verifier/matters/*.json`."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ledger import Hash32, InvalidDocumentError, canonical_bytes, keccak256

MATTERS_DIR = Path(__file__).resolve().parent / "matters"

ClaimType = Literal["number", "date", "string", "boolean", "set", "consecutive_months"]
Severity = Literal["minor", "general", "serious"]
# The national system's two kinds: a commitment instead of certificates (证明事项告知承诺),
# or instead of the checks before a business licence (涉企经营许可事项告知承诺).
CommitmentType = Literal["certificate_replacing", "approval_replacing"]


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Notice(_Data):
    """The notice (告知书) shown to applicants; its hash is part of every commitment."""

    version: int
    conditions: str
    liability: str


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

    @property
    def source_field(self) -> str:
        """The field of the data source that this claim is compared with."""
        return self.field or self.key


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
    commitment_type: CommitmentType = "certificate_replacing"

    def notice_hash(self) -> Hash32:
        """Hash of the notice exactly as shown: matter code, version, conditions, liability."""
        shown = {"matter_code": self.code, **self.notice.model_dump()}
        return keccak256(canonical_bytes(shown))


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
        """Matter code -> responsible department: what intake checks a commitment against."""
        return {matter.code: matter.department for matter in self.matters}


def load_catalog(path: Path) -> Catalog:
    """Load and validate one catalog file."""
    try:
        return Catalog.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        raise InvalidDocumentError(f"catalog {path.name} is invalid: {exc}") from None


@cache
def default_catalog() -> Catalog:
    """The catalog shipped with the package (Beijing matters)."""
    return load_catalog(MATTERS_DIR / "beijing.json")

"""The department registry: each department's name, credit code, region and short name, as data.

The chain and the catalog name a department by a short code (`BJ-HRSS`); a credit platform
names it by its 18-character unified social credit code (GB 32100-2015). The registry
(`verifier/departments.json`) maps one to the other, and gives the short name that opens a
document number (京人社承诺〔2026〕000273号).
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ledger import InvalidDocumentError, uscc_check_char

DEPARTMENTS_FILE = Path(__file__).resolve().parent / "departments.json"

_CREDIT_CODE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}")  # GB 32100: no I, O, S, V, Z
_REGION = re.compile(r"[1-8][0-9]{5}")  # GB/T 2260 administrative division code


def credit_code_valid(code: str) -> bool:
    """Whether `code` is a well-formed unified social credit code with the right check
    character (GB 32100-2015: weights 3**i mod 31 over the first 17 characters)."""
    if not _CREDIT_CODE.fullmatch(code):
        return False
    return uscc_check_char(code[:17]) == code[17]


class Department(BaseModel):
    """One department: what the chain calls it, and what a credit platform needs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str
    name: str
    credit_code: str
    region: str
    short_name: str  # opens its document numbers: 京人社承诺〔2026〕000273号

    @field_validator("credit_code")
    @classmethod
    def _credit_code_checks(cls, code: str) -> str:
        if not credit_code_valid(code):
            raise ValueError(
                f"{code!r} is not a unified social credit code (18 characters, GB 32100 "
                "check character)"
            )
        return code

    @field_validator("region")
    @classmethod
    def _region_is_a_division_code(cls, region: str) -> str:
        if not _REGION.fullmatch(region):
            raise ValueError(f"{region!r} is not a 6-digit administrative division code")
        return region


class DepartmentRegistry(BaseModel):
    """Every department known, by code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    registry_version: int
    note: str = ""
    departments: tuple[Department, ...]

    def get(self, code: str) -> Department | None:
        """The department with chain code `code`, None if the registry lacks it."""
        for department in self.departments:
            if department.code == code:
                return department
        return None

    def department(self, code: str) -> Department:
        """The department with chain code `code`; InvalidDocumentError naming the known ones."""
        found = self.get(code)
        if found is None:
            known = ", ".join(d.code for d in self.departments)
            raise InvalidDocumentError(f"unknown department {code!r}; known: {known}")
        return found


def load_departments(path: Path) -> DepartmentRegistry:
    """Load and validate a registry file; InvalidDocumentError naming the file and field."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        registry = DepartmentRegistry.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_problem(data, error) for error in exc.errors())
        raise InvalidDocumentError(f"department registry {path.name}: {problems}") from None
    except ValueError as exc:
        raise InvalidDocumentError(f"department registry {path.name} is invalid: {exc}") from None
    codes = [d.code for d in registry.departments]
    twice = sorted({c for c in codes if codes.count(c) > 1})
    if twice:
        raise InvalidDocumentError(
            f"department registry {path.name} lists {', '.join(twice)} more than once"
        )
    return registry


def _problem(data: object, error: Any) -> str:
    """One validation error as `department BJ-HRSS, credit_code: why`."""
    where = list(error["loc"])
    if len(where) >= 2 and where[0] == "departments" and isinstance(where[1], int):
        try:
            code = data["departments"][where[1]]["code"]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            code = f"#{where[1] + 1}"
        field = ".".join(str(part) for part in where[2:]) or "entry"
        return f"department {code}, {field}: {error['msg']}"
    return f"{'.'.join(str(part) for part in where) or 'file'}: {error['msg']}"


@cache
def default_departments() -> DepartmentRegistry:
    """The registry shipped with the package (`verifier/departments.json`)."""
    return load_departments(DEPARTMENTS_FILE)

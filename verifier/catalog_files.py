"""Catalogs per department: one versioned file each in a directory, merged into one Catalog.

A directory holds one `<DEPARTMENT>.json` per department (`BJ-HRSS.json`), each with its own
`catalog_version`; a department's catalog added to the directory is used without a code
change. Loading validates every file and names the file, the matter and the field of each
mistake: `catalog BJ-HRSS.json: matter BJ-HRSS-0007: claims[1].op: ...`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ledger import InvalidDocumentError
from verifier.catalog import MATTERS_DIR, Catalog, Matter

__all__ = [
    "CatalogError",
    "DepartmentCatalog",
    "catalog_dir",
    "configure_catalog_dir",
    "configured_catalog",
    "load_catalogs",
    "load_department_catalogs",
    "merge_catalogs",
]

MAX_CATALOG_BYTES = 4 * 1024 * 1024  # a department's catalog is data typed by people, not bulk
_DEPARTMENT_CODE = re.compile(r"[A-Z]{2}-[A-Z0-9]{2,16}")


class CatalogError(InvalidDocumentError):
    """A catalog directory cannot be loaded; `problems` lists each mistake, every one naming
    its file and, where it is in one, the matter and the field."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


class _FileHead(BaseModel):
    """What a department's file says about itself; its matters are checked one by one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    department: str = Field(pattern=_DEPARTMENT_CODE.pattern)
    catalog_version: int = Field(ge=1)
    region: str = Field(pattern=r"[1-8][0-9]{5}")
    matters: list[dict[str, Any]] = Field(min_length=1)


@dataclass(frozen=True)
class DepartmentCatalog:
    """One department's file as loaded: its name, version, region and matters."""

    file: str
    department: str
    catalog_version: int
    region: str
    matters: tuple[Matter, ...]


def load_department_catalogs(directory: Path) -> tuple[DepartmentCatalog, ...]:
    """Every department's catalog in `directory` (`*.json`, by file name); CatalogError
    listing each mistake: a file that is not a catalog, a matter or field that fails the
    schema, a matter under another department than its file's, a matter code given twice."""
    if not directory.is_dir():
        raise CatalogError([f"catalog directory {directory}: no such directory"])
    files = sorted(p for p in directory.glob("*.json") if not p.name.startswith("."))
    if not files:
        raise CatalogError([f"catalog directory {directory}: no <DEPARTMENT>.json file in it"])
    problems: list[str] = []
    loaded = []
    for path in files:
        found = _load_file(path, problems)
        if found is not None:
            loaded.append(found)
    problems.extend(_across_files(loaded))
    if problems:
        raise CatalogError(problems)
    return tuple(loaded)


def load_catalogs(directory: Path) -> Catalog:
    """The catalogs in `directory` merged into one (see `merge_catalogs`)."""
    return merge_catalogs(load_department_catalogs(directory))


def merge_catalogs(departments: Sequence[DepartmentCatalog]) -> Catalog:
    """Departments' catalogs as one, in their order; its version is the highest of theirs
    (each department's own stays in its `DepartmentCatalog`)."""
    return Catalog(
        catalog_version=max(d.catalog_version for d in departments),
        region=departments[0].region,
        matters=tuple(m for d in departments for m in d.matters),
    )


def _load_file(path: Path, problems: list[str]) -> DepartmentCatalog | None:
    """One department's file, or None with its mistakes added to `problems`."""
    where = f"catalog {path.name}"
    try:
        if path.stat().st_size > MAX_CATALOG_BYTES:
            problems.append(f"{where}: larger than {MAX_CATALOG_BYTES} bytes")
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{where}: not a JSON file ({exc})")
        return None
    try:
        head = _FileHead.model_validate(raw)
    except ValidationError as exc:
        problems.extend(f"{where}: {_field_problem(error)}" for error in exc.errors())
        return None
    if path.stem != head.department:
        problems.append(
            f"{where}: department: {head.department!r} is not the file's name; name the file "
            f"{head.department}.json"
        )
        return None
    matters = []
    for index, data in enumerate(head.matters):
        code = data.get("code")
        label = f"{where}: matter {code if isinstance(code, str) else f'#{index + 1}'}"
        try:
            matter = Matter.model_validate(data)
        except ValidationError as exc:
            problems.extend(f"{label}: {_field_problem(error, code)}" for error in exc.errors())
            continue
        if matter.department != head.department:
            problems.append(
                f"{label}: department: {matter.department!r} differs from the file's "
                f"{head.department!r} (a matter goes in its own department's file)"
            )
            continue
        matters.append(matter)
    if len(matters) < len(head.matters):
        return None
    return DepartmentCatalog(
        path.name, head.department, head.catalog_version, head.region, tuple(matters)
    )


def _across_files(loaded: Sequence[DepartmentCatalog]) -> list[str]:
    """Mistakes no one file shows: a matter code given twice, regions that differ."""
    problems = []
    first_file: dict[str, str] = {}
    for department in loaded:
        for matter in department.matters:
            earlier = first_file.setdefault(matter.code, department.file)
            if earlier != department.file or _count(department.matters, matter.code) > 1:
                problems.append(
                    f"catalog {department.file}: matter {matter.code}: code: already given in "
                    f"{earlier}; a matter code is given once"
                )
    regions = sorted({d.region for d in loaded})
    if len(regions) > 1:
        by_region = ", ".join(f"{d.file} {d.region}" for d in loaded)
        problems.append(
            f"catalog directory: region: the files name different regions ({by_region})"
        )
    return _unique(problems)


def _count(matters: Sequence[Matter], code: str) -> int:
    return sum(1 for m in matters if m.code == code)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _field_problem(error: Mapping[str, Any], code: object = None) -> str:
    """One pydantic error as `claims[1].op: why` (a whole-matter check: just why)."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if isinstance(code, str):  # the matter's own checks name it; the prefix says it already
        message = message.removeprefix(f"matter {code}: ")
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return f"{path}: {message}" if path else message


# ---------------------------------------------------------------------- the configured one

_configured: Path | Callable[[], Path | None] | None = None


def configure_catalog_dir(directory: Path | Callable[[], Path | None] | None) -> None:
    """Set the directory `default_catalog()` reads (None: the shipped `verifier/matters`);
    a callable is asked once, when the catalog is first needed (the command line passes
    one that reads the settings, so commands that need no catalog read none)."""
    global _configured  # one process, one configured catalog
    _configured = directory


def catalog_dir() -> Path:
    """The directory `default_catalog()` reads."""
    global _configured  # a deferred setting: read once, then kept
    if callable(_configured):
        _configured = _configured()
    return _configured if _configured is not None else MATTERS_DIR


def configured_catalog() -> Catalog:
    """The catalog of the configured directory, loaded once per directory, every notice
    condition mapped to a claim or a task (InvalidDocumentError otherwise)."""
    return _catalog_in(catalog_dir().resolve())


@cache
def _catalog_in(directory: Path) -> Catalog:
    catalog = load_catalogs(directory)
    catalog.check_conditions_mapped()
    return catalog

"""`commitledger catalog check`: the catalog's coverage, each notice condition to what checks it.

It loads the configured catalog directory (setting `catalog_dir`, `COMMITLEDGER_CATALOG_DIR`;
default: the shipped `verifier/matters`) or the one `--dir` names, and maps every notice
condition of every matter to the claims or the task that check it. Exit 0: every condition
mapped; 1: some are not (each listed); 2: the catalog cannot be loaded (the error names the
file, the matter and the field).

Registering the group also makes the command line read the catalog the settings name: every
command that needs the catalog (`new`, `verify run`, `feed`, `demo`...) asks the settings,
once, when it first needs it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.cli.config import ConfigOpt, DataDirOpt
from api.output import EXIT_CHECK_FAILED, emit_json, reporting_errors, stdout

if TYPE_CHECKING:
    from verifier import Catalog, DepartmentCatalog, Matter

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document.")]
DirOpt = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="A catalog directory: one <DEPARTMENT>.json per department (default: the "
        "catalog_dir setting, else the shipped catalog).",
    ),
]


def register(app: typer.Typer) -> None:
    """Add `catalog check` to the command line, and make the commands read the catalog
    directory the settings name."""
    from verifier import configure_catalog_dir

    catalog_app = typer.Typer(help="The matter catalog.", no_args_is_help=True)
    catalog_app.command("check")(catalog_check)
    app.add_typer(catalog_app, name="catalog")
    configure_catalog_dir(settings_catalog_dir)


def settings_catalog_dir() -> Path | None:
    """The catalog directory the settings name (environment, configuration file)."""
    from api.service import Settings

    return Settings.load().catalog_dir


def catalog_check(
    directory: DirOpt = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load the catalog and map every notice condition of every matter to a claim or a task."""
    from api.service import Settings
    from verifier import MATTERS_DIR, load_department_catalogs, merge_catalogs

    with reporting_errors(as_json):
        if directory is None:
            settings = Settings.load({"data_dir": data_dir}, config=config)
            directory = settings.catalog_dir or MATTERS_DIR
        departments = load_department_catalogs(directory)
        catalog = merge_catalogs(departments)
    report = coverage(catalog, departments, directory)
    if as_json:
        emit_json(report)
    else:
        _print_report(report)
    if report["unmapped"]:
        raise typer.Exit(EXIT_CHECK_FAILED)


def coverage(
    catalog: Catalog, departments: tuple[DepartmentCatalog, ...], directory: Path
) -> dict[str, Any]:
    """The coverage report: each department's file and version, each matter's conditions
    with what checks them, and the conditions nothing checks."""
    gaps = catalog.unmapped_conditions()
    matters = [_matter_coverage(matter, gaps.get(matter.code, ())) for matter in catalog.matters]
    unmapped = [
        {"matter": code, "condition": text} for code, texts in gaps.items() for text in texts
    ]
    return {
        "ok": not unmapped,
        "directory": str(directory),
        "catalog_version": catalog.catalog_version,
        "departments": [
            {
                "department": d.department,
                "file": d.file,
                "catalog_version": d.catalog_version,
                "matters": len(d.matters),
            }
            for d in departments
        ],
        "matters": matters,
        "conditions": sum(len(m["conditions"]) for m in matters),
        "unmapped": unmapped,
    }


def _matter_coverage(matter: Matter, unmapped: tuple[str, ...]) -> dict[str, Any]:
    conditions: list[dict[str, Any]] = []
    for condition in matter.conditions:
        entry: dict[str, Any] = {"condition": condition.text, "claims": list(condition.claims)}
        if condition.any_of:
            entry["any_of"] = True
        if condition.task is not None:
            task = condition.task
            entry["task"] = {"key": task.key, "kind": task.kind}
            if task.assist_department is not None:
                entry["task"]["assist_department"] = task.assist_department
        conditions.append(entry)
    conditions.extend({"condition": text, "claims": [], "unmapped": True} for text in unmapped)
    return {
        "code": matter.code,
        "name": matter.name,
        "department": matter.department,
        "sampling_rate": matter.sampling_rate,
        "conditions": conditions,
    }


def _print_report(report: dict[str, Any]) -> None:
    for department in report["departments"]:
        stdout.print(
            f"{department['file']}: {department['department']} v{department['catalog_version']}, "
            f"{department['matters']} matter(s)",
            markup=False,
        )
    for matter in report["matters"]:
        sampled = matter["sampling_rate"]
        share = f" (tasks for {sampled:.0%}, drawn by seed)" if sampled < 1 else ""
        stdout.print(f"\n{matter['code']} {matter['name']}{share}", markup=False)
        for entry in matter["conditions"]:
            stdout.print(f"  {entry['condition']} -> {_checked_by(entry)}", markup=False)
    count = len(report["unmapped"])
    stdout.print(
        f"\n{len(report['matters'])} matters, {len(report['departments'])} departments, "
        f"{report['conditions']} conditions, {count} unmapped",
        markup=False,
    )
    for gap in report["unmapped"]:
        stdout.print(f"unmapped: {gap['matter']}: {gap['condition']}", markup=False)


def _checked_by(entry: dict[str, Any]) -> str:
    if entry.get("unmapped"):
        return "UNMAPPED"
    parts = [f"claim {key}" for key in entry["claims"]]
    if entry.get("any_of"):
        parts = [f"any of: {' | '.join(parts)}"]
    if "task" in entry:
        task = entry["task"]
        asked = f", asking {task['assist_department']}" if "assist_department" in task else ""
        parts.append(f"task {task['key']} ({task['kind']}{asked})")
    return ", ".join(parts)

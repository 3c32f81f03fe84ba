"""`commitledger tasks list|complete` without a chain: the work list, and what is refused
before any transaction (the whole walk over HTTP is in tests/unit/test_service_tasks.py)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from support.verify_cli import cli, explain

from ledger import MASTER_KEY_ENV, Hash32, Store, hex32, keccak256
from verifier import Catalog, default_catalog
from verifier.records import TaskRecords

KEY = {MASTER_KEY_ENV: "0x" + "11" * 32}
COMMITMENT = Hash32(keccak256(b"a commitment with a task"))
HRSS = "BJ-HRSS"
SAMR = "BJ-SAMR"


def run(tmp_path: Path, *args: object) -> tuple[int, dict[str, Any]]:
    result = cli(*args, "--data-dir", tmp_path, "--json", env=KEY)
    assert result.stdout.strip(), explain(result)
    return result.exit_code, json.loads(result.stdout)


def seed_task(tmp_path: Path) -> None:
    """An open on-site check of an HRSS commitment, as a run opens it."""
    matter = default_catalog().matters[0].model_dump(mode="json")
    matter["code"] = "T-CLI"
    matter["conditions"] = [
        *(c for c in matter["conditions"] if c.get("task") is None),
        {"text": "site", "task": {"key": "site", "kind": "on_site_check", "description": "go"}},
    ]
    document = {"catalog_version": 1, "region": "110000", "matters": [matter]}
    catalog = Catalog.model_validate(document)
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        tasks = catalog.matter("T-CLI").tasks
        TaskRecords(store).open_tasks(COMMITMENT, HRSS, "T-CLI", tasks, date(2026, 11, 27))
    finally:
        store.close()


def test_the_group_is_registered() -> None:
    result = cli("tasks", "--help")
    assert result.exit_code == 0
    assert "list" in result.stdout and "complete" in result.stdout


def test_the_work_list_is_the_departments_own(tmp_path: Path) -> None:
    code, empty = run(tmp_path, "tasks", "list", "--department", HRSS)
    assert (code, empty["total"], empty["tasks"]) == (0, 0, [])
    seed_task(tmp_path)
    code, listed = run(tmp_path, "tasks", "list", "--department", HRSS)
    assert code == 0 and listed["total"] == 1
    [task] = listed["tasks"]
    assert (task["commitment_hash"], task["key"], task["status"], task["due_on"]) == (
        hex32(COMMITMENT),
        "site",
        "open",
        "2026-12-17",
    )
    code, other = run(tmp_path, "tasks", "list", "--department", SAMR)
    assert (code, other["total"]) == (0, 0)
    code, before = run(
        tmp_path, "tasks", "list", "--department", HRSS, "--due-before", "2026-12-17"
    )
    assert (code, before["total"]) == (0, 0)


def test_another_departments_task_and_bad_options_are_refused(tmp_path: Path) -> None:
    seed_task(tmp_path)
    code, refused = run(
        tmp_path, "tasks", "complete", hex32(COMMITMENT), "site", "--department", SAMR,
        "--result", "passed", "--note", "seen", "--by", "officer 1",
    )  # fmt: skip
    assert code == 1 and "not BJ-SAMR's" in refused["error"]["message"]
    code, bad = run(
        tmp_path, "tasks", "complete", hex32(COMMITMENT), "site", "--department", HRSS,
        "--result", "maybe", "--note", "seen", "--by", "officer 1",
    )  # fmt: skip
    assert code == 2 and bad["ok"] is False
    code, bad_kind = run(tmp_path, "tasks", "list", "--department", HRSS, "--kind", "visit")
    assert code == 2 and bad_kind["ok"] is False
    code, listed = run(tmp_path, "tasks", "list", "--department", HRSS)
    assert listed["tasks"][0]["status"] == "open"  # nothing changed

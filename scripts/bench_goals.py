"""The bench's goals (issues 15 and 19), each measured figure against its goal, and runs
saved as JSON and compared (`bench.py --save FILE`, `--compare FILE`).

A saved run is one JSON object::

    {"meta": {"commit", "dirty", "cores", "cpu", "python", "started", "finished"},
     "load_average": {"<section>": {"start": [1m, 5m, 15m], "end": [...], "seconds": s}},
     "figures": {"<section>": {...}},   # what each part of the bench measured
     "goals": [{"key", "label", "measured", "goal", "direction", "unit", "ratio", "met"}]}

The ratio is measured / goal: at least 1 meets a floor ("at_least"), at most 1 a ceiling.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

AT_LEAST, AT_MOST = "at_least", "at_most"
SIGN = {AT_LEAST: "≥", AT_MOST: "≤"}


@dataclass(frozen=True)
class Goal:
    """A figure's goal: where the figure is in a run's `figures`, the bound and its side."""

    key: str
    label: str
    paths: tuple[tuple[str, ...], ...]  # the first present is the figure
    goal: float
    direction: str  # AT_LEAST or AT_MOST
    unit: str
    scale: tuple[tuple[str, ...], float, str] | None = None  # the load the goal is set at:
    # (where in `figures`, the least value, what it counts); a smaller run is marked so
    # (`full_scale` false), its figure not being the goal's


GOALS: tuple[Goal, ...] = (
    Goal(
        "intake_to_anchored",
        "intake → anchored, burst (anvil)",
        (("pipeline", "intake_to_anchored_per_second"),),
        6_000,
        AT_LEAST,
        "/s",
        (("pipeline", "commitments"), 100_000, "commitments"),
    ),
    Goal(
        "ack_to_anchored_p99_steady",
        "ack → anchored p99, steady 3,000/s offered",
        (("steady", "ack_to_anchored_p99_s"),),
        3.0,
        AT_MOST,
        "s",
        (("steady", "achieved_offer_per_second"), 3_000, "a second offered (achieved)"),
    ),
    Goal(
        "verified",
        "verified, outcomes on chain",
        (("verification", "verified_per_second"),),
        2_000,
        AT_LEAST,
        "/s",
        (("verification", "commitments"), 10_000, "commitments"),
    ),
    Goal(
        "lookup_p99",
        "lookup by hash p99, 16 connections",
        (("service", "audit_by_hash", "p99_ms"),),
        5.0,
        AT_MOST,
        "ms",
        (("service", "audit_by_hash", "connections"), 16, "connections"),
    ),
    Goal(
        "searches",
        "public searches",
        (("service", "searches_per_second"),),
        2_000,
        AT_LEAST,
        "/s",
        (("service", "breach_records"), 1_000_000, "breach records"),
    ),
    Goal(
        "anchor_batch_gas",
        "anchorBatch gas, 1,000 leaves",
        (("anvil", "batch_1000_gas"), ("embedded", "batch_1000_gas")),
        50_000,
        AT_MOST,
        "gas",
    ),
    Goal(
        "proof_bundle_bytes",
        "proof bundle JSON, 100,000 leaves",
        (("proof_bundle", "bytes"),),
        1_200,
        AT_MOST,
        "B",
        (("proof_bundle", "leaves"), 100_000, "leaves"),
    ),
    Goal(
        "peak_memory",
        "peak memory beyond the input, burst",
        (("pipeline", "peak_memory_beyond_input_mib"),),
        400,
        AT_MOST,
        "MiB",
        (("pipeline", "commitments"), 100_000, "commitments"),
    ),
    Goal(
        "store_per_commitment",
        "store per commitment",
        (("pipeline", "store_bytes_per_commitment"),),
        1_200,
        AT_MOST,
        "B",
    ),
    Goal(
        "work_list_p99",
        "work-list page p99 (issue 15)",
        (("workbench", "work_list_page_p99_ms"),),
        50,
        AT_MOST,
        "ms",
        (("workbench", "commitments"), 1_000_000, "commitments"),
    ),
    Goal(
        "statistics_p99",
        "statistics p99 (issue 15)",
        (("workbench", "statistics_p99_ms"),),
        20,
        AT_MOST,
        "ms",
        (("workbench", "commitments"), 1_000_000, "commitments"),
    ),
)


def _number(figures: Mapping[str, Any], path: Sequence[str]) -> float | None:
    node: Any = figures
    for part in path:
        node = node.get(part) if isinstance(node, Mapping) else None
    if isinstance(node, int | float) and not isinstance(node, bool):
        return float(node)
    return None


def figure(figures: Mapping[str, Any], goal: Goal) -> float | None:
    """The goal's figure in `figures`, or None when this run did not measure it."""
    for path in goal.paths:
        value = _number(figures, path)
        if value is not None:
            return value
    return None


def met(goal: Goal, value: float) -> bool:
    """Whether `value` meets the goal."""
    return value >= goal.goal if goal.direction == AT_LEAST else value <= goal.goal


def evaluate(figures: Mapping[str, Any], goals: Sequence[Goal] = GOALS) -> list[dict[str, Any]]:
    """Each measured figure with its goal, the ratio measured / goal, and whether it is met."""
    rows = []
    for goal in goals:
        value = figure(figures, goal)
        if value is None:
            continue
        row = {
            "key": goal.key,
            "label": goal.label,
            "measured": value,
            "goal": goal.goal,
            "direction": goal.direction,
            "unit": goal.unit,
            "ratio": round(value / goal.goal, 3),
            "met": met(goal, value),
            "full_scale": True,
        }
        if goal.scale is not None:
            path, least, what = goal.scale
            at = _number(figures, path)
            if at is not None and at < 0.98 * least:  # a steady rate may fall 2 % short
                row["full_scale"] = False
                row["scale_note"] = f"at {at:,.0f} {what}, the goal's load is {least:,.0f}"
        rows.append(row)
    return rows


def amount(value: float, unit: str) -> str:
    """A figure as people read it: thousands separated, at most three significant decimals."""
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.3g}"
    return f"{text} {unit}" if unit else text


def goal_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The goals table as text lines, one figure a line."""
    lines = []
    for row in rows:
        sign = SIGN[row["direction"]]
        lines.append(
            f"{row['label']:<44} {amount(row['measured'], row['unit']):>13}   "
            f"goal {sign} {amount(row['goal'], row['unit']):<11} "
            f"{row['ratio']:>6.2f} × goal   {'met' if row['met'] else 'NOT met'}"
            + ("" if row.get("full_scale", True) else f"  (smaller run: {row['scale_note']})")
        )
    return lines


def compare(
    before: Mapping[str, Any], now: Mapping[str, Any], goals: Sequence[Goal] = GOALS
) -> list[dict[str, Any]]:
    """Per goal figure in both runs' `figures`: before, now, change in percent, and whether
    it moved the goal's way ("better"), against it ("worse") or not at all ("same")."""
    rows = []
    for goal in goals:
        old = figure(before.get("figures", {}), goal)
        new = figure(now.get("figures", {}), goal)
        if old is None or new is None:
            continue
        change = None if old == 0 else round((new - old) / abs(old) * 100, 1)
        if new == old:
            verdict = "same"
        elif (new > old) == (goal.direction == AT_LEAST):
            verdict = "better"
        else:
            verdict = "worse"
        rows.append(
            {
                "key": goal.key,
                "label": goal.label,
                "unit": goal.unit,
                "before": old,
                "now": new,
                "change_percent": change,
                "verdict": verdict,
                "met_now": met(goal, new),
            }
        )
    return rows


def compare_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The comparison as text lines."""
    lines = []
    for row in rows:
        change = "n/a" if row["change_percent"] is None else f"{row['change_percent']:+.1f} %"
        lines.append(
            f"{row['label']:<44} {amount(row['before'], row['unit']):>13} → "
            f"{amount(row['now'], row['unit']):>13}   {change:>9}   {row['verdict']}"
        )
    return lines


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


class Sections(dict[str, Any]):
    """The bench's report, section by section, noting the load average around each.

    The sections run one after another: a section starts when the previous one was stored
    (or when this report was made) and ends when it is stored, so storing `report[name]`
    notes both ends' load average and the seconds between in `load`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.load: dict[str, dict[str, Any]] = {}
        self._since = (time.perf_counter(), load_average())

    def begin(self) -> None:
        """Restart the clock: what ran since the last section was no section's work."""
        self._since = (time.perf_counter(), load_average())

    def __setitem__(self, name: str, figures: Any) -> None:
        started, load = self._since
        now = load_average()
        self.load[name] = {
            "start": load,
            "end": now,
            "seconds": round(time.perf_counter() - started, 1),
        }
        super().__setitem__(name, figures)
        self._since = (time.perf_counter(), now)


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def machine() -> dict[str, Any]:
    """The commit measured and the machine it ran on."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "commit": _git("rev-parse", "HEAD"),
        "dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def document(meta: Mapping[str, Any], report: Sections) -> dict[str, Any]:
    """A run as saved: meta, each section's load average, the figures and the goals."""
    return {
        "meta": {**meta, "finished": datetime.now(UTC).isoformat(timespec="seconds")},
        "load_average": report.load,
        "figures": dict(report),
        "goals": evaluate(report),
    }


def save(run: Mapping[str, Any], path: Path) -> None:
    """Write a run as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def load(path: Path) -> dict[str, Any]:
    """A saved run; ValueError when the file is not one."""
    run = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(run, dict) or not isinstance(run.get("figures"), dict):
        raise ValueError(f"{path} is not a saved bench run (no figures)")
    return run

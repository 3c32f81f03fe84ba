"""Start-up figure: how long `commitledger hash FILE` and `commitledger --help` take to run."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOAL_S = 0.5
COMMITLEDGER = Path(sys.executable).parent / "commitledger"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "applicant.json"


def _median_run(args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([str(COMMITLEDGER), *args], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


def startup_figures(runs: int = 5) -> dict[str, Any]:
    """Median wall seconds of `runs` runs of each command, each its own process."""
    with tempfile.TemporaryDirectory() as tmp:
        document = Path(tmp) / "commitment.json"
        subprocess.run(
            [str(COMMITLEDGER), "new", "--matter", "BJ-HRSS-0001", "--applicant", str(EXAMPLE),
             "--out", str(document), "--codes-file", str(Path(tmp) / "codes.json")],
            check=True,
            capture_output=True,
        )  # fmt: skip
        hash_s = _median_run(["hash", str(document)], runs)
    help_s = _median_run(["--help"], runs)
    return {
        "runs": runs,
        "goal_s": GOAL_S,
        "hash_file_median_s": hash_s,
        "help_median_s": help_s,
        "within_goal": hash_s < GOAL_S and help_s < GOAL_S,
    }


if __name__ == "__main__":
    print(json.dumps(startup_figures(), indent=2))

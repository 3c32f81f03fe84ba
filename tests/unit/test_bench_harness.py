"""The bench harness: goals and ratios, saved runs compared, charts drawn, steady pacing.

No chain and no timing: the figures here are made up, the harness's handling of them is what
is checked (scripts/bench_goals.py, bench_charts.py, bench_steady.py, bench.py --from).
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import bench_charts  # noqa: E402
import bench_goals  # noqa: E402
import bench_steady  # noqa: E402


def _figures() -> dict[str, Any]:
    return {
        "pipeline": {
            "commitments": 100_000,
            "intake_to_anchored_per_second": 4_288.0,
            "peak_memory_beyond_input_mib": 350.0,
            "store_bytes_per_commitment": 1_990.0,
            "ack_to_anchored_percentiles": [i / 10 for i in range(101)],
        },
        "steady": {
            "offered_per_second": 3_000.0,
            "achieved_offer_per_second": 2_990.0,
            "duration_s": 20.0,
            "ack_to_anchored_p99_s": 2.5,
            "ack_to_anchored_percentiles": [i / 40 for i in range(101)],
            "backlog": [
                {"t": t / 2, "pending": 100 * t, "batched": 50, "anchored": 0} for t in range(6)
            ],
        },
        "anvil": {"batch_1000_gas": 55_831},
        "batch_sizes": [
            {"batch_size": size, "commitments": 20_000, "intake_to_anchored_per_second": rate}
            for size, rate in ((250, 3_000.0), (1_000, 4_000.0), (4_000, 4_500.0))
        ],
    }


def _row(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return next(row for row in rows if row["key"] == key)


def test_each_measured_figure_has_its_goal_ratio_and_verdict() -> None:
    rows = bench_goals.evaluate(_figures())
    assert {row["key"] for row in rows} == {
        "intake_to_anchored",
        "ack_to_anchored_p99_steady",
        "anchor_batch_gas",
        "peak_memory",
        "store_per_commitment",
    }  # the figures not measured have no row
    floor = _row(rows, "intake_to_anchored")
    assert (floor["goal"], floor["direction"], floor["met"]) == (6_000, "at_least", False)
    assert floor["ratio"] == pytest.approx(4_288 / 6_000, abs=0.001)
    ceiling = _row(rows, "ack_to_anchored_p99_steady")
    assert (ceiling["direction"], ceiling["met"], ceiling["ratio"]) == ("at_most", True, 0.833)
    assert _row(rows, "peak_memory")["met"] is True
    assert _row(rows, "anchor_batch_gas")["met"] is False


def test_a_goal_exactly_reached_is_met_from_either_side() -> None:
    figures = {
        "pipeline": {"intake_to_anchored_per_second": 6_000, "store_bytes_per_commitment": 1_200}
    }
    rows = bench_goals.evaluate(figures)
    assert _row(rows, "intake_to_anchored")["met"] is True
    assert _row(rows, "store_per_commitment")["met"] is True


def test_the_figure_is_taken_from_the_first_path_present() -> None:
    goal = next(g for g in bench_goals.GOALS if g.key == "anchor_batch_gas")
    assert bench_goals.figure({"embedded": {"batch_1000_gas": 49_000}}, goal) == 49_000
    both = {"anvil": {"batch_1000_gas": 49_236}, "embedded": {"batch_1000_gas": 1}}
    assert bench_goals.figure(both, goal) == 49_236
    assert bench_goals.figure({"anvil": {"batch_1000_gas": True}}, goal) is None  # not a number
    assert bench_goals.figure({"anvil": "broken"}, goal) is None


def test_a_run_smaller_than_the_goals_load_is_marked() -> None:
    figures = _figures()
    figures["pipeline"]["commitments"] = 3_000
    figures["steady"]["achieved_offer_per_second"] = 2_100.0
    rows = bench_goals.evaluate(figures)
    small = _row(rows, "intake_to_anchored")
    assert small["full_scale"] is False
    assert "3,000 commitments" in small["scale_note"]
    assert "100,000" in small["scale_note"]
    assert "2,100" in _row(rows, "ack_to_anchored_p99_steady")["scale_note"]
    assert _row(rows, "anchor_batch_gas")["full_scale"] is True  # no load to reach
    line = next(x for x in bench_goals.goal_lines(rows) if x.startswith("intake"))
    assert "smaller run" in line


def test_goal_lines_show_figure_goal_ratio_and_verdict() -> None:
    lines = bench_goals.goal_lines(bench_goals.evaluate(_figures()))
    intake = next(line for line in lines if line.startswith("intake"))
    assert "4,288 /s" in intake
    assert "goal ≥ 6,000 /s" in intake
    assert "0.71 × goal" in intake
    assert intake.endswith("NOT met")
    steady = next(line for line in lines if line.startswith("ack"))
    assert "2.5 s" in steady
    assert "goal ≤ 3 s" in steady
    assert steady.endswith(" met")
    assert "smaller run" not in steady


def test_compare_says_better_or_worse_by_the_goals_direction() -> None:
    before = {"figures": _figures()}
    after = _figures()
    after["pipeline"]["intake_to_anchored_per_second"] = 5_000.0  # up: better (a floor)
    after["steady"]["ack_to_anchored_p99_s"] = 3.5  # up: worse (a ceiling)
    after["anvil"]["batch_1000_gas"] = 49_236  # down: better (a ceiling)
    after["pipeline"]["peak_memory_beyond_input_mib"] = 350.0  # unchanged
    del after["pipeline"]["store_bytes_per_commitment"]  # not in both: no row
    rows = bench_goals.compare(before, {"figures": after})
    assert {row["key"] for row in rows} == {
        "intake_to_anchored",
        "ack_to_anchored_p99_steady",
        "anchor_batch_gas",
        "peak_memory",
    }
    intake = _row(rows, "intake_to_anchored")
    assert (intake["before"], intake["now"], intake["verdict"]) == (4_288, 5_000, "better")
    assert intake["change_percent"] == pytest.approx(16.6, abs=0.05)
    latency = _row(rows, "ack_to_anchored_p99_steady")
    assert (latency["verdict"], latency["change_percent"], latency["met_now"]) == (
        "worse",
        40.0,
        False,
    )
    assert _row(rows, "anchor_batch_gas")["verdict"] == "better"
    assert _row(rows, "anchor_batch_gas")["met_now"] is True
    assert _row(rows, "peak_memory")["verdict"] == "same"
    lines = bench_goals.compare_lines(rows)
    assert any("+16.6 %" in line and line.endswith("better") for line in lines)


def test_compare_with_a_zero_before_has_no_percentage() -> None:
    rows = bench_goals.compare(
        {"figures": {"anvil": {"batch_1000_gas": 0}}},
        {"figures": {"anvil": {"batch_1000_gas": 10}}},
    )
    assert rows[0]["change_percent"] is None
    assert rows[0]["verdict"] == "worse"
    assert "n/a" in bench_goals.compare_lines(rows)[0]


def test_sections_note_the_load_average_around_each() -> None:
    report = bench_goals.Sections()
    report["first"] = {"x": 1}
    report.begin()
    report["second"] = {"y": 2}
    assert dict(report) == {"first": {"x": 1}, "second": {"y": 2}}
    assert set(report.load) == {"first", "second"}
    for noted in report.load.values():
        assert len(noted["start"]) == 3
        assert len(noted["end"]) == 3
        assert noted["seconds"] >= 0


def test_a_saved_run_loads_back_and_a_stranger_file_is_refused(tmp_path: Path) -> None:
    report = bench_goals.Sections()
    for name, figures in _figures().items():
        report[name] = figures
    run = bench_goals.document({"commit": "abc", "cores": 2, "cpu": "x"}, report)
    assert run["goals"] == bench_goals.evaluate(_figures())
    assert run["meta"]["commit"] == "abc"
    assert "finished" in run["meta"]
    assert set(run["load_average"]) == set(_figures())
    path = tmp_path / "runs" / "run.json"
    bench_goals.save(run, path)
    assert bench_goals.load(path) == json.loads(json.dumps(run))
    stranger = tmp_path / "other.json"
    stranger.write_text('{"pipeline": {}}')
    with pytest.raises(ValueError, match="not a saved bench run"):
        bench_goals.load(stranger)


def test_machine_names_the_commit_and_the_cores() -> None:
    meta = bench_goals.machine()
    assert len(meta["commit"]) == 40
    assert meta["cores"] >= 1
    assert isinstance(meta["dirty"], bool)


def test_every_chart_is_written_as_svg(tmp_path: Path) -> None:
    run = {
        "figures": _figures(),
        "load_average": {"steady": {"start": [1.5, 1, 1], "end": [2.25, 1, 1], "seconds": 20}},
    }
    written = bench_charts.write_charts(run, tmp_path / "charts")
    assert sorted(p.name for p in written) == [
        "backlog_over_time.svg",
        "latency_distribution.svg",
        "throughput_vs_batch_size.svg",
    ]
    for path in written:
        root = ET.fromstring(path.read_text(encoding="utf-8"))
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        assert root.findall(".//{http://www.w3.org/2000/svg}polyline")
    latency = (tmp_path / "charts" / "latency_distribution.svg").read_text()
    assert "steady, offered 3,000/s (achieved 2,990/s)" in latency
    assert "burst, 100,000 at once" in latency
    assert "goal: p99 within 3 s" in latency
    assert "load average (1 min) 1.50 at start, 2.25 at end" in latency
    backlog = (tmp_path / "charts" / "backlog_over_time.svg").read_text()
    assert "pending (not in a batch)" in backlog
    assert "due by the schedule, not acknowledged" in backlog


def test_a_chart_without_its_figures_is_not_drawn(tmp_path: Path) -> None:
    run = {"figures": {"pipeline": _figures()["pipeline"]}}
    written = bench_charts.write_charts(run, tmp_path)
    assert [p.name for p in written] == ["latency_distribution.svg"]
    assert bench_charts.write_charts({"figures": {}}, tmp_path / "none") == []


def test_chart_text_is_escaped() -> None:
    chart = bench_charts.Chart(
        title="a < b & c",
        x_label="x",
        y_label="y",
        series=[bench_charts.Series("<s>", [(0, 0), (1, 1)])],
    )
    svg = bench_charts.render(chart)
    assert "a &lt; b &amp; c" in svg
    assert "&lt;s&gt;" in svg
    ET.fromstring(svg)


@pytest.mark.parametrize(
    ("span", "step"), [(10, 2), (7, 2), (100, 20), (4_500, 1_000), (3, 1), (0.9, 0.2), (0, 1)]
)
def test_nice_step(span: float, step: float) -> None:
    assert bench_charts.nice_step(span) == pytest.approx(step)


def test_percentiles_of_a_distribution() -> None:
    values = [float(v) for v in range(1, 1001)]
    assert bench_steady.percentile(values, 0.5) == 501
    assert bench_steady.percentile(values, 0.99) == 991
    assert bench_steady.percentile(values, 1.0) == 1000
    shape = bench_steady.distribution(list(reversed(values)))
    assert len(shape) == 101
    assert (shape[0], shape[50], shape[100]) == (1, 501, 1000)
    assert bench_steady.distribution([]) == []
    with pytest.raises(ValueError, match="no values"):
        bench_steady.percentile([], 0.5)


def test_the_steady_offer_gives_every_document_once_in_order() -> None:
    offered: list[bytes] = []
    raw = [b"%d" % i for i in range(3_000)]
    calls = bench_steady.offer_steadily(offered.extend, raw, rate=1_000_000, tick=0.001)
    assert offered == raw
    assert sum(n for _, _, n in calls) == len(raw)
    assert all(n <= 4 * 1_000 for _, _, n in calls)  # at most `catch_up` ticks at once
    dues = [due for due, _, _ in calls]
    assert dues == sorted(dues)


def test_the_backlog_sampler_notes_the_start_and_the_end() -> None:
    status = SimpleNamespace(pending=7, in_flight=3, anchored=11)
    store = SimpleNamespace(status=lambda: status)
    with bench_steady.BacklogSampler(store, started=0.0, every=3_600) as sampler:
        pass
    assert len(sampler.samples) >= 2
    assert sampler.samples[-1]["pending"] == 7
    assert sampler.samples[-1]["batched"] == 3
    assert sampler.samples[-1]["anchored"] == 11


def test_bench_prints_compares_and_draws_a_saved_run(tmp_path: Path) -> None:
    report = bench_goals.Sections()
    for name, figures in _figures().items():
        report[name] = figures
    before = bench_goals.document(bench_goals.machine(), report)
    saved = tmp_path / "before.json"
    bench_goals.save(before, saved)
    after = json.loads(json.dumps(before))
    after["figures"]["pipeline"]["intake_to_anchored_per_second"] = 6_100.0
    now = tmp_path / "now.json"
    bench_goals.save(after, now)
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench.py"),
            "--from",
            str(now),
            "--compare",
            str(saved),
            "--charts",
            str(tmp_path / "charts"),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    out = done.stdout
    intake = next(line for line in out.splitlines() if line.startswith("intake"))
    assert "6,100 /s" in intake
    assert intake.endswith(" met")
    assert "== compared with" in out
    compared = out.split("== compared with", 1)[1]
    assert any("+42.3 %" in line and "better" in line for line in compared.splitlines())
    assert "101 values" in out  # a distribution printed by its length
    assert len(list((tmp_path / "charts").glob("*.svg"))) == 3


def test_only_skips_every_other_section() -> None:
    import argparse

    import bench

    args = argparse.Namespace(
        only="steady,service",
        skip_gas=False,
        proof_bundle=100_000,
        pipeline=100_000,
        batch_sizes="250,1000",
        steady=3_000.0,
        verify=10_000,
        feed=2_000,
        service=1_000_000,
        workbench=1_000_000,
        startup=5,
        consortium=1_000,
    )
    chosen = bench._only(argparse.ArgumentParser(), args)
    assert (chosen.steady, chosen.service) == (3_000.0, 1_000_000)  # as given
    assert chosen.skip_gas is True
    assert chosen.batch_sizes == ""
    skipped = ("proof_bundle", "pipeline", "verify", "feed", "workbench", "startup", "consortium")
    assert all(getattr(chosen, name) == 0 for name in skipped)


def test_only_refuses_a_section_it_does_not_know() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--only", "steady,nope"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--only: no section nope" in done.stderr


def test_the_readme_lists_every_goals_section() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    benchmarks = readme.split("## Benchmarks", 1)[1]
    for goal in bench_goals.GOALS:
        assert f"(`{goal.paths[0][0]}`" in benchmarks, goal.key
    for name in bench_charts.CHARTS:
        assert f"](docs/bench/{name})" in benchmarks

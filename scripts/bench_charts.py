"""The bench's charts as SVG files, drawn by hand (no display, no plotting library).

`write_charts(run, directory)` draws what a saved run (`bench.py --save`) holds: throughput
against batch size (`batch_sizes`), the acknowledgement-to-anchored distribution as a CDF
(`steady`, and the burst of `pipeline`), and the backlog over time (`steady`). A chart whose
figures the run lacks is not drawn. The SVG is plain text, small enough to commit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

WIDTH, HEIGHT = 720, 420
LEFT, RIGHT, TOP, BOTTOM = 78, 24, 44, 58
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


@dataclass(frozen=True)
class Series:
    """One line (and its points) of a chart."""

    name: str
    points: Sequence[tuple[float, float]]
    marks: bool = False  # a circle on each point


@dataclass(frozen=True)
class Chart:
    """A line chart: axes from zero (or the data's least x), a legend, an optional goal."""

    title: str
    x_label: str
    y_label: str
    series: Sequence[Series]
    goal: tuple[str, str, float] | None = None  # ("x" or "y", label, value)
    notes: Sequence[str] = field(default_factory=tuple)
    y_max: float | None = None  # the top of the y axis (else from the data)


def nice_step(span: float, ticks: int = 5) -> float:
    """A round step (1, 2 or 5 times a power of ten) giving about `ticks` ticks over `span`."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return float(factor * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _label(value: float) -> str:
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.3g}"


def render(chart: Chart) -> str:
    """The chart as an SVG document."""
    xs = [x for s in chart.series for x, _ in s.points]
    ys = [y for s in chart.series for _, y in s.points]
    if chart.goal:
        (xs if chart.goal[0] == "x" else ys).append(chart.goal[2])
    x_low = min(0.0, min(xs, default=0.0))
    x_step = nice_step(max(xs, default=1.0) - x_low)
    x_high = x_step * math.ceil(max(xs, default=1.0) / x_step) or 1.0
    y_step = nice_step(chart.y_max or max(ys, default=1.0))
    y_high = chart.y_max or y_step * math.ceil(max(ys, default=1.0) * 1.05 / y_step) or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - x_low) / (x_high - x_low) * plot_w

    def py(y: float) -> float:
        return TOP + plot_h - y / y_high * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="24" text-anchor="middle" font-size="15">'
        f"{escape(chart.title)}</text>",
    ]
    tick = x_low
    while tick <= x_high + x_step / 2:
        out.append(
            f'<line x1="{px(tick):.1f}" y1="{TOP}" x2="{px(tick):.1f}" y2="{TOP + plot_h}" '
            'stroke="#e5e5e5"/>'
            f'<text x="{px(tick):.1f}" y="{TOP + plot_h + 16}" text-anchor="middle">'
            f"{_label(tick)}</text>"
        )
        tick += x_step
    tick = 0.0
    while tick <= y_high + y_step / 2:
        out.append(
            f'<line x1="{LEFT}" y1="{py(tick):.1f}" x2="{LEFT + plot_w}" y2="{py(tick):.1f}" '
            'stroke="#e5e5e5"/>'
            f'<text x="{LEFT - 6}" y="{py(tick) + 4:.1f}" text-anchor="end">{_label(tick)}</text>'
        )
        tick += y_step
    out.append(
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#444"/>'
        f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 14}" text-anchor="middle">'
        f"{escape(chart.x_label)}</text>"
        f'<text x="16" y="{TOP + plot_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {TOP + plot_h / 2})">{escape(chart.y_label)}</text>'
    )
    if chart.goal:
        axis, label, value = chart.goal
        if axis == "y":
            line = f'x1="{LEFT}" y1="{py(value):.1f}" x2="{LEFT + plot_w}" y2="{py(value):.1f}"'
            at = f'x="{LEFT + plot_w - 4}" y="{py(value) - 5:.1f}" text-anchor="end"'
        else:
            line = f'x1="{px(value):.1f}" y1="{TOP}" x2="{px(value):.1f}" y2="{TOP + plot_h}"'
            at = f'x="{px(value) - 4:.1f}" y="{TOP + plot_h / 2:.1f}" text-anchor="end"'
        out.append(
            f'<line {line} stroke="#2ca02c" stroke-dasharray="6 4"/>'
            f'<text {at} fill="#2ca02c">{escape(label)}</text>'
        )
    for index, series in enumerate(chart.series):
        colour = COLOURS[index % len(COLOURS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in series.points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        if series.marks:
            out.extend(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{colour}"/>'
                for x, y in series.points
            )
        legend_y = TOP + 16 + 16 * index
        out.append(
            f'<line x1="{LEFT + 10}" y1="{legend_y - 4}" x2="{LEFT + 30}" y2="{legend_y - 4}" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<text x="{LEFT + 36}" y="{legend_y}">{escape(series.name)}</text>'
        )
    for index, note in enumerate(chart.notes):  # under the title, above the plot
        out.append(
            f'<text x="{WIDTH / 2}" y="{24 + 14 * (index + 1)}" text-anchor="middle" '
            f'font-size="11" fill="#555">{escape(note)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _load_note(run: Mapping[str, Any], section: str) -> list[str]:
    load = run.get("load_average", {}).get(section)
    if not load:
        return []
    return [f"load average (1 min) {load['start'][0]:.2f} at start, {load['end'][0]:.2f} at end"]


def throughput_chart(run: Mapping[str, Any]) -> Chart | None:
    """Intake to anchored per second against the pipeline's batch size."""
    rows = run.get("figures", {}).get("batch_sizes")
    if not rows:
        return None
    return Chart(
        title="Intake to anchored against batch size (anvil, burst)",
        x_label="batch size (commitments)",
        y_label="commitments anchored per second",
        series=[
            Series(
                f"{rows[0]['commitments']:,} commitments each",
                [(r["batch_size"], r["intake_to_anchored_per_second"]) for r in rows],
                marks=True,
            )
        ],
        goal=("y", "goal 6,000/s", 6000.0),
        notes=_load_note(run, "batch_sizes"),
    )


def latency_chart(run: Mapping[str, Any]) -> Chart | None:
    """The acknowledgement-to-anchored CDF: steady load, and the burst beside it."""
    figures = run.get("figures", {})
    series = []
    steady = figures.get("steady", {})
    if steady.get("ack_to_anchored_percentiles"):
        rate = steady.get("achieved_offer_per_second", steady.get("offered_per_second"))
        series.append(
            Series(
                f"steady, offered {steady['offered_per_second']:,.0f}/s (achieved {rate:,.0f}/s)",
                [(s, p) for p, s in enumerate(steady["ack_to_anchored_percentiles"])],
            )
        )
    burst = figures.get("pipeline", {})
    if burst.get("ack_to_anchored_percentiles"):
        series.append(
            Series(
                f"burst, {burst['commitments']:,} at once",
                [(s, p) for p, s in enumerate(burst["ack_to_anchored_percentiles"])],
            )
        )
    if not series:
        return None
    return Chart(
        title="Acknowledgement to anchored: share of commitments anchored within t",
        x_label="seconds from acknowledgement to anchored",
        y_label="percent of commitments",
        series=series,
        goal=("x", "goal: p99 within 3 s", 3.0),
        notes=_load_note(run, "steady"),
        y_max=100.0,
    )


def backlog_chart(run: Mapping[str, Any]) -> Chart | None:
    """Pending and batched-but-not-anchored commitments over the steady run."""
    steady = run.get("figures", {}).get("steady", {})
    samples = steady.get("backlog")
    if not samples:
        return None
    return Chart(
        title=f"Backlog over time, offered {steady['offered_per_second']:,.0f}/s "
        f"for {steady['duration_s']:g} s",
        x_label="seconds from the first offer",
        y_label="commitments",
        series=[
            Series("pending (not in a batch)", [(s["t"], s["pending"]) for s in samples]),
            Series("in a batch, not anchored", [(s["t"], s["batched"]) for s in samples]),
            Series(
                "due by the schedule, not acknowledged",
                [(s["t"], s.get("unacknowledged", 0)) for s in samples],
            ),
        ],
        notes=_load_note(run, "steady"),
    )


CHARTS = {
    "throughput_vs_batch_size.svg": throughput_chart,
    "latency_distribution.svg": latency_chart,
    "backlog_over_time.svg": backlog_chart,
}


def write_charts(run: Mapping[str, Any], directory: Path) -> list[Path]:
    """Draw every chart the run has figures for into `directory`; the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in CHARTS.items():
        chart = make(run)
        if chart is not None:
            path = directory / name
            path.write_text(render(chart), encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":
    import json
    import sys

    saved = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    for written_path in write_charts(saved, Path(sys.argv[2] if len(sys.argv) > 2 else ".")):
        print(written_path)

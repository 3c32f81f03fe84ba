"""Charts drawn on the server as SVG: lines of rates over time, stacked bars of counts.

Colours and sizes are presentation attributes, never `style` (the CSP forbids inline
style); every label is escaped; each chart has a title and a description for screen
readers, and the figures are also given as a table beside it by the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from api.service.record_page import e

WIDTH, HEIGHT = 640, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 16, 48
PALETTE = ("#12355b", "#b00020", "#1b6e2a", "#b36b00", "#6a1b9a", "#00838f", "#5d4037")
MAX_POINTS = 120  # periods drawn; older ones are left off


@dataclass(frozen=True)
class Series:
    """One line or one bar part: its name and a value per period (None: no data)."""

    name: str
    values: Sequence[float | None]


def _frame(title: str, description: str, inner: str, legend: Sequence[str]) -> str:
    keys = "".join(
        f'<rect x="{LEFT + i * 150}" y="{HEIGHT - 16}" width="10" height="10"'
        f' fill="{PALETTE[i % len(PALETTE)]}"/>'
        f'<text x="{LEFT + i * 150 + 14}" y="{HEIGHT - 7}" font-size="11">{e(name[:22])}</text>'
        for i, name in enumerate(legend[:4])
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' role="img" font-family="sans-serif">'
        f"<title>{e(title)}</title><desc>{e(description)}</desc>"
        f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>'
        f"{inner}{keys}</svg>"
    )


def _axes(periods: Sequence[str], top_value: float, unit: str) -> str:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="#888"/>',
        f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - RIGHT}" y2="{TOP + plot_h}"'
        ' stroke="#888"/>',
    ]
    for step in range(5):
        value = top_value * step / 4
        y = TOP + plot_h - plot_h * step / 4
        text = f"{value:.0f}{unit}" if unit else f"{value:g}"
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
            f"{e(text)}</text>"
        )
    if periods:
        shown = {0, len(periods) - 1, len(periods) // 2}
        for i in sorted(shown):
            x = _x(i, len(periods))
            parts.append(
                f'<text x="{x:.1f}" y="{TOP + plot_h + 14}" font-size="10"'
                f' text-anchor="middle">{e(periods[i])}</text>'
            )
    return "".join(parts)


def _x(index: int, count: int) -> float:
    plot_w = WIDTH - LEFT - RIGHT
    if count <= 1:
        return LEFT + plot_w / 2
    return LEFT + plot_w * (index + 0.5) / count


def line_chart(
    title: str, periods: Sequence[str], series: Sequence[Series], *, percent: bool = True
) -> str:
    """Lines over `periods` (rates in 0..1 drawn as percentages when `percent`)."""
    periods = list(periods)[-MAX_POINTS:]
    cut = len(periods)
    scale = 100.0 if percent else 1.0
    values = [[None if v is None else v * scale for v in s.values][-cut:] for s in series]
    top = 100.0 if percent else max([v for vs in values for v in vs if v is not None] or [1.0])
    top = top or 1.0
    plot_h = HEIGHT - TOP - BOTTOM
    inner = [_axes(periods, top, "%" if percent else "")]
    for number, points in enumerate(values):
        colour = PALETTE[number % len(PALETTE)]
        coords = [
            (_x(i, cut), TOP + plot_h - plot_h * v / top)
            for i, v in enumerate(points)
            if v is not None
        ]
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            inner.append(
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
            )
        inner += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in coords]
    description = f"{title}: " + "; ".join(
        f"{s.name} " + ", ".join("-" if v is None else f"{v:.1f}" for v in vs)
        for s, vs in zip(series, values, strict=True)
    )
    return _frame(title, description[:2000], "".join(inner), [s.name for s in series])


def bar_chart(title: str, periods: Sequence[str], series: Sequence[Series]) -> str:
    """Stacked bars of counts over `periods`, one colour per series."""
    periods = list(periods)[-MAX_POINTS:]
    cut = len(periods)
    values = [[v or 0.0 for v in s.values][-cut:] for s in series]
    totals = [sum(column) for column in zip(*values, strict=True)] if values else []
    top = max(totals or [0.0]) or 1.0
    plot_h = HEIGHT - TOP - BOTTOM
    width = max(2.0, (WIDTH - LEFT - RIGHT) / max(cut, 1) * 0.7)
    inner = [_axes(periods, top, "")]
    for i in range(cut):
        base = float(TOP + plot_h)
        for number, column in enumerate(values):
            height = plot_h * column[i] / top
            if height <= 0:
                continue
            base -= height
            inner.append(
                f'<rect x="{_x(i, cut) - width / 2:.1f}" y="{base:.1f}" width="{width:.1f}"'
                f' height="{height:.1f}" fill="{PALETTE[number % len(PALETTE)]}">'
                f"<title>{e(periods[i])} {e(series[number].name)}: {column[i]:g}</title></rect>"
            )
    description = f"{title}: " + "; ".join(
        f"{s.name} " + ", ".join(f"{v:g}" for v in vs) for s, vs in zip(series, values, strict=True)
    )
    return _frame(title, description[:2000], "".join(inner), [s.name for s in series])

"""The charts page and the reform office's comparison, from the statistics counters
(`verifier.records.StatsQuery`): kept and breach rates over time per matter, decisions
within and past the half-day limit, the verification backlog; and departments and matters
side by side. Each chart is SVG drawn here, with its figures in a table beside it."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, timedelta

from api.service.record_page import bilingual, e, label
from api.service.workbench.charts import Series, bar_chart, line_chart
from api.service.workbench.layout import table
from verifier.records import Period, StatRow, StatsQuery, bounded_range

MAX_MATTER_CHARTS = 8
_PERIOD_NAMES = {"day": "日 / Day", "week": "周 / Week", "month": "月 / Month"}
_STANDING = {
    "mismatch": "待整改 / Mismatch",
    "needs_manual": "待人工 / Needs a person",
    "proposed": "拟认定 / Proposed breach",
}


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def period_labels(period: Period, today: date) -> list[tuple[date, str]]:
    """Every period of the default span up to `today` (first day, label), oldest first, so
    a period in which nothing happened is drawn as nothing rather than left out."""
    first, last = bounded_range(period, None, None, today)
    found: list[tuple[date, str]] = []
    day = first
    while day <= last:
        shown = StatRow("", "", period, day).label
        if not found or found[-1][1] != shown:
            found.append((day, shown))
        day += timedelta(days=1)
    return found


def _by_period(
    rows: Iterable[StatRow], labels: Sequence[str] = ()
) -> tuple[list[str], dict[str, Counter[str]]]:
    """The periods in order (`labels`, else those of the rows), and each period's counts
    summed over its rows."""
    summed: dict[str, Counter[str]] = defaultdict(Counter)
    starts: dict[str, date] = {}
    for row in rows:
        summed[row.label].update(row.counts)
        starts[row.label] = row.start
    if labels:
        return list(labels), summed
    return sorted(summed, key=lambda key: starts[key]), summed


def period_form(path: str, period: str, matter: str, department: str | None) -> str:
    """The form choosing the period (and matter, and for a supervisor the department)."""
    options = "".join(
        f'<option value="{p}"{" selected" if p == period else ""}>{e(text)}</option>'
        for p, text in _PERIOD_NAMES.items()
    )
    chosen = (
        f'<label><span>{label("部门 / Department")}</span><input name="department"'
        f' maxlength="64" value="{e(department or "")}"></label>'
        if department is not None
        else ""
    )
    return (
        f'<form class="filters" method="get" action="{e(path)}">'
        f'<label><span>{label("周期 / Period")}</span><select name="period">{options}</select>'
        f"</label><label><span>{label('事项编码 / Matter code')}</span>"
        f'<input name="matter" maxlength="64" value="{e(matter)}"></label>{chosen}'
        f'<button type="submit">{label("查看 / Show")}</button></form>'
    )


def _figure(caption: str, svg: str, figures: str) -> str:
    return (
        f"<figure><figcaption>{label(caption)}</figcaption>{svg}"
        f"<details><summary>{label('数据 / The figures')}</summary>{figures}</details></figure>"
    )


def _rates_by_matter(rows: Sequence[StatRow], periods: Sequence[str]) -> str:
    by_matter: dict[str, list[StatRow]] = defaultdict(list)
    for row in rows:
        by_matter[row.matter_code].append(row)
    parts = []
    verified = [m for m in sorted(by_matter) if any(r.count("verified") for r in by_matter[m])]
    for matter in verified[:MAX_MATTER_CHARTS]:
        labels, summed = _by_period(by_matter[matter], periods)
        kept = [_rate(summed[p]["kept"], summed[p]["verified"]) for p in labels]
        breach = [_rate(summed[p]["breach"], summed[p]["verified"]) for p in labels]
        svg = line_chart(
            f"{matter}: kept and breach rates",
            labels,
            [Series("守诺率 kept rate", kept), Series("失信率 breach rate", breach)],
        )
        figures = table(
            ["周期 / Period", "核查 / Verified", "守诺率 / Kept rate", "失信率 / Breach rate"],
            [
                ("", [e(p), e(summed[p]["verified"]), _percent(k), _percent(b)])
                for p, k, b in zip(labels, kept, breach, strict=True)
            ],
        )
        parts.append(
            _figure(f"{matter} 守诺率与失信率 / {matter}: kept and breach rates", svg, figures)
        )
    if not parts:
        return f"<p>{bilingual('这段时间没有核查结果', 'No outcomes in this period')}</p>"
    return '<div class="charts">' + "".join(parts) + "</div>"


def _decisions(rows: Sequence[StatRow], periods: Sequence[str]) -> str:
    labels, summed = _by_period(rows, periods)
    late = [float(summed[p]["decided_late"]) for p in labels]
    within = [float(summed[p]["decided"] - summed[p]["decided_late"]) for p in labels]
    svg = bar_chart(
        "Decisions within and past the half-day limit",
        labels,
        [Series("按时 within the limit", within), Series("超时 past the limit", late)],
    )
    figures = table(
        ["周期 / Period", "决定 / Decided", "按时 / Within", "超时 / Late", "超时率 / Late rate"],
        [
            (
                "late" if summed[p]["decided_late"] else "",
                [
                    e(p),
                    e(summed[p]["decided"]),
                    e(int(w)),
                    e(int(n)),
                    _percent(_rate(summed[p]["decided_late"], summed[p]["decided"])),
                ],
            )
            for p, w, n in zip(labels, within, late, strict=True)
        ],
    )
    return _figure(
        "审批决定是否在半个工作日内 / Decisions within and past the half-day limit", svg, figures
    )


def _backlog(rows: Sequence[StatRow], periods: Sequence[str], standing: dict[str, int]) -> str:
    labels, summed = _by_period(rows, periods)
    received = [float(summed[p]["received"]) for p in labels]
    verified = [float(summed[p]["verified"]) for p in labels]
    svg = line_chart(
        "Verification backlog: received and verified",
        labels,
        [Series("收到 received", received), Series("已核查 verified", verified)],
        percent=False,
    )
    now = table(
        ["状态 / State", "现有 / Now"],
        [("", [label(text), e(standing.get(key, 0))]) for key, text in _STANDING.items()],
    )
    figures = table(
        ["周期 / Period", "收到 / Received", "已核查 / Verified"],
        [
            ("", [e(p), e(int(r)), e(int(v))])
            for p, r, v in zip(labels, received, verified, strict=True)
        ],
    )
    return (
        _figure("核查积压 / Verification backlog", svg, figures)
        + f"<h3>{label('当前待处理 / Waiting now')}</h3>{now}"
    )


def charts_body(
    stats: StatsQuery,
    department: str | None,
    matter: str | None,
    period: Period,
    today: date,
) -> str:
    """The charts page's body for `department` (None: every department)."""
    rows = stats.counts(department, matter, period, today=today)
    periods = [shown for _, shown in period_labels(period, today)]
    standing: Counter[str] = Counter()
    for (_, code), states in stats.standing(department).items():
        if matter is None or code == matter:
            standing.update(states)
    return (
        f"<h2>{label('守诺率与失信率 / Kept and breach rates')}</h2>"
        + _rates_by_matter(rows, periods)
        + f"<h2>{label('审批时限与核查积压 / The half-day limit, the backlog')}</h2>"
        + '<div class="charts">'
        + _decisions(rows, periods)
        + "<div>"
        + _backlog(rows, periods, dict(standing))
        + "</div></div>"
    )


def _summary_rows(groups: dict[tuple[str, ...], Counter[str]]) -> list[tuple[str, list[str]]]:
    rows = []
    for key in sorted(groups):
        c = groups[key]
        late_rate = _rate(c["decided_late"], c["decided"])
        rows.append(
            (
                "late" if c["decided_late"] else "",
                [
                    *(e(part) for part in key),
                    e(c["received"]),
                    e(c["decided"]),
                    _percent(late_rate),
                    e(c["verified"]),
                    _percent(_rate(c["kept"], c["verified"])),
                    e(c["breach"]),
                    _percent(_rate(c["breach"], c["verified"])),
                ],
            )
        )
    return rows


_SUMMARY = [
    "收到 / Received",
    "决定 / Decided",
    "超时率 / Late rate",
    "核查 / Verified",
    "守诺率 / Kept rate",
    "失信 / Breaches",
    "失信率 / Breach rate",
]


def compare_body(stats: StatsQuery, matter: str | None, period: Period, today: date) -> str:
    """Departments side by side, then each department's matters, over the period's default
    span; a chart of each department's kept rate over time."""
    rows = stats.counts(None, matter, period, today=today)
    departments: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    matters: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    for row in rows:
        departments[(row.department,)].update(row.counts)
        matters[(row.department, row.matter_code)].update(row.counts)
    per_department: dict[str, list[StatRow]] = defaultdict(list)
    for row in rows:
        per_department[row.department].append(row)
    labels = [shown for _, shown in period_labels(period, today)]
    series = []
    for department in sorted(per_department)[:7]:
        _, summed = _by_period(per_department[department], labels)
        series.append(
            Series(department, [_rate(summed[p]["kept"], summed[p]["verified"]) for p in labels])
        )
    chart = _figure(
        "各部门守诺率 / Kept rate by department",
        line_chart("Kept rate by department", labels, series),
        table(["部门 / Department", *_SUMMARY], _summary_rows(departments)),
    )
    return (
        f'<div class="charts">{chart}</div>'
        + f"<h2>{label('部门对比 / Departments')}</h2>"
        + table(["部门 / Department", *_SUMMARY], _summary_rows(departments))
        + f"<h2>{label('事项对比 / Matters')}</h2>"
        + table(["部门 / Department", "事项 / Matter", *_SUMMARY], _summary_rows(matters))
    )

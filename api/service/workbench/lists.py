"""A work list as a page: its filters, its rows (late ones highlighted, with the time left
or how late), paging, and on each row the forms that act on it — decide a commitment,
confirm or dismiss a proposed breach, decide an objection or a repair application, record
a check's result. A supervisor sees the rows and no form."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from api.service.record_page import bilingual, e, label
from api.service.workbench.layout import beijing_dt, post_form, table
from api.service.workbench.pages import commitment_link
from ledger import hex32
from verifier.records import WorkItem, WorkPage

TITLES = {
    "awaiting-decision": "待作出审批决定 / Awaiting a decision",
    "rectification": "待整改 / Mismatches awaiting rectification",
    "defence": "陈述申辩期内的拟认定失信 / Proposed breaches in their defence period",
    "appeals": "待决定的异议与信用修复 / Objections and repairs awaiting a decision",
    "manual": "待人工核查 / Cases for a person",
    "refused": "合约拒绝的结果 / Outcomes the contract refused",
    "overdue": "核查逾期 / Overdue verifications",
}
_STARTED = {
    "awaiting-decision": "收到 / Received",
    "rectification": "认定 / Recorded",
    "defence": "告知 / Issued",
    "appeals": "提出 / Filed",
    "manual": "开始 / Since",
    "refused": "发生 / When",
    "overdue": "开始 / Since",
}
_REASONS = (
    '<textarea name="reasons" required maxlength="2000" rows="1"'
    ' aria-label="reasons / 理由" placeholder="理由 / Reasons"></textarea>'
)
_NOTE = (
    '<input name="note" required maxlength="2000" aria-label="note / 核查说明"'
    ' placeholder="核查说明 / What was checked">'
)


def _left(item: WorkItem) -> str:
    if item.left is None:
        return ""
    unit = ("个工作日", "working days") if item.left_unit == "working_days" else ("天", "days")
    amount = abs(item.left)
    shown = f"{amount:.2f}".rstrip("0").rstrip(".") if amount % 1 else f"{amount:.0f}"
    if item.late or item.left < 0:
        text = bilingual(f"已逾期 {shown} {unit[0]}", f"late by {shown} {unit[1]}")
        return f'<span class="late-mark">{text}</span>'
    text = bilingual(f"剩余 {shown} {unit[0]}", f"{shown} {unit[1]} left")
    return f'<span class="ok-mark">{text}</span>'


def _actions(item: WorkItem, csrf: str, back: str, role: str) -> str:
    digest = hex32(item.commitment)
    base = [("back", back)]
    if item.list == "awaiting-decision" and role == "registrar":
        action = f"/workbench/commitments/{digest}/decision"
        return post_form(
            action,
            csrf,
            "批准 / Approve",
            fields=[*base, ("result", "approved")],
            button_class="primary",
        ) + post_form(
            action,
            csrf,
            "不予批准 / Refuse",
            fields=[*base, ("result", "refused")],
            button_class="danger",
        )
    if item.list == "defence" and role == "verifier":
        action = f"/workbench/commitments/{digest}/defence"
        return post_form(
            action,
            csrf,
            "确认失信 / Confirm breach",
            fields=[*base, ("act", "confirm")],
            inputs=_REASONS,
            button_class="danger",
        ) + post_form(
            action,
            csrf,
            "撤销拟认定 / Dismiss",
            fields=[*base, ("act", "dismiss")],
            inputs=_REASONS,
        )
    if item.list == "appeals" and role == "verifier" and item.reference:
        action = f"/workbench/appeals/{item.reference}/decision"
        yes, no = ("upheld", "rejected") if item.status == "objection" else ("granted", "refused")
        yes_label = "异议成立 / Uphold" if yes == "upheld" else "准予修复 / Grant"
        no_label = "驳回 / Reject" if no == "rejected" else "不予修复 / Refuse"
        fields = [*base, ("kind", item.status)]
        return post_form(
            action,
            csrf,
            yes_label,
            fields=[*fields, ("outcome", yes)],
            inputs=_REASONS,
            button_class="primary",
        ) + post_form(
            action,
            csrf,
            no_label,
            fields=[*fields, ("outcome", no)],
            inputs=_REASONS,
            button_class="danger",
        )
    if item.list == "manual" and role == "verifier" and item.reference:
        action = f"/workbench/tasks/{digest}/{item.reference}"
        return post_form(
            action,
            csrf,
            "通过 / Passed",
            fields=[*base, ("result", "passed")],
            inputs=_NOTE,
            button_class="primary",
        ) + post_form(
            action,
            csrf,
            "未通过 / Failed",
            fields=[*base, ("result", "failed")],
            inputs=_NOTE,
            button_class="danger",
        )
    return ""


def _filters(name: str, department: str | None, matter: str, late: bool) -> str:
    chosen = (
        f'<input type="hidden" name="department" value="{e(department)}">' if department else ""
    )
    return (
        f'<form class="filters" method="get" action="/workbench/lists/{e(name)}">{chosen}'
        f"<label><span>{label('事项编码 / Matter code')}</span>"
        f'<input name="matter" maxlength="64" value="{e(matter)}"></label>'
        f"<label><span>{label('只看逾期 / Late only')}</span>"
        f'<input type="checkbox" name="late" value="true"{" checked" if late else ""}></label>'
        f'<button type="submit">{label("筛选 / Filter")}</button></form>'
    )


def _pager(name: str, found: WorkPage, query: dict[str, str]) -> str:
    links = []
    for text, offset in (
        ("上一页 / Previous", found.offset - found.limit),
        ("下一页 / Next", found.offset + found.limit),
    ):
        if 0 <= offset < found.total and offset != found.offset:
            address = f"/workbench/lists/{name}?" + urlencode({**query, "offset": offset})
            links.append(f'<a href="{e(address)}">{label(text)}</a>')
    end = min(found.offset + len(found.items), found.total)
    start = found.offset + 1 if found.items else 0
    shown = bilingual(
        f"第 {start}–{end} 条，共 {found.total} 条", f"{start}–{end} of {found.total}"
    )
    return f'<nav class="pager">{"".join(links)}<span>{shown}</span></nav>'


def render_items(found: WorkPage, *, csrf: str, role: str, back: str) -> str:
    """The page's rows as a table (late ones marked), with forms for `role` returning to
    `back`."""
    headings = [
        "承诺 / Commitment",
        "事项 / Matter",
        "状态 / Status",
        _STARTED[found.name],
        "期限 / Due",
        "剩余或逾期 / Left or late",
    ]
    acting = role != "supervisor"
    if acting:
        headings.append("操作 / Action")
    rows = []
    for item in found.items:
        cells = [
            commitment_link(item.commitment),
            e(item.matter_code),
            e(item.status)
            + (f"<br><code>{e(item.reference)}</code>" if item.reference else "")
            + (f"<br>{e(item.note)}" if item.note else ""),
            e(_moment(item.started)),
            e(_moment(item.due)),
            _left(item),
        ]
        if acting:
            cells.append(_actions(item, csrf, back, role))
        rows.append(("late" if item.late else "", cells))
    return table(headings, rows)


def render_list_body(
    found: WorkPage,
    *,
    csrf: str,
    role: str,
    back: str,
    matter: str = "",
    late: bool = False,
    department: str | None = None,
) -> str:
    """The list's filters, rows and pager (HTML), forms on each row for `role`."""
    query = {k: v for k, v in (("matter", matter), ("department", department or "")) if v}
    if late:
        query["late"] = "true"
    return (
        _filters(found.name, department, matter, late)
        + render_items(found, csrf=csrf, role=role, back=back)
        + _pager(found.name, found, query)
    )


def _moment(text: str | None) -> str:
    """An ISO time (UTC, "Z") shown in Beijing time to the minute; a day as it is."""
    if not text or len(text) <= 10:
        return text or ""
    return beijing_dt(datetime.fromisoformat(text.replace("Z", "+00:00")))

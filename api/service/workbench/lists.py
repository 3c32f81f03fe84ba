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


_Choice = tuple[str, str, str]  # the field's value, the button's label, its class


def _two_choices(
    action: str,
    csrf: str,
    fields: list[tuple[str, str]],
    field: str,
    choices: tuple[_Choice, _Choice],
    inputs: str = "",
) -> str:
    """Two forms posting to `action`, alike but for `field`'s value and the button."""
    return "".join(
        post_form(
            action,
            csrf,
            label,
            fields=[*fields, (field, value)],
            inputs=inputs,
            button_class=button_class,
        )
        for value, label, button_class in choices
    )


def _actions(item: WorkItem, csrf: str, back: str, role: str) -> str:
    digest = hex32(item.commitment)
    base = [("back", back)]
    if item.list == "awaiting-decision" and role == "registrar":
        return _two_choices(
            f"/workbench/commitments/{digest}/decision",
            csrf,
            base,
            "result",
            (("approved", "批准 / Approve", "primary"), ("refused", "不予批准 / Refuse", "danger")),
        )
    if item.list == "defence" and role == "verifier":
        return _two_choices(
            f"/workbench/commitments/{digest}/defence",
            csrf,
            base,
            "act",
            (
                ("confirm", "确认失信 / Confirm breach", "danger"),
                ("dismiss", "撤销拟认定 / Dismiss", ""),
            ),
            _REASONS,
        )
    if item.list == "appeals" and role == "verifier" and item.reference:
        if item.status == "objection":
            yes: _Choice = ("upheld", "异议成立 / Uphold", "primary")
            no: _Choice = ("rejected", "驳回 / Reject", "danger")
        else:
            yes = ("granted", "准予修复 / Grant", "primary")
            no = ("refused", "不予修复 / Refuse", "danger")
        return _two_choices(
            f"/workbench/appeals/{item.reference}/decision",
            csrf,
            [*base, ("kind", item.status)],
            "outcome",
            (yes, no),
            _REASONS,
        )
    if item.list == "manual" and role == "verifier" and item.reference:
        return _two_choices(
            f"/workbench/tasks/{digest}/{item.reference}",
            csrf,
            base,
            "result",
            (("passed", "通过 / Passed", "primary"), ("failed", "未通过 / Failed", "danger")),
            _NOTE,
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

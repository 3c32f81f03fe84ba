"""The workbench's pages as HTML text: sign-in, today, the checks list, the tokens.

Each takes what it shows and the session's CSRF token, and returns the whole page.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from api.service.record_page import bilingual, e, label
from api.service.tokens import TokenListing
from api.service.workbench.layout import beijing, page, post_form, table
from api.service.workbench.today import TodayFigures
from ledger import hex32
from verifier.records import TaskRow

DONE = {
    "decided": "已作出决定 / Decided",
    "confirmed": "已确认失信并公示 / The breach is confirmed and published",
    "dismissed": "已撤销拟认定 / The proposed breach is dismissed",
    "objection": "异议已决定 / The objection is decided",
    "repair": "信用修复申请已决定 / The repair application is decided",
    "checked": "核查结果已记录 / The check's result is recorded",
    "revoked": "令牌已吊销 / The token is revoked",
    "rotated": "令牌已轮换 / The token is rotated",
}
_TASK_KIND = {
    "document_review": "材料审查 / Document review",
    "on_site_check": "现场核查 / On-site check",
    "assistance_request": "协查请求 / Assistance request",
}


def commitment_link(digest: bytes) -> str:
    """A link to the commitment's page, its hash shortened."""
    text = hex32(digest)
    return f'<a href="/workbench/commitments/{e(text)}"><code>{e(text[:12])}…</code></a>'


def render_sign_in(*, error: str | None = None) -> str:
    """The sign-in form: a department's or a supervisor's token."""
    body = (
        "<p>"
        + bilingual(
            "用本部门的令牌（登记员或核查员）或改革办的监督令牌登录。令牌只用于换取会话，"
            "不会保存在浏览器中；会话 8 小时后或闲置 30 分钟后结束。",
            "Sign in with your department's token (a registrar's or a verifier's) or the "
            "reform office's supervisor token. The token is exchanged for a session and not "
            "kept in the browser; the session ends after 8 hours, or 30 minutes idle.",
        )
        + "</p>"
        '<form class="stack" method="post" action="/workbench/sign-in">'
        f"<label><span>{label('令牌 / Token')}</span>"
        '<input type="password" name="token" required maxlength="100" autocomplete="off"'
        ' spellcheck="false"></label>'
        f'<button type="submit" class="primary">{label("登录 / Sign in")}</button></form>'
    )
    return page("登录 / Sign in", body, error=error)


def _received_rows(figures: TodayFigures) -> str:
    rows = [
        (
            "",
            [
                commitment_link(r.hash),
                e(r.code),
                e(r.matter_code),
                e(r.department),
                e(beijing(r.received_at)),
            ],
        )
        for r in figures.received
    ]
    return table(
        [
            "承诺 / Commitment",
            "编号 / Code",
            "事项 / Matter",
            "部门 / Department",
            "收到 / Received",
        ],
        rows,
    )


def task_rows(tasks: Sequence[TaskRow], on: date, csrf: str | None) -> str:
    """Checks as table rows; those past due marked late; with result forms given `csrf`."""
    headings = [
        "承诺 / Commitment",
        "类型 / Kind",
        "说明 / What to check",
        "期限 / Due",
        "状态 / Status",
    ]
    if csrf is not None:
        headings.append("操作 / Action")
    rows = []
    for task in tasks:
        late = task.status == "open" and task.due_on < on
        status = (
            f'<span class="late-mark">{label("已逾期 / Late")}</span>'
            if late
            else label("待办 / Open" if task.status == "open" else "已完成 / Done")
        )
        cells = [
            commitment_link(task.commitment_hash),
            label(_TASK_KIND.get(task.kind, task.kind)),
            e(task.description),
            e(task.due_on.isoformat()),
            status,
        ]
        if csrf is not None:
            action = f"/workbench/tasks/{hex32(task.commitment_hash)}/{task.key}"
            note = (
                f'<input name="note" required maxlength="2000" aria-label="note / 核查说明"'
                f' placeholder="{e("核查说明 / What was checked")}">'
            )
            cells.append(
                post_form(
                    action,
                    csrf,
                    "通过 / Passed",
                    fields=[("result", "passed")],
                    inputs=note,
                    button_class="primary",
                )
                + post_form(
                    action,
                    csrf,
                    "未通过 / Failed",
                    fields=[("result", "failed")],
                    inputs=note,
                    button_class="danger",
                )
            )
        rows.append(("late" if late else "", cells))
    return table(headings, rows)


def render_today(
    figures: TodayFigures,
    *,
    who: tuple[str, str],
    csrf: str,
    decisions: str = "",
    message: str | None = None,
) -> str:
    """Today: cards with the day's figures, then the lists behind them; `decisions` is the
    HTML of the decisions due today and late (from the awaiting-decision list)."""
    cards = (
        '<section class="cards">'
        f'<div class="card"><div>{label("今日收到的承诺 / Received today")}</div>'
        f'<div class="figure" id="received-today">{figures.received_count}</div></div>'
        f'<div class="card{" alert" if figures.checks_due_count else ""}">'
        f"<div>{label('今日到期的核查 / Checks due by today')}</div>"
        f'<div class="figure" id="checks-due">{figures.checks_due_count}</div></div>'
        "</section>"
    )
    body = (
        f"<p>{bilingual(f'北京时间 {figures.day.isoformat()}', f'Beijing day {figures.day}')}</p>"
        + cards
        + decisions
        + f"<h2>{label('今日收到的承诺 / Commitments received today')}</h2>"
        + _received_rows(figures)
    )
    if figures.department is not None:
        body += f"<h2>{label('今日到期的核查 / Checks due by today')}</h2>" + task_rows(
            figures.checks_due, figures.day, None
        )
    return page(
        "今日 / Today", body, current="/workbench/today", who=who, csrf=csrf, message=message
    )


def render_tasks(
    tasks: Sequence[TaskRow],
    total: int,
    *,
    on: date,
    who: tuple[str, str],
    csrf: str,
    message: str | None = None,
) -> str:
    """The department's open checks, earliest due first, each with its result forms."""
    body = (
        "<p>"
        + bilingual(f"共 {total} 项待办核查", f"{total} open checks")
        + "</p>"
        + task_rows(tasks, on, csrf)
    )
    return page(
        "核查任务 / Checks",
        body,
        current="/workbench/tasks",
        who=who,
        csrf=csrf,
        message=message,
    )


def render_tokens(
    tokens: Sequence[TokenListing],
    *,
    who: tuple[str, str],
    csrf: str,
    issued: str | None = None,
    message: str | None = None,
) -> str:
    """The department's own tokens, each live one with revoke and rotate; a rotated token's
    new value shown once (`issued`)."""
    shown = ""
    if issued is not None:
        shown = (
            '<div class="message" role="status"><p>'
            + bilingual(
                "新令牌只显示这一次，请立即妥善保存：",
                "The new token is shown this once: keep it safe now:",
            )
            + f'</p><p><code id="new-token">{e(issued)}</code></p></div>'
        )
    rows = []
    for token in tokens:
        live = token.revoked_at is None
        state = (
            label("有效 / Live")
            if live
            else f"{label('已吊销 / Revoked')} {e(beijing(token.revoked_at))}"
        )
        actions = ""
        if live:
            base = f"/workbench/tokens/{token.token_id}"
            actions = post_form(f"{base}/rotate", csrf, "轮换 / Rotate") + post_form(
                f"{base}/revoke", csrf, "吊销 / Revoke", button_class="danger"
            )
        rows.append(
            (
                "",
                [
                    f"<code>{e(token.token_id)}</code>",
                    e(token.role),
                    e(beijing(token.issued_at)),
                    e(beijing(token.expires_at)) or label("吊销前有效 / Until revoked"),
                    state,
                    actions,
                ],
            )
        )
    body = (
        shown
        + "<p>"
        + bilingual(
            "本部门的令牌（只显示编号，不显示令牌本身）。吊销或轮换后，用旧令牌登录的会话立即结束。",
            "Your department's tokens (their ids, never the tokens). Revoking or rotating one "
            "ends at once every session signed in with it.",
        )
        + "</p>"
        + table(
            [
                "编号 / Id",
                "角色 / Role",
                "签发 / Issued",
                "到期 / Expires",
                "状态 / State",
                "操作 / Action",
            ],
            rows,
        )
    )
    return page(
        "令牌 / Tokens",
        body,
        current="/workbench/tokens",
        who=who,
        csrf=csrf,
        message=message,
    )

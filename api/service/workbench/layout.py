"""The workbench's page shell: head, the signed-in bar with its sign-out form, the
navigation, a message line, the stylesheet; and the small pieces every page uses (a table,
a form with its CSRF token, times in Beijing time).

Chinese first, English beside it in `lang="en"`; every value escaped; no script, no inline
style (the CSP allows neither), so every page works without JavaScript.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone

from api.service.record_page import bilingual, e, label

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
CSS_PATH = "/assets/workbench.css"

WORKBENCH_CSS = """\
body { font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 0; color: #1b1b1b;
       line-height: 1.45; background: #f6f7f9; }
header { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center;
         justify-content: space-between; background: #12355b; color: #fff; padding: .5rem 1rem; }
header a { color: #fff; }
header form { margin: 0; }
nav.main { display: flex; flex-wrap: wrap; gap: .25rem; padding: .5rem 1rem;
           background: #e4e9f0; }
nav.main a { padding: .2rem .6rem; border-radius: .25rem; color: #12355b;
             text-decoration: none; background: #fff; font-size: .9rem; }
nav.main a[aria-current="page"] { background: #12355b; color: #fff; }
main { padding: 1rem; max-width: 80rem; margin: 0 auto; }
h1 { font-size: 1.4rem; margin: .25rem 0 1rem; }
h2 { font-size: 1.15rem; margin-top: 1.5rem; }
section.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(12rem, 1fr));
                gap: .75rem; }
.card { background: #fff; border: 1px solid #d4d9e0; border-radius: .3rem; padding: .6rem .8rem; }
.card .figure { font-size: 1.8rem; font-weight: 700; }
.card.alert { border-color: #b00020; background: #fff1f2; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { border: 1px solid #d4d9e0; padding: .3rem .5rem; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; }
th { background: #eef1f5; font-weight: 600; }
tr.late td { background: #fff1f2; }
.late-mark { color: #b00020; font-weight: 700; }
.ok-mark { color: #1b6e2a; }
form.inline { display: inline-flex; flex-wrap: wrap; gap: .25rem; margin: 0 .25rem .25rem 0; }
form.stack { display: grid; gap: .5rem; max-width: 28rem; }
input, select, textarea, button { font: inherit; padding: .25rem .4rem; }
button { cursor: pointer; border: 1px solid #12355b; background: #fff; color: #12355b;
         border-radius: .25rem; }
button.primary { background: #12355b; color: #fff; }
button.danger { border-color: #b00020; color: #b00020; }
.message { border-left: 4px solid #1b6e2a; background: #eefaf0; padding: .4rem .8rem; }
.error { border-left: 4px solid #b00020; background: #fff1f2; padding: .4rem .8rem; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dt { font-weight: 600; } dd { margin: 0; overflow-wrap: anywhere; }
code { font-family: ui-monospace, monospace; font-size: .85rem; overflow-wrap: anywhere; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 30rem), 1fr));
          gap: 1rem; }
figure { margin: 0 0 1rem; background: #fff; border: 1px solid #d4d9e0; padding: .5rem; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { font-size: .9rem; margin-bottom: .25rem; }
.filters { display: flex; flex-wrap: wrap; gap: .5rem; align-items: end; margin-bottom: .75rem; }
.filters label { display: flex; flex-direction: column; font-size: .85rem; }
.pager { display: flex; gap: 1rem; margin: .5rem 0; }
/* A phone's width: each row a block, each cell its own line with its heading above. */
@media (max-width: 640px) {
  main { padding: .5rem; }
  table.rows, table.rows tbody, table.rows tr, table.rows td { display: block; }
  table.rows thead { display: none; }
  table.rows tr { border: 1px solid #d4d9e0; margin-bottom: .5rem; background: #fff; }
  table.rows td { border: 0; padding: .15rem .5rem; }
  table.rows td::before { content: attr(data-label); display: block; font-size: .75rem;
                          color: #555; }
  dl { display: block; } dt { margin-top: .4rem; }
}
"""

# (path, label, who sees it): "any" signed-in role, or only "department" or "supervisor".
NAVIGATION: tuple[tuple[str, str, str], ...] = (
    ("/workbench/today", "今日 / Today", "any"),
    ("/workbench/lists/awaiting-decision", "待决定 / Awaiting decision", "department"),
    ("/workbench/lists/rectification", "待整改 / Rectification", "department"),
    ("/workbench/lists/defence", "陈述申辩 / Defence", "department"),
    ("/workbench/lists/appeals", "异议与修复 / Appeals", "department"),
    ("/workbench/lists/manual", "人工核查 / Manual", "department"),
    ("/workbench/lists/refused", "合约拒绝 / Refused", "department"),
    ("/workbench/lists/overdue", "核查逾期 / Overdue", "department"),
    ("/workbench/tasks", "核查任务 / Checks", "department"),
    ("/workbench/charts", "图表 / Charts", "any"),
    ("/workbench/compare", "部门对比 / Compare", "supervisor"),
    ("/workbench/tokens", "令牌 / Tokens", "department"),
)


def beijing(seconds: float | None) -> str:
    """A Unix time as Beijing time, to the minute ("" for None)."""
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, UTC).astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def beijing_dt(moment: datetime | None) -> str:
    """A datetime as Beijing time, to the minute ("" for None)."""
    return "" if moment is None else moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


def csrf_field(csrf: str) -> str:
    """The hidden field that carries the session's CSRF token."""
    return f'<input type="hidden" name="csrf" value="{e(csrf)}">'


def post_form(
    action: str,
    csrf: str,
    button: str,
    *,
    fields: Sequence[tuple[str, str]] = (),
    inputs: str = "",
    css: str = "inline",
    button_class: str = "",
) -> str:
    """A POST form to `action` with the CSRF token, hidden `fields`, extra `inputs` HTML and
    a submit button labelled `button` ("中文 / English")."""
    hidden = "".join(
        f'<input type="hidden" name="{e(name)}" value="{e(value)}">' for name, value in fields
    )
    kind = f' class="{e(button_class)}"' if button_class else ""
    return (
        f'<form class="{e(css)}" method="post" action="{e(action)}">{csrf_field(csrf)}'
        f'{hidden}{inputs}<button type="submit"{kind}>{label(button)}</button></form>'
    )


def table(headings: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]]) -> str:
    """A table of (row class, cells HTML) under bilingual `headings`; on a phone each row
    is a block, each cell labelled by its heading."""
    head = "".join(f"<th>{label(h)}</th>" for h in headings)
    body = []
    for css, cells in rows:
        tds = "".join(
            f'<td data-label="{e(h)}">{cell}</td>' for h, cell in zip(headings, cells, strict=True)
        )
        body.append(f'<tr class="{e(css)}">{tds}</tr>' if css else f"<tr>{tds}</tr>")
    if not body:
        return f"<p>{bilingual('没有条目', 'Nothing here')}</p>"
    rows_html = "".join(body)
    return f'<table class="rows"><thead><tr>{head}</tr></thead><tbody>{rows_html}</tbody></table>'


def _sees(role: str, audience: str) -> bool:
    if audience == "any":
        return True
    return (role == "supervisor") == (audience == "supervisor")


def page(
    title: str,
    body: str,
    *,
    current: str = "",
    who: tuple[str, str] | None = None,
    csrf: str | None = None,
    message: str | None = None,
    error: str | None = None,
) -> str:
    """A whole page: `title` ("中文 / English"), `body` HTML, the navigation with `current`
    marked; `who` (department, role) and `csrf` when signed in; a `message` or `error`
    ("中文 / English" or plain text) on top."""
    zh, _, en = title.partition(" / ")
    bar = f"<strong>{bilingual('承诺工作台', 'Commitment workbench')}</strong>"
    nav = ""
    if who is not None and csrf is not None:
        department, role = who
        bar += f'<span class="who">{e(department)} · {e(role)}</span>' + post_form(
            "/workbench/sign-out", csrf, "退出 / Sign out"
        )
        links = "".join(
            f'<a href="{path}"'
            + (' aria-current="page"' if path == current else "")
            + f">{label(text)}</a>"
            for path, text, audience in NAVIGATION
            if _sees(role, audience)
        )
        nav = f'<nav class="main">{links}</nav>'
    notes = ""
    if message:
        notes += f'<p class="message" role="status">{label(message)}</p>'
    if error:
        notes += f'<p class="error" role="alert">{label(error)}</p>'
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="zh-CN"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{e(zh)}{' / ' + e(en) if en else ''} · 承诺工作台</title>",
            f'<link rel="stylesheet" href="{CSS_PATH}"></head><body>',
            f"<header>{bar}</header>",
            nav,
            f"<main><h1>{label(title)}</h1>{notes}{body}</main>",
            "</body></html>",
        ]
    )

"""The public lookup page, rendered on the server: a search form and the records found.

Every value is escaped with html.escape; no script is used or needed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from html import escape
from urllib.parse import urlencode

from api.service.dev_chain import WARNING_EN, WARNING_ZH
from api.service.record_page import bilingual, label, objection_mark
from verifier import BreachRecord
from verifier.records import BreachPage

LOOKUP_CSS = """\
body { font-family: system-ui, "Noto Sans CJK SC", sans-serif; margin: 0 auto;
       max-width: 60rem; padding: 1rem; color: #1b1b1b; line-height: 1.5; }
h1 { font-size: 1.5rem; }
form { display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr));
       gap: .5rem 1rem; margin-bottom: 1rem; }
label { display: flex; flex-direction: column; font-size: .9rem; }
input { font: inherit; padding: .25rem; }
button { font: inherit; padding: .4rem 1rem; align-self: end; }
article { border: 1px solid #ccc; border-radius: .25rem; padding: .5rem 1rem; margin: 1rem 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; overflow-wrap: anywhere; }
code, pre { font-family: ui-monospace, monospace; font-size: .85rem; overflow-wrap: anywhere; }
pre { white-space: pre-wrap; background: #f4f4f4; padding: .5rem; }
.error { color: #a00; font-weight: 600; }
.dev-chain { border: 2px solid #a00; background: #fff4f4; padding: .5rem 1rem; }
.objection { border-left: 4px solid #b36b00; background: #fff8e6; padding: .25rem .75rem; }
nav a { margin-right: 1rem; }
details { margin: .5rem 0; }
summary { cursor: pointer; }
/* A phone's width: labels above their values, so values keep the whole line. */
@media (max-width: 600px) {
  body { padding: .5rem; }
  dl { display: block; }
  dt { margin-top: .5rem; }
  article { padding: .5rem; }
}
"""

_FIELDS = (
    ("name", "名称 / Name", "text"),
    ("credit_code", "统一社会信用代码或证件号 / Credit code or ID", "text"),
    ("matter", "事项名称或编码 / Matter (name or code)", "text"),
    ("department", "部门名称或编码 / Department (name or code)", "text"),
    ("decided_from", "决定日期自 / Decided from", "date"),
    ("decided_to", "决定日期至 / Decided to", "date"),
)
_EXPLAINED = "这条记录说明了什么、如何核验 / This record explained, and how to check it"
_SEVERITY = {"minor": "轻微 / minor", "general": "一般 / general", "serious": "严重 / serious"}
_PARTY = {"person": "自然人 / person", "organisation": "法人或组织 / organisation"}


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _form(form: Mapping[str, str]) -> str:
    inputs = "".join(
        f'<label><span>{label(text)}</span><input type="{kind}" name="{name}"'
        f' value="{_e(form.get(name, ""))}" maxlength="100"></label>'
        for name, text, kind in _FIELDS
    )
    return (
        '<form method="get" action="/" role="search">'
        f'{inputs}<button type="submit">{label("查询 / Search")}</button></form>'
    )


def _rpc_call(transaction: str) -> str:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_getTransactionReceipt",
            "params": [transaction],
        }
    )


def _record(
    record: BreachRecord,
    base_url: str,
    rpc_url: str | None,
    objection: tuple[date, date] | None = None,
) -> str:
    evidence = record.evidence
    # Without a public node configured: say which chain's nodes can answer.
    rpc_url = rpc_url or f"<URL-OF-ANY-NODE-OF-CHAIN-{evidence.chain_id}>"
    rows = [
        ("名称 / Name", record.party_name),
        ("代码 / Code", record.party_code),
        ("主体类型 / Party", _PARTY.get(record.party_kind, record.party_kind)),
        ("事项 / Matter", f"{record.matter_name} ({record.matter_code})"),
        ("部门 / Department", f"{record.department_name} ({record.department})"),
        ("失信事实 / Facts", record.facts),
        ("处理决定 / Decision", record.decision),
        ("文书编号 / Document number", record.document_number),
        ("依据 / Legal basis", record.legal_basis),
        ("严重程度 / Severity", _SEVERITY.get(record.severity, record.severity)),
        ("决定日期 / Decided on", record.decision_date.isoformat()),
        ("公示截止 / Published until", record.publication_end.isoformat()),
        ("记录编号 / Record id", record.id),
    ]
    chain_rows = [
        ("链 ID / Chain id", str(evidence.chain_id)),
        ("合约 / Contract", evidence.contract),
        ("交易 / Transaction", evidence.transaction),
        ("区块 / Block", str(evidence.block)),
        ("承诺哈希 / Commitment hash", evidence.commitment_hash),
    ]
    proof_url = f"{base_url}/v1/audit/commitments/{evidence.commitment_hash}/proof"
    check = (
        f"# 1. 锚定证明 / The anchoring proof, checked against any node of chain "
        f"{evidence.chain_id}:\n"
        f"curl -s {proof_url} > proof.json\n"
        f"commitledger verify-proof proof.json --rpc {rpc_url}\n\n"
        f"# 2. 失信记录交易 / The breach transaction: its receipt holds a BreachRecorded\n"
        f"#    event of contract {evidence.contract} in block {evidence.block}:\n"
        f"curl -s -X POST -H 'Content-Type: application/json' \\\n"
        f"  --data '{_rpc_call(evidence.transaction)}' {rpc_url}"
    )
    page = f"/records/{_e(record.id)}"
    return (
        f'<article id="{_e(record.id)}"><h2><a href="{page}">{_e(record.party_name)}</a></h2>'
        + ("" if objection is None else objection_mark(*objection))
        + f'<p><a href="{page}">{label(_EXPLAINED)}</a></p>'
        + _dl(rows)
        + f"<details><summary>{label('链上证据 / On-chain evidence')}</summary>"
        + _dl(chain_rows, code=True)
        + f"<h3>{label('如何独立核验 / How to check it yourself')}</h3>"
        + f"<pre><code>{_e(check)}</code></pre></details></article>"
    )


def _dl(rows: list[tuple[str, str]], code: bool = False) -> str:
    def cell(value: str) -> str:
        return f"<code>{_e(value)}</code>" if code else _e(value)

    return "<dl>" + "".join(f"<dt>{label(k)}</dt><dd>{cell(v)}</dd>" for k, v in rows) + "</dl>"


def _pages(form: Mapping[str, str], found: BreachPage) -> str:
    last = max(1, -(-found.total // found.page_size))
    links = []
    for text, number in (("上一页 / Previous", found.page - 1), ("下一页 / Next", found.page + 1)):
        if 1 <= number <= last:
            query = urlencode(
                {
                    **{k: v for k, v in form.items() if v},
                    "page": number,
                    "page_size": found.page_size,
                }
            )
            links.append(f'<a href="/?{_e(query)}">{label(text)}</a>')
    position = f'第 {found.page} / {last} 页 · <span lang="en">page {found.page} of {last}</span>'
    return f"<nav>{''.join(links)}<span>{position}</span></nav>"


def render_lookup_page(
    *,
    form: Mapping[str, str],
    found: BreachPage | None,
    error: str | None,
    on: date,
    base_url: str | None,
    rpc_url: str | None,
    development_chain: bool = False,
    objections: Mapping[str, tuple[date, date]] | None = None,
) -> str:
    """The whole page as HTML text; `base_url` is the service's configured public URL
    (never the request's Host header, which a client chooses and a cache may keep);
    `development_chain` puts the warning that the chain's history can be rewritten on top;
    `objections`: record id -> (filed on, decide by) of the records under objection."""
    marks = objections or {}
    parts = [
        "<!doctype html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>失信记录查询 / Breach record lookup</title>",
        '<link rel="stylesheet" href="/assets/lookup.css"></head><body>',
        f"<h1>{label('失信记录查询 / Breach record lookup')}</h1>",
        (
            f'<p class="dev-chain" role="alert">{bilingual(WARNING_ZH, WARNING_EN)}</p>'
            if development_chain
            else ""
        ),
        "<p>"
        + label(
            "告知承诺制失信记录，每条均附链上证据，可不经本站独立核验。"
            " / Breaches of notification commitments, each with its on-chain evidence, "
            "which anyone can check without this site."
        )
        + '</p><p><a href="/docs">'
        + label("接口文档 / API documentation")
        + "</a></p>",
        _form(form),
    ]
    if error is not None:
        parts.append(f'<p class="error" role="alert">{label(error)}</p>')
    elif found is not None:
        total = f"{found.total}+" if found.total_capped else str(found.total)
        parts.append(
            "<p>"
            + label(
                f"{on.isoformat()} 公示中的记录：{total} 条 / Records published on {on}: {total}"
            )
            + "</p>"
        )
        if not found.records:
            parts.append(f"<p>{label('未找到记录 / No records found')}</p>")
        service = base_url or "<SERVICE-URL>"
        parts.extend(
            _record(record, service, rpc_url, marks.get(record.id)) for record in found.records
        )
        parts.append(_pages(form, found))
    parts.append("</body></html>")
    return "\n".join(parts)

"""One breach record's page, /records/{id}, rendered on the server for citizens: what was
recorded, when, by whom, where anyone can check it, how to object or apply for repair.

Chinese first, English beside it in `lang="en"`; every value escaped; no script.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from html import escape

from api.service.context import ChainLink
from api.service.dev_chain import WARNING_EN, WARNING_ZH
from verifier import BreachRecord, earliest_repair


def e(value: object) -> str:
    """`value` escaped for HTML text and attributes."""
    return escape(str(value), quote=True)


def bilingual(zh: str, en: str) -> str:
    """Chinese text, then its English in an element saying so (`lang="en"`); both escaped."""
    return f'{e(zh)} / <span lang="en">{e(en)}</span>'


def label(text: str) -> str:
    """A "中文 / English" label as `bilingual` HTML (a label without " / " as is)."""
    zh, _, en = text.partition(" / ")
    return bilingual(zh, en) if en else e(text)


OBJECTION_MARK_ZH = "异议处理中"
OBJECTION_MARK_EN = "Under objection"


def objection_mark(filed_on: date, decide_by: date) -> str:
    """The mark of a record under objection (异议处理中), as HTML: a paragraph saying so."""
    text = bilingual(
        f"{OBJECTION_MARK_ZH}：当事人于 {filed_on.isoformat()} 对本记录提出异议，"
        f"部门应于 {decide_by.isoformat()} 前作出决定。",
        f"{OBJECTION_MARK_EN}: the party objected to this record on {filed_on.isoformat()}; "
        f"the department decides by {decide_by.isoformat()}.",
    )
    return f'<p class="objection" role="status">{text}</p>'


def block_time_text(timestamp: int | None) -> tuple[str, str]:
    """The block's time in words, Chinese and English (UTC), or why it is not shown."""
    if timestamp is None:
        return ("链节点暂时无法应答，区块时间暂不可查", "the chain's node is not answering now")
    moment = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return (f"{moment}（UTC，协调世界时）", f"{moment} UTC")


# Blocks' times by (chain id, number): a block's time does not change once it is deep enough.
_block_times: dict[tuple[int, int], int] = {}


def block_time(chain: ChainLink, record: BreachRecord) -> int | None:
    """The UNIX time of the record's block, from the node; None when it cannot say now."""
    evidence = record.evidence
    key = (evidence.chain_id, evidence.block)
    if key in _block_times:
        return _block_times[key]
    deployment = chain.deployment
    if deployment is None or deployment.chain_id != evidence.chain_id:
        return None
    found = chain.read(
        lambda ledger: int(ledger.chain.w3.eth.get_block(evidence.block)["timestamp"])
    )
    if isinstance(found, int):
        if len(_block_times) >= 10_000:
            _block_times.clear()
        _block_times[key] = found
        return found
    return None


def _dl(rows: list[tuple[str, str]]) -> str:
    """Rows of (label HTML, value HTML)."""
    return "<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _where_to_check(
    record: BreachRecord, rpc_url: str | None, explorer_url: str | None, base_url: str | None
) -> str:
    evidence = record.evidence
    items = []
    if explorer_url:
        link = explorer_url.replace("{tx}", evidence.transaction)
        items.append(
            f'<li><a href="{e(link)}" rel="noopener noreferrer">'
            + bilingual("在区块浏览器中查看这笔交易", "See this transaction in a block explorer")
            + "</a></li>"
        )
    if rpc_url:
        items.append(
            "<li>"
            + bilingual("任何人都可向这个公共区块链节点查询：", "Anyone may ask this public node: ")
            + f"<code>{e(rpc_url)}</code></li>"
        )
    else:
        items.append(
            "<li>"
            + bilingual(
                f"任何一个链 ID 为 {evidence.chain_id} 的区块链节点都可查询（本站未配置公共节点）",
                f"Any node of the chain with id {evidence.chain_id} can answer "
                "(this site names no public node)",
            )
            + "</li>"
        )
    proof = f"{base_url or ''}/v1/audit/commitments/{evidence.commitment_hash}/proof"
    items.append(
        f'<li><a href="{e(proof)}">'
        + bilingual("下载锚定证明（JSON，供核验软件使用）", "Download the anchoring proof (JSON)")
        + "</a></li>"
    )
    return "<ul>" + "".join(items) + "</ul>"


def render_record_page(
    record: BreachRecord,
    *,
    block_time: int | None,
    rpc_url: str | None,
    explorer_url: str | None,
    base_url: str | None,
    development_chain: bool = False,
    under_objection: tuple[date, date] | None = None,
) -> str:
    """The record's page as HTML text; `block_time` is the block's UNIX time, if known;
    `development_chain` warns that this chain's history can be rewritten (the page's
    "nobody can change it unseen" does not hold there); `under_objection`: (filed on,
    decide by) of the objection it is under, marked on top."""

    evidence = record.evidence
    when_zh, when_en = block_time_text(block_time)
    what = bilingual(
        f"{record.department_name}于 {record.decision_date.isoformat()} 认定："
        f"{record.party_name}（{record.party_code}）办理“{record.matter_name}”时作出的"
        "告知承诺与核查结果不符，并据此作出处理决定。",
        f"On {record.decision_date.isoformat()}, {record.department_name} "
        f"(department {record.department}) found that the commitment {record.party_name} "
        f"({record.party_code}) made when applying for {record.matter_name} "
        f"(matter {record.matter_code}) did not match what was checked, and decided as below.",
    )
    details = _dl(
        [
            (label("失信事实 / Facts"), e(record.facts)),
            (label("处理决定 / Decision"), e(record.decision)),
            (label("文书编号 / Document number"), e(record.document_number)),
            (label("依据 / Legal basis"), e(record.legal_basis)),
            (label("公示截止 / Published until"), e(record.publication_end.isoformat())),
        ]
    )
    chain = _dl(
        [
            (label("写入时间 / Written at"), bilingual(when_zh, when_en)),
            (label("区块 / Block"), f"<code>{e(evidence.block)}</code>"),
            (label("交易 / Transaction"), f"<code>{e(evidence.transaction)}</code>"),
            (label("合约 / Contract"), f"<code>{e(evidence.contract)}</code>"),
            (label("链 ID / Chain id"), f"<code>{e(evidence.chain_id)}</code>"),
            (label("承诺哈希 / Commitment hash"), f"<code>{e(evidence.commitment_hash)}</code>"),
        ]
    )
    repair_from = earliest_repair(record).isoformat()
    objection = bilingual(
        f"对本记录有异议的，可在“本人查询”页面（/applicant，用签署承诺的密钥证明身份）提出，"
        f"或向{record.department_name}提出并注明文书编号 {record.document_number}；"
        "异议处理期间本记录标注“异议处理中”。已纠正失信行为的，"
        f"自 {repair_from} 起可申请信用修复；修复后记录即停止公示。",
        "To object to this record, use the applicant's page (/applicant, proving the key "
        f"that signed the commitment) or write to {record.department_name} quoting document "
        f"number {record.document_number}; while the objection is handled the record is "
        "marked as under objection. Once the breach is put right, you may apply for credit "
        f"repair from {repair_from}; a repaired record is no longer published.",
    )
    parts = [
        "<!doctype html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>失信记录 {e(record.id)} / Breach record</title>",
        '<link rel="stylesheet" href="/assets/lookup.css"></head><body>',
        f'<nav><a href="/">{bilingual("返回查询", "Back to the search")}</a></nav>',
        f"<h1>{e(record.party_name)}</h1>",
        "" if under_objection is None else objection_mark(*under_objection),
        (
            f'<p class="dev-chain" role="alert">{bilingual(WARNING_ZH, WARNING_EN)}</p>'
            if development_chain
            else ""
        ),
        f"<h2>{bilingual('记录了什么', 'What was recorded')}</h2><p>{what}</p>",
        details,
        f"<h2>{bilingual('何时、由谁记录', 'When, and by whom')}</h2>",
        "<p>"
        + bilingual(
            f"该记录由{record.department_name}写入区块链，写入时间为 {when_zh}。"
            "写入后任何人（包括本站）都无法悄悄修改或删除它。",
            f"{record.department_name} wrote this record to a blockchain at {when_en}. "
            "Once written, nobody (this site included) can change or remove it unseen.",
        )
        + "</p>",
        f"<h2>{bilingual('在哪里自行核验', 'Where anyone can check it')}</h2>",
        _where_to_check(record, rpc_url, explorer_url, base_url),
        "<details><summary>"
        + bilingual("链上证据明细", "The on-chain evidence in detail")
        + "</summary>"
        + chain
        + "</details>",
        f"<h2>{bilingual('异议与信用修复', 'Objecting, and credit repair')}</h2>",
        f"<p>{objection}</p>",
        "</body></html>",
    ]
    return "\n".join(parts)

"""The page of a corrected breach record, /records/{id} once it left the list: that it was
corrected, where on chain, and, for a correction by the contract's multi-signature admin,
which of the Safe's owners approved it, read from the chain alone.

A corrected record is no longer published (it may have named the wrong person), so the page
names neither the party nor their code: only the record's id, department and matter, the
correction's transaction and the owners' accounts (offices, not persons). It stays a 404:
no such record is published.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.service.context import ChainLink
from api.service.dev_chain import WARNING_EN, WARNING_ZH
from api.service.record_page import bilingual, block_time_text, e, label
from ledger import (
    LedgerContract,
    SafeError,
    Status,
    decode_admin_call,
    department_id,
    safe_execution_in,
    to_hash32,
)
from verifier import BreachRecord


@dataclass(frozen=True)
class CorrectionOnChain:
    """Where the chain recorded a record's correction, and who approved it when the admin
    Safe made it (`safe` None and no approvers for a department's own correction)."""

    transaction: str
    block: int
    block_time: int | None
    safe: str | None = None
    approved_by: tuple[str, ...] = ()


# Corrections by (chain id, contract, record id): Corrected is final on chain, so a found
# one never changes.
_found: dict[tuple[int, str, str], CorrectionOnChain] = {}


def correction_on_chain(chain: ChainLink, record: BreachRecord) -> CorrectionOnChain | None:
    """The record's correction as the chain shows it; None when the node cannot say now or
    the chain holds none (a record superseded by another, say)."""
    deployment = chain.deployment
    if deployment is None or deployment.chain_id != record.evidence.chain_id:
        return None
    key = (deployment.chain_id, deployment.contract.lower(), record.id)
    if key in _found:
        return _found[key]
    found = chain.read(lambda ledger: _read(ledger, record))
    if isinstance(found, CorrectionOnChain):
        if len(_found) >= 10_000:
            _found.clear()
        _found[key] = found
        return found
    return None


def _read(ledger: LedgerContract, record: BreachRecord) -> CorrectionOnChain | None:
    department = bytes(department_id(record.department))
    commitment = to_hash32(record.evidence.commitment_hash)
    where = ledger.outcome_recorded(
        department, commitment, Status.CORRECTED, from_block=record.evidence.block
    )
    if where is None:
        return None
    transaction, block = where
    stamp = int(ledger.chain.w3.eth.get_block(block)["timestamp"])
    shown = CorrectionOnChain("0x" + transaction.hex(), block, stamp)
    execution = safe_execution_in(ledger.chain, transaction, ledger.address)
    if execution is None:
        return shown  # the department's own correction
    try:
        call = decode_admin_call(execution.tx.data)
    except SafeError:
        return shown
    if (
        call.function != "correctBreach"
        or call.department != department
        or call.commitment != commitment
    ):
        return shown
    return CorrectionOnChain(
        shown.transaction, block, stamp, execution.tx.safe, tuple(execution.approvers)
    )


def _who(record: BreachRecord, correction: CorrectionOnChain) -> str:
    if correction.safe is None:
        return (
            "<p>"
            + bilingual(
                f"该更正由{record.department_name}在区块链上记录。",
                f"{record.department_name} recorded the correction on the blockchain.",
            )
            + "</p>"
        )
    owners = "".join(f"<li><code>{e(owner)}</code></li>" for owner in correction.approved_by)
    acts = f"/v1/admin/acts?transaction={correction.transaction}"
    return (
        "<p>"
        + bilingual(
            f"该更正由合约管理员（多签账户 {correction.safe}）执行，"
            f"经以下 {len(correction.approved_by)} 个所有者批准（所有者为机构账户）：",
            f"The contract's multi-signature admin (Safe {correction.safe}) made this "
            f"correction, approved by these {len(correction.approved_by)} owners "
            "(owners are offices' accounts):",
        )
        + f'</p><ul class="approvers">{owners}</ul>'
        + f'<p><a href="{e(acts)}">'
        + bilingual(
            "链上读取的管理员操作记录（JSON）", "The admin's act as read from the chain (JSON)"
        )
        + "</a></p>"
    )


def render_correction_page(
    record: BreachRecord,
    correction: CorrectionOnChain | None,
    *,
    development_chain: bool = False,
) -> str:
    """The page of a corrected record as HTML text, without the party's name or code."""
    what = bilingual(
        f"失信记录 {record.id}（{record.department_name}，事项“{record.matter_name}”）"
        "已经更正，不再公示；当事人信息不再显示。",
        f"Breach record {record.id} ({record.department_name}, matter "
        f"{record.matter_code}) was corrected and is no longer published; the party is no "
        "longer shown.",
    )
    parts = [
        "<!doctype html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>记录已更正 {e(record.id)} / Record corrected</title>",
        '<link rel="stylesheet" href="/assets/lookup.css"></head><body>',
        f'<nav><a href="/">{bilingual("返回查询", "Back to the search")}</a></nav>',
        f"<h1>{bilingual('记录已更正', 'Record corrected')}</h1>",
        (
            f'<p class="dev-chain" role="alert">{bilingual(WARNING_ZH, WARNING_EN)}</p>'
            if development_chain
            else ""
        ),
        f'<p class="error">{bilingual("未找到公示中的该记录", "No such record is published")}</p>',
        f"<p>{what}</p>",
    ]
    if record.superseded_by is not None:
        link = f"/records/{record.superseded_by}"
        parts.append(
            f'<p><a href="{e(link)}">'
            + bilingual(
                f"已由更正后的记录 {record.superseded_by} 取代",
                f"Superseded by the corrected record {record.superseded_by}",
            )
            + "</a></p>"
        )
    if correction is not None:
        when_zh, when_en = block_time_text(correction.block_time)
        rows = [
            (label("更正时间 / Corrected at"), bilingual(when_zh, when_en)),
            (label("区块 / Block"), f"<code>{e(correction.block)}</code>"),
            (label("交易 / Transaction"), f"<code>{e(correction.transaction)}</code>"),
        ]
        parts.append(f"<h2>{bilingual('链上更正', 'The correction on chain')}</h2>")
        parts.append("<dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>")
        parts.append(_who(record, correction))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"

"""The applicant's page, /applicant, rendered on the server: sign in by signing a challenge,
then their commitments, each claim against the department's data, deadlines, notices,
breach records, and forms to file. Chinese first, English beside it; every value escaped;
no script (the CSP allows none), so it works without JavaScript.
"""

from __future__ import annotations

import json

from api.service.applicant_auth import Challenge
from api.service.applicant_filings import NOT_YET_AVAILABLE
from api.service.applicant_models import (
    MAX_FILING_CHARS,
    MAX_SIGNATURE_CHARS,
    ApplicantView,
    BreachView,
    ClaimView,
    CommitmentView,
    FilingView,
    NoticeView,
)
from api.service.record_page import bilingual, e, label
from ledger import hex32

APPLICANT_CSS = """\
.filed { border: 2px solid #080; background: #f4fff4; padding: .5rem 1rem; }
.unavailable { color: #555; font-style: italic; }
form.filing, form.proof { display: block; }
form.filing textarea, form.proof textarea, form.proof input { width: 100%;
  box-sizing: border-box; font: inherit; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: left;
  vertical-align: top; overflow-wrap: anywhere; }
.kept { color: #060; } .mismatch, .false { color: #a00; }
@media (max-width: 600px) {
  table, thead, tbody, tr, th, td { display: block; }
  thead { display: none; }
  td { border: 0; padding: .1rem 0; }
  tr { border-top: 1px solid #ccc; padding: .4rem 0; }
}
"""

_DEADLINE = {
    "verification_due": "核查截止 / Verification due",
    "rectify_by": "整改期限 / Rectify by",
    "defence_ends": "陈述申辩截止 / Defence ends",
    "publication_until": "公示截止 / Published until",
    "earliest_repair": "最早可申请信用修复 / Earliest repair",
    "decision_due": "部门作出决定期限 / The department decides by",
}
_NOTICE = {"proposed_breach": "拟认定失信告知 / Notice of a proposed breach"}
_APPEAL = {"objection": "异议 / Objection", "repair": "信用修复申请 / Repair application"}
_STATE = {
    None: "尚未核查 / not verified yet",
    "due": "待核查 / awaiting verification",
    "kept": "信守承诺 / kept",
    "mismatch": "不一致，可整改 / mismatch: may be rectified",
    "manual": "待人工核查 / awaiting a person's check",
    "breached": "失信 / breach",
    "withdrawn": "已撤回 / withdrawn",
    "integrity_failure": "文件核验未通过 / integrity check failed",
}
_VERDICT = {
    "kept": "相符 / matches",
    "mismatch": "不符 / does not match",
    "unknown": "无法判断 / could not tell",
    None: "尚未核查 / not verified yet",
}
_FILING = {
    "statement": ("提交陈述申辩", "File a statement and defence"),
    "rectification": ("提交整改材料", "File rectification evidence"),
    "objection": ("提出异议", "Object to this record"),
    "repair": ("申请信用修复", "Apply for credit repair"),
}


def _page(title: str, body: str) -> str:
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="zh-CN"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{e(title)}</title>",
            '<link rel="stylesheet" href="/assets/lookup.css">',
            '<link rel="stylesheet" href="/assets/applicant.css"></head><body>',
            f'<nav><a href="/">{bilingual("失信记录查询", "Breach search")}</a>'
            f'<a href="/applicant">{bilingual("我的承诺", "My commitments")}</a></nav>',
            body,
            "</body></html>",
        ]
    )


def render_sign_in_page(*, intake_open: bool) -> str:
    """Step one: which commitment the applicant will prove they signed."""
    if not intake_open:
        closed = bilingual(
            "本服务未配置主密钥，暂时无法查看承诺。",
            "This service holds no master key: commitments cannot be shown now.",
        )
        return _page("我的承诺 / My commitments", f'<p class="error">{closed}</p>')
    body = (
        f"<h1>{bilingual('我的承诺', 'My commitments')}</h1>"
        "<p>"
        + bilingual(
            "无需密码：用签署承诺时使用的同一把密钥签署一次性挑战，即可查看本人的承诺、"
            "核查结果、各项期限和通知，并提交陈述申辩、整改材料、异议或信用修复申请。",
            "No password: sign a one-time challenge with the same key that signed your "
            "commitment to see your commitments, how they were checked, every deadline and "
            "notice, and to file a statement, rectification evidence, an objection or a "
            "repair application.",
        )
        + "</p>"
        '<form class="proof" method="post" action="/applicant/challenge">'
        f"<label><span>{label('承诺哈希 / Commitment hash')}</span>"
        '<input name="commitment" required maxlength="66" pattern="0x[0-9a-fA-F]{64}"'
        ' autocomplete="off" spellcheck="false"></label>'
        f'<button type="submit">{label("获取挑战 / Get a challenge")}</button></form>'
        "<p>"
        + bilingual(
            "承诺哈希可用 commitledger hash commitment.json 算出。",
            "`commitledger hash commitment.json` prints the commitment hash.",
        )
        + "</p>"
    )
    return _page("我的承诺 / My commitments", body)


def render_challenge_page(challenge: Challenge, message: str, command: str) -> str:
    """Step two: the challenge, the command that signs it, and where to paste the result."""
    body = (
        f"<h1>{bilingual('签署挑战', 'Sign the challenge')}</h1>"
        "<p>"
        + bilingual(
            "请在 5 分钟内用签署该承诺的密钥签署以下内容（仅可使用一次）：",
            "Within five minutes, sign this with the key that signed the commitment "
            "(it works once):",
        )
        + f'</p><pre id="message">{e(message)}</pre>'
        f"<p>{bilingual('在本机运行：', 'On your own computer, run:')}</p>"
        f'<pre id="command">{e(command)}</pre>'
        '<form class="proof" method="post" action="/applicant/session">'
        f'<input type="hidden" name="commitment" value="{e(hex32(challenge.commitment))}">'
        f'<input type="hidden" name="challenge" value="{e(challenge.hex)}">'
        f"<label><span>{label('签名（base64） / Signature (base64)')}</span>"
        f'<textarea name="signature" rows="3" required maxlength="{MAX_SIGNATURE_CHARS}"'
        ' autocomplete="off" spellcheck="false"></textarea></label>'
        f'<button type="submit">{label("进入 / Sign in")}</button></form>'
    )
    return _page("签署挑战 / Sign the challenge", body)


def render_message_page(status: int, detail: str) -> str:
    """Why a step did not work (the problem's detail), and the way back."""
    if status == 501:
        heading = bilingual("暂不可用", "Not yet available")
    elif status == 401:
        heading = bilingual("未能证明密钥", "The key was not proven")
    else:
        heading = bilingual("未能完成", "This did not work")
    body = (
        f"<h1>{heading}</h1>"
        f'<p class="error" lang="en" id="detail">{e(detail)}</p>'
        f'<p><a href="/applicant">{bilingual("返回", "Back")}</a></p>'
    )
    return _page(f"{status} / 我的承诺", body)


def _plain(value: object) -> str:
    """A claimed or observed value as its JSON text (strings as they are)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _claims(claims: list[ClaimView]) -> str:
    head = "".join(
        f"<th>{label(t)}</th>"
        for t in (
            "承诺事项 / Claim",
            "承诺内容 / Committed",
            "核查结果 / Verdict",
            "部门数据 / Department's data",
            "数据来源与时间 / Source and time",
        )
    )
    rows = []
    for claim in claims:
        committed = claim.claimed if isinstance(claim.claimed, dict) else {}
        verdict = claim.verdict
        source = ""
        if claim.source:
            when = claim.answered_at.strftime("%Y-%m-%d %H:%M:%S UTC") if claim.answered_at else ""
            source = f"{e(claim.source)}<br>{e(when)}"
            if claim.data_hash:
                source += f"<br><code>{e(claim.data_hash)}</code>"
            if claim.data_key_id:
                signed = bilingual("部门已签名", "signed by the department")
                source += (
                    f'<br><span class="signed">{signed}: <code>{e(claim.data_key_id)}</code></span>'
                )
        rows.append(
            "<tr>"
            f"<td><code>{e(claim.key)}</code></td>"
            f"<td>{e(committed.get('op', ''))} {e(_plain(committed.get('value', '')))}</td>"
            f'<td class="{e(verdict or "")}">{label(_VERDICT.get(verdict, str(verdict)))}</td>'
            f"<td>{e('' if claim.observed is None else _plain(claim.observed))}"
            f"{'<br>' + e(claim.detail) if claim.detail else ''}</td>"
            f"<td>{source}</td></tr>"
        )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _deadlines(view: CommitmentView) -> str:
    if not view.deadlines:
        return ""
    items = "".join(
        f'<li class="deadline" data-kind="{e(d.kind)}">{label(_DEADLINE[d.kind])}: '
        f"<time>{e(d.day.isoformat())}</time>"
        + (f" ({bilingual('暂定', 'provisional')})" if d.provisional else "")
        + (f" <code>{e(d.breach_id)}</code>" if d.breach_id else "")
        + "</li>"
        for d in view.deadlines
    )
    return f"<h3>{bilingual('期限', 'Deadlines')}</h3><ul>{items}</ul>"


def _notice(notice: NoticeView) -> str:
    parts = [f"{label(_NOTICE.get(notice.kind, notice.kind))} <code>{e(notice.id)}</code>"]
    if notice.issued_on:
        parts.append(f"{bilingual('发出', 'issued')} {e(notice.issued_on.isoformat())}")
    if notice.delivered_on:
        parts.append(f"{bilingual('送达', 'delivered')} {e(notice.delivered_on.isoformat())}")
    if notice.state:
        parts.append(f"({e(notice.state)})")
    if notice.hash:
        parts.append(f"<br><code>{e(notice.hash)}</code>")
    if notice.statements:
        count = len(notice.statements)
        parts.append("<br>" + bilingual(f"已提交陈述申辩 {count} 份", f"statements filed: {count}"))
    return '<li class="notice">' + " ".join(parts) + "</li>"


def _notices(view: CommitmentView) -> str:
    if not view.notices:
        body = f"<p>{bilingual('暂无通知', 'No notice has been sent')}</p>"
    else:
        body = "<ul>" + "".join(_notice(n) for n in view.notices) + "</ul>"
    return f"<h3>{bilingual('通知', 'Notices')}</h3>{body}"


_RECTIFICATION_STATE = {
    "open": "待决定 / awaiting the decision",
    "accepted": "已采纳，视为履约 / accepted: kept",
    "rejected": "未采纳 / rejected",
}


def _rectifications(view: CommitmentView) -> str:
    """The rectification evidence filed, each with where it stands (its text stays sealed)."""
    if not view.rectifications:
        return ""
    items = "".join(
        f'<li class="rectification" data-state="{e(r.state)}"><code>{e(r.id)}</code> '
        f"{bilingual('提交', 'filed')} {e(r.filed_on.isoformat())} "
        f"({e(r.filed_by)}): {label(_RECTIFICATION_STATE.get(r.state, r.state))}"
        + (f" {e(r.decided_on.isoformat())}" if r.decided_on else "")
        + "</li>"
        for r in view.rectifications
    )
    return f"<h3>{bilingual('整改材料', 'Rectification evidence')}</h3><ul>{items}</ul>"


def _breach(breach: BreachView) -> str:
    rows = [
        ("记录编号 / Record", f'<a href="{e(breach.record_url)}">{e(breach.id)}</a>'),
        ("状态 / Status", e(breach.status)),
        ("决定日期 / Decided on", e(breach.decision_date.isoformat())),
        ("公示截止 / Published until", e(breach.publication_end.isoformat())),
        ("最早可修复 / Earliest repair", e(breach.earliest_repair.isoformat())),
        ("文书编号 / Document number", e(breach.document_number)),
        ("失信事实 / Facts", e(breach.facts)),
        ("处理决定 / Decision", e(breach.decision)),
    ]
    rows += [
        (
            _APPEAL.get(a.kind, a.kind),
            f"{e(a.state)}: {e(a.filed_on.isoformat())} → {e(a.decide_by.isoformat())}"
            + (f" ({e(a.decided_on.isoformat())})" if a.decided_on else ""),
        )
        for a in breach.appeals
    ]
    return "<dl>" + "".join(f"<dt>{label(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _filing_form(view: CommitmentView, filing: FilingView, csrf: str) -> str:
    zh, en = _FILING[filing.kind]
    note = ""
    if not filing.available:
        not_zh, not_en = NOT_YET_AVAILABLE[filing.kind]
        note = (
            '<p class="unavailable">'
            + bilingual(f"{not_zh}暂未开通", f"Filing {not_en} is not yet available")
            + "</p>"
        )
    target = (
        f'<input type="hidden" name="breach_id" value="{e(filing.breach_id)}">'
        if (filing.breach_id)
        else ""
    )
    return (
        f"<details><summary>{bilingual(zh, en)}"
        + (f" <code>{e(filing.breach_id)}</code>" if filing.breach_id else "")
        + "</summary>"
        f'<form class="filing" method="post" action="/applicant/file"'
        f' data-kind="{e(filing.kind)}">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<input type="hidden" name="kind" value="{e(filing.kind)}">'
        f'<input type="hidden" name="commitment" value="{e(view.hash)}">{target}'
        f"<label><span>{label('内容 / Text')}</span>"
        f'<textarea name="text" rows="4" required maxlength="{MAX_FILING_CHARS}"></textarea>'
        f"</label>{note}"
        f'<button type="submit">{bilingual(zh, en)}</button></form></details>'
    )


_PURPOSE = {"verification": "核查 / Verification", "manual_check": "人工核查 / Manual check"}


def _accesses(view: CommitmentView) -> str:
    """Every lookup of the applicant's data: who asked, which source, why and when."""
    heading = f"<h3>{bilingual('数据查询记录', 'Who looked up your data')}</h3>"
    if not view.data_accesses:
        return heading + f"<p>{bilingual('暂无查询', 'Nobody has looked up your data')}</p>"
    head = "".join(
        f"<th>{label(t)}</th>"
        for t in (
            "时间 / When",
            "部门 / Department",
            "查询方 / Asked by",
            "数据来源 / Source",
            "用途 / Purpose",
        )
    )
    rows = "".join(
        '<tr class="access">'
        f"<td><time>{e(a.accessed_at.strftime('%Y-%m-%d %H:%M:%S UTC'))}</time></td>"
        f"<td>{e(a.department)}</td><td><code>{e(a.requested_by)}</code></td>"
        f"<td>{e(a.source)}</td><td>{label(_PURPOSE.get(a.purpose, a.purpose))}</td></tr>"
        for a in view.data_accesses
    )
    table = f'<table class="accesses"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    return heading + table


def _commitment(view: CommitmentView, csrf: str) -> str:
    facts = [
        ("承诺哈希 / Commitment hash", f"<code>{e(view.hash)}</code>"),
        ("承诺编号 / Code", e(view.code)),
        ("事项 / Matter", f"{e(view.matter_name)} ({e(view.matter_code)})"),
        ("部门 / Department", f"{e(view.department_name)} ({e(view.department)})"),
        ("签署时间 / Signed at", e(view.signed_at.isoformat())),
        (
            "上链 / Anchored",
            bilingual("已上链", "anchored") if view.anchored else bilingual("待上链", "pending"),
        ),
        ("核查状态 / Verification", label(_STATE.get(view.verification_state, "?"))),
    ]
    if view.decided_at:
        facts.append(("核查时间 / Decided at", f"{e(view.decided_at)} ({e(view.decided_by)})"))
    if view.report_evidence:
        facts.append(("核查报告哈希 / Report hash", f"<code>{e(view.report_evidence)}</code>"))
    parts = [
        f'<article id="c-{e(view.hash)}" class="commitment">',
        f"<h2>{e(view.matter_name)}</h2>",
        "<dl>" + "".join(f"<dt>{label(k)}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>",
        f"<h3>{bilingual('逐项核查', 'Each claim, checked')}</h3>",
        _claims(view.claims),
        _deadlines(view),
        _notices(view),
        _rectifications(view),
        _accesses(view),
    ]
    if view.breaches:
        parts.append(f"<h3>{bilingual('失信记录', 'Breach records')}</h3>")
        parts += [_breach(b) for b in view.breaches]
    parts.append(f"<h3>{bilingual('提交材料', 'File')}</h3>")
    parts += [_filing_form(view, f, csrf) for f in view.filings]
    parts.append("</article>")
    return "".join(parts)


def render_view_page(view: ApplicantView, csrf: str, *, filed: str | None = None) -> str:
    """The applicant's own file: every commitment the session may see."""
    banner = ""
    if filed in _FILING:
        zh, en = _FILING[filed]
        banner = f'<p class="filed" role="status">{bilingual(f"已{zh}", f"Filed: {en}")}</p>'
    who = bilingual(
        f"{view.applicant_name}（{view.applicant_id}），以下为使用同一密钥签署的承诺，"
        f"截至 {view.as_of.isoformat()}。",
        f"{view.applicant_name} ({view.applicant_id}): the commitments signed with this "
        f"key, as of {view.as_of.isoformat()}.",
    )
    sign_out = (
        '<form method="post" action="/applicant/sign-out">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">'
        f'<button type="submit">{bilingual("退出", "Sign out")}</button></form>'
    )
    commitments = "".join(_commitment(c, csrf) for c in view.commitments) or (
        f"<p>{bilingual('没有可显示的承诺', 'No commitment to show')}</p>"
    )
    body = (
        f"<h1>{bilingual('我的承诺', 'My commitments')}</h1>{banner}<p>{who}</p>"
        f"{sign_out}{commitments}"
    )
    return _page("我的承诺 / My commitments", body)

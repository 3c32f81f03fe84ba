"""One commitment as its department sees it on the workbench: what was received and when,
its anchoring, the decision (due, made, late or not), the verification and its evidence,
the checks, the notice of a proposed breach, breach records and their appeals, and every
deadline in one list. No personal data: hashes, codes, dates and states."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from api.service.appeals import open_appeals
from api.service.applicant_view import breaches_of
from api.service.record_page import bilingual, e, label
from api.service.workbench.layout import beijing, beijing_dt, table
from ledger import BatchRow, Store, StoredCommitment, StoredDecision, hex32
from verifier import BreachRecord
from verifier.records import (
    Appeal,
    Notice,
    NoticeRecords,
    TaskRecords,
    TaskRow,
    Verification,
    VerifierRecords,
)


@dataclass(frozen=True)
class CommitmentFile:
    """Everything the page shows of one commitment."""

    stored: StoredCommitment
    anchoring: BatchRow | None
    decision: StoredDecision | None
    verification: Verification | None
    tasks: tuple[TaskRow, ...]
    notice: Notice | None
    breaches: tuple[BreachRecord, ...]
    appeals: tuple[Appeal, ...]


def commitment_file(
    store: Store, records: VerifierRecords, stored: StoredCommitment
) -> CommitmentFile:
    """The commitment's file, read from the store."""
    digest = stored.hash
    anchored = store.anchoring_of(digest)
    breaches = tuple(breaches_of(records, (digest,)).get(bytes(digest), []))
    appeals = open_appeals(store, None)
    return CommitmentFile(
        stored=stored,
        anchoring=None if anchored is None else anchored[0],
        decision=store.decision_of(digest),
        verification=records.verification(digest),
        tasks=tuple(TaskRecords(store).tasks_of(digest)),
        notice=NoticeRecords(store).latest_for(digest),
        breaches=breaches,
        appeals=tuple(a for b in breaches for a in appeals.for_record(b.id)),
    )


def _dl(rows: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{label(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _decision(found: CommitmentFile) -> str:
    decision = found.decision
    if decision is None:
        channel = found.stored.channel or ""
        return f"<p>{bilingual('尚未作出审批决定', 'Not decided yet')} {e(channel)}</p>"
    record = decision.record
    late = (
        f'<span class="late-mark">{label("超时 / Late")}</span>'
        if record.late
        else f'<span class="ok-mark">{label("按时 / In time")}</span>'
    )
    return _dl(
        [
            ("结果 / Result", e(record.result)),
            ("渠道 / Channel", e(record.channel)),
            ("收到 / Received", e(beijing_dt(record.received_at))),
            ("应决定于 / Due", e(beijing_dt(record.due_at))),
            ("决定于 / Decided", e(beijing_dt(record.decided_at)) + " " + late),
            ("决定账户 / Decided by", f"<code>{e(record.decided_by)}</code>"),
            ("记录哈希 / Record hash", f"<code>{e(hex32(decision.hash))}</code>"),
            ("锚定 / Anchoring", e(decision.state)),
        ]
    )


def _verification(found: CommitmentFile) -> str:
    v = found.verification
    if v is None:
        return f"<p>{bilingual('尚未安排核查', 'No verification yet')}</p>"
    report = (v.report or {}).get("report", {})
    rows = [
        ("状态 / State", e(v.state)),
        ("核查期限 / Due", e(v.due_on.isoformat())),
        ("结果 / Outcome", e(report.get("outcome", ""))),
    ]
    if v.rectify_by is not None:
        rows.append(("整改期限 / Rectify by", e(v.rectify_by.isoformat())))
    if v.evidence is not None:
        rows.append(("报告哈希 / Report evidence", f"<code>{e(hex32(v.evidence))}</code>"))
    if v.tx_hash is not None:
        rows.append(("交易 / Transaction", f"<code>0x{e(v.tx_hash.hex())}</code>"))
        rows.append(("区块 / Block", e(v.block_number)))
    if v.overdue_flagged:
        rows.append(("逾期 / Overdue", f'<span class="late-mark">{label("是 / yes")}</span>'))
    return _dl(rows)


def _deadlines(found: CommitmentFile, on: date) -> list[tuple[str, str, str]]:
    """(day or time, what, css) of every deadline, soonest first."""
    items: list[tuple[str, str, str]] = []
    if found.decision is not None:
        items.append((beijing_dt(found.decision.record.due_at), "审批决定 / Decision", ""))
    v = found.verification
    if v is not None and v.state in ("due", "manual"):
        items.append((v.due_on.isoformat(), "核查 / Verification", ""))
    if v is not None and v.rectify_by is not None and v.state == "mismatch":
        items.append((v.rectify_by.isoformat(), "整改 / Rectification", ""))
    items += [
        (t.due_on.isoformat(), f"核查任务 / Check: {t.key}", "")
        for t in found.tasks
        if t.status == "open"
    ]
    if found.notice is not None and found.notice.state == "open":
        items.append((found.notice.defence_by.isoformat(), "陈述申辩 / Defence", ""))
    items += [
        (a.decide_by.isoformat(), f"{a.kind} / {a.kind}: {a.id}", "")
        for a in found.appeals
        if a.state == "open"
    ]
    today = on.isoformat()
    return sorted((when, what, "late" if when[:10] < today else "") for when, what, _ in items)


def history(found: CommitmentFile) -> list[tuple[str, str]]:
    """(when, what) of everything that happened to the commitment, oldest first: times in
    Beijing time to the minute, days as days."""
    stored = found.stored
    events = [(beijing(stored.received_at), "收到承诺 / Received")]
    batch = found.anchoring
    if batch is not None and batch.anchored_at is not None:
        events.append((beijing(batch.anchored_at), f"上链锚定 / Anchored in batch {batch.id}"))
    if found.decision is not None:
        record = found.decision.record
        events.append((beijing_dt(record.decided_at), f"审批决定 / Decided: {record.result}"))
    v = found.verification
    if v is not None and v.recorded_at is not None:
        events.append((beijing(v.recorded_at), f"核查结果 / Verification: {v.state}"))
    events += [
        (t.done_on.isoformat(), f"核查任务 / Check {t.key}: {t.result}")
        for t in found.tasks
        if t.done_on is not None
    ]
    notice = found.notice
    if notice is not None:
        events.append(
            (notice.issued_on.isoformat(), "拟认定失信告知 / Notice of a proposed breach")
        )
        if notice.decided_on is not None:
            events.append(
                (notice.decided_on.isoformat(), f"告知结论 / Notice closed: {notice.state}")
            )
    for b in found.breaches:
        events.append((b.decision_date.isoformat(), f"失信记录 / Breach record {b.id}"))
        if b.repaired_on is not None:
            events.append((b.repaired_on.isoformat(), f"信用修复 / Repaired {b.id}"))
    for a in found.appeals:
        events.append((a.filed_on.isoformat(), f"{a.kind} / {a.kind} {a.id}: filed"))
        if a.decided_on is not None:
            events.append((a.decided_on.isoformat(), f"{a.kind} / {a.kind} {a.id}: {a.state}"))
    return sorted(events, key=lambda event: event[0])


def render_commitment_body(found: CommitmentFile, on: date) -> str:
    """The page's body (HTML)."""
    stored = found.stored
    batch = found.anchoring
    facts = [
        ("承诺哈希 / Commitment hash", f"<code>{e(hex32(stored.hash))}</code>"),
        ("编号 / Code", e(stored.code)),
        ("事项 / Matter", e(stored.matter_code)),
        ("部门 / Department", e(stored.department)),
        ("收到 / Received", e(beijing(stored.received_at))),
        ("渠道 / Channel", e(stored.channel or "")),
        ("锚定 / Anchoring", e(stored.state)),
    ]
    if batch is not None and batch.tx_hash is not None:
        facts.append(
            ("锚定交易 / Anchoring transaction", f"<code>0x{e(batch.tx_hash.hex())}</code>")
        )
        facts.append(("区块 / Block", e(batch.block_number)))
    deadlines = table(
        ["期限 / Deadline", "事项 / What"],
        [(css, [e(when), label(what)]) for when, what, css in _deadlines(found, on)],
    )
    tasks = table(
        ["核查 / Check", "状态 / Status", "期限 / Due", "结果 / Result", "经办 / By"],
        [
            (
                "",
                [
                    e(t.key),
                    e(t.status),
                    e(t.due_on.isoformat()),
                    e(t.result or ""),
                    e(t.done_by or ""),
                ],
            )
            for t in found.tasks
        ],
    )
    notice = ""
    if found.notice is not None:
        n = found.notice
        notice = _dl(
            [
                ("状态 / State", e(n.state)),
                ("告知 / Issued", e(n.issued_on.isoformat())),
                ("申辩截止 / Defence by", e(n.defence_by.isoformat())),
                ("决定 / Decided", e(n.decided_on.isoformat() if n.decided_on else "")),
                ("证据 / Evidence", f"<code>{e(hex32(n.evidence))}</code>"),
            ]
        )
    breaches = table(
        ["记录 / Record", "状态 / Status", "决定日期 / Decided", "公示截止 / Until"],
        [
            (
                "",
                [
                    f'<a href="/records/{e(b.id)}">{e(b.id)}</a>',
                    e(b.status),
                    e(b.decision_date.isoformat()),
                    e(b.publication_end.isoformat()),
                ],
            )
            for b in found.breaches
        ],
    )
    events = table(
        ["时间 / When", "经过 / What"],
        [("", [e(when), label(what)]) for when, what in history(found)],
    )
    return (
        _dl(facts)
        + f"<h2>{label('期限 / Deadlines')}</h2>{deadlines}"
        + f"<h2>{label('经过 / History')}</h2>{events}"
        + f"<h2>{label('审批决定 / Decision')}</h2>{_decision(found)}"
        + f"<h2>{label('核查与证据 / Verification and evidence')}</h2>{_verification(found)}"
        + f"<h2>{label('核查任务 / Checks')}</h2>{tasks}"
        + (
            f"<h2>{label('拟认定失信告知 / Notice of a proposed breach')}</h2>{notice}"
            if notice
            else ""
        )
        + f"<h2>{label('失信记录 / Breach records')}</h2>{breaches}"
    )

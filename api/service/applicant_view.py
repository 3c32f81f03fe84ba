"""What an applicant's session shows: each commitment's claims beside the department's data,
the outcome, every deadline and notice, breach records with their status, and what may be
filed. Built for the JSON route and the page alike, from the store, opened with the vault.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select

from api.service.appeals import open_appeals
from api.service.applicant_auth import ApplicantSession
from api.service.applicant_filings import filing_available
from api.service.applicant_models import (
    AccessView,
    AppealView,
    ApplicantView,
    BreachView,
    ClaimView,
    CommitmentView,
    DeadlineView,
    FilingKind,
    FilingView,
    NoticeView,
    RectificationView,
)
from api.service.problems import UNAVAILABLE, ProblemError
from api.service.rectifications import open_rectifications
from ledger import (
    ErasedError,
    Hash32,
    Intake,
    InvalidDocumentError,
    SignedCommitment,
    Store,
    VaultError,
    hex32,
)
from verifier import BreachRecord, Catalog, default_catalog, earliest_repair, mask_id_number
from verifier.records import (
    Access,
    Notice,
    NoticeRecords,
    Verification,
    VerifierRecords,
    accesses_of,
    breach_records,
)

# Notices sent to an applicant, by commitment; appeals of a breach record, by its id.
NoticeLister = Callable[[Hash32], list[dict[str, Any]]]
AppealLister = Callable[[str], list[dict[str, Any]]]
# Rectification evidence filed, by commitment.
RectificationLister = Callable[[Hash32], list[dict[str, Any]]]


def _moment(seconds: float | int | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _claims(signed: SignedCommitment, verification: Verification | None) -> list[ClaimView]:
    report = (verification.report or {}).get("report", {}) if verification else {}
    compared = {c.get("key"): c for c in report.get("comparisons", ()) if isinstance(c, dict)}
    views = []
    for claim in signed.document.claims:
        found = compared.get(claim.key, {})
        answered = found.get("answered_at")
        views.append(
            ClaimView(
                key=claim.key,
                claimed={"op": claim.op, "value": claim.value},
                verdict=found.get("verdict"),
                observed=found.get("observed"),
                detail=found.get("detail"),
                source=found.get("source") or None,
                answered_at=_moment(answered) if isinstance(answered, int) else None,
                data_hash=found.get("data_hash"),
                data_signature=found.get("data_signature"),
                data_key_id=found.get("data_key_id"),
            )
        )
    return views


def _access_view(access: Access) -> AccessView:
    return AccessView(
        source=access.source,
        department=access.department,
        requested_by=access.requested_by,
        purpose=access.purpose,
        accessed_at=datetime.fromtimestamp(access.accessed_at, UTC),
    )


def breaches_of(
    records: VerifierRecords, hashes: tuple[Hash32, ...]
) -> dict[bytes, list[BreachRecord]]:
    """Every breach record (any status) of these commitments, oldest decision first."""
    found: dict[bytes, list[BreachRecord]] = {}
    if not hashes:
        return {}
    c = breach_records.c
    with records.store.engine.connect() as connection:
        rows = connection.execute(
            select(c.commitment_hash, c.public_json)
            .where(c.commitment_hash.in_(list(hashes)))
            .order_by(c.decision_date, c.id)
        ).all()
    for row in rows:
        record = BreachRecord.from_json(row.public_json)
        found.setdefault(bytes(row.commitment_hash), []).append(record)
    return dict(found)


def _breach_view(record: BreachRecord, appeals: AppealLister | None) -> BreachView:
    return BreachView(
        appeals=[AppealView.model_validate(a) for a in (appeals(record.id) if appeals else [])],
        id=record.id,
        status=record.status,
        decision_date=record.decision_date,
        publication_end=record.publication_end,
        earliest_repair=earliest_repair(record),
        repaired_on=record.repaired_on,
        superseded_by=record.superseded_by,
        document_number=record.document_number,
        facts=record.facts,
        decision=record.decision,
        record_url=f"/records/{record.id}",
    )


def _deadlines(
    verification: Verification | None, breaches: list[BreachView], notices: list[NoticeView]
) -> list[DeadlineView]:
    found: list[DeadlineView] = []
    if verification is not None:
        found.append(
            DeadlineView(
                kind="verification_due",
                day=verification.due_on,
                provisional=verification.deadline_provisional,
            )
        )
        if verification.rectify_by is not None:
            found.append(DeadlineView(kind="rectify_by", day=verification.rectify_by))
    found += [  # a notice of a proposed breach says until when the applicant may answer
        DeadlineView(kind="defence_ends", day=notice.defence_ends)
        for notice in notices
        if notice.defence_ends is not None and notice.state in (None, "open")
    ]
    for record in breaches:
        if record.status == "published":
            found.append(
                DeadlineView(
                    kind="publication_until", day=record.publication_end, breach_id=record.id
                )
            )
            if record.repaired_on is None:
                found.append(
                    DeadlineView(
                        kind="earliest_repair", day=record.earliest_repair, breach_id=record.id
                    )
                )
        found += [
            DeadlineView(kind="decision_due", day=appeal.decide_by, breach_id=record.id)
            for appeal in record.appeals
            if appeal.state == "open"
        ]
    return sorted(found, key=lambda d: (d.day, d.kind))


def _filings(
    commitment: str,
    verification: Verification | None,
    notices: list[NoticeView],
    breaches: list[BreachView],
    on: date,
) -> list[FilingView]:
    """What may be filed on `on`: a statement while a notice is open, rectification evidence
    while a mismatch's window is open, an objection or a repair application for a published
    record that has none open."""
    base = f"/v1/applicant/commitments/{commitment}"

    def filing(kind: FilingKind, breach_id: str | None = None) -> FilingView:
        return FilingView(
            kind=kind, available=filing_available(kind), url=f"{base}/{kind}", breach_id=breach_id
        )

    views = []
    if any(notice.state == "open" for notice in notices):
        views.append(filing("statement"))
    mismatch = verification is not None and verification.state == "mismatch"
    window = None if verification is None else verification.rectify_by
    if mismatch and window is not None and on <= window:  # the window open on `on`
        views.append(filing("rectification"))
    for record in breaches:
        if record.status != "published":
            continue
        open_now = {appeal.kind for appeal in record.appeals if appeal.state == "open"}
        views += [
            filing(kind, record.id) for kind in ("objection", "repair") if kind not in open_now
        ]
    return views


def _commitment_view(
    digest: Hash32,
    signed: SignedCommitment,
    received_at: float,
    anchored: bool,
    verification: Verification | None,
    breaches: list[BreachView],
    notices: list[NoticeView],
    catalog: Catalog,
    on: date,
) -> CommitmentView:
    document = signed.document
    report = (verification.report or {}).get("report", {}) if verification else {}
    try:
        matter = catalog.matter(document.matter_code)
        matter_name, department_name = matter.name, matter.department_name
    except InvalidDocumentError:  # a matter the catalog no longer holds: its code stands in
        matter_name, department_name = document.matter_code, document.department
    evidence = verification.evidence if verification else None
    return CommitmentView(
        hash=hex32(digest),
        code=document.code,
        matter_code=document.matter_code,
        matter_name=matter_name,
        department=document.department,
        department_name=department_name,
        signed_at=document.signed_at,
        received_at=datetime.fromtimestamp(received_at, UTC),
        anchored=anchored,
        verification_state=verification.state if verification else None,
        outcome=report.get("outcome"),
        decided_at=report.get("decided_at"),
        decided_by=report.get("decided_by"),
        report_evidence=None if evidence is None else hex32(evidence),
        claims=_claims(signed, verification),
        deadlines=_deadlines(verification, breaches, notices),
        notices=notices,
        breaches=breaches,
        filings=_filings(hex32(digest), verification, notices, breaches, on),
    )


def applicant_view(
    session: ApplicantSession,
    intake: Intake,
    records: VerifierRecords,
    catalog: Catalog,
    on: date,
    notices: NoticeLister | None = None,
    appeals: AppealLister | None = None,
    rectifications: RectificationLister | None = None,
) -> ApplicantView:
    """The session's commitments as of `on` (erased ones are left out: nothing to show)."""
    store = intake.store
    all_breaches = breaches_of(records, session.commitments)
    all_accesses = accesses_of(store, session.commitments)
    views: list[CommitmentView] = []
    name, masked_id = "", ""
    for digest in session.commitments:
        stored = store.get(digest)
        if stored is None or stored.erased:
            continue
        try:
            signed = intake.open_document(digest)
        except (ErasedError, VaultError, ValueError):
            continue
        if signed is None:
            continue
        if not name:
            applicant = signed.document.applicant
            name = applicant.name
            masked_id = mask_id_number(applicant.id_type, applicant.id_number)
        sent = [NoticeView.model_validate(n) for n in (notices(digest) if notices else [])]
        views.append(
            _commitment_view(
                digest,
                signed,
                stored.received_at,
                stored.state == "anchored",
                records.verification(digest),
                [_breach_view(r, appeals) for r in all_breaches.get(bytes(digest), [])],
                sent,
                catalog,
                on,
            )
        )
        views[-1].data_accesses = [_access_view(a) for a in all_accesses.get(bytes(digest), [])]
        if rectifications is not None:
            views[-1].rectifications = [
                RectificationView.model_validate(r) for r in rectifications(digest)
            ]
    return ApplicantView(
        applicant_name=name,
        applicant_id=masked_id,
        key_algorithm=session.algorithm,
        as_of=on,
        session_expires_at=datetime.fromtimestamp(session.expires_at, UTC),
        commitments=views,
    )


def view_for(
    session: ApplicantSession,
    store: Store,
    intake: Intake | None,
    records: VerifierRecords,
    on: date,
) -> ApplicantView:
    """The session's view over the service's store, as of the service's today (`on`), with
    the appeals of each breach record."""
    if intake is None:
        raise ProblemError(UNAVAILABLE, "the service holds no master key: it cannot open documents")
    appeals = open_appeals(store, intake.vault)
    notices = _notice_records(store)

    def appeals_of(record_id: str) -> list[dict[str, Any]]:
        return [appeal.to_json_obj() for appeal in appeals.for_record(record_id)]

    filed_evidence = open_rectifications(store, intake.vault)

    def rectifications_of(commitment: Hash32) -> list[dict[str, Any]]:
        return [filing.to_json_obj() for filing in filed_evidence.for_commitment(commitment)]

    def notices_of(commitment: Hash32) -> list[dict[str, Any]]:
        notice = notices.latest_for(commitment)
        if notice is None:
            return []
        filed = [
            {"id": st.id, "filed_by": st.filed_by, "filed_at": _moment(st.filed_at)}
            for st in notices.statements_of(notice)
        ]
        return [{**_notice_json(notice), "statements": filed}]

    return applicant_view(
        session,
        intake,
        records,
        default_catalog(),
        on,
        notices=notices_of,
        appeals=appeals_of,
        rectifications=rectifications_of,
    )


# One NoticeRecords per store (opening one applies its migrations).
_notice_tables: weakref.WeakKeyDictionary[Store, NoticeRecords] = weakref.WeakKeyDictionary()


def _notice_records(store: Store) -> NoticeRecords:
    opened = _notice_tables.get(store)
    if opened is None:
        opened = _notice_tables[store] = NoticeRecords(store)
    return opened


def _notice_json(notice: Notice) -> dict[str, Any]:
    """A notice for its addressee: where it stands and the signed notice itself."""
    body = notice.to_json_obj()
    return {
        "id": str(notice.id),
        "kind": "proposed_breach",
        "state": notice.state,
        "issued_on": body["issued_on"],
        "delivered_on": body["delivered_on"],
        "defence_ends": body["defence_by"],
        "hash": body["evidence"],
        "outcome": body["outcome"],
        "decided_on": body["decided_on"],
        "notice": body["notice"],
    }

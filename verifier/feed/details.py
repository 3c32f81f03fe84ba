"""A feed record's details: the national credit-commitment data elements beyond the chain
facts, from what the store holds (the commitment's row and sealed document, the signed
report, the breach record). `verifier.feed.builder` signs them into records."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, select

from ledger import SignedCommitment, Vault, VaultError, commitments, outcome_outbox
from verifier.breaches import add_months, mask_id_number, mask_person_name, publication_period
from verifier.catalog import Catalog, Matter
from verifier.departments import default_departments
from verifier.feed.records import (
    COMMITMENT_TYPES,
    COMMITTER_CATEGORIES,
    ChainFacts,
    Details,
    FeedKind,
    committer_category,
)
from verifier.feed.store import PendingEvent
from verifier.public_text import breach_facts, severity_text
from verifier.records import breach_records
from verifier.records import verifications_table as verifications
from verifier.rules import Comparison

log = logging.getLogger("commitledger.feed")

_SANCTIONS: dict[FeedKind, str] = {
    "mismatch": "责令限期整改（逾期未整改的，按承诺不实处理）",
    "proposed": "拟认定失信：已告知当事人，陈述申辩期内不予公开",
    "repair": "信用修复：移出失信公示，链上记录保留",
    "expiry": "公示期满：移出失信公示，链上记录保留",
    "correction": "异议成立：撤销失信记录",
}

_REASONS: dict[str, str] = {
    "certificate_replacing": "以书面承诺代替提交证明材料",
    "approval_replacing": "以书面承诺代替审批条件的事前核查",
}
_UNFULFILLED_BY_DECISION: dict[FeedKind, str] = {
    "breach": "经核查认定承诺内容不实或逾期未整改。",
}


@dataclass(frozen=True)
class Stored:
    """What the store holds about one commitment, for its records' details."""

    code: str
    matter_code: str
    department: str  # the department the store took the commitment in for
    sealed: bytes
    wrapped_key: bytes | None
    due_on: str | None
    rectify_by: str | None = None


@dataclass(frozen=True)
class Sources:
    """What the store holds for the records of a run of events, read once for them all."""

    stored: dict[bytes, Stored]
    reports: dict[bytes, dict[str, Any]]
    published_until: dict[bytes, date]


def read_sources(connection: Connection, events: Sequence[PendingEvent]) -> Sources:
    """What the store holds for the records of `events`, in `connection`'s transaction."""
    parsed = [json.loads(event.args) for event in events]
    return Sources(
        _stored(connection, [bytes.fromhex(args["commitment"][2:]) for args in parsed]),
        _reports(connection, [bytes.fromhex(args["evidence"][2:]) for args in parsed]),
        _publication_ends(connection, [event.tx_hash for event in events]),
    )


class DetailsMaker:
    """Makes records' details from the store, with the catalog's matters and (to name the
    committer, masked) the master key's vault."""

    def __init__(self, catalog: Catalog, vault: Vault | None) -> None:
        self.catalog = catalog
        self.vault = vault
        self._names = {m.department: m.department_name for m in catalog.matters}

    def details(
        self,
        facts: ChainFacts,
        commitment: bytes,
        stored: Stored | None,
        report: dict[str, Any] | None,
    ) -> Details:
        """The details of the record of `facts` on `commitment`: the chain facts' units
        alone when the store does not hold the commitment (anchored elsewhere); without
        the committer when its data were erased or cannot be opened here."""
        determining = self._unit(facts.department_code, "determining")
        if stored is None:  # anchored elsewhere: the chain facts are all there is
            return Details(
                determining_unit=determining["determining_unit"],
                determining_unit_code=determining["determining_unit_code"],
            )
        matter = self._matter(stored.matter_code)
        common: dict[str, Any] = {
            "commitment_code": stored.code,
            "matter_code": stored.matter_code,
            "date_made": _code_date(stored.code),
            # The unit that took the commitment: the store took it in for this department.
            **self._unit(stored.department, "accepting"),
            "valid_until": _valid_until(facts, stored, matter),
            **determining,
            "unfulfilled": _unfulfilled(facts.kind, report, matter),
            "sanction": _sanction(facts.kind, matter),
        }
        if matter is not None:
            common.update(
                matter_name=matter.name,
                commitment_type=COMMITMENT_TYPES[matter.commitment_type],
                reason=f"申请办理{matter.name}，{_REASONS[matter.commitment_type]}",
                content_summary=matter.notice.conditions,
                liability=matter.notice.liability,
            )
        party = self._party(commitment, stored)
        if party is None:
            return Details(**common, personal_data_erased=True)
        return Details(**common, **party)

    def _unit(self, department: str, role: str) -> dict[str, str | None]:
        """`<role>_unit` and `<role>_unit_code` of `department` from the registry (the
        catalog's name, and no code, for a department the registry lacks)."""
        known = default_departments().get(department)
        name = known.name if known is not None else self._names.get(department)
        return {
            f"{role}_unit": name,
            f"{role}_unit_code": None if known is None else known.credit_code,
        }

    def _matter(self, code: str) -> Matter | None:
        try:
            return self.catalog.matter(code)
        except ValueError:
            return None

    def _party(self, commitment: bytes, stored: Stored) -> dict[str, Any] | None:
        if self.vault is None or stored.wrapped_key is None:
            return None
        try:
            plain = self.vault.open(stored.sealed, stored.wrapped_key, associated=commitment)
        except VaultError:
            log.warning("sealed document of 0x%s does not open", commitment.hex())
            return None
        applicant = SignedCommitment.from_json_obj(json.loads(plain)).document.applicant
        category = COMMITTER_CATEGORIES[committer_category(applicant.kind, applicant.id_number)]
        if applicant.kind == "person":
            return {
                "committer_name": mask_person_name(applicant.name),
                "committer_category": category,
                "credit_code": mask_id_number(applicant.id_type, applicant.id_number),
            }
        return {
            "committer_name": applicant.name,
            "committer_category": category,
            "credit_code": applicant.id_number,
        }


def _stored(connection: Connection, hashes: Sequence[bytes]) -> dict[bytes, Stored]:
    wanted = list(set(hashes))
    found: dict[bytes, Stored] = {}
    due = dict(
        connection.execute(
            select(verifications.c.commitment_hash, verifications.c.due_on).where(
                verifications.c.commitment_hash.in_(wanted)
            )
        ).all()
    )
    rectify = dict(
        connection.execute(
            select(verifications.c.commitment_hash, verifications.c.rectify_by).where(
                verifications.c.commitment_hash.in_(wanted)
            )
        ).all()
    )
    rows = connection.execute(
        select(
            commitments.c.hash,
            commitments.c.code,
            commitments.c.matter_code,
            commitments.c.department,
            commitments.c.sealed,
            commitments.c.wrapped_key,
        ).where(commitments.c.hash.in_(wanted))
    ).all()
    for row in rows:
        key = bytes(row.hash)
        wrapped = None if row.wrapped_key is None else bytes(row.wrapped_key)
        found[key] = Stored(
            row.code,
            row.matter_code,
            row.department,
            bytes(row.sealed),
            wrapped,
            due.get(key),
            rectify.get(key),
        )
    return found


def _publication_ends(connection: Connection, tx_hashes: Sequence[bytes]) -> dict[bytes, date]:
    """The publication end of the breach record each transaction recorded (by tx hash)."""
    rows = connection.execute(
        select(breach_records.c.tx_hash, breach_records.c.publication_end).where(
            breach_records.c.tx_hash.in_(list(set(tx_hashes)))
        )
    ).all()
    return {bytes(row.tx_hash): date.fromisoformat(row.publication_end) for row in rows}


def _valid_until(facts: ChainFacts, stored: Stored, matter: Matter | None) -> date | None:
    """The commitment's standing as the record states it (records.py's docstring): a breach
    until its publication ends (the breach record's end, else the period from the day it
    was determined), a mismatch until the rectification deadline, a record for a person
    until the verification deadline; an ending record the day it ended; kept and a
    proposed breach: none."""
    kind = facts.kind
    if kind == "breach":
        if matter is None:
            return None
        months = publication_period(matter.severity).months_published
        return add_months(facts.determined_on, months)
    if kind == "mismatch":
        return None if stored.rectify_by is None else date.fromisoformat(stored.rectify_by)
    if kind == "needs_manual":
        return None if stored.due_on is None else date.fromisoformat(stored.due_on)
    if kind in ("kept", "proposed"):  # stands / not determined yet
        return None
    return facts.determined_on


def _reports(connection: Connection, evidences: Sequence[bytes]) -> dict[bytes, dict[str, Any]]:
    rows = connection.execute(
        select(outcome_outbox.c.evidence, outcome_outbox.c.report).where(
            outcome_outbox.c.evidence.in_(list(set(evidences)))
        )
    ).all()
    return {bytes(row.evidence): json.loads(row.report) for row in rows}


def _code_date(code: str) -> date | None:
    try:
        return date(int(code[6:10]), int(code[10:12]), int(code[12:14]))
    except ValueError:
        return None


def _unfulfilled(
    kind: FeedKind, signed_report: dict[str, Any] | None, matter: Matter | None
) -> str | None:
    """The claims the department's data contradicted, in Chinese from each comparison's
    claim, operator and values (not the report's English `detail`); a breach decided
    without a comparison (an overdue rectification, a person's decision) says so."""
    report = (signed_report or {}).get("report") or {}
    comparisons = [
        Comparison.from_json_obj(c)
        for c in report.get("comparisons", ())
        if c.get("verdict") == "disagree"
    ]
    return breach_facts(comparisons, matter) or _UNFULFILLED_BY_DECISION.get(kind)


def _sanction(kind: FeedKind, matter: Matter | None) -> str | None:
    if kind == "breach" and matter is not None:
        months = publication_period(matter.severity).months_published
        liability = matter.notice.liability.rstrip("。")
        return f"{liability}（{severity_text(matter.severity, months)}）。"
    return _SANCTIONS.get(kind)

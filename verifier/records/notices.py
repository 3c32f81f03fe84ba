"""Notices of a proposed breach (告知), their delivery outbox, and the applicant's statements
(陈述申辩): three tables with migrations of their own.

A notice is issued when a breach is proposed: its signed body's hash is the Proposed
outcome's evidence on chain. It is queued for delivery to the department's messaging
gateway at once (the outbox row is written with the notice), delivered at least once, and
dead-lettered after too many failures. The defence period runs from delivery; the notice
is settled when the breach is published or the defence succeeds.

A statement is what the applicant wrote: personal data, sealed with the vault under a data
key of its own (authenticated with the commitment's hash and the statement's id) and never
logged. The officer's reasons are sealed the same way.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)

from ledger import Hash32, InvalidDocumentError, Store, Vault, migrations_table
from verifier.errors import RecordsError
from verifier.records.own_table import OwnTable

NoticeState = Literal["open", "published", "defended"]
StatementBy = Literal["applicant", "officer"]

MAX_STATEMENT = 5000  # characters of one statement
MAX_STATEMENTS = 10  # statements kept per notice
MAX_DECIDED_BY = 200
MAX_REASONS = 2000
MAX_ERROR = 200  # characters of a delivery error kept (never the body)

metadata = MetaData()
notice_migrations = migrations_table("notice_migrations", metadata)

notices = Table(
    "notices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("commitment_hash", LargeBinary(32), nullable=False),
    Column("department", String(64), nullable=False),
    Column("evidence", LargeBinary(32), nullable=False, unique=True),  # on chain (Proposed)
    Column("signed", Text, nullable=False),  # JSON: {"report": body, "signature": ...}
    Column("issued_on", String(10), nullable=False),
    Column("defence_days", Integer, nullable=False),  # working days, the matter's
    Column("delivered_on", String(10), nullable=True),
    Column("defence_by", String(10), nullable=False),  # last day to answer
    Column("state", String(16), nullable=False),
    Column("decided_on", String(10), nullable=True),
    Column("decided_by", String(MAX_DECIDED_BY), nullable=True),
    Column("decision_evidence", LargeBinary(32), nullable=True),
    Column("outcome", String(16), nullable=True),  # breached, kept, manual, corrected
    Column("reasons_sealed", LargeBinary, nullable=True),
    Column("reasons_key", LargeBinary, nullable=True),
    Column("updated_at", Float, nullable=False),
)
Index("notices_commitment", notices.c.commitment_hash)
Index("notices_department", notices.c.department, notices.c.state)

notice_deliveries = Table(
    "notice_deliveries",
    metadata,
    Column("notice_id", Integer, primary_key=True, autoincrement=False),
    Column("department", String(64), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Float, nullable=False),
    Column("last_error", String(MAX_ERROR), nullable=True),
    Column("delivered_at", Float, nullable=True),
    Column("dead", Boolean, nullable=False),
)
Index(
    "notice_deliveries_due",
    notice_deliveries.c.department,
    notice_deliveries.c.delivered_at,
    notice_deliveries.c.dead,
    notice_deliveries.c.next_attempt_at,
)

statements = Table(
    "notice_statements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notice_id", Integer, nullable=False, index=True),
    Column("filed_by", String(16), nullable=False),
    Column("filed_at", Float, nullable=False),
    Column("text_sealed", LargeBinary, nullable=False),
    Column("text_key", LargeBinary, nullable=True),
)


def _create_v1(connection: Connection) -> None:
    metadata.create_all(connection, tables=[notices, notice_deliveries, statements])


MIGRATIONS = {1: _create_v1}


class StatementError(InvalidDocumentError):
    """A statement or reasons given are blank, too long or not text: nothing was stored."""


class NoticeClosedError(RecordsError):
    """No open notice for this commitment (never proposed, or already decided)."""


@dataclass(frozen=True)
class Notice:
    """A notice of a proposed breach and where it stands (the officer's reasons left out)."""

    id: int
    commitment_hash: Hash32
    department: str
    evidence: Hash32
    signed: dict[str, Any]
    issued_on: date
    defence_days: int
    delivered_on: date | None
    defence_by: date
    state: NoticeState
    decided_on: date | None
    decided_by: str | None
    decision_evidence: Hash32 | None
    outcome: str | None

    @property
    def body(self) -> dict[str, Any]:
        """The notice's signed body."""
        return dict(self.signed["report"])

    def to_json_obj(self) -> dict[str, Any]:
        """The notice as plain JSON: where it stands, and the signed notice itself."""
        return {
            "commitment_hash": "0x" + self.commitment_hash.hex(),
            "department": self.department,
            "evidence": "0x" + self.evidence.hex(),
            "issued_on": self.issued_on.isoformat(),
            "delivered_on": None if self.delivered_on is None else self.delivered_on.isoformat(),
            "defence_working_days": self.defence_days,
            "defence_by": self.defence_by.isoformat(),
            "state": self.state,
            "decided_on": None if self.decided_on is None else self.decided_on.isoformat(),
            "decided_by": self.decided_by,
            "decision_evidence": None
            if self.decision_evidence is None
            else "0x" + self.decision_evidence.hex(),
            "outcome": self.outcome,
            "notice": self.signed,
        }


@dataclass(frozen=True)
class Delivery:
    """A notice's delivery to the department's messaging gateway."""

    notice_id: int
    department: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    delivered_at: float | None
    dead: bool

    def to_json_obj(self) -> dict[str, Any]:
        """The delivery as plain JSON."""
        return {
            "notice_id": self.notice_id,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "last_error": self.last_error,
            "delivered_at": self.delivered_at,
            "dead": self.dead,
        }


@dataclass(frozen=True)
class Statement:
    """A statement filed against a notice, without its sealed text."""

    id: int
    notice_id: int
    filed_by: StatementBy
    filed_at: float


def bounded_defence_text(text: object, most: int, what: str) -> str:
    """`text` stripped, when it is text of 1 to `most` characters; StatementError else."""
    if not isinstance(text, str):
        raise StatementError(f"the {what} must be text")
    value = text.strip()
    if not value:
        raise StatementError(f"the {what} is blank")
    if len(value) > most:
        raise StatementError(f"the {what} is over {most} characters")
    if any(ord(c) < 32 and c not in "\n\r\t" for c in value):
        raise StatementError(f"the {what} holds control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise StatementError(f"the {what} is not valid Unicode text") from None
    return value


def _day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def _notice(row: Any) -> Notice:
    return Notice(
        id=row.id,
        commitment_hash=Hash32(bytes(row.commitment_hash)),
        department=row.department,
        evidence=Hash32(bytes(row.evidence)),
        signed=json.loads(row.signed),
        issued_on=date.fromisoformat(row.issued_on),
        defence_days=row.defence_days,
        delivered_on=_day(row.delivered_on),
        defence_by=date.fromisoformat(row.defence_by),
        state=row.state,
        decided_on=_day(row.decided_on),
        decided_by=row.decided_by,
        decision_evidence=None
        if row.decision_evidence is None
        else Hash32(bytes(row.decision_evidence)),
        outcome=row.outcome,
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        row.notice_id,
        row.department,
        row.attempts,
        row.next_attempt_at,
        row.last_error,
        row.delivered_at,
        bool(row.dead),
    )


class NoticeRecords(OwnTable):
    """Notices, their deliveries and statements, on the same database as a ledger `Store`."""

    def __init__(self, store: Store) -> None:
        super().__init__(store, notice_migrations, MIGRATIONS)

    # ------------------------------------------------------------------ notices

    def issue(
        self,
        commitment: Hash32,
        department: str,
        signed: dict[str, Any],
        evidence: Hash32,
        issued_on: date,
        defence_days: int,
        defence_by: date,
        now: float | None = None,
    ) -> Notice:
        """Keep a notice whose Proposed outcome is on chain and queue its delivery, in one
        transaction; the notice already kept when its evidence is known (a rerun)."""
        stamp = time.time() if now is None else now
        with self._writer.begin() as connection:
            found = connection.execute(select(notices).where(notices.c.evidence == evidence))
            row = found.first()
            if row is not None:
                return _notice(row)
            notice_id = connection.execute(
                notices.insert().values(
                    commitment_hash=commitment,
                    department=department,
                    evidence=evidence,
                    signed=json.dumps(signed, ensure_ascii=False, sort_keys=True),
                    issued_on=issued_on.isoformat(),
                    defence_days=defence_days,
                    defence_by=defence_by.isoformat(),
                    state="open",
                    updated_at=stamp,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            connection.execute(
                notice_deliveries.insert().values(
                    notice_id=notice_id,
                    department=department,
                    attempts=0,
                    next_attempt_at=stamp,
                    dead=False,
                )
            )
            row = connection.execute(select(notices).where(notices.c.id == notice_id)).one()
        return _notice(row)

    def notice(self, notice_id: int) -> Notice | None:
        """The notice with this id."""
        with self._engine.connect() as connection:
            row = connection.execute(select(notices).where(notices.c.id == notice_id)).first()
        return None if row is None else _notice(row)

    def latest_for(self, commitment: Hash32) -> Notice | None:
        """The commitment's latest notice, open or settled."""
        query = (
            select(notices)
            .where(notices.c.commitment_hash == commitment)
            .order_by(notices.c.id.desc())
            .limit(1)
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else _notice(row)

    def open_for(self, commitment: Hash32) -> Notice | None:
        """The commitment's open notice (a breach proposed and not decided), if any."""
        notice = self.latest_for(commitment)
        return notice if notice is not None and notice.state == "open" else None

    def listed(
        self, department: str, state: NoticeState | None = None, limit: int = 500
    ) -> list[Notice]:
        """The department's notices, newest first, of one state or all."""
        query = select(notices).where(notices.c.department == department)
        if state is not None:
            query = query.where(notices.c.state == state)
        query = query.order_by(notices.c.id.desc()).limit(limit)
        with self._engine.connect() as connection:
            return [_notice(row) for row in connection.execute(query)]

    def lapsed(self, department: str, on: date) -> list[Notice]:
        """Open notices of the department delivered, whose defence period ended before `on`."""
        query = (
            select(notices)
            .where(
                notices.c.department == department,
                notices.c.state == "open",
                notices.c.delivered_on.is_not(None),
                notices.c.defence_by < on.isoformat(),
            )
            .order_by(notices.c.id)
        )
        with self._engine.connect() as connection:
            return [_notice(row) for row in connection.execute(query)]

    def settle(
        self,
        commitment: Hash32,
        state: NoticeState,
        outcome: str,
        decided_on: date,
        decided_by: str,
        decision_evidence: Hash32,
        reasons: tuple[bytes, bytes | None] | None = None,
        now: float | None = None,
    ) -> bool:
        """Settle the commitment's open notice (the decision is on chain); False when none
        is open (settled before: a rerun)."""
        values: dict[str, Any] = {
            "state": state,
            "outcome": outcome,
            "decided_on": decided_on.isoformat(),
            "decided_by": decided_by[:MAX_DECIDED_BY],
            "decision_evidence": decision_evidence,
            "updated_at": time.time() if now is None else now,
        }
        if reasons is not None:
            values.update(reasons_sealed=reasons[0], reasons_key=reasons[1])
        with self._writer.begin() as connection:
            done = connection.execute(
                update(notices)
                .where(notices.c.commitment_hash == commitment, notices.c.state == "open")
                .values(**values)
            )
        return bool(done.rowcount)

    # ------------------------------------------------------------------ deliveries

    def due_deliveries(self, department: str, now: float, limit: int = 100) -> list[Delivery]:
        """Deliveries of the department not done, not dead, whose next attempt is due."""
        query = (
            select(notice_deliveries)
            .where(
                notice_deliveries.c.department == department,
                notice_deliveries.c.delivered_at.is_(None),
                notice_deliveries.c.dead.is_(False),
                notice_deliveries.c.next_attempt_at <= now,
            )
            .order_by(notice_deliveries.c.notice_id)
            .limit(limit)
        )
        with self._engine.connect() as connection:
            return [_delivery(row) for row in connection.execute(query)]

    def deliveries(self, department: str, *, dead: bool | None = None) -> list[Delivery]:
        """The department's deliveries (the dead letters only, with `dead=True`)."""
        query = select(notice_deliveries).where(notice_deliveries.c.department == department)
        if dead is not None:
            query = query.where(notice_deliveries.c.dead.is_(dead))
        with self._engine.connect() as connection:
            rows = connection.execute(query.order_by(notice_deliveries.c.notice_id))
            return [_delivery(row) for row in rows]

    def delivered(self, notice_id: int, at: float, on: date, defence_by: date) -> None:
        """The gateway took the notice on `on`: the defence period runs from that day."""
        with self._writer.begin() as connection:
            connection.execute(
                update(notice_deliveries)
                .where(notice_deliveries.c.notice_id == notice_id)
                .values(delivered_at=at, last_error=None)
            )
            connection.execute(
                update(notices)
                .where(notices.c.id == notice_id, notices.c.delivered_on.is_(None))
                .values(delivered_on=on.isoformat(), defence_by=defence_by.isoformat())
            )

    def failed(
        self, notice_id: int, attempts: int, next_attempt_at: float, error: str, dead: bool
    ) -> None:
        """An attempt failed: try again at `next_attempt_at`, or never (a dead letter)."""
        with self._writer.begin() as connection:
            connection.execute(
                update(notice_deliveries)
                .where(notice_deliveries.c.notice_id == notice_id)
                .values(
                    attempts=attempts,
                    next_attempt_at=next_attempt_at,
                    last_error=error[:MAX_ERROR],
                    dead=dead,
                )
            )

    def retry_dead(self, department: str, now: float | None = None) -> int:
        """Give the department's dead letters a fresh series of attempts; how many."""
        with self._writer.begin() as connection:
            done = connection.execute(
                update(notice_deliveries)
                .where(
                    notice_deliveries.c.department == department,
                    notice_deliveries.c.dead.is_(True),
                )
                .values(dead=False, attempts=0, next_attempt_at=time.time() if now is None else now)
            )
        return int(done.rowcount)

    # ------------------------------------------------------------------ statements

    def add_statement(
        self, notice: Notice, vault: Vault, text: str, filed_by: StatementBy, now: float
    ) -> Statement:
        """Keep a statement against `notice`, sealed; StatementError past MAX_STATEMENTS."""
        with self._writer.begin() as connection:
            count = connection.execute(
                select(statements.c.id).where(statements.c.notice_id == notice.id)
            ).all()
            if len(count) >= MAX_STATEMENTS:
                raise StatementError(f"at most {MAX_STATEMENTS} statements are kept per notice")
            statement_id = connection.execute(
                statements.insert().values(
                    notice_id=notice.id,
                    filed_by=filed_by,
                    filed_at=now,
                    text_sealed=b"",
                    text_key=None,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            sealed = vault.seal(text.encode("utf-8"), _statement_aad(notice, statement_id))
            connection.execute(
                update(statements)
                .where(statements.c.id == statement_id)
                .values(text_sealed=sealed.ciphertext, text_key=sealed.wrapped_key)
            )
        return Statement(statement_id, notice.id, filed_by, now)

    def statements_of(self, notice: Notice) -> list[Statement]:
        """The statements filed against `notice`, oldest first, without their texts."""
        query = select(statements).where(statements.c.notice_id == notice.id)
        with self._engine.connect() as connection:
            rows = connection.execute(query.order_by(statements.c.id)).all()
        return [Statement(row.id, row.notice_id, row.filed_by, row.filed_at) for row in rows]

    def statement_text(self, notice: Notice, statement: Statement, vault: Vault) -> str:
        """A statement's text, opened with the vault (for the officer and the applicant)."""
        query = select(statements).where(statements.c.id == statement.id)
        with self._engine.connect() as connection:
            row = connection.execute(query).one()
        plain = vault.open(
            bytes(row.text_sealed),
            None if row.text_key is None else bytes(row.text_key),
            _statement_aad(notice, statement.id),
        )
        return plain.decode("utf-8")

    def reasons_text(self, notice: Notice, vault: Vault) -> str | None:
        """The officer's reasons of a settled notice, opened with the vault."""
        query = select(notices.c.reasons_sealed, notices.c.reasons_key).where(
            notices.c.id == notice.id
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).one()
        if row.reasons_sealed is None:
            return None
        key = None if row.reasons_key is None else bytes(row.reasons_key)
        return vault.open(bytes(row.reasons_sealed), key, reasons_aad(notice)).decode("utf-8")


def _statement_aad(notice: Notice, statement_id: int) -> bytes:
    return b"statement:" + notice.commitment_hash + str(statement_id).encode("ascii")


def reasons_aad(notice: Notice) -> bytes:
    """What the officer's reasons are sealed with: the notice they decide."""
    return b"reasons:" + notice.commitment_hash + str(notice.id).encode("ascii")


def seal_reasons(vault: Vault, notice: Notice, reasons: str) -> tuple[bytes, bytes | None]:
    """The officer's reasons sealed for `NoticeRecords.settle`."""
    sealed = vault.seal(reasons.encode("utf-8"), reasons_aad(notice))
    return sealed.ciphertext, sealed.wrapped_key


def notices_of(records: NoticeRecords, hashes: Sequence[Hash32]) -> dict[bytes, Notice]:
    """The latest notice of each of these commitments that has one."""
    found: dict[bytes, Notice] = {}
    for commitment in hashes:
        notice = records.latest_for(commitment)
        if notice is not None:
            found[bytes(commitment)] = notice
    return found

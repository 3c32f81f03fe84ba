"""Objections (异议申诉) and repair applications (信用修复申请) against published breach
records: one table, its own migrations, the texts sealed with the store's vault.

What a person wrote (the objection's reason and evidence, the officer's reasons) is personal
data: it is sealed under a data key of its own, authenticated with the appeal's id, and never
logged; the rest (which record, who filed, when, the deadline, the outcome) is plain so that
lists and the lifecycle job need no key.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from ledger import (
    Hash32,
    InvalidDocumentError,
    Store,
    Vault,
    migrations_table,
)
from verifier.errors import RecordsError, UnknownRecordError
from verifier.records.own_table import SealedTexts
from verifier.records.tables import breach_records

AppealKind = Literal["objection", "repair"]
AppealState = Literal["open", "upheld", "rejected", "granted", "refused"]
FiledBy = Literal["applicant", "officer"]

# Each kind's outcomes once decided.
OUTCOMES: dict[AppealKind, tuple[AppealState, AppealState]] = {
    "objection": ("upheld", "rejected"),
    "repair": ("granted", "refused"),
}
_PREFIX: dict[AppealKind, str] = {"objection": "OB-", "repair": "RA-"}

MAX_TEXT = 2000  # characters of a reason, an application or a decision's reasons
MAX_EVIDENCE_ITEMS = 10
MAX_EVIDENCE_TEXT = 500  # characters of one item of evidence (a description, a file's name)
MAX_DECIDED_BY = 200
MAX_LIST = 500

metadata = MetaData()
appeal_migrations = migrations_table("appeal_migrations", metadata)

appeals = Table(
    "appeals",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("record_id", String(40), nullable=False),
    Column("department", String(64), nullable=False),
    Column("filed_by", String(16), nullable=False),
    Column("filed_on", String(10), nullable=False),
    Column("filed_at", Float, nullable=False),  # the moment: orders a day's filings
    Column("decide_by", String(10), nullable=False),
    Column("state", String(16), nullable=False),
    # JSON {"text": ..., "evidence": [...]}, sealed; its data key wrapped by the master key
    Column("filing_sealed", LargeBinary, nullable=False),
    Column("filing_key", LargeBinary, nullable=True),
    Column("decided_on", String(10), nullable=True),
    Column("decided_by", String(MAX_DECIDED_BY), nullable=True),
    Column("reasons_sealed", LargeBinary, nullable=True),
    Column("reasons_key", LargeBinary, nullable=True),
    Column("overdue_flagged", Boolean, nullable=False),
    Column("updated_at", Float, nullable=False),
)
_OPEN = appeals.c.state == "open"
_ANY_OPEN_OBJECTION = "SELECT 1 FROM appeals WHERE kind = 'objection' AND state = 'open' LIMIT 1"
# One open appeal of each kind per record: a second objection waits for the first's decision.
Index(
    "appeals_open_per_record",
    appeals.c.record_id,
    appeals.c.kind,
    unique=True,
    sqlite_where=_OPEN,
    postgresql_where=_OPEN,
)
Index("appeals_department", appeals.c.department, appeals.c.kind, appeals.c.state)
Index("appeals_record", appeals.c.record_id)


def _create_v1(connection: Connection) -> None:
    metadata.create_all(connection, tables=[appeals])


MIGRATIONS = {1: _create_v1}


class AppealTextError(InvalidDocumentError):
    """A text given for an appeal is blank, too long or not text: nothing was stored."""


@dataclass(frozen=True)
class Appeal:
    """An objection or a repair application, without its sealed texts."""

    id: str
    kind: AppealKind
    record_id: str
    department: str
    filed_by: FiledBy
    filed_on: date
    decide_by: date
    state: AppealState
    decided_on: date | None
    decided_by: str | None
    overdue_flagged: bool

    @property
    def open(self) -> bool:
        """Not decided yet."""
        return self.state == "open"

    def to_json_obj(self) -> dict[str, Any]:
        """The appeal as plain JSON (dates as ISO text), texts left out."""
        return {
            "id": self.id,
            "kind": self.kind,
            "record_id": self.record_id,
            "department": self.department,
            "filed_by": self.filed_by,
            "filed_on": self.filed_on.isoformat(),
            "decide_by": self.decide_by.isoformat(),
            "state": self.state,
            "decided_on": None if self.decided_on is None else self.decided_on.isoformat(),
            "decided_by": self.decided_by,
            "overdue": self.overdue_flagged,
        }


@dataclass(frozen=True)
class AppealTexts:
    """What was written: the filing (reason or application, its evidence) and the
    decision's reasons once decided. Personal data: never log them."""

    text: str
    evidence: tuple[str, ...]
    reasons: str | None


def bounded_text(label: str, text: str, limit: int = MAX_TEXT) -> str:
    """`text` stripped; AppealTextError when blank, too long, holding NUL or not UTF-8."""
    stripped = text.strip()
    if not stripped:
        raise AppealTextError(f"the {label} must not be empty")
    if len(stripped) > limit:
        raise AppealTextError(f"the {label} is {len(stripped)} characters; at most {limit}")
    if "\x00" in stripped:
        raise AppealTextError(f"the {label} holds a NUL character")
    try:
        stripped.encode("utf-8")  # sealed as UTF-8: a lone surrogate (JSON allows) is no text
    except UnicodeEncodeError:
        raise AppealTextError(f"the {label} is not text: it holds a lone surrogate") from None
    return stripped


def bounded_evidence(items: Iterable[str]) -> tuple[str, ...]:
    """The items of evidence, each bounded; AppealTextError past MAX_EVIDENCE_ITEMS."""
    given = list(items)
    if len(given) > MAX_EVIDENCE_ITEMS:
        raise AppealTextError(f"{len(given)} items of evidence; at most {MAX_EVIDENCE_ITEMS}")
    return tuple(bounded_text("evidence", item, MAX_EVIDENCE_TEXT) for item in given)


def _appeal(row: Any) -> Appeal:
    return Appeal(
        id=row.id,
        kind=row.kind,
        record_id=row.record_id,
        department=row.department,
        filed_by=row.filed_by,
        filed_on=date.fromisoformat(row.filed_on),
        decide_by=date.fromisoformat(row.decide_by),
        state=row.state,
        decided_on=None if row.decided_on is None else date.fromisoformat(row.decided_on),
        decided_by=row.decided_by,
        overdue_flagged=bool(row.overdue_flagged),
    )


_SEALED = frozenset({"filing_sealed", "filing_key", "reasons_sealed", "reasons_key"})
_COLUMNS = [c for c in appeals.c if c.name not in _SEALED]  # lists need no key


class AppealRecords(SealedTexts):
    """The appeals table on a ledger store's database; `vault` seals and opens the texts
    (None: lists and flags only)."""

    TEXTS = "appeals' texts"

    def __init__(self, store: Store, vault: Vault | None = None) -> None:
        super().__init__(store, vault, appeal_migrations, MIGRATIONS)

    # ------------------------------------------------------------------ writes

    def add(
        self,
        kind: AppealKind,
        record_id: str,
        department: str,
        filed_by: FiledBy,
        filed_on: date,
        decide_by: date,
        text: str,
        evidence: Sequence[str] = (),
    ) -> Appeal:
        """File an appeal; RecordsError (nothing stored) when one of its kind is open."""
        appeal_id = _PREFIX[kind] + secrets.token_hex(8)
        filing = json.dumps({"text": text, "evidence": list(evidence)}, ensure_ascii=False)
        sealed = self._vault().seal(filing.encode("utf-8"), associated=_aad(appeal_id, "filing"))
        row = {
            "id": appeal_id,
            "kind": kind,
            "record_id": record_id,
            "department": department,
            "filed_by": filed_by,
            "filed_on": filed_on.isoformat(),
            "filed_at": time.time(),
            "decide_by": decide_by.isoformat(),
            "state": "open",
            "filing_sealed": sealed.ciphertext,
            "filing_key": sealed.wrapped_key,
            "overdue_flagged": False,
            "updated_at": time.time(),
        }
        try:
            with self._writer.begin() as connection:
                connection.execute(appeals.insert().values(**row))
        except IntegrityError:
            what = "an objection" if kind == "objection" else "a repair application"
            raise RecordsError(
                f"breach {record_id} already has {what} open: wait for its decision"
            ) from None
        found = self.get(appeal_id)
        assert found is not None
        return found

    def decide(
        self,
        appeal_id: str,
        state: AppealState,
        on: date,
        decided_by: str,
        reasons: str,
    ) -> Appeal:
        """Record the decision with its reasons (sealed); RecordsError if already decided."""
        sealed = self._vault().seal(reasons.encode("utf-8"), associated=_aad(appeal_id, "reasons"))
        with self._writer.begin() as connection:
            done = connection.execute(
                update(appeals)
                .where(appeals.c.id == appeal_id, _OPEN)
                .values(
                    state=state,
                    decided_on=on.isoformat(),
                    decided_by=decided_by[:MAX_DECIDED_BY],
                    reasons_sealed=sealed.ciphertext,
                    reasons_key=sealed.wrapped_key,
                    updated_at=time.time(),
                )
            ).rowcount
        found = self.get(appeal_id)
        if found is None:
            raise UnknownRecordError(f"no appeal {appeal_id}")
        if not done:
            raise RecordsError(f"{appeal_id} was already decided ({found.state})")
        return found

    def flag_overdue(self, department: str, on: date) -> list[Appeal]:
        """Open appeals of `department` whose decision limit passed before `on`, not flagged
        before: flagged now, and returned (each once)."""
        query = select(*_COLUMNS).where(
            appeals.c.department == department,
            _OPEN,
            appeals.c.decide_by < on.isoformat(),
            appeals.c.overdue_flagged.is_(False),
        )
        with self._writer.begin() as connection:
            rows = [_appeal(row) for row in connection.execute(query).all()]
            if rows:
                connection.execute(
                    update(appeals)
                    .where(appeals.c.id.in_([a.id for a in rows]))
                    .values(overdue_flagged=True, updated_at=time.time())
                )
        return rows

    @staticmethod
    def forget_texts(connection: Connection, commitment: Hash32) -> int:
        """On erasure, in its transaction: the data keys of every text written about the
        commitment's records are destroyed (the ciphertext left opens for no one); how many
        appeals. The rest (dates, states, who decided) stays, as the breach records do."""
        records = select(breach_records.c.id).where(breach_records.c.commitment_hash == commitment)
        if not inspect(connection).has_table("appeals"):
            return 0  # no appeal was ever filed on this store
        return connection.execute(
            update(appeals)
            .where(appeals.c.record_id.in_(records))
            .values(filing_key=None, reasons_key=None, updated_at=time.time())
        ).rowcount

    # ------------------------------------------------------------------ reads

    def get(self, appeal_id: str) -> Appeal | None:
        """One appeal by id, or None."""
        with self._engine.connect() as connection:
            row = connection.execute(select(*_COLUMNS).where(appeals.c.id == appeal_id)).first()
        return None if row is None else _appeal(row)

    def open_for(self, record_id: str, kind: AppealKind) -> Appeal | None:
        """The record's open appeal of `kind`, if any."""
        with self._engine.connect() as connection:
            row = connection.execute(
                select(*_COLUMNS).where(
                    appeals.c.record_id == record_id, appeals.c.kind == kind, _OPEN
                )
            ).first()
        return None if row is None else _appeal(row)

    def open_objections_among(self, record_ids: Sequence[str]) -> dict[str, Appeal]:
        """Of these records, those under objection now: record id -> its open objection."""
        if not record_ids:
            return {}
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(*_COLUMNS).where(
                    appeals.c.record_id.in_(list(record_ids)[:MAX_LIST]),
                    appeals.c.kind == "objection",
                    _OPEN,
                )
            ).all()
        return {row.record_id: _appeal(row) for row in rows}

    def any_open_objection(self) -> bool:
        """Whether any record is under objection (lets the public list skip the lookup).

        Asked on every search: on SQLite through the driver's cursor, as SQLAlchemy's
        statement and row cost several times SQLite's read."""
        with self._engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
                try:
                    return cursor.execute(_ANY_OPEN_OBJECTION).fetchone() is not None
                finally:
                    cursor.close()
            found = connection.execute(
                select(appeals.c.id).where(appeals.c.kind == "objection", _OPEN).limit(1)
            ).first()
        return found is not None

    def listed(
        self,
        department: str,
        kind: AppealKind,
        state: AppealState | None = None,
        limit: int = 100,
    ) -> list[Appeal]:
        """The department's appeals of `kind` (in `state`, if given), oldest filing first."""
        query = select(*_COLUMNS).where(appeals.c.department == department, appeals.c.kind == kind)
        if state is not None:
            query = query.where(appeals.c.state == state)
        order = (appeals.c.filed_on, appeals.c.filed_at, appeals.c.id)
        query = query.order_by(*order).limit(min(limit, MAX_LIST))
        with self._engine.connect() as connection:
            return [_appeal(row) for row in connection.execute(query).all()]

    def for_record(self, record_id: str) -> list[Appeal]:
        """Every appeal against one record, oldest first."""
        query = (
            select(*_COLUMNS)
            .where(appeals.c.record_id == record_id)
            .order_by(appeals.c.filed_on, appeals.c.filed_at, appeals.c.id)
        )
        with self._engine.connect() as connection:
            return [_appeal(row) for row in connection.execute(query).all()]

    def texts(self, appeal_id: str) -> AppealTexts:
        """The appeal's texts, opened with the vault; UnknownRecordError if no such appeal."""
        with self._engine.connect() as connection:
            row = connection.execute(
                select(
                    appeals.c.filing_sealed,
                    appeals.c.filing_key,
                    appeals.c.reasons_sealed,
                    appeals.c.reasons_key,
                ).where(appeals.c.id == appeal_id)
            ).first()
        if row is None:
            raise UnknownRecordError(f"no appeal {appeal_id}")
        vault = self._vault()
        filing = json.loads(
            vault.open(
                bytes(row.filing_sealed), _key(row.filing_key), _aad(appeal_id, "filing")
            ).decode("utf-8")
        )
        reasons = None
        if row.reasons_sealed is not None:
            reasons = vault.open(
                bytes(row.reasons_sealed), _key(row.reasons_key), _aad(appeal_id, "reasons")
            ).decode("utf-8")
        return AppealTexts(filing["text"], tuple(filing["evidence"]), reasons)


def _aad(appeal_id: str, part: str) -> bytes:
    # Authenticated with the ciphertext: a sealed text cannot be moved to another appeal.
    return f"appeal:{appeal_id}:{part}".encode("ascii")


def _key(value: bytes | None) -> bytes | None:
    return None if value is None else bytes(value)

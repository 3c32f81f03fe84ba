"""The verifier's durable tables (verifications, breach records) in the ledger store's database."""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, NamedTuple, Protocol

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    column,
    func,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select

from ledger import LedgerError, to_hash32
from ledger.schema import apply_migrations, migrations_table
from ledger.store import Store
from ledger.types import Hash32

from .breaches import BreachRecord, corrected, expired, repaired

VerificationState = Literal[
    "due", "kept", "mismatch", "manual", "breached", "withdrawn", "integrity_failure"
]

# The contract's transitionAllowed, with "due" for Anchored. integrity_failure is ours
# (the document or its proof did not check), so it may go back to due once repaired.
# Breached is final here: the breach record carries the rest of the story.
_NEXT: dict[str, frozenset[str]] = {
    "due": frozenset({"kept", "mismatch", "manual", "breached", "withdrawn", "integrity_failure"}),
    "mismatch": frozenset({"kept", "manual", "breached"}),
    "manual": frozenset({"kept", "mismatch", "breached"}),
    "integrity_failure": frozenset({"due", "manual"}),
    "kept": frozenset(),
    "breached": frozenset(),
    "withdrawn": frozenset(),
}
MAX_PAGE_SIZE = 100
# A search counts its matches up to here and pages no deeper: beyond, narrow the search.
MAX_RESULTS = 1_000
# Names this long or longer are found anywhere in the name (through the trigram index on
# SQLite); a shorter one is a whole name as shown, or a surname that persons' masked names
# start with ("张" finds "张*" and "张**"): a part that short would be a scan of every record.
TRIGRAM = 3
MASKED = 3  # a person's name shows the surname and a star for each other character

metadata = MetaData()

verifier_migrations = migrations_table("verifier_migrations", metadata)

# Dates are ISO text (YYYY-MM-DD): text order is date order on both backends.
verifications = Table(
    "verifications",
    metadata,
    Column("commitment_hash", LargeBinary(32), primary_key=True),
    Column("matter_code", String(64), nullable=False),
    Column("department", String(64), nullable=False),
    Column("due_on", String(10), nullable=False),
    # computed past the last published official calendar: may move when it is published
    Column("deadline_provisional", Boolean, nullable=False),
    Column("state", String(24), nullable=False),
    Column("rectify_by", String(10), nullable=True),
    Column("outcome_status", Integer, nullable=True),  # the contract's Status
    Column("report", Text, nullable=True),  # JSON
    Column("evidence", LargeBinary(32), nullable=True),
    Column("tx_hash", LargeBinary(32), nullable=True),
    Column("block_number", BigInteger, nullable=True),
    Column("recorded_at", Float, nullable=True),
    Column("overdue_flagged", Boolean, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("verifications_work", verifications.c.state, verifications.c.due_on)
Index("verifications_department", verifications.c.department, verifications.c.state)

breach_records = Table(
    "breach_records",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("commitment_hash", LargeBinary(32), nullable=False),
    # keyed HMAC of the applicant's identity: exclusion without storing the ID
    Column("applicant_fingerprint", LargeBinary(32), nullable=False, index=True),
    Column("public_json", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("party_name", Text, nullable=False),  # masked for persons
    Column("party_code", String(64), nullable=False, index=True),
    Column("decision_date", String(10), nullable=False),
    Column("publication_end", String(10), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("department", String(64), nullable=False),
    Column("matter_code", String(64), nullable=False),
    Column("superseded_by", String(40), nullable=True),
    Column("repaired_on", String(10), nullable=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("tx_hash", LargeBinary(32), nullable=False),
    Column("block_number", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
)
_LIVE = breach_records.c.status != "corrected"
# One live record per commitment; a correction supersedes its original in one transaction.
Index(
    "breach_records_live_commitment",
    breach_records.c.commitment_hash,
    unique=True,
    sqlite_where=_LIVE,
    postgresql_where=_LIVE,
)
Index(
    "breach_records_listing",
    breach_records.c.status,
    breach_records.c.publication_end,
    breach_records.c.decision_date,
)


def _create_v1(connection: Connection) -> None:
    metadata.create_all(connection, tables=[verifications, breach_records])


# Public search over millions of records: one covering index per way in, each in the list's
# order (newest decision first), so a page and a bounded count never touch the table.
SEARCH_INDEXES = [
    Index(
        name,
        *(breach_records.c[n] for n in leading),
        breach_records.c.status,
        breach_records.c.decision_date.desc(),
        breach_records.c.id,
        breach_records.c.publication_end,
        *(breach_records.c[n] for n in trailing),
    )
    for name, leading, trailing in (
        ("breach_records_listed", (), ()),
        ("breach_records_by_department", ("department",), ("matter_code",)),
        ("breach_records_by_matter", ("matter_code",), ("department",)),
        ("breach_records_by_code", ("party_code",), ()),
        ("breach_records_by_name", ("party_name",), ()),  # whole names (shorter than TRIGRAM)
    )
]
# SQLite: a trigram index of the names shown, for substring search of 3 characters or more.
# Its rowids are breach_records' rowids (kept in step by triggers; see rebuild_name_index).
NAME_INDEX_DDL = (
    "CREATE VIRTUAL TABLE breach_names USING fts5(party_name, content='breach_records', "
    "tokenize='trigram')",
    "CREATE TRIGGER breach_names_insert AFTER INSERT ON breach_records BEGIN "
    "INSERT INTO breach_names(rowid, party_name) VALUES (new.rowid, new.party_name); END",
    "CREATE TRIGGER breach_names_delete AFTER DELETE ON breach_records BEGIN "
    "INSERT INTO breach_names(breach_names, rowid, party_name) "
    "VALUES ('delete', old.rowid, old.party_name); END",
    "CREATE TRIGGER breach_names_update AFTER UPDATE OF party_name ON breach_records BEGIN "
    "INSERT INTO breach_names(breach_names, rowid, party_name) "
    "VALUES ('delete', old.rowid, old.party_name); "
    "INSERT INTO breach_names(rowid, party_name) VALUES (new.rowid, new.party_name); END",
    "INSERT INTO breach_names(breach_names) VALUES ('rebuild')",
)


def _search_indexes_v2(connection: Connection) -> None:
    for index in SEARCH_INDEXES:  # a store created at v2 has them from v1's create_all
        index.create(connection, checkfirst=True)
    if connection.dialect.name == "sqlite":
        for statement in NAME_INDEX_DDL:
            connection.exec_driver_sql(statement)


def _whole_name_index_v3(connection: Connection) -> None:
    SEARCH_INDEXES[-1].create(connection, checkfirst=True)


# Version -> step. Append only: a released step never changes; a new one alters the tables.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _create_v1,
    2: _search_indexes_v2,
    3: _whole_name_index_v3,
}


def migrate(connection: Connection) -> list[int]:
    """Apply the verifier's migrations not yet applied, in order; return those applied now."""
    return apply_migrations(connection, verifier_migrations, MIGRATIONS)


def _escape_like(text: str) -> str:
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")


@functools.cache
def _search_statements(
    sqlite: bool, name: bool, trigram: bool, given: frozenset[str]
) -> tuple[Select[int], Select[Any], Select[int]]:
    """The count (up to :bound), the page (id, public JSON) and the first :bound ids in
    list order of a search, by which filters it has.

    Built once per shape, with bound parameters: building them anew was a third of the cost
    of a search. The trigram index (SQLite) gives the candidates for a name of 3 or more
    characters; LIKE decides (the index folds case beyond ASCII). A shorter name is one
    of :whole_0... (the name as shown, or masked names with that surname).
    """
    c = breach_records.c
    # Whole names go in by their index: a unary + keeps the status out of the planner's
    # choice (without statistics, SQLite would take the listing index and read every row).
    whole = sqlite and "whole_0" in given
    status = literal_column("+breach_records.status") if whole else c.status
    conditions: list[ColumnElement[bool]] = [
        status == "published",
        c.decision_date <= bindparam("decided_by"),
        c.publication_end >= bindparam("on"),
    ]
    if name:
        conditions.append(func.lower(c.party_name).like(bindparam("name_like"), escape="/"))
    if "whole_0" in given:
        whole_names: list[Any] = [bindparam(f"whole_{n}") for n in range(MASKED + 1)]
        conditions.append(c.party_name.in_(whole_names))
    if trigram:
        conditions.append(
            literal_column("breach_records.rowid").in_(
                text("SELECT rowid FROM breach_names WHERE breach_names MATCH :phrase").columns(
                    column("rowid", Integer)
                )
            )
        )
    for key, field_ in (
        ("credit_code", c.party_code),
        ("matter", c.matter_code),
        ("department", c.department),
    ):
        if key in given:
            conditions.append(field_ == bindparam(key))
    if "decided_from" in given:
        conditions.append(c.decision_date >= bindparam("decided_from"))
    matching = select(c.id).where(*conditions)
    in_order = select(c.id).where(*conditions).order_by(c.decision_date.desc(), c.id)
    # The page's ids from the covering index, then only their rows: skipped rows are not read.
    ids = in_order.limit(bindparam("limit")).offset(bindparam("offset")).subquery()
    shown = breach_records.alias("shown")
    page = (
        select(shown.c.id, shown.c.public_json)
        .join_from(ids, shown, shown.c.id == ids.c.id)
        .order_by(shown.c.decision_date.desc(), shown.c.id)
    )
    bounded = matching.limit(bindparam("bound")).subquery()
    # SQLite: rowids (in every index entry) for the page's rows, found without the id index.
    first = (
        select(literal_column("breach_records.rowid", Integer))
        .where(*conditions)
        .order_by(c.decision_date.desc(), c.id)
        .limit(bindparam("bound"))
    )
    return select(func.count()).select_from(bounded), page, first


@functools.cache
def _sqlite_text(statement: Select[int]) -> tuple[Any, tuple[str, ...]]:
    """A search statement compiled once for SQLite: the compiled form and its parameters'
    order."""
    compiled = statement.compile(dialect=sqlite_dialect())
    return compiled, tuple(compiled.positiontup or ())


def _first_ids_then_page(
    connection: Connection, first_ids: Select[int], params: dict[str, Any]
) -> tuple[int, list[str]]:
    """SQLite: the count and the page's JSON texts from one ordered read of the first
    :bound rowids (one pass over the index or the name index's candidates, where a count
    and a page would make two), then the page's rows by rowid.

    Through the driver's own cursor: SQLAlchemy's rows cost more than SQLite's read of an
    index. In the connection's transaction, so the ids and their rows agree."""
    compiled, order = _sqlite_text(first_ids)
    values = compiled.construct_params(params)
    if not connection.in_transaction():
        connection.begin()  # the store's BEGIN: the ids and their rows from one snapshot
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        found = cursor.execute(compiled.string, [values[n] for n in order]).fetchall()
        page = [row[0] for row in found[params["offset"] : params["offset"] + params["limit"]]]
        if not page:
            return len(found), []
        marks = ", ".join("?" * len(page))
        rows = cursor.execute(
            f"SELECT rowid, public_json FROM breach_records WHERE rowid IN ({marks})",  # noqa: S608
            page,
        )
        texts = dict(rows.fetchall())
    finally:
        cursor.close()
    return len(found), [texts[i] for i in page]


class RecordsError(LedgerError, ValueError):
    """A verifier record is unknown, or a change to it is not allowed."""


class UnknownRecordError(RecordsError, LookupError):
    """No verification or breach record has this key."""


class DueDate(Protocol):
    """A verification deadline: the day, and whether the calendar for it is provisional."""

    @property
    def day(self) -> date: ...
    @property
    def provisional(self) -> bool: ...


@dataclass(frozen=True)
class Verification:
    """Where one commitment's verification stands."""

    commitment_hash: Hash32
    matter_code: str
    department: str
    due_on: date
    deadline_provisional: bool
    state: VerificationState
    rectify_by: date | None
    outcome_status: int | None
    report: dict[str, Any] | None
    evidence: Hash32 | None
    tx_hash: bytes | None
    block_number: int | None
    recorded_at: float | None
    overdue_flagged: bool
    updated_at: float


@dataclass(frozen=True)
class RecordedOutcome:
    """One outcome recorded on chain, for `record_outcomes`."""

    commitment_hash: Hash32
    state: VerificationState
    outcome_status: int
    evidence: Hash32
    report: Mapping[str, Any]
    tx_hash: bytes
    block_number: int
    rectify_by: date | None = None


class BreachPage(NamedTuple):
    """One page of the public breach list and how many records match in all.

    `total` counts at most MAX_RESULTS; `total_capped` says more match than that.
    """

    records: list[BreachRecord]
    total: int
    page: int
    page_size: int
    total_capped: bool = False


class BreachJsonPage(NamedTuple):
    """A BreachPage whose records are their public JSON texts, as stored (no parsing)."""

    texts: list[str]
    total: int
    page: int
    page_size: int
    total_capped: bool = False


class StoredBreach(NamedTuple):
    """A breach record with the fingerprint of the applicant it concerns."""

    record: BreachRecord
    fingerprint: bytes


def _day(text: str | None) -> date | None:
    return None if text is None else date.fromisoformat(text)


def _verification(row: Any) -> Verification:
    return Verification(
        commitment_hash=Hash32(bytes(row.commitment_hash)),
        matter_code=row.matter_code,
        department=row.department,
        due_on=date.fromisoformat(row.due_on),
        deadline_provisional=bool(row.deadline_provisional),
        state=row.state,
        rectify_by=_day(row.rectify_by),
        outcome_status=row.outcome_status,
        report=None if row.report is None else json.loads(row.report),
        evidence=None if row.evidence is None else Hash32(bytes(row.evidence)),
        tx_hash=None if row.tx_hash is None else bytes(row.tx_hash),
        block_number=row.block_number,
        recorded_at=row.recorded_at,
        overdue_flagged=bool(row.overdue_flagged),
        updated_at=row.updated_at,
    )


def _breach_row(record: BreachRecord, fingerprint: bytes, now: float) -> dict[str, Any]:
    return {
        "id": record.id,
        "commitment_hash": to_hash32(record.commitment_hash),
        "applicant_fingerprint": fingerprint,
        "party_name": record.party_name,
        "party_code": record.party_code,
        "severity": record.severity,
        "department": record.department,
        "matter_code": record.matter_code,
        "chain_id": record.evidence.chain_id,
        "tx_hash": to_hash32(record.evidence.transaction),
        "block_number": record.evidence.block,
        **_status_columns(record, now),
    }


def _status_columns(record: BreachRecord, now: float) -> dict[str, Any]:
    return {
        "public_json": json.dumps(record.to_public_json(), ensure_ascii=False),
        "status": record.status,
        "decision_date": record.decision_date.isoformat(),
        "publication_end": record.publication_end.isoformat(),
        "superseded_by": record.superseded_by,
        "repaired_on": None if record.repaired_on is None else record.repaired_on.isoformat(),
        "updated_at": now,
    }


class VerifierRecords:
    """Verifications and breach records, on the same database as a ledger `Store`.

    Opening applies the verifier's own migrations (table `verifier_migrations`).
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._engine = store.engine
        # Writers take the write lock up front (see ledger.store: SQLite WAL upgrades fail).
        self._writer = store.engine.execution_options(immediate=True)
        with self._writer.begin() as connection:
            migrate(connection)

    # ------------------------------------------------------------------ verifications

    def schedule_many(
        self,
        items: Sequence[tuple[Hash32, str, DueDate]],
        department: str,
        now: float | None = None,
    ) -> int:
        """Schedule commitments not yet scheduled (hash, matter, deadline), in one insert."""
        if not items:
            return 0
        known = self.scheduled_among([h for h, _, _ in items])
        stamp = time.time() if now is None else now
        rows = [
            {
                "commitment_hash": commitment,
                "matter_code": matter_code,
                "department": department,
                "due_on": due.day.isoformat(),
                "deadline_provisional": due.provisional,
                "state": "due",
                "overdue_flagged": False,
                "updated_at": stamp,
            }
            for commitment, matter_code, due in items
            if commitment not in known
        ]
        if rows:
            with self._writer.begin() as connection:
                connection.execute(verifications.insert(), rows)
        return len(rows)

    def schedule(
        self,
        commitment_hash: Hash32,
        matter_code: str,
        department: str,
        due: DueDate,
        now: float | None = None,
    ) -> bool:
        """Await verification of a commitment by `due`; True if new, False if known.

        Scheduling again changes nothing, except that a provisional deadline still
        awaiting verification takes the new one (the official calendar came out).
        """
        stamp = time.time() if now is None else now
        key = verifications.c.commitment_hash == commitment_hash
        try:
            with self._writer.begin() as connection:
                row = connection.execute(select(verifications).where(key)).first()
                if row is None:
                    connection.execute(
                        verifications.insert().values(
                            commitment_hash=commitment_hash,
                            matter_code=matter_code,
                            department=department,
                            due_on=due.day.isoformat(),
                            deadline_provisional=due.provisional,
                            state="due",
                            overdue_flagged=False,
                            updated_at=stamp,
                        )
                    )
                    return True
                if (row.matter_code, row.department) != (matter_code, department):
                    raise RecordsError(
                        f"commitment 0x{commitment_hash.hex()} is scheduled for matter "
                        f"{row.matter_code} of {row.department}, not {matter_code} of {department}"
                    )
                if row.state == "due" and row.deadline_provisional:
                    connection.execute(
                        update(verifications)
                        .where(key)
                        .values(
                            due_on=due.day.isoformat(),
                            deadline_provisional=due.provisional,
                            updated_at=stamp,
                        )
                    )
                return False
        except IntegrityError:
            return False  # another process scheduled it first

    def verification(self, commitment_hash: Hash32) -> Verification | None:
        """One commitment's verification, or None if it was never scheduled."""
        with self._engine.connect() as connection:
            row = connection.execute(
                select(verifications).where(verifications.c.commitment_hash == commitment_hash)
            ).first()
        return None if row is None else _verification(row)

    def due(self, on: date, department: str | None = None, limit: int = 100) -> list[Verification]:
        """Commitments awaiting verification whose deadline is `on` or earlier, earliest first.

        To start early, pass a later day: verification may happen any time before the deadline.
        """
        return self._select(verifications.c.due_on <= on.isoformat(), department, limit)

    def overdue_unverified(self, on: date, department: str | None = None) -> list[Verification]:
        """Commitments whose verification deadline passed before `on` with nothing recorded."""
        return self._select(verifications.c.due_on < on.isoformat(), department, None)

    def flag_overdue(
        self, on: date, department: str | None = None, now: float | None = None
    ) -> list[Hash32]:
        """Flag overdue commitments for their department; return those flagged just now."""
        conditions = [
            verifications.c.state == "due",
            verifications.c.due_on < on.isoformat(),
            verifications.c.overdue_flagged.is_(False),
        ]
        if department is not None:
            conditions.append(verifications.c.department == department)
        with self._writer.begin() as connection:
            hashes = [
                Hash32(bytes(h))
                for h in connection.execute(
                    select(verifications.c.commitment_hash).where(*conditions)
                ).scalars()
            ]
            if hashes:
                connection.execute(
                    update(verifications)
                    .where(verifications.c.commitment_hash.in_(hashes))
                    .values(overdue_flagged=True, updated_at=time.time() if now is None else now)
                )
        return hashes

    def open_mismatches_past(self, on: date, department: str | None = None) -> list[Verification]:
        """Mismatches whose rectification deadline passed before `on`: candidates for breach."""
        query = select(verifications).where(
            verifications.c.state == "mismatch", verifications.c.rectify_by < on.isoformat()
        )
        if department is not None:
            query = query.where(verifications.c.department == department)
        with self._engine.connect() as connection:
            rows = connection.execute(query.order_by(verifications.c.rectify_by)).all()
        return [_verification(row) for row in rows]

    def set_state(
        self,
        commitment_hash: Hash32,
        state: VerificationState,
        *,
        rectify_by: date | None = None,
        now: float | None = None,
    ) -> Verification:
        """Move a verification to `state` (no chain transaction yet, e.g. integrity_failure)."""
        return self._move(commitment_hash, state, rectify_by, {}, now)

    def record_outcome(
        self,
        commitment_hash: Hash32,
        state: VerificationState,
        *,
        outcome_status: int,
        evidence: Hash32,
        report: Mapping[str, Any],
        tx_hash: bytes,
        block_number: int,
        rectify_by: date | None = None,
        now: float | None = None,
    ) -> Verification:
        """Move a verification to `state` with the outcome recorded on chain."""
        self.record_outcomes(
            [
                RecordedOutcome(
                    commitment_hash,
                    state,
                    outcome_status,
                    evidence,
                    report,
                    tx_hash,
                    block_number,
                    rectify_by,
                )
            ],
            now,
        )
        stored = self.verification(commitment_hash)
        assert stored is not None
        return stored

    def record_outcomes(self, entries: Sequence[RecordedOutcome], now: float | None = None) -> None:
        """`record_outcome` for many at once: one transaction, one read, one batched write."""
        if not entries:
            return
        stamp = time.time() if now is None else now
        for entry in entries:
            if entry.state == "mismatch" and entry.rectify_by is None:
                raise RecordsError("a mismatch needs rectify_by, the day rectification is due")
        with self._writer.begin() as connection:
            hashes = [entry.commitment_hash for entry in entries]
            current = dict(
                connection.execute(
                    select(verifications.c.commitment_hash, verifications.c.state).where(
                        verifications.c.commitment_hash.in_(hashes)
                    )
                ).all()
            )
            for entry in entries:
                state = current.get(entry.commitment_hash)
                if state is None:
                    raise UnknownRecordError(
                        f"commitment 0x{entry.commitment_hash.hex()} is not scheduled"
                    )
                if entry.state != state and entry.state not in _NEXT[state]:
                    raise RecordsError(
                        f"commitment 0x{entry.commitment_hash.hex()} is {state}: it cannot "
                        f"become {entry.state}"
                    )
            connection.execute(
                update(verifications)
                .where(verifications.c.commitment_hash == bindparam("key"))
                .values(
                    state=bindparam("new_state"),
                    rectify_by=bindparam("new_rectify_by"),
                    outcome_status=bindparam("new_status"),
                    evidence=bindparam("new_evidence"),
                    report=bindparam("new_report"),
                    tx_hash=bindparam("new_tx"),
                    block_number=bindparam("new_block"),
                    recorded_at=stamp,
                    updated_at=stamp,
                ),
                [
                    {
                        "key": e.commitment_hash,
                        "new_state": e.state,
                        "new_rectify_by": None
                        if e.rectify_by is None
                        else e.rectify_by.isoformat(),
                        "new_status": int(e.outcome_status),
                        "new_evidence": e.evidence,
                        "new_report": json.dumps(
                            dict(e.report), sort_keys=True, ensure_ascii=False
                        ),
                        "new_tx": e.tx_hash,
                        "new_block": e.block_number,
                    }
                    for e in entries
                ],
            )

    def _move(
        self,
        commitment_hash: Hash32,
        state: str,
        rectify_by: date | None,
        values: dict[str, Any],
        now: float | None,
    ) -> Verification:
        if state not in _NEXT:
            raise RecordsError(f"unknown verification state {state!r}; known: {sorted(_NEXT)}")
        if state == "mismatch" and rectify_by is None:
            raise RecordsError("a mismatch needs rectify_by, the day rectification is due")
        key = verifications.c.commitment_hash == commitment_hash
        with self._writer.begin() as connection:
            row = connection.execute(
                select(verifications.c.state).where(key).with_for_update()
            ).first()
            if row is None:
                raise UnknownRecordError(f"commitment 0x{commitment_hash.hex()} is not scheduled")
            # Staying in a state is allowed: a retried write, or a rectification extended.
            if state != row.state and state not in _NEXT[row.state]:
                allowed = ", ".join(sorted(_NEXT[row.state])) or "nothing (final)"
                raise RecordsError(
                    f"commitment 0x{commitment_hash.hex()} is {row.state}: it cannot become "
                    f"{state}; allowed: {allowed}"
                )
            connection.execute(
                update(verifications)
                .where(key)
                .values(
                    state=state,
                    rectify_by=None if rectify_by is None else rectify_by.isoformat(),
                    updated_at=time.time() if now is None else now,
                    **values,
                )
            )
            stored = connection.execute(select(verifications).where(key)).one()
        return _verification(stored)

    def _select(
        self, deadline: ColumnElement[bool], department: str | None, limit: int | None
    ) -> list[Verification]:
        query = select(verifications).where(verifications.c.state == "due", deadline)
        if department is not None:
            query = query.where(verifications.c.department == department)
        query = query.order_by(verifications.c.due_on, verifications.c.commitment_hash)
        with self._engine.connect() as connection:
            rows = connection.execute(query if limit is None else query.limit(limit)).all()
        return [_verification(row) for row in rows]

    # ------------------------------------------------------------------ breach records

    def add_breach(
        self, record: BreachRecord, fingerprint: bytes, now: float | None = None
    ) -> bool:
        """Store a new published record; False if this exact record is already stored."""
        if record.status != "published" or record.superseded_by is not None:
            raise RecordsError(f"breach {record.id} is {record.status}: store it when published")
        try:
            with self._writer.begin() as connection:
                stored = self._stored(connection, record.id)
                if stored is not None:
                    if stored.record != record:
                        raise RecordsError(f"breach {record.id} is stored with other content")
                    return False
                row = _breach_row(record, fingerprint, time.time() if now is None else now)
                connection.execute(breach_records.insert().values(**row))
        except IntegrityError:
            raise RecordsError(
                f"commitment {record.commitment_hash} already has a breach record: "
                "supersede it with correct_breach"
            ) from None
        return True

    def stored_breach(self, record_id: str) -> StoredBreach | None:
        """A record with the fingerprint of the applicant it concerns, or None."""
        with self._engine.connect() as connection:
            return self._stored(connection, record_id)

    def breach(self, record_id: str) -> BreachRecord | None:
        """One breach record by id (in any status), or None."""
        with self._engine.connect() as connection:
            stored = self._stored(connection, record_id)
        return None if stored is None else stored.record

    def search_breaches(
        self,
        on: date,
        *,
        name: str | None = None,
        credit_code: str | None = None,
        matter: str | None = None,
        department: str | None = None,
        decided_from: date | None = None,
        decided_to: date | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> BreachPage:
        """The public list on `on`: listed records only, newest decision first.

        `name` of TRIGRAM characters or more matches part of the name as shown (masked
        for persons, e.g. "张*"), ignoring case; a shorter one is a whole name as shown or
        the surname of masked names ("张" finds "张*" and "张**"). `credit_code` is the
        code or masked ID exactly as shown.
        Pages reach MAX_RESULTS records deep; RecordsError beyond.
        """
        found = self.search_breach_json(
            on,
            name=name,
            credit_code=credit_code,
            matter=matter,
            department=department,
            decided_from=decided_from,
            decided_to=decided_to,
            page=page,
            page_size=page_size,
        )
        records = [BreachRecord.from_json(public_json) for public_json in found.texts]
        return BreachPage(records, found.total, page, page_size, found.total_capped)

    def search_breach_json(
        self,
        on: date,
        *,
        name: str | None = None,
        credit_code: str | None = None,
        matter: str | None = None,
        department: str | None = None,
        decided_from: date | None = None,
        decided_to: date | None = None,
        page: int = 1,
        page_size: int = 20,
    ) -> BreachJsonPage:
        """`search_breaches` with each record as its stored public JSON text (for serving)."""
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise RecordsError(f"page starts at 1 and page_size is 1 to {MAX_PAGE_SIZE}")
        if (page - 1) * page_size >= MAX_RESULTS:
            raise RecordsError(
                f"pages reach the first {MAX_RESULTS} records only: narrow the search"
            )
        # Listed on `on`, with one upper bound on the decision date: given two, the planner
        # may range over the wider one.
        decided_by = on if decided_to is None else min(on, decided_to)
        params: dict[str, Any] = {
            "on": on.isoformat(),
            "decided_by": decided_by.isoformat(),
            "bound": MAX_RESULTS + 1,
            "limit": page_size,
            "offset": (page - 1) * page_size,
        }
        trigram = False
        if name and len(name) < TRIGRAM:
            params.update({f"whole_{stars}": name + "*" * stars for stars in range(MASKED + 1)})
        elif name:
            params["name_like"] = "%" + _escape_like(name.lower()) + "%"
            trigram = self._engine.dialect.name == "sqlite"
            if trigram:
                params["phrase"] = '"' + name.replace('"', '""') + '"'
        for key, wanted in (
            ("credit_code", credit_code),
            ("matter", matter),
            ("department", department),
            ("decided_from", None if decided_from is None else decided_from.isoformat()),
        ):
            if wanted is not None:
                params[key] = wanted
        count, page_rows, first_ids = _search_statements(
            self._engine.dialect.name == "sqlite", "name_like" in params, trigram, frozenset(params)
        )
        with self._engine.connect() as connection:
            if self._engine.dialect.name == "sqlite":
                total, shown = _first_ids_then_page(connection, first_ids, params)
            else:
                total = connection.execute(count, params).scalar_one()
                shown = [row.public_json for row in connection.execute(page_rows, params)]
        capped = total > MAX_RESULTS
        return BreachJsonPage(shown, min(int(total), MAX_RESULTS), page, page_size, capped)

    def listed_breach_json(self, record_id: str, on: date) -> str | None:
        """The public JSON text of a record listed on `on`, or None (unknown or not listed)."""
        c = breach_records.c
        with self._engine.connect() as connection:
            public_json: str | None = connection.execute(
                select(c.public_json).where(c.id == record_id, *self._listed_on(on))
            ).scalar_one_or_none()
        return public_json

    @staticmethod
    def _listed_on(on: date) -> list[ColumnElement[bool]]:
        # verifier.breaches.publicly_listed, as SQL
        c = breach_records.c
        day = on.isoformat()
        return [c.status == "published", c.decision_date <= day, c.publication_end >= day]

    def rebuild_name_index(self) -> None:
        """Rebuild the trigram name index from the table (SQLite; after a VACUUM, say)."""
        if self._engine.dialect.name == "sqlite":
            with self._writer.begin() as connection:
                connection.exec_driver_sql(NAME_INDEX_DDL[-1])

    def update_breach_status(
        self,
        record_id: str,
        status: Literal["repaired", "expired"],
        on: date,
        now: float | None = None,
    ) -> BreachRecord:
        """Repair or expire a published record on `on`, by the rules of `verifier.breaches`.

        Raises RepairTooEarlyError or BreachStateError (nothing changes); returns the record.
        """
        transition = {"repaired": repaired, "expired": expired}.get(status)
        if transition is None:
            raise RecordsError(f"breach status {status!r}: use correct_breach for corrections")
        with self._writer.begin() as connection:
            stored = self._stored(connection, record_id, lock=True)
            if stored is None:
                raise UnknownRecordError(f"no breach record {record_id}")
            updated = transition(stored.record, on)
            self._write_status(connection, updated, now)
        return updated

    def correct_breach(
        self,
        original_id: str,
        correction: BreachRecord,
        fingerprint: bytes,
        now: float | None = None,
    ) -> BreachRecord:
        """Supersede a record with its correction, in one transaction; return the original."""
        try:
            with self._writer.begin() as connection:
                stored = self._stored(connection, original_id, lock=True)
                if stored is None:
                    raise UnknownRecordError(f"no breach record {original_id}")
                superseded = corrected(stored.record, by=correction)
                self._write_status(connection, superseded, now)
                row = _breach_row(correction, fingerprint, time.time() if now is None else now)
                connection.execute(breach_records.insert().values(**row))
        except IntegrityError:
            raise RecordsError(
                f"breach {correction.id} cannot be stored: its id or commitment is taken"
            ) from None
        return superseded

    def annul_breach(self, record_id: str, now: float | None = None) -> StoredBreach:
        """Withdraw a record found wrong after an objection (e.g. mistaken identity).

        It leaves the public list with nothing in its place; its history stays.
        """
        with self._writer.begin() as connection:
            stored = self._stored(connection, record_id, lock=True)
            if stored is None:
                raise UnknownRecordError(f"no breach record {record_id}")
            if stored.record.status != "published":
                raise RecordsError(f"breach {record_id} is {stored.record.status}, not published")
            annulled = dataclasses.replace(stored.record, status="corrected")
            self._write_status(connection, annulled, now)
        return StoredBreach(annulled, stored.fingerprint)

    def states_of(self, hashes: Sequence[Hash32]) -> dict[bytes, str]:
        """The verification state of each of these commitments that is scheduled."""
        found: dict[bytes, str] = {}
        with self._engine.connect() as connection:
            for start in range(0, len(hashes), 500):
                rows = connection.execute(
                    select(verifications.c.commitment_hash, verifications.c.state).where(
                        verifications.c.commitment_hash.in_(list(hashes[start : start + 500]))
                    )
                ).all()
                found.update((bytes(row.commitment_hash), row.state) for row in rows)
        return found

    def scheduled_among(self, hashes: Sequence[Hash32]) -> set[bytes]:
        """Which of these commitments are already scheduled."""
        found: set[bytes] = set()
        with self._engine.connect() as connection:
            for start in range(0, len(hashes), 500):
                part = list(hashes[start : start + 500])
                found.update(
                    bytes(h)
                    for h in connection.execute(
                        select(verifications.c.commitment_hash).where(
                            verifications.c.commitment_hash.in_(part)
                        )
                    ).scalars()
                )
        return found

    @staticmethod
    def _ended(on: date) -> Select[tuple[str, bytes]]:
        return (
            select(breach_records.c.public_json, breach_records.c.applicant_fingerprint)
            .where(
                breach_records.c.status == "published",
                breach_records.c.publication_end < on.isoformat(),
            )
            .order_by(breach_records.c.id)
        )

    def ended_publications(self, on: date) -> list[StoredBreach]:
        """Published records whose publication period ended before `on` (not yet expired)."""
        with self._engine.connect() as connection:
            rows = connection.execute(self._ended(on)).all()
        return [
            StoredBreach(BreachRecord.from_json(row.public_json), bytes(row.applicant_fingerprint))
            for row in rows
        ]

    def expire_breaches(self, on: date, now: float | None = None) -> list[StoredBreach]:
        """Mark published records whose publication ended before `on` as expired."""
        with self._writer.begin() as connection:
            rows = connection.execute(self._ended(on)).all()
            ended = [
                StoredBreach(
                    expired(BreachRecord.from_json(row.public_json), on),
                    bytes(row.applicant_fingerprint),
                )
                for row in rows
            ]
            for item in ended:
                self._write_status(connection, item.record, now)
        return ended

    def unrepaired_breach_for(self, fingerprint: bytes, on: date) -> bool:
        """Whether the applicant has a listed breach on `on`: the commitment route is closed."""
        with self._engine.connect() as connection:
            found = connection.execute(
                select(breach_records.c.id)
                .where(
                    breach_records.c.applicant_fingerprint == fingerprint,
                    breach_records.c.status == "published",
                    breach_records.c.publication_end >= on.isoformat(),
                )
                .limit(1)
            ).first()
        return found is not None

    @staticmethod
    def _stored(connection: Connection, record_id: str, lock: bool = False) -> StoredBreach | None:
        query = select(breach_records.c.public_json, breach_records.c.applicant_fingerprint).where(
            breach_records.c.id == record_id
        )
        # PostgreSQL: a concurrent repair or correction waits instead of acting on stale data.
        row = connection.execute(query.with_for_update() if lock else query).first()
        if row is None:
            return None
        return StoredBreach(
            BreachRecord.from_json(row.public_json), bytes(row.applicant_fingerprint)
        )

    @staticmethod
    def _write_status(connection: Connection, record: BreachRecord, now: float | None) -> None:
        connection.execute(
            update(breach_records)
            .where(breach_records.c.id == record.id)
            .values(**_status_columns(record, time.time() if now is None else now))
        )

"""Rectification evidence (整改材料) filed during a mismatch's rectification window: one
table, its own migrations, the text sealed with the store's vault as the appeals' are.

What was written is personal data: sealed under a data key of its own, authenticated with
the filing's id, never logged, destroyed (its key) when the commitment is erased. The rest
(which commitment, who filed, when, the window's end, the decision) is plain so that lists
need no key. The department decides a filing with its rectify action: accepted means the
mismatch is kept, the filing's id in the decision's note. A mismatch with evidence filed in
time and not decided yet is not proposed as a breach when its window ends: it waits for the
department's decision.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import (
    Column,
    Connection,
    Engine,
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

from ledger import Hash32, Store, Vault, hex32, migrations_table
from verifier.errors import RecordsError, UnknownRecordError
from verifier.records.appeals import FiledBy, bounded_text
from verifier.records.own_table import SealedTexts

RectificationState = Literal["open", "accepted", "rejected"]

MAX_EVIDENCE = 4000  # characters of the evidence's text
MAX_DECIDED_BY = 200
MAX_LIST = 500

metadata = MetaData()
rectification_migrations = migrations_table("rectification_migrations", metadata)

rectifications = Table(
    "rectifications",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("commitment_hash", LargeBinary(32), nullable=False),
    Column("department", String(64), nullable=False),
    Column("filed_by", String(16), nullable=False),
    Column("filed_on", String(10), nullable=False),
    Column("filed_at", Float, nullable=False),  # the moment: orders a day's filings
    Column("rectify_by", String(10), nullable=False),  # the window's last day when filed
    Column("state", String(16), nullable=False),
    Column("text_sealed", LargeBinary, nullable=False),
    Column("text_key", LargeBinary, nullable=True),  # None once erased: opens for no one
    Column("decided_on", String(10), nullable=True),
    Column("decided_by", String(MAX_DECIDED_BY), nullable=True),
    Column("updated_at", Float, nullable=False),
)
Index("rectifications_department", rectifications.c.department, rectifications.c.state)
Index("rectifications_commitment", rectifications.c.commitment_hash)


def _create_v1(connection: Connection) -> None:
    metadata.create_all(connection, tables=[rectifications])


MIGRATIONS = {1: _create_v1}


@dataclass(frozen=True)
class Rectification:
    """A filing of rectification evidence, without its sealed text."""

    id: str
    commitment: Hash32
    department: str
    filed_by: FiledBy
    filed_on: date
    rectify_by: date
    state: RectificationState
    decided_on: date | None
    decided_by: str | None

    def to_json_obj(self) -> dict[str, Any]:
        """The filing as plain JSON (dates as ISO text), its text left out."""
        return {
            "id": self.id,
            "commitment": hex32(self.commitment),
            "department": self.department,
            "filed_by": self.filed_by,
            "filed_on": self.filed_on.isoformat(),
            "rectify_by": self.rectify_by.isoformat(),
            "state": self.state,
            "decided_on": None if self.decided_on is None else self.decided_on.isoformat(),
            "decided_by": self.decided_by,
        }


def _row(row: Any) -> Rectification:
    return Rectification(
        id=row.id,
        commitment=Hash32(bytes(row.commitment_hash)),
        department=row.department,
        filed_by=row.filed_by,
        filed_on=date.fromisoformat(row.filed_on),
        rectify_by=date.fromisoformat(row.rectify_by),
        state=row.state,
        decided_on=None if row.decided_on is None else date.fromisoformat(row.decided_on),
        decided_by=row.decided_by,
    )


_COLUMNS = [c for c in rectifications.c if c.name not in ("text_sealed", "text_key")]
_ORDER = (rectifications.c.filed_on, rectifications.c.filed_at, rectifications.c.id)


def _aad(filing_id: str) -> bytes:
    # Authenticated with the ciphertext: a sealed text cannot be moved to another filing.
    return f"rectification:{filing_id}:text".encode("ascii")


class RectificationRecords(SealedTexts):
    """The rectifications table on a ledger store's database; `vault` seals and opens the
    texts (None: lists only)."""

    TEXTS = "rectification texts"

    def __init__(self, store: Store, vault: Vault | None = None) -> None:
        super().__init__(store, vault, rectification_migrations, MIGRATIONS)

    def add(
        self,
        commitment: Hash32,
        department: str,
        filed_by: FiledBy,
        filed_on: date,
        rectify_by: date,
        text: str,
    ) -> Rectification:
        """File evidence (AppealTextError, nothing stored, for a blank or too long text)."""
        written = bounded_text("rectification evidence", text, MAX_EVIDENCE)
        filing_id = "RE-" + secrets.token_hex(8)
        sealed = self._vault().seal(written.encode("utf-8"), associated=_aad(filing_id))
        now = time.time()
        with self._writer.begin() as connection:
            connection.execute(
                rectifications.insert().values(
                    id=filing_id,
                    commitment_hash=bytes(commitment),
                    department=department,
                    filed_by=filed_by,
                    filed_on=filed_on.isoformat(),
                    filed_at=now,
                    rectify_by=rectify_by.isoformat(),
                    state="open",
                    text_sealed=sealed.ciphertext,
                    text_key=sealed.wrapped_key,
                    updated_at=now,
                )
            )
        found = self.get(filing_id)
        assert found is not None
        return found

    def decide(
        self, filing_id: str, state: RectificationState, on: date, decided_by: str
    ) -> Rectification:
        """Record the decision; RecordsError if already decided."""
        with self._writer.begin() as connection:
            done = connection.execute(
                update(rectifications)
                .where(rectifications.c.id == filing_id, rectifications.c.state == "open")
                .values(
                    state=state,
                    decided_on=on.isoformat(),
                    decided_by=decided_by[:MAX_DECIDED_BY],
                    updated_at=time.time(),
                )
            ).rowcount
        found = self.get(filing_id)
        if found is None:
            raise UnknownRecordError(f"no rectification evidence {filing_id}")
        if not done:
            raise RecordsError(f"{filing_id} was already decided ({found.state})")
        return found

    @staticmethod
    def forget_texts(connection: Connection, commitment: Hash32) -> int:
        """On erasure, in its transaction: the data keys of the commitment's evidence are
        destroyed (the ciphertext left opens for no one); how many filings."""
        if not inspect(connection).has_table("rectifications"):
            return 0  # none was ever filed on this store
        return connection.execute(
            update(rectifications)
            .where(rectifications.c.commitment_hash == bytes(commitment))
            .values(text_key=None, updated_at=time.time())
        ).rowcount

    @staticmethod
    def awaiting_decision(engine: Engine, commitments: Sequence[Hash32]) -> set[bytes]:
        """Of these commitments, those with evidence filed and not decided yet: their
        mismatch waits for the department, whatever the day (no key, no migration)."""
        if not commitments:
            return set()
        with engine.connect() as connection:
            if not inspect(connection).has_table("rectifications"):
                return set()  # none was ever filed on this store
            rows = connection.execute(
                select(rectifications.c.commitment_hash).where(
                    rectifications.c.commitment_hash.in_([bytes(c) for c in commitments]),
                    rectifications.c.state == "open",
                )
            ).all()
        return {bytes(row.commitment_hash) for row in rows}

    def get(self, filing_id: str) -> Rectification | None:
        """One filing by id, or None."""
        with self._engine.connect() as connection:
            row = connection.execute(
                select(*_COLUMNS).where(rectifications.c.id == filing_id[:64])
            ).first()
        return None if row is None else _row(row)

    def for_commitment(self, commitment: Hash32) -> list[Rectification]:
        """Every filing for one commitment, oldest first."""
        query = (
            select(*_COLUMNS)
            .where(rectifications.c.commitment_hash == bytes(commitment))
            .order_by(*_ORDER)
        )
        with self._engine.connect() as connection:
            return [_row(row) for row in connection.execute(query).all()]

    def listed(
        self, department: str, state: RectificationState | None = None, limit: int = 100
    ) -> list[Rectification]:
        """The department's filings (in `state`, if given), oldest first."""
        query = select(*_COLUMNS).where(rectifications.c.department == department)
        if state is not None:
            query = query.where(rectifications.c.state == state)
        query = query.order_by(*_ORDER).limit(max(1, min(limit, MAX_LIST)))
        with self._engine.connect() as connection:
            return [_row(row) for row in connection.execute(query).all()]

    def text(self, filing_id: str) -> str:
        """What was filed, opened with the vault; UnknownRecordError if no such filing,
        VaultError once erased."""
        with self._engine.connect() as connection:
            row = connection.execute(
                select(rectifications.c.text_sealed, rectifications.c.text_key).where(
                    rectifications.c.id == filing_id
                )
            ).first()
        if row is None:
            raise UnknownRecordError(f"no rectification evidence {filing_id}")
        key = None if row.text_key is None else bytes(row.text_key)
        return self._vault().open(bytes(row.text_sealed), key, _aad(filing_id)).decode("utf-8")

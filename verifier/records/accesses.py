"""Who looked up department data, for which commitment, when and why: the access log.

Every lookup of a department's data source is written here before the request goes out, so
that no data leaves a source unrecorded: the department that asked, who in it (a
verification run or an officer), the source, the commitment (by its hash: the log holds no
name and no ID number), the purpose and the time. A run looks up thousands of subjects: one
insert per chunk. The applicant's view lists the accesses to their own commitments; a
department lists the accesses it made.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    Column,
    Connection,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    inspect,
    select,
)

from ledger import Hash32, Store, hex32, insert_rows, migrations_table
from verifier.records.own_table import OwnTable

AccessPurpose = Literal["verification", "manual_check"]
PURPOSES: tuple[AccessPurpose, ...] = ("verification", "manual_check")
MAX_REQUESTED_BY = 128
MAX_LIST = 1000
IN_CHUNK = 500  # commitments read at once

metadata = MetaData()
access_migrations = migrations_table("access_migrations", metadata)
data_accesses = Table(
    "data_accesses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("commitment_hash", LargeBinary(32), nullable=False),
    Column("department", String(64), nullable=False),  # the department that asked
    Column("requested_by", String(MAX_REQUESTED_BY), nullable=False),  # run:<id> | officer
    Column("source", String(64), nullable=False),
    Column("purpose", String(24), nullable=False),
    Column("accessed_at", Float, nullable=False),
)
_COLUMNS = ("commitment_hash", "department", "requested_by", "source", "purpose", "accessed_at")
Index("data_accesses_commitment", data_accesses.c.commitment_hash)
Index("data_accesses_department", data_accesses.c.department, data_accesses.c.accessed_at)


def _create_v1(connection: Connection) -> None:
    metadata.create_all(connection, tables=[data_accesses])


MIGRATIONS = {1: _create_v1}


@dataclass(frozen=True)
class Access:
    """One lookup of one commitment's subject in one data source."""

    commitment_hash: Hash32
    department: str
    requested_by: str
    source: str
    purpose: AccessPurpose
    accessed_at: float

    def __post_init__(self) -> None:
        if len(self.commitment_hash) != 32:
            raise ValueError("a commitment hash is 32 bytes")
        if self.purpose not in PURPOSES:
            raise ValueError(f"purpose: one of {', '.join(PURPOSES)}")
        if not self.requested_by or len(self.requested_by) > MAX_REQUESTED_BY:
            raise ValueError(f"requested_by: 1 to {MAX_REQUESTED_BY} characters")

    def to_json_obj(self) -> dict[str, Any]:
        """The access as plain JSON (the commitment as 0x hex, the time as UTC seconds)."""
        return {
            "commitment": hex32(self.commitment_hash),
            "department": self.department,
            "requested_by": self.requested_by,
            "source": self.source,
            "purpose": self.purpose,
            "accessed_at": self.accessed_at,
        }


def _access(row: Any) -> Access:
    return Access(
        Hash32(bytes(row.commitment_hash)),
        row.department,
        row.requested_by,
        row.source,
        row.purpose,
        row.accessed_at,
    )


class AccessLog(OwnTable):
    """The access log in the store (its table made or migrated on first use)."""

    def __init__(self, store: Store) -> None:
        super().__init__(store, access_migrations, MIGRATIONS)

    def record(self, accesses: Sequence[Access]) -> int:
        """Log `accesses` in one insert; return how many."""
        if not accesses:
            return 0
        # Plain tuples straight to the driver: a verification run logs every lookup here.
        rows = [
            (
                bytes(a.commitment_hash),
                a.department,
                a.requested_by,
                a.source,
                a.purpose,
                a.accessed_at,
            )
            for a in accesses
        ]
        with self._writer.begin() as connection:
            insert_rows(connection, data_accesses, _COLUMNS, rows)
        return len(rows)

    def lookups(
        self,
        commitments: Sequence[Hash32],
        department: str,
        requested_by: str,
        sources: Iterable[str],
        purpose: AccessPurpose = "verification",
    ) -> int:
        """Log one access per commitment and source, all at this moment; return how many."""
        now = time.time()
        names = sorted(set(sources))
        return self.record(
            [
                Access(c, department, requested_by, name, purpose, now)
                for c in commitments
                for name in names
            ]
        )

    def of_department(
        self,
        department: str,
        *,
        commitment: Hash32 | None = None,
        since: float | None = None,
        limit: int = MAX_LIST,
    ) -> list[Access]:
        """The department's accesses, newest first (of one commitment, since a time)."""
        c = data_accesses.c
        query = select(data_accesses).where(c.department == department)
        if commitment is not None:
            query = query.where(c.commitment_hash == bytes(commitment))
        if since is not None:
            query = query.where(c.accessed_at >= since)
        query = query.order_by(c.accessed_at.desc(), c.id.desc()).limit(min(limit, MAX_LIST))
        with self.store.engine.connect() as connection:
            return [_access(row) for row in connection.execute(query)]


def accesses_of(store: Store, commitments: Sequence[Hash32]) -> dict[bytes, list[Access]]:
    """The accesses to these commitments' data, oldest first, by commitment; read only
    (nothing when no access was ever logged in this store)."""
    found: dict[bytes, list[Access]] = {}
    if not commitments:
        return found
    with store.engine.connect() as connection:
        if not inspect(connection).has_table(data_accesses.name):
            return found
        c = data_accesses.c
        wanted = [bytes(h) for h in commitments]
        for start in range(0, len(wanted), IN_CHUNK):
            query = (
                select(data_accesses)
                .where(c.commitment_hash.in_(wanted[start : start + IN_CHUNK]))
                .order_by(c.accessed_at, c.id)
            )
            for row in connection.execute(query):
                found.setdefault(bytes(row.commitment_hash), []).append(_access(row))
    return found

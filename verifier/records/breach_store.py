"""Breach records: stored when published, then repaired, corrected, annulled or expired, and
the applicant exclusion they imply, as a part of `verifier.records.facade.VerifierRecords`.

Nothing is published under the wrong department (`publication_conflict`): an outcome is
published only when the department that recorded it is the department of the commitment's
matter. Records and batches are keyed by department on chain, so a department can hold its
own record of a hash that is another department's commitment (a squat, or a store row whose
matter is another department's); its outcomes on it are withheld, and reported.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from datetime import date
from typing import Any, Literal, NamedTuple

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select

from ledger import (
    ErasureRefusedError,
    Hash32,
    InvalidDocumentError,
    Status,
    commitments,
    to_hash32,
)
from verifier.breaches import BreachRecord, corrected, expired, repaired
from verifier.catalog import Catalog
from verifier.errors import RecordsError, UnknownRecordError
from verifier.records.stats import count_moves
from verifier.records.tables import ERASED_PARTY, breach_records

# What a breach record's move is on chain, for the statistics (verifier.records.stats).
_CLOSED_AS = {"repaired": Status.REPAIRED, "expired": Status.EXPIRED, "corrected": Status.CORRECTED}


def publication_conflict(
    catalog: Catalog, recorded_by: str, matter_code: str, stored_department: str | None = None
) -> str | None:
    """Why an outcome that `recorded_by` recorded on a commitment of `matter_code` must not
    be published (no personal data in it), or None when it may be.

    The department responsible is the catalog's for the matter; for a matter the catalog no
    longer knows, the department the store took the commitment in for (`stored_department`).
    """
    try:
        responsible: str | None = catalog.department_of(matter_code)
    except InvalidDocumentError:
        responsible = stored_department
    if responsible is None:
        return f"matter {matter_code} is unknown: no department is responsible for it"
    if responsible != recorded_by:
        return (
            f"recorded by {recorded_by}, but matter {matter_code} is {responsible}'s: "
            "withheld from publication"
        )
    return None


class StoredBreach(NamedTuple):
    """A breach record with the fingerprint of the applicant it concerns."""

    record: BreachRecord
    fingerprint: bytes


def _check_taken_in_for(connection: Connection, record: BreachRecord) -> None:
    """RecordsError when the store took the record's commitment in for another department
    than the record's (its matter's): that department's outcomes on it are not published."""
    taken_in_for = connection.execute(
        select(commitments.c.department).where(
            commitments.c.hash == to_hash32(record.commitment_hash)
        )
    ).scalar()
    if taken_in_for is not None and taken_in_for != record.department:
        raise RecordsError(
            f"breach {record.id}: the commitment was taken in for {taken_in_for}, but matter "
            f"{record.matter_code} is {record.department}'s: not published"
        )


def _count_closing(
    connection: Connection, before: BreachRecord, after: BreachRecord, now: float | None
) -> None:
    """Count a published record's repair, expiry or correction, in its transaction."""
    closed = _CLOSED_AS.get(after.status)
    if before.status == "published" and closed is not None:
        count_moves(
            connection, [(before.department, before.matter_code, Status.BREACHED, closed)], now
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


class BreachStore:
    """The breach records table's reads and writes (the public search is `BreachSearch`)."""

    _engine: Engine
    _writer: Engine

    def add_breach(
        self,
        record: BreachRecord,
        fingerprint: bytes,
        now: float | None = None,
        *,
        recorded_by: str | None = None,
    ) -> bool:
        """Store a new published record; False if this exact record is already stored.

        RecordsError, nothing stored, when the record's department (its matter's) is not
        the department that recorded the breach (`recorded_by`) or that the store took the
        commitment in for: nothing is published under the wrong department.
        """
        if record.status != "published" or record.superseded_by is not None:
            raise RecordsError(f"breach {record.id} is {record.status}: store it when published")
        if recorded_by is not None and recorded_by != record.department:
            raise RecordsError(
                f"breach {record.id}: recorded by {recorded_by}, but matter "
                f"{record.matter_code} is {record.department}'s: not published"
            )
        try:
            with self._writer.begin() as connection:
                _check_taken_in_for(connection, record)
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
            _count_closing(connection, stored.record, updated, now)
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
                _check_taken_in_for(connection, correction)
                self._write_status(connection, superseded, now)
                _count_closing(connection, stored.record, superseded, now)
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
            _count_closing(connection, stored.record, annulled, now)
        return StoredBreach(annulled, stored.fingerprint)

    @staticmethod
    def forget_applicant(connection: Connection, commitment: Hash32) -> None:
        """On erasure, in its transaction: the commitment's records lose the applicant's
        fingerprint (a random value instead) and their name and code (ERASED_PARTY).
        ErasureRefusedError while one is published: the law requires it as it is."""
        rows = connection.execute(
            select(breach_records.c.public_json).where(
                breach_records.c.commitment_hash == commitment
            )
        ).all()
        for row in rows:
            record = BreachRecord.from_json(row.public_json)
            if record.status == "published":
                raise ErasureRefusedError(
                    f"erasure refused: breach {record.id} is published (until "
                    f"{record.publication_end}); the law requires keeping it while it is: "
                    "erase again once it is repaired, corrected or expired"
                )
            redacted = dataclasses.replace(record, party_name=ERASED_PARTY, party_code=ERASED_PARTY)
            connection.execute(
                update(breach_records)
                .where(breach_records.c.id == record.id)
                .values(
                    applicant_fingerprint=os.urandom(32),
                    party_name=ERASED_PARTY,
                    party_code=ERASED_PARTY,
                    public_json=json.dumps(redacted.to_public_json(), ensure_ascii=False),
                )
            )

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
                _count_closing(
                    connection,
                    dataclasses.replace(item.record, status="published"),
                    item.record,
                    now,
                )
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

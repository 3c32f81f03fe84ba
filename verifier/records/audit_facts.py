"""What the auditors' lookup by hash shows from the store, read in one query: the
commitment, its anchored batch and proof, and its verification state.

The lookup asked three queries through SQLAlchemy's rows (the commitment's whole row with its
sealed data, its anchoring, its verification with the outbox's report): most of a lookup's
cost in the store. Here one statement, compiled once, joins the three through their primary
keys and reads only the columns shown; on SQLite through the driver's own cursor.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, and_, bindparam, select
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.sql import Select

from ledger import Hash32, batches, commitments, proof_in_nodes
from verifier.records.tables import verifications


class AnchoredIn(NamedTuple):
    """The anchored batch that holds a commitment, and the commitment's proof in it."""

    root: Hash32
    size: int
    tx_hash: bytes
    block_number: int
    block_hash: bytes
    anchored_at: float | None
    proof: tuple[Hash32, ...]


class AuditFact(NamedTuple):
    """A commitment as the audit lookup shows it (no personal data)."""

    hash: Hash32
    department: str
    matter_code: str
    received_at: float
    state: str
    anchoring: AnchoredIn | None  # None until its batch is anchored
    verification_state: str | None  # None when no verification was scheduled


@functools.cache
def _statement() -> Select[Any]:
    c, b, v = commitments.c, batches.c, verifications.c
    return (
        select(
            c.department,
            c.matter_code,
            c.received_at,
            c.state,
            c.proof,
            b.root,
            b.size,
            b.tx_hash,
            b.block_number,
            b.block_hash,
            b.anchored_at,
            v.state,
            b.tree,  # the batch's tree (ledger v6): the proof of a member stored without one
        )
        .select_from(
            commitments.outerjoin(
                batches, and_(b.id == c.batch_id, b.state == "anchored")
            ).outerjoin(verifications, v.commitment_hash == c.hash)
        )
        .where(c.hash == bindparam("digest"))
    )


@functools.cache
def _sqlite_text() -> tuple[str, tuple[str, ...]]:
    """The statement for SQLite's driver, and the names of its parameters in order."""
    compiled = _statement().compile(dialect=sqlite_dialect())
    return compiled.string, tuple(compiled.positiontup or ())


@functools.cache
def _sqlite_constants() -> dict[str, Any]:
    compiled = _statement().compile(dialect=sqlite_dialect())
    return dict(compiled.construct_params({"digest": b""}))


def _split(blob: bytes | None) -> tuple[Hash32, ...]:
    if not blob:
        return ()
    return tuple(Hash32(blob[i : i + 32]) for i in range(0, len(blob), 32))


def _proof(digest: Hash32, stored: Any, tree: Any) -> tuple[Hash32, ...]:
    """The proof stored with the commitment, else sliced from its batch's tree (as
    ledger.Store reads it)."""
    if stored is not None or tree is None:
        return _split(None if stored is None else bytes(stored))
    return proof_in_nodes(bytes(tree), digest) or ()


def _fact(digest: Hash32, row: Any) -> AuditFact:
    department, matter, received, state, proof, root, size, tx, block, block_hash = row[:10]
    anchoring = None
    # An anchored batch has its transaction and block (ledger.store.mark_anchored).
    if root is not None and tx is not None and block is not None and block_hash is not None:
        anchoring = AnchoredIn(
            Hash32(bytes(root)),
            int(size),
            bytes(tx),
            int(block),
            bytes(block_hash),
            row[10],
            _proof(digest, proof, row[12]),
        )
    return AuditFact(digest, department, matter, float(received), state, anchoring, row[11])


def _read(connection: Connection, digest: Hash32) -> Any:
    if connection.dialect.name == "sqlite":
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            text, order = _sqlite_text()
            values = {**_sqlite_constants(), "digest": bytes(digest)}
            return cursor.execute(text, [values[name] for name in order]).fetchone()
        finally:
            cursor.close()
    return connection.execute(_statement(), {"digest": bytes(digest)}).first()


class AuditFacts:
    """The audit lookup's read, a part of `verifier.records.facade.VerifierRecords`."""

    _engine: Engine

    def audit_fact(self, digest: Hash32) -> AuditFact | None:
        """The commitment `digest` with its anchoring and verification state, or None."""
        with self._engine.connect() as connection:
            row = _read(connection, digest)
        return None if row is None else _fact(digest, row)

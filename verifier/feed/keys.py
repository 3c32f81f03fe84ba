"""The departments' public report keys, published in the store by the instances that sign
their feed records (issue 18), so that any instance serves them (`/v1/feed/keys`) and `feed
check` verifies the feed with public keys only.

Trust: a key is published only from its private half (`publish_key` takes a `SigningKey`),
by the instance signing with it, in the transaction that signs (or before): no record enters
the feed signed by a key not published for its department. A rotated key adds a row; the
rows are never removed, so the records signed before a rotation still verify. The table is
in the store, which `feed check` checks: a consumer who does not trust the store pins the
keys out of band (`feed check --public-keys FILE`) and a record signed by any other key
fails the check.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, or_, select, update
from sqlalchemy.dialects import postgresql

from ledger import SigningKey
from verifier.errors import FeedError
from verifier.feed.records import FeedRecord
from verifier.feed.tables import feed_keys

MAX_KEYS_FILE_BYTES = 1_000_000  # a keys file is a few hundred bytes per department
MAX_PUBLIC_KEY_CHARS = 512


@dataclass(frozen=True)
class PublishedKey:
    """A department's public report key as its signer published it."""

    department: str
    algorithm: str
    public_key: str  # base64 of the DER SubjectPublicKeyInfo
    published_at: float
    first_sequence: int | None  # the lowest sequence it signed as it entered; None: none yet

    def to_json_obj(self) -> dict[str, Any]:
        """The key as `/v1/feed/keys` lists it in `history`."""
        return {
            "algorithm": self.algorithm,
            "public_key": self.public_key,
            "published_at": self.published_at,
            "first_sequence": self.first_sequence,
        }


def publish_key(
    connection: Connection,
    department: str,
    key: SigningKey,
    first_sequence: int | None = None,
    now: float | None = None,
) -> bool:
    """Publish `key`'s public half for `department` in `connection`'s transaction (the
    caller's fence, if any, has run in it), or lower its first sequence to `first_sequence`;
    True when the row is new. Idempotent."""
    public = key.public_key_b64()
    keys = feed_keys.c
    row = connection.execute(
        select(keys.first_seq).where(keys.department == department, keys.public_key == public)
    ).first()
    if row is None:
        values = {
            "department": department,
            "algorithm": key.algorithm,
            "public_key": public,
            "published_at": time.time() if now is None else now,
            "first_seq": first_sequence,
        }
        if connection.dialect.name != "postgresql":
            connection.execute(feed_keys.insert().values(**values))  # SQLite: one writer
            return True
        # Another instance of the department may publish it at the same moment: not an
        # error, and the signing transaction this runs in must not fail on it.
        insert = postgresql.insert(feed_keys).values(**values).on_conflict_do_nothing()
        if connection.execute(insert.returning(keys.id)).first() is not None:
            return True
    elif first_sequence is None or (row.first_seq is not None and row.first_seq <= first_sequence):
        return False
    if first_sequence is not None:
        connection.execute(
            update(feed_keys)
            .where(
                keys.department == department,
                keys.public_key == public,
                or_(keys.first_seq.is_(None), keys.first_seq > first_sequence),
            )
            .values(first_seq=first_sequence)
        )
    return False


def publish_signing_keys(
    connection: Connection, records: Sequence[FeedRecord], keys: Mapping[str, SigningKey]
) -> None:
    """Publish the key each of `records` was signed with (`keys`: by department, the keys
    they were signed with), each with the lowest sequence it signed here."""
    lowest: dict[str, int] = {}
    for record in records:
        code = record.facts.department_code
        lowest[code] = min(lowest.get(code, record.sequence), record.sequence)
    for code, sequence in sorted(lowest.items()):
        publish_key(connection, code, keys[code], sequence)


def publish_own_key(
    engine: Engine,
    department: str,
    key: SigningKey,
    fence: Callable[[Connection], None] | None = None,
) -> bool:
    """Publish `key` for `department` in a transaction of its own (a signer taking its
    lease), `fence` (the lease's check) run in it first; True when the row is new."""
    with engine.execution_options(immediate=True).begin() as connection:
        if fence is not None:
            fence(connection)
        return publish_key(connection, department, key)


def published_keys(engine: Engine) -> list[PublishedKey]:
    """Every key published, in the order published."""
    keys = feed_keys.c
    with engine.connect() as connection:
        rows = connection.execute(select(feed_keys).order_by(keys.id)).all()
    return [
        PublishedKey(
            r.department,
            r.algorithm,
            r.public_key,
            float(r.published_at),
            None if r.first_seq is None else int(r.first_seq),
        )
        for r in rows
    ]


def keys_by_department(published: Iterable[PublishedKey]) -> dict[str, list[str]]:
    """Each department's published public keys, oldest first."""
    found: dict[str, list[str]] = {}
    for key in published:
        found.setdefault(key.department, []).append(key.public_key)
    return found


def keys_from_json(document: Any) -> dict[str, list[str]]:
    """Each department's public keys in a document shaped as `/v1/feed/keys` serves it:
    every key of `history` (all published, when present) and the one of `keys`; FeedError
    when it is not such a document."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), dict):
        raise FeedError('not a /v1/feed/keys document: it needs "keys": {department: key}')
    found: dict[str, list[str]] = {}

    def add(department: Any, view: Any) -> None:
        public = view.get("public_key") if isinstance(view, dict) else None
        if not isinstance(department, str) or not isinstance(public, str):
            raise FeedError(f"a key of {department!r} has no public_key")
        if not 0 < len(public) <= MAX_PUBLIC_KEY_CHARS:
            raise FeedError(f"the public key of {department} is not a key")
        if public not in found.setdefault(department, []):
            found[department].append(public)

    history = document.get("history", {})
    if not isinstance(history, dict):
        raise FeedError('"history" must map each department to its keys')
    for department, views in history.items():
        if not isinstance(views, list):
            raise FeedError(f'"history" of {department!r} must be a list of keys')
        for view in views:
            add(department, view)
    for department, view in document["keys"].items():
        add(department, view)
    return found


def read_keys_file(path: Path) -> dict[str, list[str]]:
    """The public keys of a `/v1/feed/keys` document saved in `path` (`keys_from_json`)."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_KEYS_FILE_BYTES + 1)
    except OSError as exc:
        raise FeedError(f"cannot read the keys file {path}: {exc.strerror}") from None
    if len(raw) > MAX_KEYS_FILE_BYTES:
        raise FeedError(f"the keys file {path} is over {MAX_KEYS_FILE_BYTES} bytes")
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise FeedError(f"the keys file {path} is not JSON: {exc}") from None
    return keys_from_json(document)

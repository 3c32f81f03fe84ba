"""Workbench sessions: a department's or supervisor's token exchanged for a cookie, kept in
the store's database (only the SHA-256 of the session id), so a restart or a second
instance keeps them; each form's CSRF token is an HMAC of the session id.

A session ends when it is signed out, after `ABSOLUTE_S` from sign-in, after `IDLE_S`
without a request, or as soon as the token it was opened with is revoked or expires (the
token's row is read on every request).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    Connection,
    Float,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    or_,
    select,
    update,
)

from api.service.tokens import Principal, Role, api_tokens
from ledger import Store, apply_migrations, migrations_table

ABSOLUTE_S = 8 * 3600.0  # a working day's sign-in
IDLE_S = 30 * 60.0  # half an hour away ends it
TOUCH_EVERY_S = 60.0  # the idle clock is written at most this often per session
SESSION_BYTES = 32
_ID_CHARS = 43  # 32 bytes in URL-safe base64, unpadded

metadata = MetaData()
session_migrations = migrations_table("workbench_session_migrations", metadata)
workbench_sessions = Table(
    "workbench_sessions",
    metadata,
    Column("session_hash", LargeBinary(32), primary_key=True),
    Column("department", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_id", String(12), nullable=False),
    # The SHA-256 of the token (api_tokens' key): its row says whether it is still live.
    Column("token_hash", LargeBinary(32), nullable=False, index=True),
    Column("csrf_secret", LargeBinary(32), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_seen", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)


def _create_v1(connection: Connection) -> None:
    metadata.create_all(connection, tables=[workbench_sessions], checkfirst=True)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _create_v1}


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("ascii")).digest()


def _well_formed(session_id: str | None) -> bool:
    return (
        session_id is not None
        and len(session_id) == _ID_CHARS
        and session_id.isascii()
        and all(c.isalnum() or c in "-_" for c in session_id)
    )


@dataclass(frozen=True)
class WorkbenchSession:
    """A live session: who it speaks for, and the CSRF token its forms carry."""

    principal: Principal
    csrf_token: str
    created_at: float
    expires_at: float  # the absolute end; idle time may end it sooner


def csrf_token(session_id: str, secret: bytes) -> str:
    """The forms' CSRF token of a session: HMAC-SHA256 of its id under its secret."""
    mac = hmac.new(secret, session_id.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


class WorkbenchSessions:
    """Opens, reads and ends workbench sessions in the store's database."""

    def __init__(
        self,
        store: Store,
        *,
        absolute: float = ABSOLUTE_S,
        idle: float = IDLE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.absolute = absolute
        self.idle = idle
        self._clock = clock
        self._engine = store.engine
        self._writer = store.engine.execution_options(immediate=True)
        with self._writer.begin() as connection:
            apply_migrations(connection, session_migrations, MIGRATIONS)

    def open(self, principal: Principal, token_hash: bytes) -> str:
        """A new session for `principal` (signed in with the token of SHA-256 `token_hash`);
        its id, for the cookie, is returned once and never stored. Expired sessions go."""
        session_id = secrets.token_urlsafe(SESSION_BYTES)
        now = self._clock()
        with self._writer.begin() as connection:
            self._drop_expired(connection, now)
            connection.execute(
                workbench_sessions.insert().values(
                    session_hash=_digest(session_id),
                    department=principal.department,
                    role=principal.role,
                    token_id=principal.token_id,
                    token_hash=token_hash,
                    csrf_secret=secrets.token_bytes(32),
                    created_at=now,
                    last_seen=now,
                    expires_at=now + self.absolute,
                )
            )
        return session_id

    def get(self, session_id: str | None) -> WorkbenchSession | None:
        """The live session of `session_id`, its idle clock reset; None when it is unknown,
        ended, expired, idle too long, or its token was revoked or has expired."""
        if not _well_formed(session_id):
            return None
        assert session_id is not None
        now = self._clock()
        s, t = workbench_sessions.c, api_tokens.c
        with self._engine.connect() as connection:
            row = connection.execute(
                select(
                    s.department,
                    s.role,
                    s.token_id,
                    s.csrf_secret,
                    s.created_at,
                    s.last_seen,
                    s.expires_at,
                )
                .join_from(workbench_sessions, api_tokens, t.token_hash == s.token_hash)
                .where(s.session_hash == _digest(session_id))
                .where(s.expires_at > now, s.last_seen > now - self.idle)
                .where(t.revoked_at.is_(None))
                .where(or_(t.expires_at.is_(None), t.expires_at > now))
            ).first()
        if row is None:
            return None
        if now - row.last_seen >= TOUCH_EVERY_S:
            with self._writer.begin() as connection:
                connection.execute(
                    update(workbench_sessions)
                    .where(s.session_hash == _digest(session_id))
                    .values(last_seen=now)
                )
        role: Role = row.role
        return WorkbenchSession(
            principal=Principal(row.department, role, row.token_id),
            csrf_token=csrf_token(session_id, bytes(row.csrf_secret)),
            created_at=row.created_at,
            expires_at=row.expires_at,
        )

    def close(self, session_id: str | None) -> bool:
        """End the session of `session_id`; whether there was one."""
        if not _well_formed(session_id):
            return False
        assert session_id is not None
        with self._writer.begin() as connection:
            result = connection.execute(
                delete(workbench_sessions).where(
                    workbench_sessions.c.session_hash == _digest(session_id)
                )
            )
        return result.rowcount == 1

    def count(self) -> int:
        """Sessions in the table (live or not yet swept)."""
        with self._engine.connect() as connection:
            return len(connection.execute(select(workbench_sessions.c.session_hash)).all())

    def _drop_expired(self, connection: Connection, now: float) -> None:
        s = workbench_sessions.c
        connection.execute(
            delete(workbench_sessions).where(
                or_(s.expires_at <= now, s.last_seen <= now - self.idle)
            )
        )


def csrf_matches(session: WorkbenchSession, sent: str | None) -> bool:
    """Whether a form carried the session's CSRF token (compared in constant time)."""
    return (
        sent is not None
        and sent.isascii()
        and hmac.compare_digest(session.csrf_token.encode(), sent.encode())
    )

"""Department tokens: random bearer tokens whose SHA-256 alone is stored, in `api_tokens`."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Literal, get_args

from sqlalchemy import Column, Float, LargeBinary, MetaData, String, Table, select, update

from api.errors import TokenError
from ledger.store import Store

Role = Literal["registrar", "verifier", "feed"]
ROLES: tuple[Role, ...] = get_args(Role)
# A feed token reads the credit feed (GET /v1/feed) up to its scope; it acts for no department.
FeedScope = Literal["public", "restricted", "all"]
FEED_SCOPES: tuple[FeedScope, ...] = get_args(FeedScope)
FEED_CONSUMER = "FEED"  # the department column of a feed token that names no consumer
TOKEN_PREFIX = "clt_"  # noqa: S105 - a public marker, not a secret
_TOKEN_BYTES = 32
# The prefix and 43 URL-safe base64 characters: anything else is not one of ours.
_TOKEN_SHAPE = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_-]{43}")
_DEPARTMENT = re.compile(r"[A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*")

metadata = MetaData()

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("department", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("issued_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)


@dataclass(frozen=True)
class Principal:
    """Who a valid token speaks for. `token_id` (a prefix of its hash) is safe to log."""

    department: str
    role: Role
    token_id: str
    scope: FeedScope | None = None  # feed tokens only


@dataclass(frozen=True)
class IssuedToken:
    """A new token: shown once to whoever issued it, never stored."""

    token: str
    principal: Principal


def token_hash(token: str) -> bytes:
    """The SHA-256 of a token: all the store keeps."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def _token_id(digest: bytes) -> str:
    return digest[:6].hex()


class TokenStore:
    """Issues, checks and revokes department tokens in the ledger store's database."""

    def __init__(self, store: Store) -> None:
        self._engine = store.engine
        self._writer = store.engine.execution_options(immediate=True)
        with self._writer.begin() as connection:
            metadata.create_all(connection, checkfirst=True)

    def issue(
        self, department: str, role: str, now: float | None = None, *, scope: str | None = None
    ) -> IssuedToken:
        """A fresh random token for `role` in `department` (for a feed token: the consumer,
        and its `scope`); only its hash is stored."""
        if role not in ROLES:
            raise TokenError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if (role == "feed") != (scope is not None):
            raise TokenError("a feed token needs --scope (public, restricted or all); others none")
        if scope is not None and scope not in FEED_SCOPES:
            raise TokenError(f"scope must be one of {', '.join(FEED_SCOPES)}, not {scope!r}")
        if not _DEPARTMENT.fullmatch(department):
            raise TokenError(f"not a department code like BJ-HRSS: {department!r}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
        digest = token_hash(token)
        with self._writer.begin() as connection:
            connection.execute(
                api_tokens.insert().values(
                    token_hash=digest,
                    department=department,
                    role=role if scope is None else f"feed:{scope}",
                    issued_at=time.time() if now is None else now,
                )
            )
        principal = Principal(department, role, _token_id(digest), scope)
        return IssuedToken(token, principal)

    def lookup(self, token: str) -> Principal | None:
        """Who `token` speaks for, or None if it is unknown, malformed or revoked."""
        if not _TOKEN_SHAPE.fullmatch(token):
            return None
        digest = token_hash(token)
        with self._engine.connect() as connection:
            row = connection.execute(
                select(api_tokens).where(api_tokens.c.token_hash == digest)
            ).first()
        # The row was found by its hash; comparing again in constant time costs nothing
        # and keeps the check free of timing differences whatever the database does.
        if row is None or not hmac.compare_digest(bytes(row.token_hash), digest):
            return None
        role, _, scope = str(row.role).partition(":")
        if row.revoked_at is not None or role not in ROLES or (role == "feed") != bool(scope):
            return None
        if scope and scope not in FEED_SCOPES:
            return None
        return Principal(row.department, role, _token_id(digest), scope or None)

    def revoke(self, token: str, now: float | None = None) -> bool:
        """Revoke a token; False if it is unknown or revoked already."""
        with self._writer.begin() as connection:
            result = connection.execute(
                update(api_tokens)
                .where(api_tokens.c.token_hash == token_hash(token))
                .where(api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=time.time() if now is None else now)
            )
        return result.rowcount == 1

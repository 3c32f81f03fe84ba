"""Department tokens: random bearer tokens whose SHA-256 alone is stored, in `api_tokens`."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

from sqlalchemy import (
    Column,
    Connection,
    Float,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    inspect,
    select,
    update,
)

from api.errors import TokenError
from ledger import Store, apply_migrations, migrations_table

Role = Literal["registrar", "verifier", "feed", "operator", "supervisor"]
ROLES: tuple[Role, ...] = get_args(Role)
# A department's own tokens: they act for it, and they manage one another (GET /v1/tokens).
DEPARTMENT_ROLES: tuple[Role, ...] = ("registrar", "verifier")
# A supervisor token (the reform office) reads every department's work lists and statistics
# and changes nothing: the routes that change anything never accept it. Issued by the
# command line only (an operator's act), with this department column.
SUPERVISOR = "SUPERVISOR"
# Who may read a department's work lists and statistics: its own tokens, and a supervisor.
READER_ROLES: tuple[Role, ...] = (*DEPARTMENT_ROLES, "supervisor")
# An operator token reads the service's own health (GET /readyz in full); it acts for no
# department, and the department routes never accept it.
OPERATOR = "OPERATOR"  # the department column of an operator token
OPERATOR_ONLY: tuple[Role, ...] = ("operator",)  # the roles /readyz asks `lookup` for
# A feed token reads the credit feed (GET /v1/feed) up to its scope; it acts for no department.
# A government one reads what `all` reads, each record with the identity sealed to a platform
# key a subscriber registered (verifier.feed.sharing).
FeedScope = Literal["public", "restricted", "all", "government"]
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
    Column("expires_at", Float, nullable=True),  # None: until revoked
)
token_migrations = migrations_table("api_token_migrations", metadata)
TOKEN_ID_CHARS = 12  # a token's id: the first 6 bytes of its hash, in hex
DAY_S = 86_400.0


@dataclass(frozen=True)
class Principal:
    """Who a valid token speaks for. `token_id` (a prefix of its hash) is safe to log."""

    department: str
    role: Role
    token_id: str
    scope: FeedScope | None = None  # feed tokens only


@dataclass(frozen=True)
class TokenListing:
    """What the store knows of one token: never the token itself."""

    token_id: str
    department: str
    role: str  # `feed:<scope>` for a feed token
    issued_at: float
    expires_at: float | None
    revoked_at: float | None


@dataclass(frozen=True)
class IssuedToken:
    """A new token: shown once to whoever issued it, never stored."""

    token: str
    principal: Principal


def is_department_code(text: str) -> bool:
    """Whether `text` is shaped like a department code (BJ-HRSS), at most 64 characters."""
    return len(text) <= 64 and _DEPARTMENT.fullmatch(text) is not None


def token_hash(token: str) -> bytes:
    """The SHA-256 of a token: all the store keeps."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def _token_id(digest: bytes) -> str:
    return digest[: TOKEN_ID_CHARS // 2].hex()


def _create_v1(connection: Connection) -> None:
    metadata.create_all(connection, tables=[api_tokens], checkfirst=True)


def _expiry_v2(connection: Connection) -> None:
    """Tokens may expire. v1 may have created the column already (it creates the table as
    defined now); a store from before migrations has the table without it."""
    present = {column["name"] for column in inspect(connection).get_columns("api_tokens")}
    if "expires_at" not in present:
        connection.exec_driver_sql("ALTER TABLE api_tokens ADD COLUMN expires_at FLOAT")


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _create_v1, 2: _expiry_v2}


class TokenStore:
    """Issues, checks and revokes department tokens in the ledger store's database."""

    def __init__(self, store: Store) -> None:
        self._engine = store.engine
        self._writer = store.engine.execution_options(immediate=True)
        with self._writer.begin() as connection:
            apply_migrations(connection, token_migrations, MIGRATIONS)

    def issue(
        self,
        department: str,
        role: str,
        now: float | None = None,
        *,
        scope: str | None = None,
        expires_in_days: float | None = None,
    ) -> IssuedToken:
        """A fresh random token for `role` in `department` (for a feed token: the consumer,
        and its `scope`), valid for `expires_in_days` (None: until revoked); only its hash
        is stored."""
        if expires_in_days is not None and not 0 < expires_in_days <= 3650:
            raise TokenError("a token expires in more than 0 and at most 3650 days")
        if role not in ROLES:
            raise TokenError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if (role == "feed") != (scope is not None):
            raise TokenError(
                "a feed token needs --scope (public, restricted, all or government); others none"
            )
        if scope is not None and scope not in FEED_SCOPES:
            raise TokenError(f"scope must be one of {', '.join(FEED_SCOPES)}, not {scope!r}")
        if not _DEPARTMENT.fullmatch(department):
            raise TokenError(f"not a department code like BJ-HRSS: {department!r}")
        if (role == "supervisor") != (department == SUPERVISOR):
            raise TokenError(f"a supervisor token, and only it, has the department {SUPERVISOR}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
        digest = token_hash(token)
        issued_at = time.time() if now is None else now
        with self._writer.begin() as connection:
            connection.execute(
                api_tokens.insert().values(
                    token_hash=digest,
                    department=department,
                    role=role if scope is None else f"feed:{scope}",
                    issued_at=issued_at,
                    expires_at=None
                    if expires_in_days is None
                    else issued_at + expires_in_days * DAY_S,
                )
            )
        principal = Principal(department, role, _token_id(digest), scope)
        return IssuedToken(token, principal)

    def lookup(
        self,
        token: str,
        now: float | None = None,
        *,
        roles: Collection[Role] = ("registrar", "verifier", "feed"),
    ) -> Principal | None:
        """Who `token` speaks for, or None if it is unknown, malformed, revoked, expired or
        of none of `roles` (an operator token is accepted only where it is asked for)."""
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
        if row.revoked_at is not None or role not in roles or (role == "feed") != bool(scope):
            return None
        if row.expires_at is not None and row.expires_at <= (time.time() if now is None else now):
            return None
        if scope and scope not in FEED_SCOPES:
            return None
        return Principal(row.department, cast(Role, role), _token_id(digest), scope or None)

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

    def listing(self) -> list[TokenListing]:
        """Every token the store knows, oldest first: ids, never the tokens."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(api_tokens).order_by(api_tokens.c.issued_at, api_tokens.c.token_hash)
            ).all()
        return [
            TokenListing(
                _token_id(bytes(row.token_hash)),
                row.department,
                row.role,
                row.issued_at,
                row.expires_at,
                row.revoked_at,
            )
            for row in rows
        ]

    def revoke_id(self, token_id: str, now: float | None = None) -> TokenListing:
        """Revoke the token whose id `tokens list` shows; TokenError if there is no such
        live token."""
        row = self._live_row(token_id)
        with self._writer.begin() as connection:
            connection.execute(
                update(api_tokens)
                .where(api_tokens.c.token_hash == row.token_hash)
                .values(revoked_at=time.time() if now is None else now)
            )
        [revoked] = [t for t in self.listing() if t.token_id == token_id.lower()]
        return revoked

    def rotate(self, token_id: str, now: float | None = None) -> IssuedToken:
        """A new token for the same department, role and scope (and as long a life as the
        old one was given), the old one revoked at once."""
        row = self._live_row(token_id)
        role, _, scope = str(row.role).partition(":")
        days = None
        if row.expires_at is not None:
            days = (row.expires_at - row.issued_at) / DAY_S
        issued = self.issue(row.department, role, now, scope=scope or None, expires_in_days=days)
        self.revoke_id(token_id, now)
        return issued

    def _live_row(self, token_id: str) -> Row[Any]:
        wanted = token_id.lower()
        if not re.fullmatch(f"[0-9a-f]{{{TOKEN_ID_CHARS}}}", wanted):
            raise TokenError(
                f"a token id is {TOKEN_ID_CHARS} hex digits, as `tokens list` shows: {token_id!r}"
            )
        with self._engine.connect() as connection:
            rows = connection.execute(select(api_tokens)).all()
        found = [r for r in rows if _token_id(bytes(r.token_hash)) == wanted]
        if not found:
            raise TokenError(f"no token {wanted}: `tokens list` shows the ids")
        if len(found) > 1:  # 48 bits: not in any real store, but never revoke the wrong one
            raise TokenError(f"token id {wanted} is not unique: revoke by the token itself")
        if found[0].revoked_at is not None:
            raise TokenError(f"token {wanted} is revoked already")
        return found[0]

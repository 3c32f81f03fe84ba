"""Bearer tokens (a department's registrar and verifier, a feed consumer's, the operator's
and the reform office's supervisor): random tokens whose SHA-256 alone is stored, in
`api_tokens`; listed, revoked and rotated by their ids."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import Any, Literal, cast, get_args, overload

from sqlalchemy import (
    Column,
    Connection,
    Float,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    func,
    inspect,
    literal,
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
_TOKEN_ID = re.compile(f"[0-9a-fA-F]{{{TOKEN_ID_CHARS}}}")
DAY_S = 86_400.0


class UnknownTokenError(TokenError):
    """No such live token (for a department: none of its own has this id)."""


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
    expires_at: float | None = None  # None: until revoked


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
        issued_at = time.time() if now is None else now
        expires_at = None if expires_in_days is None else issued_at + expires_in_days * DAY_S
        with self._writer.begin() as connection:
            return _insert(connection, department, role, scope, issued_at, expires_at)

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
        if (role == "supervisor") != (row.department == SUPERVISOR):
            return None  # never issued so: a supervisor acts for no department
        return Principal(row.department, cast(Role, role), _token_id(digest), scope or None)

    @overload
    def revoke(self, token: str, /, department: None = None, now: float | None = None) -> bool: ...

    @overload
    def revoke(
        self, token_id: str, /, department: str, now: float | None = None
    ) -> TokenListing: ...

    def revoke(
        self, token_or_id: str, /, department: str | None = None, now: float | None = None
    ) -> bool | TokenListing:
        """With a `department`: revoke that department's own token (registrar or verifier)
        whose id `list_for` shows, and answer its listing; TokenError when the department has
        no such live token (another department's is no different from an unknown one).

        Without: revoke the token itself (as given to its holder); False if it is unknown
        or revoked already."""
        if department is not None:
            return self.revoke_id(token_or_id, now, department=department)
        with self._writer.begin() as connection:
            result = connection.execute(
                update(api_tokens)
                .where(api_tokens.c.token_hash == token_hash(token_or_id))
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
        return [_listing(row) for row in rows]

    def list_for(self, department: str, *, limit: int = 500) -> list[TokenListing]:
        """The department's own tokens (registrar and verifier; revoked and expired ones
        too), newest first, at most `limit`: ids, never the tokens."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(api_tokens)
                .where(api_tokens.c.department == department)
                .where(api_tokens.c.role.in_(DEPARTMENT_ROLES))
                .order_by(api_tokens.c.issued_at.desc(), api_tokens.c.token_hash)
                .limit(max(1, min(limit, 5000)))
            ).all()
        return [_listing(row) for row in rows]

    def revoke_id(
        self, token_id: str, now: float | None = None, *, department: str | None = None
    ) -> TokenListing:
        """Revoke the token whose id `tokens list` shows (with a `department`: only one of
        that department's own tokens); TokenError if there is no such live token."""
        revoked_at = time.time() if now is None else now
        with self._writer.begin() as connection:
            row = _live_row(connection, token_id, department)
            _revoke_row(connection, row, revoked_at)
        return replace(_listing(row), revoked_at=revoked_at)

    def rotate(
        self, token_id: str, department: str | None = None, now: float | None = None
    ) -> IssuedToken:
        """A new token for the same department, role and scope, the old one revoked in the
        same transaction.

        The operator's rotation (no `department`, the command line) gives the new token as
        long a life as the old one was given. A department rotating its own token (with its
        `department`) keeps the old one's expiry: rotating never lengthens a token's life,
        and an expired token is not rotated."""
        moment = time.time() if now is None else now
        with self._writer.begin() as connection:
            row = _live_row(connection, token_id, department)
            role, _, scope = str(row.role).partition(":")
            expires_at = row.expires_at
            if department is None and expires_at is not None:
                expires_at = moment + (row.expires_at - row.issued_at)
            elif expires_at is not None and expires_at <= moment:
                raise TokenError(f"token {token_id.lower()} has expired: it is not rotated")
            _revoke_row(connection, row, moment)
            return _insert(
                connection, row.department, cast(Role, role), scope or None, moment, expires_at
            )


def _listing(row: Row[Any]) -> TokenListing:
    return TokenListing(
        _token_id(bytes(row.token_hash)),
        row.department,
        row.role,
        row.issued_at,
        row.expires_at,
        row.revoked_at,
    )


def _insert(
    connection: Connection,
    department: str,
    role: Role,
    scope: str | None,
    issued_at: float,
    expires_at: float | None,
) -> IssuedToken:
    """A fresh random token, its hash inserted on `connection` (checked by the caller)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
    digest = token_hash(token)
    connection.execute(
        api_tokens.insert().values(
            token_hash=digest,
            department=department,
            role=role if scope is None else f"feed:{scope}",
            issued_at=issued_at,
            expires_at=expires_at,
        )
    )
    principal = Principal(department, role, _token_id(digest), cast(FeedScope | None, scope))
    return IssuedToken(token, principal, expires_at)


def _revoke_row(connection: Connection, row: Row[Any], revoked_at: float) -> None:
    """Revoke the live token of `row`; TokenError if it was revoked meanwhile."""
    result = connection.execute(
        update(api_tokens)
        .where(api_tokens.c.token_hash == row.token_hash)
        .where(api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=revoked_at)
    )
    if result.rowcount != 1:
        raise TokenError(f"token {_token_id(bytes(row.token_hash))} is revoked already")


def is_token_id(text: str) -> bool:
    """Whether `text` is shaped like a token's id: 12 hex digits (either case)."""
    return _TOKEN_ID.fullmatch(text) is not None


def _live_row(connection: Connection, token_id: str, department: str | None) -> Row[Any]:
    """The live token whose id is `token_id` (of `department`'s own tokens, if given)."""
    if not is_token_id(token_id):
        raise TokenError(
            f"a token id is {TOKEN_ID_CHARS} hex digits, as `tokens list` shows: {token_id!r}"
        )
    wanted = token_id.lower()
    prefix = bytes.fromhex(wanted)
    query = select(api_tokens).where(
        func.substr(api_tokens.c.token_hash, 1, len(prefix)) == literal(prefix, LargeBinary)
    )
    if department is not None:
        query = query.where(api_tokens.c.department == department).where(
            api_tokens.c.role.in_(DEPARTMENT_ROLES)
        )
    found = [r for r in connection.execute(query).all() if _token_id(bytes(r.token_hash)) == wanted]
    if not found:
        owner = "" if department is None else f" of {department}"
        raise UnknownTokenError(f"no token {wanted}{owner}: `tokens list` shows the ids")
    if len(found) > 1:  # 48 bits: not in any real store, but never revoke the wrong one
        raise TokenError(f"token id {wanted} is not unique: revoke by the token itself")
    if found[0].revoked_at is not None:
        raise TokenError(f"token {wanted} is revoked already")
    return found[0]

"""A department's own tokens over HTTP: list them, revoke one, rotate one.

A registrar or verifier token manages its department's registrar and verifier tokens (its
own included): `GET /v1/tokens`, `POST /v1/tokens/{token_id}/revoke` and
`POST /v1/tokens/{token_id}/rotate`. Another department's token id is answered as an
unknown one (404), so nothing is learnt of other departments' tokens. Feed, operator and
supervisor tokens cannot manage tokens here: the operator issues and manages every token on
the command line (`commitledger tokens`).

Ids (the first 12 hex digits of a token's SHA-256) are shown and logged, never the tokens;
a rotated token's new secret is answered once, with `Cache-Control: no-store`, and the old
token is revoked in the same transaction. Rotating keeps the old token's expiry: a
department cannot lengthen a token's life that the operator gave it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.errors import TokenError
from api.service.deps import DepartmentDep, TokensDep
from api.service.problems import (
    ACTION_REFUSED,
    INVALID_REQUEST,
    NOT_FOUND,
    ProblemError,
    problem_responses,
)
from api.service.tokens import (
    TOKEN_ID_CHARS,
    IssuedToken,
    Principal,
    TokenListing,
    TokenStore,
    UnknownTokenError,
    is_token_id,
)

router = APIRouter(prefix="/v1", tags=["tokens"])
log = logging.getLogger("commitledger.service.tokens")

NO_STORE = {"Cache-Control": "no-store"}
LIST_MAX = 500
TokenState = Literal["live", "expired", "revoked"]


class TokenView(BaseModel):
    """One of the department's tokens: its id and life, never the token."""

    token_id: str = Field(description=f"The first {TOKEN_ID_CHARS} hex digits of its SHA-256")
    department: str
    role: str = Field(description="registrar or verifier")
    issued_at: str = Field(description="RFC 3339, UTC")
    expires_at: str | None = Field(description="RFC 3339, UTC; null: until revoked")
    revoked_at: str | None = Field(description="RFC 3339, UTC; null: not revoked")
    state: TokenState
    current: bool = Field(description="Whether this request was made with it")


class TokenList(BaseModel):
    """The department's registrar and verifier tokens, newest first."""

    department: str
    tokens: list[TokenView]


class RotatedToken(BaseModel):
    """The new token, shown this once (the store keeps only its SHA-256), and the old one's
    id, revoked."""

    token: str = Field(description="The new bearer token: keep it secret, it is not shown again")
    token_id: str
    department: str
    role: str
    expires_at: str | None = Field(description="RFC 3339, UTC: the old token's expiry")
    replaces: str = Field(description="The id of the token it replaces, now revoked")


def _when(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _state(listing: TokenListing, now: float) -> TokenState:
    if listing.revoked_at is not None:
        return "revoked"
    if listing.expires_at is not None and listing.expires_at <= now:
        return "expired"
    return "live"


def _view(listing: TokenListing, principal: Principal, now: float) -> TokenView:
    issued = _when(listing.issued_at)
    assert issued is not None
    return TokenView(
        token_id=listing.token_id,
        department=listing.department,
        role=listing.role,
        issued_at=issued,
        expires_at=_when(listing.expires_at),
        revoked_at=_when(listing.revoked_at),
        state=_state(listing, now),
        current=listing.token_id == principal.token_id,
    )


async def token_id_param(token_id: str) -> str:
    """The `{token_id}` path parameter, lower-cased; 422 problem unless 12 hex digits."""
    if not is_token_id(token_id):
        raise ProblemError(
            INVALID_REQUEST,
            f"a token id is {TOKEN_ID_CHARS} hex digits, as GET /v1/tokens shows",
        )
    return token_id.lower()


TokenIdDep = Annotated[str, Depends(token_id_param)]


def _refused(exc: TokenError, token_id: str, department: str) -> ProblemError:
    if isinstance(exc, UnknownTokenError):
        return ProblemError(NOT_FOUND, f"{department} has no token {token_id}")
    return ProblemError(ACTION_REFUSED, str(exc))  # revoked already, or expired


@router.get(
    "/tokens",
    summary="The department's own tokens",
    responses=problem_responses(401, 403),
)
async def list_tokens(principal: DepartmentDep, tokens: TokensDep, response: Response) -> TokenList:
    """The token's department's registrar and verifier tokens (revoked and expired ones
    too), newest first, at most 500: ids, roles and lives, never the tokens."""
    listed = await run_in_threadpool(tokens.list_for, principal.department, limit=LIST_MAX)
    response.headers.update(NO_STORE)
    now = datetime.now(UTC).timestamp()
    return TokenList(
        department=principal.department, tokens=[_view(t, principal, now) for t in listed]
    )


def _revoke(tokens: TokenStore, token_id: str, principal: Principal) -> TokenListing:
    try:
        revoked = tokens.revoke(token_id, principal.department)
    except TokenError as exc:
        raise _refused(exc, token_id, principal.department) from None
    log.info(
        "token revoked",
        extra={"token_id": token_id, "by_token": principal.token_id},
    )
    return revoked


@router.post(
    "/tokens/{token_id}/revoke",
    summary="Revoke one of the department's tokens",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def revoke_token(
    token_id: TokenIdDep, principal: DepartmentDep, tokens: TokensDep, response: Response
) -> TokenView:
    """Revoke the department's registrar or verifier token of this id (this request's own
    token too): refused with 401 from now on. 404 for an id the department has no token
    of; 409 when it is revoked already."""
    revoked = await run_in_threadpool(_revoke, tokens, token_id, principal)
    response.headers.update(NO_STORE)
    return _view(revoked, principal, datetime.now(UTC).timestamp())


def _rotate(tokens: TokenStore, token_id: str, principal: Principal) -> IssuedToken:
    try:
        issued = tokens.rotate(token_id, principal.department)
    except TokenError as exc:
        raise _refused(exc, token_id, principal.department) from None
    log.info(
        "token rotated",
        extra={
            "token_id": token_id,
            "new_token_id": issued.principal.token_id,
            "by_token": principal.token_id,
        },
    )
    return issued


@router.post(
    "/tokens/{token_id}/rotate",
    summary="Replace one of the department's tokens with a new one",
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def rotate_token(
    token_id: TokenIdDep, principal: DepartmentDep, tokens: TokensDep, response: Response
) -> RotatedToken:
    """A new token of the same role for the department, answered this once; the old one is
    revoked in the same transaction. The new one expires when the old one would have. 404
    for an id the department has no token of; 409 when it is revoked already or expired."""
    issued = await run_in_threadpool(_rotate, tokens, token_id, principal)
    response.headers.update(NO_STORE)
    return RotatedToken(
        token=issued.token,
        token_id=issued.principal.token_id,
        department=issued.principal.department,
        role=issued.principal.role,
        expires_at=_when(issued.expires_at),
        replaces=token_id,
    )

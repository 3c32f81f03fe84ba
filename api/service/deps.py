"""The routes' dependencies, as Annotated types: the context, the store, who is asking."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.service.context import ServiceContext
from api.service.problems import (
    INVALID_HASH,
    OTHER_DEPARTMENT,
    RATE_LIMITED,
    UNAUTHORIZED,
    WRONG_ROLE,
    ProblemError,
)
from api.service.tokens import Principal, Role
from ledger import InvalidHashError, to_hash32
from ledger.store import Store
from ledger.types import Hash32
from verifier.records.facade import VerifierRecords


async def get_context(request: Request) -> ServiceContext:
    """The service context the app was built with.

    This and the other dependencies that neither block nor touch the store are `async`:
    FastAPI runs a plain `def` dependency in the thread pool, a hop per request each.
    """
    context: ServiceContext = request.app.state.context
    return context


ContextDep = Annotated[ServiceContext, Depends(get_context)]


async def get_store(context: ContextDep) -> Store:
    """The ledger store."""
    return context.store


async def get_records(context: ContextDep) -> VerifierRecords:
    """Verifications and breach records."""
    return context.records


StoreDep = Annotated[Store, Depends(get_store)]
RecordsDep = Annotated[VerifierRecords, Depends(get_records)]

_bearer = HTTPBearer(
    auto_error=False,
    description="A department token from `commitledger tokens issue`.",
)


def get_principal(
    request: Request,
    context: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The department and role of the bearer token; 401 problem without a valid one."""
    challenge = {"WWW-Authenticate": 'Bearer realm="commitledger"'}
    if credentials is None:
        raise ProblemError(UNAUTHORIZED, "send Authorization: Bearer <token>", headers=challenge)
    principal = context.tokens.lookup(credentials.credentials)
    if principal is None:
        raise ProblemError(UNAUTHORIZED, "the token is unknown or revoked", headers=challenge)
    if principal.role == "feed":
        # Its department column names a consumer, which may read like a department's code.
        raise ProblemError(
            WRONG_ROLE, "a feed token reads GET /v1/feed only; this needs a department's token"
        )
    request.state.department = principal.department  # for the request log
    return principal


DepartmentDep = Annotated[Principal, Depends(get_principal)]


def _role(role: Role) -> Callable[[Principal], Principal]:
    def require(principal: DepartmentDep) -> Principal:
        if principal.role != role:
            raise ProblemError(
                WRONG_ROLE, f"this needs a {role} token; this token is a {principal.role}'s"
            )
        return principal

    return require


RegistrarDep = Annotated[Principal, Depends(_role("registrar"))]
VerifierDep = Annotated[Principal, Depends(_role("verifier"))]


def require_department(principal: Principal, department: str, what: str) -> None:
    """403 problem unless `department` is the token's."""
    if department != principal.department:
        raise ProblemError(
            OTHER_DEPARTMENT,
            f"{what} belongs to another department; this token is for {principal.department}",
        )


async def commitment_hash(hash: str) -> Hash32:
    """The `{hash}` path parameter as 32 bytes; 400 problem when it is not one."""
    try:
        return to_hash32(hash)
    except InvalidHashError as exc:
        raise ProblemError(INVALID_HASH, f"{exc}: give 0x and 64 hex digits") from None


HashDep = Annotated[Hash32, Depends(commitment_hash)]


def rate_limited(request: Request, context: ContextDep) -> None:
    """Spend one of the client's public requests; 429 problem with Retry-After when none left.

    The client is the peer address; behind a local reverse proxy uvicorn puts the
    X-Forwarded-For address there (`serve` trusts proxies on 127.0.0.1 only).
    """
    client = request.client.host if request.client else "unknown"
    wait = context.limiter.take(client)
    if wait > 0:
        retry = context.limiter.retry_after(wait)
        raise ProblemError(
            RATE_LIMITED,
            f"too many requests from this address: try again in {retry} s",
            headers={"Retry-After": retry},
        )


async def _spend_public_request(request: Request, context: ContextDep) -> None:
    rate_limited(request, context)  # memory only: no need for a thread


RateLimit = Depends(_spend_public_request)

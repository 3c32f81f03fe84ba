"""The routes' dependencies, as Annotated types: the parts of the service a route uses, who
is asking, and the checks every route makes alike.

A route declares the parts it uses (StoreDep, RecordsDep, ChainDep, ...), not the whole
ServiceContext: what a route can touch is read from its signature.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.service.background import BackgroundTasks
from api.service.context import ChainLink, ServiceContext
from api.service.keys import DepartmentKeys
from api.service.problems import (
    INVALID_HASH,
    MALFORMED_JSON,
    NOT_FOUND,
    OTHER_DEPARTMENT,
    RATE_LIMITED,
    UNAUTHORIZED,
    WRONG_ROLE,
    ProblemError,
)
from api.service.ratelimit import RateLimiter
from api.service.settings import Settings
from api.service.tokens import Principal, Role, TokenStore
from ledger import (
    Hash32,
    Intake,
    InvalidDocumentError,
    InvalidHashError,
    Store,
    StoredCommitment,
    Vault,
    hex32,
    load_json_bytes,
    to_hash32,
)
from verifier.feed import FeedStore
from verifier.records import VerifierRecords

# --- the service's parts -------------------------------------------------------------------
# These and the other dependencies that neither block nor touch the store are `async`:
# FastAPI runs a plain `def` dependency in the thread pool, a hop per request each. FastAPI
# resolves a dependency once per request, so the context is looked up once however many
# parts a route takes.


async def get_context(request: Request) -> ServiceContext:
    """The service context the app was built with (for the parts below)."""
    context: ServiceContext = request.app.state.context
    return context


ContextDep = Annotated[ServiceContext, Depends(get_context)]


async def get_settings(context: ContextDep) -> Settings:
    """The service's settings."""
    return context.settings


async def get_store(context: ContextDep) -> Store:
    """The ledger store."""
    return context.store


async def get_records(context: ContextDep) -> VerifierRecords:
    """Verifications and breach records."""
    return context.records


async def get_tokens(context: ContextDep) -> TokenStore:
    """The bearer tokens (hashes only)."""
    return context.tokens


async def get_chain(context: ContextDep) -> ChainLink:
    """The contract on its chain, when a deployment is known and the node answers."""
    return context.chain


async def get_intake(context: ContextDep) -> Intake | None:
    """Where commitments are checked, sealed and stored; None without a master key."""
    return context.intake


async def get_vault(intake: IntakeDep) -> Vault | None:
    """The master key's vault, to seal and open personal data; None without a master key."""
    return None if intake is None else intake.vault


async def get_limiter(context: ContextDep) -> RateLimiter:
    """The public routes' rate limiter, per client."""
    return context.limiter


async def get_keys(context: ContextDep) -> DepartmentKeys:
    """The departments' accounts and report keys the service holds."""
    return context.keys


async def get_background(context: ContextDep) -> BackgroundTasks:
    """The process's background tasks (anchoring, the feed)."""
    return context.background


async def get_today(context: ContextDep) -> date:
    """The service's today (a fixed day in tests)."""
    return context.today()


SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
RecordsDep = Annotated[VerifierRecords, Depends(get_records)]
TokensDep = Annotated[TokenStore, Depends(get_tokens)]
ChainDep = Annotated[ChainLink, Depends(get_chain)]
IntakeDep = Annotated[Intake | None, Depends(get_intake)]
VaultDep = Annotated[Vault | None, Depends(get_vault)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]
KeysDep = Annotated[DepartmentKeys, Depends(get_keys)]
BackgroundDep = Annotated[BackgroundTasks, Depends(get_background)]
TodayDep = Annotated[date, Depends(get_today)]


def get_feed_store(request: Request, store: StoreDep, vault: VaultDep) -> FeedStore:
    """The feed over the service's store, opened once per app (opening applies migrations,
    so this one runs in the thread pool); the master key opens its sealed cursor key."""
    feed: FeedStore | None = getattr(request.app.state, "feed", None)
    if feed is None or feed.store is not store:
        feed = request.app.state.feed = FeedStore(store, vault)
    return feed


FeedStoreDep = Annotated[FeedStore, Depends(get_feed_store)]

# --- who is asking -------------------------------------------------------------------------

_bearer = HTTPBearer(
    auto_error=False,
    description="A department token from `commitledger tokens issue`.",
)


def get_principal(
    request: Request,
    tokens: TokensDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The department and role of the bearer token; 401 problem without a valid one."""
    challenge = {"WWW-Authenticate": 'Bearer realm="commitledger"'}
    if credentials is None:
        raise ProblemError(UNAUTHORIZED, "send Authorization: Bearer <token>", headers=challenge)
    principal = tokens.lookup(credentials.credentials)
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


def own_commitment(store: Store, digest: Hash32, principal: Principal) -> StoredCommitment:
    """The commitment, if it is the token's department's; 404 or 403 problem otherwise."""
    stored = store.get(digest)
    if stored is None:
        raise ProblemError(NOT_FOUND, f"no commitment {hex32(digest)} in the store")
    require_department(principal, stored.department, "this commitment")
    return stored


def parse_json(raw: bytes) -> object:
    """Strict JSON (no duplicate keys, NaN or trailing data); 400 problem otherwise."""
    try:
        return load_json_bytes(raw)
    except InvalidDocumentError as exc:
        raise ProblemError(MALFORMED_JSON, str(exc)) from None


# --- the public routes' rate limit ---------------------------------------------------------


def rate_limited(request: Request, limiter: RateLimiter) -> None:
    """Spend one of the client's public requests; 429 problem with Retry-After when none left.

    The client is the peer address; behind a local reverse proxy uvicorn puts the
    X-Forwarded-For address there (`serve` trusts proxies on 127.0.0.1 only).
    """
    client = request.client.host if request.client else "unknown"
    wait = limiter.take(client)
    if wait > 0:
        retry = limiter.retry_after(wait)
        raise ProblemError(
            RATE_LIMITED,
            f"too many requests from this address: try again in {retry} s",
            headers={"Retry-After": retry},
        )


async def _spend_public_request(request: Request, limiter: LimiterDep) -> None:
    rate_limited(request, limiter)  # memory only: no need for a thread


RateLimit = Depends(_spend_public_request)

"""The routes' dependencies, as Annotated types: the parts of the service a route uses, who
is asking, and the checks every route makes alike.

A route declares the parts it uses (StoreDep, RecordsDep, ChainDep, ...), not the whole
ServiceContext: what a route can touch is read from its signature.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.service.background import BackgroundTasks
from api.service.context import ChainLink, ServiceContext
from api.service.keys import DepartmentKeys
from api.service.problems import (
    INVALID_HASH,
    INVALID_REQUEST,
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
from api.service.tokens import (
    READER_ROLES,
    SUPERVISOR,
    Principal,
    Role,
    TokenStore,
    is_department_code,
)
from ledger import (
    Hash32,
    Intake,
    InvalidDocumentError,
    InvalidHashError,
    LeaseKeeper,
    Store,
    StoredCommitment,
    Vault,
    hex32,
    load_json_bytes,
    to_hash32,
)
from verifier import OfficeHours
from verifier.engine import DecisionDesk
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


async def get_leases(context: ContextDep) -> LeaseKeeper:
    """The leases this instance holds or asks for (its background roles)."""
    return context.leases


async def get_decision_desk(context: ContextDep) -> DecisionDesk:
    """The service's decision desk (its store, the catalog, the office hours)."""
    return context.decision_desk()


async def get_hours(context: ContextDep) -> OfficeHours:
    """The office hours the half-day rule counts in (the `office_hours` setting)."""
    return context.hours


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
DeskDep = Annotated[DecisionDesk, Depends(get_decision_desk)]
HoursDep = Annotated[OfficeHours, Depends(get_hours)]
BackgroundDep = Annotated[BackgroundTasks, Depends(get_background)]
LeasesDep = Annotated[LeaseKeeper, Depends(get_leases)]
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


_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="commitledger"'}
_SUPERVISOR_READS = (
    "a supervisor token reads work lists and statistics and changes nothing; "
    "this needs a department's token"
)


def _bearer_principal(
    request: Request, tokens: TokenStore, token: str, *, reader: bool
) -> Principal:
    """A department token's principal (and, for a `reader`, a supervisor's); 401 problem for
    an unknown one, 403 for a feed token (and a supervisor's where it may not act)."""
    # A supervisor's token is looked up to be refused with 403, not 401: a 401 counts as a
    # guessed token (WrongTokenMiddleware), and the supervisor's token is a real one.
    principal = tokens.lookup(token, roles=(*READER_ROLES, "feed"))
    if principal is None:
        raise ProblemError(UNAUTHORIZED, "the token is unknown or revoked", headers=_CHALLENGE)
    if principal.role == "feed":
        # Its department column names a consumer, which may read like a department's code.
        raise ProblemError(
            WRONG_ROLE, "a feed token reads GET /v1/feed only; this needs a department's token"
        )
    if principal.role == "supervisor" and not reader:
        raise ProblemError(WRONG_ROLE, _SUPERVISOR_READS)
    request.state.department = principal.department  # for the request log
    return principal


def get_principal(
    request: Request,
    tokens: TokensDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The department and role of the bearer token; 401 problem without a valid one, 403
    for a feed or a supervisor token (a department route acts for the token's department),
    and for another department's write on a department's instance."""
    if credentials is None:
        raise ProblemError(UNAUTHORIZED, "send Authorization: Bearer <token>", headers=_CHALLENGE)
    principal = _bearer_principal(request, tokens, credentials.credentials, reader=False)
    instance_takes(settings.department, request.method, principal)
    return principal


_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def instance_takes(instance: str | None, method: str, principal: Principal) -> None:
    """403 problem when a department's instance (`serve --department`) is asked to write for
    another department: it holds that department's keys no more than its remit."""
    if instance is None or method in _READ_METHODS or principal.department == instance:
        return
    raise ProblemError(
        OTHER_DEPARTMENT,
        f"this instance acts for {instance} only; send {principal.department}'s requests to "
        f"{principal.department}'s own instance",
    )


DepartmentDep = Annotated[Principal, Depends(get_principal)]


def get_reader(
    request: Request,
    tokens: TokensDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """Who reads work lists and statistics: a department token (its own department) or a
    supervisor's (any department); 401 problem without a valid one, 403 for a feed token.
    Pass the principal to `reader_for` to learn which department it reads."""
    if credentials is None:
        raise ProblemError(UNAUTHORIZED, "send Authorization: Bearer <token>", headers=_CHALLENGE)
    return _bearer_principal(request, tokens, credentials.credentials, reader=True)


def get_optional_reader(
    request: Request,
    tokens: TokensDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """As `get_reader`, but None without a token (the public); a bad token is still 401."""
    if credentials is None:
        return None
    return _bearer_principal(request, tokens, credentials.credentials, reader=True)


ReaderDep = Annotated[Principal, Depends(get_reader)]
OptionalReaderDep = Annotated[Principal | None, Depends(get_optional_reader)]


def reader_for_any(principal: Principal, department: str | None) -> str | None:
    """The department `principal` reads when it asks for `department`; None: every
    department (a supervisor naming none). A department token reads its own only (403
    problem for another); a malformed code is a 422 problem."""
    if department is not None and not is_department_code(department):
        raise ProblemError(
            INVALID_REQUEST, f"department must be a department code like BJ-HRSS: {department!r}"
        )
    if principal.role == "supervisor":
        return department
    if department is not None and department != principal.department:
        raise ProblemError(
            OTHER_DEPARTMENT,
            f"this token reads {principal.department} only; a supervisor's reads others",
        )
    return principal.department


def reader_for(principal: Principal, department: str | None) -> str:
    """The one department `principal` reads when it asks for `department`: a department
    token its own (403 problem for another), a supervisor the one it names (422 problem
    when it names none)."""
    read = reader_for_any(principal, department)
    if read is None:
        raise ProblemError(
            INVALID_REQUEST, "a supervisor token reads one department here: pass department="
        )
    return read


DepartmentQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        description="The department to read (a supervisor's token only; a department token "
        "reads its own, the default)",
    ),
]


async def read_department(principal: ReaderDep, department: DepartmentQuery = None) -> str:
    """The `department` query parameter as `reader_for` allows it."""
    return reader_for(principal, department)


ReadDepartmentDep = Annotated[str, Depends(read_department)]


def is_supervisor(principal: Principal) -> bool:
    """Whether `principal` is the reform office's supervisor (reads everything, changes nothing)."""
    return principal.role == "supervisor" and principal.department == SUPERVISOR


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

"""The credit feed for the public credit platform: GET /v1/feed, pages in a total order.

Who reads what: without a token, public records only (they are public anyway), rate-limited
per client like the other public routes; a feed token (`commitledger tokens issue --role
feed --scope public|restricted|all|government`) reads up to its scope, without the rate
limit; a government one names the registered platform key (`kid`) identities are sealed to. A
department token reads the public scope. `after` is the opaque cursor of the last page.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from api.service.deps import (
    FeedStoreDep,
    KeysDep,
    LimiterDep,
    RateLimit,
    TokensDep,
    rate_limited,
)
from api.service.problems import (
    FOREIGN_CURSOR,
    INVALID_CURSOR,
    INVALID_REQUEST,
    UNAUTHORIZED,
    UNAVAILABLE,
    ProblemError,
    problem_responses,
)
from ledger import VaultError
from verifier import CursorError, FeedError, default_catalog
from verifier.feed import (
    GOVERNMENT_SCOPE,
    MAX_CURSOR_CHARS,
    VISIBLE_SCOPES,
    ConsumerScope,
    CursorCodec,
    FeedStore,
    published_keys,
    record_schema,
    shared_page,
)

router = APIRouter(tags=["feed"])

MAX_LIMIT = 1000
_bearer = HTTPBearer(auto_error=False, description="A feed token (optional for public records).")


class FeedPage(BaseModel):
    """One page of the feed: records in sequence order and the cursor of the next page."""

    records: list[dict[str, Any]] = Field(
        description="Signed feed records (the national credit-commitment data elements)"
    )
    next: str = Field(description="Pass as `after` to get the records that follow")
    scope: ConsumerScope = Field(description="The scopes this reader sees")


class SigningKeyView(BaseModel):
    """A department's public key that signs its feed records."""

    algorithm: str
    public_key: str = Field(description="base64 of the DER SubjectPublicKeyInfo")


class PublishedKeyView(BaseModel):
    """A public report key a department's signer published for its feed records."""

    algorithm: str
    public_key: str = Field(description="base64 of the DER SubjectPublicKeyInfo")
    published_at: float = Field(description="When its signer published it (Unix seconds)")
    first_sequence: int | None = Field(
        description="The first feed sequence signed with it (null: none yet)"
    )


class FeedKeys(BaseModel):
    """The report keys feed records are signed with, by department code."""

    keys: dict[str, SigningKeyView] = Field(
        description="Each department's current key: the one held here, else the last published"
    )
    history: dict[str, list[PublishedKeyView]] = Field(
        default_factory=dict,
        description="Every key each department's signer published, oldest first: a record "
        "signed before a rotation verifies under an older one; any other key is not the "
        "department's",
    )


def reader_scope(
    request: Request,
    tokens: TokensDep,
    limiter: LimiterDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ConsumerScope:
    """The scope of the caller: its feed token's, or public (rate-limited) without a token."""
    if credentials is None:
        rate_limited(request, limiter)
        return "public"
    principal = tokens.lookup(credentials.credentials)
    if principal is None:
        raise ProblemError(
            UNAUTHORIZED,
            "the token is unknown or revoked (public records need none)",
            headers={"WWW-Authenticate": 'Bearer realm="commitledger"'},
        )
    if principal.role != "feed" or principal.scope is None:
        return "public"
    return principal.scope


def _cursors(feed: FeedStore) -> CursorCodec:
    try:
        return feed.cursors
    except VaultError:  # the key is sealed and this service was started without the master key
        raise ProblemError(
            UNAVAILABLE, "the feed's cursor key is sealed: the service needs the master key"
        ) from None


def _shared(feed: FeedStore, bodies: list[str], kid: str | None) -> list[str]:
    if kid is None:
        raise ProblemError(INVALID_REQUEST, "a government token reads with kid=<platform key id>")
    try:
        return shared_page(feed, bodies, kid)
    except FeedError as exc:
        raise ProblemError(INVALID_REQUEST, str(exc)) from None


def _position(feed: FeedStore, after: str | None) -> int:
    if after is None:
        return 0
    try:
        position = _cursors(feed).decode(after)
    except CursorError as exc:
        kind = FOREIGN_CURSOR if exc.problem == "foreign" else INVALID_CURSOR
        raise ProblemError(kind, str(exc)) from None
    if position > feed.head():
        raise ProblemError(INVALID_CURSOR, "the cursor is ahead of this feed: start again")
    return position


@router.get(
    "/v1/feed",
    summary="Read the credit feed after a cursor",
    response_model=None,
    # The token is optional: without one the public records are served.
    openapi_extra={"security": [{}, {"HTTPBearer": []}]},
    responses={
        200: {"model": FeedPage, "description": "A page of records"},
        **problem_responses(400, 401, 422, 429, 503),
    },
)
def read_feed(
    feed: FeedStoreDep,
    scope: Annotated[ConsumerScope, Depends(reader_scope)],
    after: Annotated[str | None, Query(max_length=MAX_CURSOR_CHARS)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    kid: Annotated[
        str | None,
        Query(
            pattern="^[0-9a-f]{16}$",
            description="A government token: the id of the platform key (registered with "
            "`feed subscribe --scope government`) each record's identity is sealed to",
        ),
    ] = None,
) -> Response:
    """Records after `after` (from the start without it) in sequence order, at most `limit`.

    A consumer that stores `next` only after it has stored the page's records misses
    nothing and, skipping record ids it has, sees nothing twice, whatever crashes.
    """
    cursors = _cursors(feed)
    position = _position(feed, after)
    bodies, following = feed.page(position, limit, VISIBLE_SCOPES[scope])
    if scope == GOVERNMENT_SCOPE:
        bodies = _shared(feed, bodies, kid)
    # The bodies are stored as served: joined as they are, not parsed and dumped again.
    text = (
        '{"records":['
        + ",".join(bodies)
        + f'],"next":"{cursors.encode(following)}","scope":"{scope}"}}'
    )
    return Response(text, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get(
    "/v1/feed/keys",
    summary="The departments' keys that sign feed records",
    dependencies=[RateLimit],
    responses=problem_responses(429),
)
def feed_keys(keys: KeysDep, feed: FeedStoreDep) -> FeedKeys:
    """Each department's public report key: the one this instance holds, else the last its
    signer published in the shared store (so a keyless public instance answers too), and in
    `history` every key published. A record is signed over the RFC 8785 canonical bytes of
    the record without its `signature` member; a consumer may also pin these keys once, out
    of band (`feed check --public-keys`)."""
    history: dict[str, list[PublishedKeyView]] = {}
    for published in published_keys(feed.store.engine):
        history.setdefault(published.department, []).append(
            PublishedKeyView(**published.to_json_obj())
        )
    views: dict[str, SigningKeyView] = {}
    for department in default_catalog().departments():
        key = keys.report_key_if_present(department)
        if key is not None:
            views[department] = SigningKeyView(
                algorithm=key.algorithm, public_key=key.public_key_b64()
            )
        elif department in history:
            last = history[department][-1]
            views[department] = SigningKeyView(algorithm=last.algorithm, public_key=last.public_key)
    return FeedKeys(keys=views, history=history)


@router.get(
    "/v1/feed/schema",
    summary="The JSON Schema of a feed record",
    response_model=None,
    dependencies=[RateLimit],
    responses={
        200: {
            "description": "A JSON Schema (draft 2020-12) every served record validates against",
            "content": {"application/schema+json": {}},
        },
        **problem_responses(429),
    },
)
def feed_schema() -> Response:
    """The record's data elements (the national credit-commitment data elements, Chinese
    code-list values), their types and which are required: a platform validates what it
    loads against it. The same file ships in the package (verifier/feed/record.schema.json)."""
    text = json.dumps(record_schema(), ensure_ascii=False, separators=(",", ":"))
    return Response(
        text,
        media_type="application/schema+json",
        headers={"Cache-Control": "public, max-age=3600"},
    )

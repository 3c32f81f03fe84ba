"""Errors as RFC 9457 problem details (application/problem+json), one stable type per problem."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

PROBLEM_BASE = "https://commitledger.example/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True)
class ProblemType:
    """One kind of problem: its stable URI, its title and its HTTP status."""

    slug: str
    title: str
    status: int

    @property
    def uri(self) -> str:
        """The problem's `type`: a stable URI that clients may match on."""
        return PROBLEM_BASE + self.slug


MALFORMED_JSON = ProblemType("malformed-json", "The body is not a JSON document", 400)
INVALID_HASH = ProblemType("invalid-hash", "Not a commitment hash", 400)
BAD_CONTENT_LENGTH = ProblemType("bad-content-length", "Content-Length is not a number", 400)
INVALID_CURSOR = ProblemType("invalid-cursor", "The cursor is not one this feed issued", 400)
FOREIGN_CURSOR = ProblemType("foreign-cursor", "The cursor belongs to another feed", 400)
UNAUTHORIZED = ProblemType("unauthorized", "A valid department token is needed", 401)
WRONG_ROLE = ProblemType("wrong-role", "The token's role may not do this", 403)
OTHER_DEPARTMENT = ProblemType("other-department", "This belongs to another department", 403)
APPLICANT_EXCLUDED = ProblemType(
    "applicant-excluded", "The applicant is excluded from the commitment route", 403
)
NOT_FOUND = ProblemType("not-found", "Not found", 404)
METHOD_NOT_ALLOWED = ProblemType("method-not-allowed", "Method not allowed", 405)
NOT_ANCHORED = ProblemType("not-anchored", "The commitment is not anchored yet", 409)
ACTION_REFUSED = ProblemType("action-refused", "The commitment's state does not allow this", 409)
CODE_TAKEN = ProblemType("code-taken", "Another commitment already holds this code", 409)
CONTRACT_REFUSED = ProblemType("contract-refused", "The contract refused the transaction", 409)
CONTRACT_FORBIDDEN = ProblemType(
    "contract-forbidden", "The contract does not let this department's account do this", 403
)
REQUEST_TIMEOUT = ProblemType("request-timeout", "The request was not received in time", 408)
PAYLOAD_TOO_LARGE = ProblemType("payload-too-large", "The request body is too large", 413)
INVALID_REQUEST = ProblemType("invalid-request", "The request's parameters are invalid", 422)
INVALID_DOCUMENT = ProblemType("invalid-document", "The document is not a valid commitment", 422)
INVALID_SIGNATURE = ProblemType("invalid-signature", "The signature does not verify", 422)
RATE_LIMITED = ProblemType("rate-limited", "Too many requests", 429)
INTERNAL = ProblemType("internal", "Internal error", 500)
NOT_IMPLEMENTED = ProblemType("not-implemented", "Not available in this service yet", 501)
UNAVAILABLE = ProblemType("unavailable", "A part the service needs is not available", 503)
NOT_READY = ProblemType("not-ready", "The service is not ready", 503)
KEY_MISSING = ProblemType("key-missing", "The service holds no key for this department", 503)


class ProblemDetails(BaseModel):
    """The body of every error response (RFC 9457), for the OpenAPI document."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


class ProblemError(Exception):
    """Raised by a route: answered as problem+json, nothing else having changed."""

    def __init__(
        self,
        kind: ProblemType,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions


def problem_body(
    kind: ProblemType, detail: str, request_id: str | None = None, **extensions: Any
) -> dict[str, Any]:
    """The problem document; `instance` names this occurrence for the logs."""
    body: dict[str, Any] = {
        "type": kind.uri,
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
    }
    if request_id is not None:
        body["instance"] = f"urn:uuid:{request_id}"
    body.update(extensions)
    return body


def problem_response(
    kind: ProblemType,
    detail: str,
    *,
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extensions: Any,
) -> Response:
    """A problem+json response."""
    return JSONResponse(
        problem_body(kind, detail, request_id, **extensions),
        status_code=kind.status,
        headers=dict(headers or {}),
        media_type=PROBLEM_MEDIA_TYPE,
    )


def request_id_of(request: Request) -> str | None:
    """The id the request middleware gave this request."""
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for routes that may answer with these problems."""
    return {
        status: {
            "model": ProblemDetails,
            "content": {PROBLEM_MEDIA_TYPE: {}},
            "description": "A problem (RFC 9457)",
        }
        for status in statuses
    }


_HTTP_KINDS = {404: NOT_FOUND, 405: METHOD_NOT_ALLOWED, 413: PAYLOAD_TOO_LARGE}


def install_problem_handlers(app: FastAPI) -> None:
    """Answer raised Problems, routing errors and invalid parameters as problem+json."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProblemError)
        return problem_response(
            exc.kind,
            exc.detail,
            request_id=request_id_of(request),
            headers=exc.headers,
            **exc.extensions,
        )

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        kind = _HTTP_KINDS.get(exc.status_code) or ProblemType(
            f"http-{exc.status_code}", "HTTP error", exc.status_code
        )
        detail = exc.detail if isinstance(exc.detail, str) else kind.title
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"nothing at {request.url.path}"
        return problem_response(
            kind, detail, request_id=request_id_of(request), headers=exc.headers
        )

    async def on_invalid_request(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        # FastAPI's default echoes the input, which may be a name or an ID number.
        errors = [
            {"location": [str(part) for part in error["loc"]], "message": error["msg"]}
            for error in exc.errors()
        ]
        first = errors[0] if errors else {"location": [], "message": "invalid"}
        where = ".".join(first["location"])
        return problem_response(
            INVALID_REQUEST,
            f"{where}: {first['message']}" if where else str(first["message"]),
            request_id=request_id_of(request),
            errors=errors,
        )

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_invalid_request)

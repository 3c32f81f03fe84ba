"""The HTTP service: `create_app(settings)` builds it; `commitledger serve` runs it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.service.anchoring_task import register_anchoring
from api.service.context import ServiceContext
from api.service.docs_pages import router as docs_router
from api.service.feed_task import register_feed
from api.service.head import HeadMiddleware
from api.service.json_bodies import JsonBodyMiddleware
from api.service.lifecycle_task import register_lifecycle
from api.service.middleware import BodyLimitMiddleware, RequestMiddleware, WrongTokenMiddleware
from api.service.notices_task import register_notices
from api.service.problems import ProblemDetails, install_problem_handlers
from api.service.ratelimit import RateLimiter
from api.service.routes import (
    actions,
    admin_acts,
    appeals,
    applicant,
    audit,
    decisions,
    defence,
    departments,
    feed,
    health,
    public,
    rectifications,
    reports,
    stats,
    tasks,
    tokens,
    worklists,
)
from api.service.settings import Settings
from api.service.workbench import assets as workbench_assets
from api.service.workbench import router as workbench_router

API_VERSION = "1"
DESCRIPTION = """\
Commitment Ledger: signed notification commitments anchored on an Ethereum-compatible chain.

* **Departments** (a bearer token from `commitledger tokens issue`) submit commitments
  and follow their anchoring and verification.
* **Auditors** (no token) look up anchors, fetch portable proofs and check documents.
* **Applicants** (no password) sign a one-time challenge with the key that signed their
  commitment and see their own file: `/v1/applicant` and the page `/applicant`.
* **The public** (no token) searches the breach list; `/` is the lookup page and
  `/records/{id}` a record's page, explained.

This reference is served at `/docs` (Swagger UI) and `/redoc` (ReDoc), from this machine.
* **The credit platform** reads the signed credit feed, `/v1/feed`: public records without
  a token, restricted and non-public ones with a feed token of that scope.

Errors are RFC 9457 problem details (`application/problem+json`) whose `type` is stable.
"""


def create_app(
    settings: Settings | None = None, *, context: ServiceContext | None = None
) -> FastAPI:
    """The service over `context` (opened from `settings` when not given)."""
    # Started by uvicorn --factory: the same settings as every command (flags aside): the
    # environment over the data directory's commitledger.toml, a bad value one line.
    settings = settings or (context.settings if context else Settings.load())
    context = context or ServiceContext.open(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        register_anchoring(context)
        register_feed(context)
        register_lifecycle(context)
        register_notices(context)
        context.leases.start()  # each task's lease (issue 18): renewed, or taken when free
        context.background.start()
        try:
            yield
        finally:
            context.background.stop()
            context.leases.stop()  # released: another instance takes over at its next poll
            context.close()

    app = FastAPI(
        title="Commitment Ledger",
        version=API_VERSION,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        # FastAPI's Swagger UI and ReDoc load scripts from a CDN, which the CSP (rightly)
        # forbids: api/service/docs_pages.py serves both from the installed package.
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.context = context
    install_problem_handlers(app)
    # The public search and lookup first: routes are matched in order, and they are the
    # busiest (issue 19).
    app.include_router(public.search)
    app.include_router(audit.lookup)
    app.include_router(tasks.router)  # work lists (issue 16)
    app.include_router(worklists.router)  # the department's work lists (issue 15)
    app.include_router(feed.router)
    routers = (health.router, departments.router, actions.router, audit.router, reports.router)
    for router in (*routers, appeals.router, public.router, public.assets, docs_router):
        app.include_router(router)
    app.include_router(defence.router)
    app.include_router(rectifications.router)
    app.include_router(decisions.router)  # decisions on applications (issue 15)
    app.include_router(tokens.router)  # a department's own tokens (issue 15)
    app.include_router(stats.router)  # counts and rates: public, department, supervisor
    app.include_router(admin_acts.router)  # the multi-signature admin's acts (issue 18)
    for router in (applicant.router, applicant.page, applicant.assets):
        app.include_router(router)
    app.include_router(workbench_router)  # the department workbench (issue 15)
    app.include_router(workbench_assets)
    # Added last runs first: the request middleware wraps everything, then the wrong-token
    # throttle, then the body limits.
    app.add_middleware(JsonBodyMiddleware)  # inside the limits: the body is bounded
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        timeout=settings.body_timeout_seconds,
    )
    failures = settings.auth_failure_limit
    app.add_middleware(
        WrongTokenMiddleware,
        limiter=RateLimiter(failures, failures / settings.auth_failure_window_seconds),
    )
    app.add_middleware(HeadMiddleware)  # inside the request middleware: HEAD is logged as is
    app.add_middleware(RequestMiddleware)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(departments.signed_schemas())
        components.setdefault("ProblemDetails", ProblemDetails.model_json_schema())
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                if "401" in responses:  # a token is checked: the wrong-token throttle may answer
                    responses.setdefault("429", responses["401"])
        app.openapi_schema = schema
    return app.openapi_schema

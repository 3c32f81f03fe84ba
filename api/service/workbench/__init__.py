"""The department workbench in the browser (`/workbench`): server-rendered, bilingual pages
that work without JavaScript, behind a session cookie a department's or a supervisor's
token is exchanged for; every form carries the session's CSRF token."""

from __future__ import annotations

from fastapi import APIRouter

from api.service.workbench import actions, routes, views
from api.service.workbench.routes import assets
from api.service.workbench.sessions import (
    ABSOLUTE_S,
    IDLE_S,
    WorkbenchSession,
    WorkbenchSessions,
    csrf_token,
)

router = APIRouter(include_in_schema=False)
for part in (routes.router, views.router, actions.router):
    router.include_router(part)

__all__ = [
    "ABSOLUTE_S",
    "IDLE_S",
    "WorkbenchSession",
    "WorkbenchSessions",
    "assets",
    "csrf_token",
    "router",
]

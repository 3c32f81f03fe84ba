"""Each route declares the parts of the service it uses, not the whole ServiceContext."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

import api.service.routes
from api.service import get_context

# A department action builds the department's engine from most of the context (see
# api/service/routes/actions.py): these alone may take it whole.
TAKES_THE_CONTEXT = {
    "withdraw_commitment",
    "decide_verification",
    "repair_breach",
    "run_verification",
    "post_confirm",  # notice and defence: the department's actions, like the four above
    "post_defence_decision",
    "post_objection_decision",  # an upheld objection: the department's withdraw action
    "post_repair_decision",  # a granted repair: the department's repair action
    "decide_evidence",  # accepted evidence: the department's rectify action
    "complete_task",  # the last task's answer settles through the department's actions
    # Filings through verifier.engine, with the records, settings, today and sealing vault:
    "post_objection",
    "post_repair_application",
    "file_json",  # the applicant's filings: an objection, a repair, a statement, evidence
    "applicant_file",  # the same filings from the applicant's page
    # The hot public paths (issue 19): FastAPI solves each dependency per request, and in
    # the lookup's profile four parts cost most of what the route's own work did; these
    # take the context once instead (25b9779).
    "audit_commitment",
    "check_document",
    "list_breaches",
    "get_breach",
}


def _routes() -> Iterator[APIRoute]:
    """Every route of every module of api.service.routes."""
    for found in pkgutil.iter_modules(api.service.routes.__path__):
        module = importlib.import_module(f"api.service.routes.{found.name}")
        for router in vars(module).values():
            if isinstance(router, APIRouter):
                yield from (r for r in router.routes if isinstance(r, APIRoute))


def _takes_the_context(dependant: Dependant) -> bool:
    """Whether the route or a dependency of the route's own asks for the whole context
    (deps.py's parts take it, to hand out one part each)."""
    return any(
        sub.call is get_context
        or (getattr(sub.call, "__module__", None) != "api.service.deps" and _takes_the_context(sub))
        for sub in dependant.dependencies
    )


def test_routes_take_the_parts_they_use_not_the_whole_context() -> None:
    routes = list(_routes())
    assert {"readyz", "submit_commitment", "audit_commitment", "read_feed", "lookup_page"} <= {
        route.name for route in routes
    }
    taking = {route.name for route in routes if _takes_the_context(route.dependant)}
    assert taking == TAKES_THE_CONTEXT

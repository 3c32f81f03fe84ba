"""Liveness and readiness for whoever runs the service."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter

from api.service.anchoring_task import TASK_NAME
from api.service.deps import ContextDep
from api.service.models import Health, Readiness
from api.service.problems import NOT_READY, ProblemError, problem_responses

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
def healthz() -> Health:
    """Answers as long as the process serves requests."""
    return Health(status="ok")


@router.get("/readyz", summary="The store and the chain answer", responses=problem_responses(503))
def readyz(context: ContextDep) -> Readiness:
    """Ready when the store and the chain both answer; with the anchoring backlog (pending
    commitments, the oldest one's age in seconds, batches in flight), whether this process
    anchors in the background, and its background tasks' health."""
    checks: dict[str, Any] = {}
    anchoring: dict[str, Any] = {}
    try:
        anchoring = dataclasses.asdict(context.store.status())
        checks["store"] = {"ok": True}
    except Exception as exc:  # any failure of the database means "not ready"
        checks["store"] = {"ok": False, "error": type(exc).__name__}
    link = context.chain
    block = link.read(lambda ledger: ledger.chain.block_number())
    checks["chain"] = {
        "ok": block is not None,
        "chain_id": link.deployment.chain_id if link.deployment else None,
        "contract": link.deployment.contract if link.deployment else None,
        "block_number": block,
    }
    if block is None:
        checks["chain"]["error"] = link.last_error
    if anchoring:
        anchoring["background"] = TASK_NAME in context.background.names()
    tasks = {
        state.name: {"runs": state.runs, "failures": state.failures, "error": state.last_error}
        for state in context.background.states()
    }
    if not all(check["ok"] for check in checks.values()):
        failing = ", ".join(name for name, check in checks.items() if not check["ok"])
        raise ProblemError(
            NOT_READY,
            f"not answering: {failing}",
            checks=checks,
            anchoring=anchoring,
            background=tasks,
        )
    return Readiness(status="ready", checks=checks, anchoring=anchoring, background=tasks)

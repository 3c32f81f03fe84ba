"""Liveness and readiness for whoever runs the service."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.service.anchoring_task import TASK_NAME
from api.service.deps import (
    BackgroundDep,
    ChainDep,
    LeasesDep,
    RateLimit,
    SettingsDep,
    StoreDep,
    TokensDep,
)
from api.service.dev_chain import development_chain
from api.service.models import Health, Readiness
from api.service.problems import NOT_READY, UNAUTHORIZED, ProblemError, problem_responses
from api.service.tokens import OPERATOR_ONLY
from verifier.records import reconciliation_counts

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> Health:
    """Answers as long as the process serves requests: on the event loop itself, so it never
    waits for a worker thread that a heavy request holds."""
    return Health(status="ok")


_operator = HTTPBearer(
    auto_error=False,
    description="An operator token (`commitledger tokens issue --role operator`): the details.",
)


def _is_operator(
    tokens: TokensDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_operator)],
) -> bool:
    """Whether an operator token came; a token that is not a live operator token is a 401
    (and counts as a wrong token), none at all is the public."""
    if credentials is None:
        return False
    if tokens.lookup(credentials.credentials, roles=OPERATOR_ONLY) is None:
        raise ProblemError(
            UNAUTHORIZED,
            "the token is unknown, revoked, expired or not an operator's",
            headers={"WWW-Authenticate": 'Bearer realm="commitledger"'},
        )
    return True


def _leases(keeper: LeasesDep) -> dict[str, Any]:
    """This instance's name, the leases it holds (with their tokens) and those it wants, its
    fair share of them and the live instances it shares with, and any it is handing over."""
    return {
        "instance": keeper.holder,
        "held": keeper.held(),
        "wanted": keeper.wanted(),
        **keeper.share(),
        "handing_over": keeper.handing_over(),
    }


@router.get(
    "/readyz",
    summary="The store and the chain answer",
    responses=problem_responses(401, 429, 503),
    response_model_exclude_unset=True,
    dependencies=[RateLimit],
    openapi_extra={"security": [{}, {"HTTPBearer": []}]},  # the token is optional
)
def readyz(
    leases: Annotated[dict[str, Any], Depends(_leases)],
    store: StoreDep,
    chain: ChainDep,
    background: BackgroundDep,
    settings: SettingsDep,
    operator: Annotated[bool, Depends(_is_operator)],
) -> Readiness:
    """Ready when the store and the chain both answer. The public learns that alone, and
    whether the chain is a development chain whose history any local process can rewrite;
    an operator token also gets the checks, the anchoring backlog (pending commitments, the
    oldest one's age in seconds, batches in flight), whether this process anchors in the
    background, its background tasks' health (their last errors) and the reconciliation
    with the chain (events taken up, conflicts found: `commitledger chain check` lists
    them)."""
    warning = development_chain(settings)
    checks: dict[str, Any] = {}
    anchoring: dict[str, Any] = {}
    try:
        anchoring = dataclasses.asdict(store.status())
        checks["store"] = {"ok": True}
    except Exception as exc:  # any failure of the database means "not ready"
        checks["store"] = {"ok": False, "error": type(exc).__name__}
    block = chain.read(lambda ledger: ledger.chain.block_number())
    checks["chain"] = {
        "ok": block is not None,
        "chain_id": chain.deployment.chain_id if chain.deployment else None,
        "contract": chain.deployment.contract if chain.deployment else None,
        "block_number": block,
    }
    if block is None:
        checks["chain"]["error"] = chain.last_error
    if anchoring:
        anchoring["background"] = TASK_NAME in background.names()
    tasks = {
        state.name: {"runs": state.runs, "failures": state.failures, "error": state.last_error}
        for state in background.states()
    }
    if not all(check["ok"] for check in checks.values()):
        if not operator:
            raise ProblemError(NOT_READY, "not ready")
        failing = ", ".join(name for name, check in checks.items() if not check["ok"])
        raise ProblemError(
            NOT_READY,
            f"not answering: {failing}",
            checks=checks,
            anchoring=anchoring,
            background=tasks,
        )
    dev: dict[str, Any] = {} if warning is None else {"development_chain": warning}
    if not operator:
        return Readiness(status="ready", **dev)
    return Readiness(
        status="ready",
        checks=checks,
        anchoring=anchoring,
        background=tasks,
        reconciliation=reconciliation_counts(store),
        leases=leases,
        **dev,
    )

"""The admin's acts in public: `GET /v1/admin/acts`, what the multi-signature admin did.

Every binding, grant, revocation and correction the ledger's admin Safe executed, and every
change of the Safe's own owners and threshold (with what its AddedOwner, RemovedOwner and
ChangedThreshold events say changed), oldest first, each with the owners whose approvals the
Safe checked, read from the chain alone (SafeL2's events), so anyone can see who corrected a
breach and who let a department join or leave the owners (`?commitment=0x...` narrows
it to one commitment's corrections, `?transaction=0x...` to the act of the transaction a
feed record names). Public and rate limited like the lookup; only
institutional accounts and hashes, never personal data. 404 when the deployment has no
admin Safe (its admin is still one key), 503 when the node does not answer.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.admin_proposals import executed_acts
from api.files import read_deployment
from api.service.deps import ChainDep, LimiterDep, SettingsDep, rate_limited
from api.service.problems import (
    INVALID_HASH,
    NOT_FOUND,
    UNAVAILABLE,
    ProblemError,
    problem_responses,
)
from ledger import InvalidDocumentError, LedgerContract, SafeAdmin

router = APIRouter(prefix="/v1", tags=["admin"])

_HASH = re.compile(r"0x[0-9a-fA-F]{64}")


class AdminActs(BaseModel):
    """The admin Safe and what it executed."""

    safe: str
    threshold: int
    owners: list[str]
    acts: list[dict[str, Any]]


@router.get(
    "/admin/acts",
    summary="What the multi-signature admin did, and which owners approved each act",
    responses=problem_responses(400, 404, 422, 429, 503),
)
async def admin_acts(
    request: Request,
    settings: SettingsDep,
    chain: ChainDep,
    limiter: LimiterDep,
    commitment: Annotated[
        str | None,
        Query(max_length=66, description="Only the corrections of this commitment (0x...)."),
    ] = None,
    transaction: Annotated[
        str | None,
        Query(
            max_length=66,
            description="Only the act of this transaction (0x...), as a feed record names it.",
        ),
    ] = None,
) -> AdminActs:
    """The admin Safe's executed acts, oldest first, each decoded (department, commitment,
    evidence; or the owner added, removed or replaced and the threshold, with the changes the
    Safe logged) with the owners who approved it."""
    rate_limited(request, limiter)
    for name, value in (("commitment", commitment), ("transaction", transaction)):
        if value is not None and not _HASH.fullmatch(value):
            raise ProblemError(INVALID_HASH, f"{name} must be 0x and 64 hex digits")
    try:
        record = await run_in_threadpool(read_deployment, settings.resolved_deployment_file)
    except (OSError, InvalidDocumentError):
        raise ProblemError(NOT_FOUND, "this service knows no deployment") from None
    safe_address = record.get("admin_safe")
    if not isinstance(safe_address, str):
        raise ProblemError(NOT_FOUND, "the ledger's admin is not a Safe on this deployment")
    start = int(record.get("deployed_at_block", 0))

    def read(ledger: LedgerContract) -> AdminActs:
        safe = SafeAdmin(ledger.chain, safe_address)
        acts = executed_acts(
            safe.executions(from_block=start),
            ledger.address,
            safe.owner_events(from_block=start),
        )
        return AdminActs(
            safe=safe.address, threshold=safe.threshold(), owners=safe.owners(), acts=acts
        )

    found: AdminActs | None = await run_in_threadpool(chain.read, read)
    if found is None:
        raise ProblemError(UNAVAILABLE, "the chain's node does not answer now: try again later")
    if commitment is not None:
        wanted = commitment.lower()
        found.acts = [a for a in found.acts if a["action"].get("commitment") == wanted]
    if transaction is not None:
        wanted = transaction.lower()
        found.acts = [a for a in found.acts if a["transaction"] == wanted]
    return found

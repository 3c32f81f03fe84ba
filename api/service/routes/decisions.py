"""Decisions on applications (审批决定) for departments: a registrar of the commitment's
department decides once, approved or refused; the department reads the decision back.

Each answer shows the decision record as anchored: RFC 3339 times (received, due, decided),
whether it was late under the half-day rule (`verifier.OfficeHours`), the record's hash and,
once the department's next batch holds it, its anchoring.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.service.deps import DepartmentDep, DeskDep, HashDep, RegistrarDep, own_commitment
from api.service.problems import (
    ACTION_REFUSED,
    INVALID_REQUEST,
    NOT_FOUND,
    OTHER_DEPARTMENT,
    ProblemError,
    problem_responses,
)
from api.service.tokens import Principal
from ledger import DecisionResult, Hash32, InvalidDocumentError, hex32
from verifier.engine import DecisionDesk, DecisionRefusedError

router = APIRouter(prefix="/v1", tags=["decisions"])

_PROBLEMS = {
    "unknown": NOT_FOUND,
    "other-department": OTHER_DEPARTMENT,
    "decided": ACTION_REFUSED,
    "erased": ACTION_REFUSED,
}


class DecisionRequest(BaseModel):
    """The department's decision on the application made under a commitment."""

    model_config = ConfigDict(extra="forbid")

    result: DecisionResult = Field(description="approved or refused")


class DecisionAnchoring(BaseModel):
    """The batch that holds the decision record's hash as a leaf, and its Merkle proof."""

    batch_id: int
    root: str
    state: str = Field(description="pending, sent or anchored")
    tx_hash: str | None
    block_number: int | None
    proof: list[str]


class DecisionAnswer(BaseModel):
    """A decision record (schema commitledger.decision/1) and how far its anchoring got."""

    schema_: str = Field(alias="schema", description="commitledger.decision/1")
    commitment: str
    department: str
    matter_code: str
    channel: Literal["counter", "online"]
    received_at: str = Field(description="When the store received the commitment (RFC 3339)")
    due_at: str = Field(description="When the decision was due under the half-day rule")
    decided_at: str
    decided_by: str = Field(description="The account that decided (a token id)")
    result: Literal["approved", "refused"]
    late: bool = Field(description="Whether it was decided after due_at")
    due_provisional: bool = Field(
        description="due_at was counted into a year whose holidays are not yet published"
    )
    record_hash: str = Field(description="keccak256 of the record's RFC 8785 bytes: the leaf")
    state: str = Field(description="pending, batched or anchored")
    anchoring: DecisionAnchoring | None


def _answer(shown: dict[str, Any]) -> DecisionAnswer:
    return DecisionAnswer.model_validate(shown)


def _decide(
    desk: DecisionDesk, digest: Hash32, principal: Principal, result: DecisionResult
) -> DecisionAnswer:
    try:
        desk.decide(
            digest,
            result,
            principal.token_id,
            principal.department,
        )
    except DecisionRefusedError as exc:
        raise ProblemError(_PROBLEMS[exc.reason], str(exc)) from None
    except InvalidDocumentError as exc:
        raise ProblemError(INVALID_REQUEST, str(exc)) from None
    shown = desk.view(digest)
    if shown is None:  # pragma: no cover - stored just above
        raise ProblemError(NOT_FOUND, f"no decision on {hex32(digest)}")
    return _answer(shown)


@router.post(
    "/commitments/{hash}/decision",
    summary="Decide the application made under a commitment",
    responses=problem_responses(400, 401, 403, 404, 409, 422),
    status_code=201,
)
async def decide(
    digest: HashDep, principal: RegistrarDep, desk: DeskDep, body: DecisionRequest
) -> DecisionAnswer:
    """For a registrar of the commitment's department (another department's: 403, nothing
    stored), once (a second decision: 409). The decision is due half a working day of office
    time after an online receipt, by the end of the office period at the counter; the record
    is anchored with the department's next batch."""
    return await run_in_threadpool(_decide, desk, digest, principal, body.result)


def _read(desk: DecisionDesk, digest: Hash32, principal: Principal) -> DecisionAnswer:
    own_commitment(desk.store, digest, principal)
    shown = desk.view(digest)
    if shown is None:
        raise ProblemError(NOT_FOUND, f"commitment {hex32(digest)} is not decided yet")
    return _answer(shown)


@router.get(
    "/commitments/{hash}/decision",
    summary="The decision on a commitment's application",
    responses=problem_responses(400, 401, 403, 404),
)
async def decision(digest: HashDep, principal: DepartmentDep, desk: DeskDep) -> DecisionAnswer:
    """For the commitment's department: the decision record, late or not, its hash and its
    anchoring (404 while undecided)."""
    return await run_in_threadpool(_read, desk, digest, principal)

"""Routes for auditors (no token): anchors, portable proofs, and checking a document.

Nothing here shows personal data: hashes, transactions, states and public codes only.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.bundles import stored_bundle
from api.service.context import ServiceContext
from api.service.deps import ContextDep, HashDep, RateLimit
from api.service.models import AnchorView, AuditCommitment, DocumentCheck, OnChainView
from api.service.problems import (
    INVALID_DOCUMENT,
    NOT_ANCHORED,
    NOT_FOUND,
    UNAVAILABLE,
    ProblemError,
    problem_responses,
)
from api.service.routes.departments import parse_json, status_name
from ledger import (
    Commitment,
    InvalidDocumentError,
    LedgerContract,
    SignatureError,
    SignedCommitment,
    StandingNow,
    hex32,
    verify_signed,
)
from ledger.store import BatchRow
from ledger.types import Hash32

router = APIRouter(prefix="/v1/audit", tags=["auditors"], dependencies=[RateLimit])


def _anchor_view(batch: BatchRow, head: int | None) -> AnchorView:
    assert batch.tx_hash is not None
    assert batch.block_number is not None
    assert batch.block_hash is not None
    return AnchorView(
        batch_root=hex32(batch.root),
        batch_size=batch.size,
        transaction=hex32(batch.tx_hash),
        block_number=batch.block_number,
        block_hash=hex32(batch.block_hash),
        anchored_at=batch.anchored_at,
        confirmations=None if head is None else max(0, head - batch.block_number),
    )


def _on_chain(
    context: ServiceContext, digest: Hash32, anchoring: tuple[BatchRow, tuple[Hash32, ...]] | None
) -> tuple[OnChainView, int | None]:
    deployment = context.chain.deployment
    batch = None if anchoring is None else (anchoring[0].root, anchoring[1])

    def ask(ledger: LedgerContract) -> StandingNow:
        return ledger.standing_now(digest, batch)  # one batched request to a node

    # None when the node is down or its answer malformed: "unreachable", never a 5xx.
    answer: StandingNow | None = context.chain.read(ask)
    view = OnChainView(
        reachable=answer is not None,
        chain_id=deployment.chain_id if deployment else None,
        contract=deployment.contract if deployment else None,
        anchored=answer.anchored if answer else None,
        status=status_name(int(answer.standing.status)) if answer else None,
    )
    return view, answer.head if answer else None


@router.get(
    "/commitments/{hash}",
    summary="Where and when a commitment was anchored, and its outcome",
    responses=problem_responses(400, 404, 429),
)
def audit_commitment(digest: HashDep, context: ContextDep) -> AuditCommitment:
    """The anchor (batch root, transaction, block, confirmations when the node answers), the
    verification state, and the contract's status for the commitment, asked now: one
    batched request to the node at the time of the lookup (its head block, `isAnchored`,
    `statusOf`), nothing cached; `on_chain.reachable` is false when it does not answer."""
    # A sync route: uvicorn runs it in its thread pool, so the store's queries and the
    # node's answer never block the event loop.
    stored = context.store.get(digest)
    if stored is None:
        raise ProblemError(NOT_FOUND, f"no commitment {hex32(digest)} is known here")
    anchoring = None if stored.batch_id is None else context.store.anchoring_of(digest)
    on_chain, head = _on_chain(context, digest, anchoring)
    verification = context.records.verification(digest)
    return AuditCommitment(
        hash=hex32(digest),
        department=stored.department,
        matter_code=stored.matter_code,
        received_at=stored.received_at,
        state=stored.state,
        anchor=None if anchoring is None else _anchor_view(anchoring[0], head),
        verification_state=None if verification is None else verification.state,
        on_chain=on_chain,
        proof_url=None if anchoring is None else f"/v1/audit/commitments/{hex32(digest)}/proof",
    )


@router.get(
    "/commitments/{hash}/proof",
    summary="The portable proof bundle of an anchored commitment",
    responses=problem_responses(400, 404, 409, 429, 503),
)
def commitment_proof(digest: HashDep, context: ContextDep) -> dict[str, object]:
    """Plain JSON that anyone can check against any node: `commitledger verify-proof`."""
    deployment = context.chain.deployment
    if deployment is None:
        raise ProblemError(
            UNAVAILABLE, "the service has no deployment file: it cannot name the chain"
        )
    anchoring = context.store.anchoring_of(digest)
    if anchoring is None:
        if context.store.get(digest) is None:
            raise ProblemError(NOT_FOUND, f"no commitment {hex32(digest)} is known here")
        raise ProblemError(NOT_ANCHORED, f"{hex32(digest)} is accepted but not anchored yet")
    bundle = stored_bundle(
        digest, anchoring, chain_id=deployment.chain_id, contract=deployment.contract
    )
    return bundle.to_json_obj()


def _document(raw: bytes) -> Commitment | SignedCommitment:
    parsed = parse_json(raw)
    try:
        if isinstance(parsed, dict) and "signature" in parsed:
            return SignedCommitment.from_json_obj(parsed)
        return Commitment.from_json_obj(parsed)
    except InvalidDocumentError as exc:
        raise ProblemError(INVALID_DOCUMENT, str(exc)) from None


def _check_document(
    context: ServiceContext, document: Commitment | SignedCommitment
) -> DocumentCheck:
    signature_valid: bool | None = None
    if isinstance(document, SignedCommitment):
        try:
            verify_signed(document)
            signature_valid = True
        except SignatureError:
            signature_valid = False
    digest = document.hash()
    stored = context.store.get(digest)
    if stored is not None:
        return DocumentCheck(
            status="matches",
            signature_valid=signature_valid,
            hash=hex32(digest),
            anchored=stored.state == "anchored",
            audit_url=f"/v1/audit/commitments/{hex32(digest)}",
        )
    code = document.document.code if isinstance(document, SignedCommitment) else document.code
    # A document whose code is known but whose hash is not was changed after it was
    # committed: name what was committed (hashes only), never the stored document.
    committed = context.store.with_code(code)
    if committed:
        shown = next((c for c in committed if c.state == "anchored"), committed[0])
        return DocumentCheck(
            status="tampered",
            signature_valid=signature_valid,
            hash=hex32(digest),
            anchored=False,
            audit_url=f"/v1/audit/commitments/{hex32(shown.hash)}",
            committed_hashes=[hex32(c.hash) for c in committed],
        )
    return DocumentCheck(
        status="unknown",
        signature_valid=signature_valid,
        hash=hex32(digest),
        anchored=False,
        audit_url=None,
    )


@router.post(
    "/documents",
    summary="Is this document exactly what was committed?",
    responses=problem_responses(400, 413, 422, 429),
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "A signed commitment {document, signature} or a bare commitment.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def check_document(request: Request, context: ContextDep) -> DocumentCheck:
    """Hash the document as the ledger does and look the hash up; check its signature.

    `matches`: the hash is committed. `tampered`: a commitment with the document's code
    exists but its hash differs (the committed hashes are named). `unknown`: neither.

    The document is neither stored nor logged.
    """
    document = _document(await request.body())
    return await run_in_threadpool(_check_document, context, document)

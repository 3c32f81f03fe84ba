"""Routes for auditors (no token): anchors, portable proofs, and checking a document.

Nothing here shows personal data: hashes, transactions, states and public codes only.
Without a token a caller sees what the public may see: whether a commitment is anchored and
the published breach states; other outcomes (kept, mismatch, needs-manual, withdrawn) and
the hashes committed under another document's code need a token of the right scope (a feed
token of scope `all`, `restricted` for kept, or a token of the commitment's department).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.service.chain_reads import Anchoring, async_standing
from api.service.context import ChainLink
from api.service.deps import (
    ChainDep,
    ContextDep,
    HashDep,
    RateLimit,
    StoreDep,
    commitment_hash,
    parse_json,
    rate_limited,
)
from api.service.models import AnchorView, AuditCommitment, DocumentCheck, OnChainView, utc_text
from api.service.problems import (
    INVALID_DOCUMENT,
    NOT_ANCHORED,
    NOT_FOUND,
    UNAUTHORIZED,
    UNAVAILABLE,
    ProblemError,
    problem_responses,
)
from api.service.views import status_name
from ledger import (
    ChainError,
    Commitment,
    InvalidDocumentError,
    LedgerContract,
    SignatureError,
    SignedCommitment,
    StandingNow,
    Status,
    Store,
    department_id,
    hex32,
    stored_bundle,
    verify_signed,
)
from verifier.feed import KIND_OF_STATUS, SCOPE_OF_KIND, VISIBLE_SCOPES, ConsumerScope
from verifier.records import AuditFact

log = logging.getLogger("commitledger.service")

router = APIRouter(prefix="/v1/audit", tags=["auditors"], dependencies=[RateLimit])
# The lookup by hash, which spends the rate limit and reads its token itself (see
# audit_commitment).
lookup = APIRouter(prefix="/v1/audit", tags=["auditors"])
_bearer = HTTPBearer(
    auto_error=False, description="Optional: a feed or department token sees more states."
)


@dataclass(frozen=True)
class AuditReader:
    """Who asks: the feed scope their token allows, and their department if they have one."""

    scope: ConsumerScope = "public"
    department: str | None = None

    def sees(self, status: Status, department: str) -> bool:
        """Whether this reader may learn that a commitment of `department` is in `status`."""
        if self.sees_everything_of(department):
            return True
        kind = KIND_OF_STATUS.get(status)
        return kind is not None and SCOPE_OF_KIND[kind] in VISIBLE_SCOPES[self.scope]

    def sees_everything_of(self, department: str) -> bool:
        return self.scope == "all" or self.department == department


async def audit_reader(
    context: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AuditReader:
    """The public without a token; a feed token's scope, or a department token's department
    (one read by primary key, inline: a thread hop per lookup would cost more)."""
    if credentials is None:
        return AuditReader()
    principal = context.tokens.lookup(credentials.credentials)
    if principal is None:
        raise ProblemError(
            UNAUTHORIZED,
            "the token is unknown or revoked (the public answer needs none)",
            headers={"WWW-Authenticate": 'Bearer realm="commitledger"'},
        )
    if principal.role == "feed":
        return AuditReader(scope=principal.scope or "public")
    return AuditReader(department=principal.department)


ReaderDep = Annotated[AuditReader, Depends(audit_reader)]
_OPTIONAL_TOKEN: list[dict[str, list[str]]] = [{}, {"HTTPBearer": []}]  # none needed


def _anchor_now(fact: AuditFact, head: int | None) -> AnchorView | None:
    anchoring = fact.anchoring
    if anchoring is None:
        return None
    return AnchorView(
        batch_root=hex32(anchoring.root),
        batch_size=anchoring.size,
        transaction=hex32(anchoring.tx_hash),
        block_number=anchoring.block_number,
        block_hash=hex32(anchoring.block_hash),
        anchored_at=None if anchoring.anchored_at is None else utc_text(anchoring.anchored_at),
        confirmations=None if head is None else max(0, head - anchoring.block_number),
    )


async def _standing_now(chain: ChainLink, fact: AuditFact) -> StandingNow | None:
    """The contract's answer for the department's record of the commitment, asked now; None
    when the node is down, slow past the timeout, or its answer malformed: "unreachable"."""
    url = chain.node_url
    if url is None:  # no deployment (nothing to ask), or the embedded chain (no HTTP)
        return await run_in_threadpool(_standing_in_thread, chain, fact)
    anchoring = fact.anchoring
    try:
        return await async_standing(chain, url).standing_now(
            fact.department,
            fact.hash,
            None
            if anchoring is None
            else Anchoring(
                anchoring.root, anchoring.proof, anchoring.block_number, anchoring.block_hash
            ),
        )
    except ChainError as exc:  # NodeUnreachableError too: the node is another system
        chain.last_error = f"{type(exc).__name__}: the node did not answer"
        log.warning("chain read failed", extra={"reason": type(exc).__name__})
        return None


def _standing_in_thread(chain: ChainLink, fact: AuditFact) -> StandingNow | None:
    anchoring = fact.anchoring
    batch = None if anchoring is None else (anchoring.root, anchoring.proof)

    def ask(ledger: LedgerContract) -> StandingNow:
        # the department's own record: another department's anchoring of the hash is not it
        return ledger.standing_now(department_id(fact.department), fact.hash, batch)

    answer: StandingNow | None = chain.read(ask)
    return answer


@lookup.get(
    "/commitments/{hash}",
    summary="Where and when a commitment was anchored, and its outcome",
    response_model=AuditCommitment,
    responses=problem_responses(400, 401, 404, 429),
    openapi_extra={"security": _OPTIONAL_TOKEN},
)
async def audit_commitment(request: Request, hash: str, context: ContextDep) -> Response:
    """The anchor (batch root, transaction, block, confirmations when the node answers), the
    verification state, and the contract's status for the commitment, asked now: one
    batched request to the node at the time of the lookup (its head block, `statusOf`, and
    `isAnchored` unless the node said so of a batch that is final since); `on_chain.reachable`
    is false when it does not answer in time.

    Without a token only published breach states are named (`status` and
    `verification_state` are null otherwise); see the module's note for tokens."""
    # The rate limit, the hash and the reader as the other routes' dependencies give them,
    # in their order, called here: FastAPI's solving of seven dependencies cost a quarter of
    # the lookup's CPU (issue 19).
    rate_limited(request, context.limiter)
    digest = await commitment_hash(hash)
    reader = await audit_reader(context, await _bearer(request))
    # One read by primary keys, inline (a thread hop would cost more); the node is asked
    # from the event loop, without a thread.
    records, chain = context.records, context.chain
    fact = records.audit_fact(digest)
    if fact is None:
        raise ProblemError(NOT_FOUND, f"no commitment {hex32(digest)} is known here")
    answer = await _standing_now(chain, fact)
    deployment = chain.deployment
    shown = answer is not None and reader.sees(answer.standing.status, fact.department)
    on_chain = OnChainView(
        reachable=answer is not None,
        chain_id=deployment.chain_id if deployment else None,
        contract=deployment.contract if deployment else None,
        anchored=answer.anchored if answer else None,
        # A state this reader may not see is not named; `anchored` still says anchored.
        status=status_name(int(answer.standing.status)) if answer and shown else None,
    )
    verification = fact.verification_state
    if not reader.sees_everything_of(fact.department) and (
        on_chain.status is None or on_chain.status not in _PUBLIC_STATUS_NAMES
    ):
        verification = None  # its state would name the outcome the chain's status hides
    found = AuditCommitment(
        hash=hex32(digest),
        department=fact.department,
        matter_code=fact.matter_code,
        received_at=utc_text(fact.received_at),
        state=fact.state,
        anchor=_anchor_now(fact, None if answer is None else answer.head),
        verification_state=verification,
        on_chain=on_chain,
        proof_url=None
        if fact.anchoring is None
        else f"/v1/audit/commitments/{hex32(digest)}/proof",
    )
    return Response(found.model_dump_json().encode(), media_type="application/json")


@router.get(
    "/commitments/{hash}/proof",
    summary="The portable proof bundle of an anchored commitment",
    responses=problem_responses(400, 404, 409, 429, 503),
)
def commitment_proof(digest: HashDep, store: StoreDep, chain: ChainDep) -> dict[str, object]:
    """Plain JSON that anyone can check against any node: `commitledger verify-proof`."""
    deployment = chain.deployment
    if deployment is None:
        raise ProblemError(
            UNAVAILABLE, "the service has no deployment file: it cannot name the chain"
        )
    anchoring = store.anchoring_of(digest)
    if anchoring is None:
        if store.get(digest) is None:
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


_PUBLIC_STATUS_NAMES = frozenset(
    str(status_name(int(status)))
    for status, kind in KIND_OF_STATUS.items()
    if SCOPE_OF_KIND[kind] == "public"
)


def _check_document(
    store: Store, document: Commitment | SignedCommitment, reader: AuditReader
) -> DocumentCheck:
    signature_valid: bool | None = None
    if isinstance(document, SignedCommitment):
        try:
            verify_signed(document)
            signature_valid = True
        except SignatureError:
            signature_valid = False
    digest = document.hash()
    stored = store.get(digest)
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
    # Codes are sequential: to anyone else, naming the hashes under a guessed code would
    # lead to their states. Without the right token such a document is just `unknown`.
    committed = [c for c in store.with_code(code) if reader.sees_everything_of(c.department)]
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
    responses=problem_responses(400, 401, 413, 422, 429),
    openapi_extra={
        "security": _OPTIONAL_TOKEN,
        "requestBody": {
            "required": True,
            "description": "A signed commitment {document, signature} or a bare commitment.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
    },
)
async def check_document(request: Request, store: StoreDep, reader: ReaderDep) -> DocumentCheck:
    """Hash the document as the ledger does and look the hash up; check its signature.

    `matches`: the hash is committed. `tampered`: a commitment with the document's code
    exists but its hash differs (the committed hashes are named; only to a feed token of
    scope `all` or a token of that commitment's department). `unknown`: neither (or, to
    other callers, the code is committed under another hash: the document does not match).

    The document is neither stored nor logged.
    """
    document = _document(await request.body())
    return await run_in_threadpool(_check_document, store, document, reader)

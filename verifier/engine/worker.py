"""Deciding one commitment, the part that runs in the worker processes (or here without them).

Integrity against its anchor, comparisons with the department data, the outcome and its
signed report: functions of what crosses the process boundary, small and picklable, and
the worker processes' entry points.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import NamedTuple

from ledger import (
    Applicant,
    ErasedError,
    Hash32,
    InvalidDocumentError,
    SignatureError,
    SignedCommitment,
    SigningKey,
    Vault,
    VaultError,
    canonical_bytes_fast,
    commitment_hash_of_canonical,
    hex32,
    keccak256,
    leaf_hash,
    process_proof,
    proof_in_nodes,
    verify_proof,
    verify_signed,
)
from verifier.catalog import Catalog, ClaimSpec, Matter
from verifier.engine.methods import any_of_keys, claims_outcome, exempt_keys, exempt_note, worse
from verifier.reports import Outcome, SignedReport, VerificationReport, sign_report
from verifier.rules import Comparison, compare
from verifier.sources import Subject

ERASED = "personal data erased: the document can no longer be checked"


@dataclass(frozen=True)
class Decision:
    """What verification found for one commitment (it holds no personal data)."""

    commitment_hash: Hash32
    matter: Matter
    outcome: Outcome
    comparisons: tuple[Comparison, ...] = ()
    note: str = ""
    report: SignedReport | None = None  # signed already, when the decider has the key


def sign_decision(
    decision: Decision,
    department: str,
    on: date,
    key: SigningKey,
    decided_by: str = "engine",
    tasks: Sequence[Mapping[str, str]] | None = None,
) -> SignedReport:
    """The department's signed report of a decision, with the matter's tasks for a person:
    open when the engine decided, done once a person decided kept, mismatch or false.
    `tasks`: the tasks as the task records hold them (`verifier.engine.tasks`), instead."""
    done = decided_by != "engine" and decision.outcome in ("kept", "mismatch", "false")
    if tasks is None:
        tasks = tuple(
            {
                "key": task.key,
                "kind": task.kind,
                "description": task.description,
                "status": "done" if done else "open",
            }
            for task in decision.matter.tasks
        )
    report = VerificationReport(
        commitment_hash=decision.commitment_hash,
        matter_code=decision.matter.code,
        department=department,
        outcome=decision.outcome,
        comparisons=tuple(c.to_json_obj() for c in decision.comparisons),
        as_of=on,
        decided_at=datetime.now(UTC),
        decided_by=decided_by,
        note=decision.note,
        tasks=tuple(dict(task) for task in tasks),
    )
    return sign_report(report, key)


@dataclass(frozen=True)
class Checked:
    """What a document that passed the integrity check leaves for the comparison: its
    matter, whose data to look up, and the claims (key, op, value). A few hundred bytes to
    send back from a worker process, where the whole document would cost more to unpickle
    than to check."""

    matter_code: str
    subject: Subject = field(repr=False)
    claims: tuple[tuple[str, str, object], ...]
    # Who committed (kind, name): a breach found names them without opening the document again.
    party: tuple[str, str] = field(default=("", ""), repr=False)

    @classmethod
    def of(cls, signed: SignedCommitment) -> Checked:
        """The parts of a checked document the comparison (and a breach record) needs."""
        document = signed.document
        applicant = document.applicant
        return cls(
            document.matter_code,
            Subject(applicant.id_type, applicant.id_number),
            tuple((claim.key, claim.op, claim.value) for claim in document.claims),
            (applicant.kind, applicant.name),
        )

    def applicant(self) -> Applicant:
        """The applicant of the checked document, as it committed."""
        kind, name = self.party
        return Applicant.model_validate(
            {
                "kind": kind,
                "name": name,
                "id_type": self.subject.id_type,
                "id_number": self.subject.id_number,
            }
        )


def _outcome(matter: Matter, comparisons: Sequence[Comparison]) -> Outcome:
    """FALSE beats MISMATCH beats NEEDS_MANUAL beats KEPT; undecidable never breaches, and
    a matter with a check only a person can make is never kept by the engine alone (the
    run joins the task records' results: `verifier.engine.tasks`)."""
    outcome = claims_outcome(matter, comparisons)
    return worse(outcome, "needs_manual") if matter.tasks else outcome


def _tasks_note(matter: Matter) -> str:
    """What a person must still check before the commitment can be reported fulfilled."""
    open_tasks = "; ".join(f"{task.key} ({task.kind}): {task.description}" for task in matter.tasks)
    return f"Open checks for a person: {open_tasks}."


Sealed = tuple[str, bytes, bytes | None]
Anchoring = tuple[Hash32, tuple[Hash32, ...]]
# The store's `anchor_refs_of`: (batch root, proof or None when it is in the batch's tree,
# batch id); the trees go once per batch (`Trees`), the proofs are sliced where checked.
AnchorRef = tuple[Hash32, tuple[Hash32, ...] | None, int]
Trees = Mapping[int, bytes]
# (document, problem, the commitment's root and proof when the store gives them)
CheckResult = tuple[Checked | None, str, Anchoring | None]
CheckItem = tuple[Hash32, Sealed | None, AnchorRef | None]

_NOT_PROVEN = "the anchor on chain does not prove this commitment"


class ProofChecker:
    """Slices commitments' proofs from their batches' trees and checks them against the
    roots: the leaf is hashed once for both, and each pair of nodes once while the checker
    lives (proofs of one batch share their upper nodes). Forgets them every `forget_after`
    proofs, so that memory stays bounded over a long run."""

    def __init__(self, forget_after: int = 20_000) -> None:
        self._parents: dict[bytes, bytes] = {}
        self._checked = 0
        self._forget_after = forget_after

    def anchoring(
        self, commitment: Hash32, ref: AnchorRef, trees: Trees
    ) -> tuple[Anchoring | None, Hash32 | None]:
        """The commitment's (root, proof), None when its batch's tree does not hold it; and
        its leaf, when slicing needed it."""
        root, proof, batch_id = ref
        if proof is not None:
            return (root, proof), None
        tree = trees.get(batch_id)
        if tree is None:
            return (root, ()), None  # a batch formed before trees were kept: no proof
        leaf = leaf_hash(commitment)
        sliced = proof_in_nodes(tree, commitment, leaf)
        return (None if sliced is None else (root, sliced)), leaf

    def proves(self, anchoring: Anchoring, commitment: Hash32, leaf: Hash32 | None) -> bool:
        """Whether the proof leads from the commitment's leaf to the root (MerkleError if it
        is malformed), as `verify_proof`."""
        self._checked += 1
        if self._checked > self._forget_after:
            self._parents, self._checked = {}, 1
        root, proof = anchoring
        if leaf is None:
            return verify_proof(root, commitment, proof, self._parents)
        return process_proof(leaf, proof, self._parents) == root


def check_document(
    vault: Vault,
    commitment: Hash32,
    sealed: Sealed | None,
    ref: AnchorRef | None,
    trees: Trees,
    proofs: ProofChecker | None = None,
) -> CheckResult:
    """Open and check one stored document against its proof; the root's presence on chain
    is left to the caller (one view call per batch). Returns (document, problem, anchoring):
    the anchoring whenever the store gives one, for the outcome's first record on chain."""
    proofs = proofs if proofs is not None else ProofChecker()
    anchoring, leaf = (None, None) if ref is None else proofs.anchoring(commitment, ref, trees)
    if sealed is None:
        return None, "no such commitment in the store", anchoring
    try:
        plaintext = vault.open(sealed[1], sealed[2], associated=commitment)
        signed = SignedCommitment.from_json_obj(json.loads(plaintext))
    except ErasedError:
        return None, ERASED, anchoring
    except (VaultError, InvalidDocumentError, ValueError):
        problem = "the sealed document does not open: it was altered in the store"
        return None, problem, anchoring
    # One encoding of the document serves its hash and its signature, as at intake.
    canonical = signed.document.canonical()
    if commitment_hash_of_canonical(canonical) != commitment:
        problem = "tampered: the stored document does not hash to the anchored value"
        return None, problem, anchoring
    try:
        verify_signed(signed, canonical=canonical)
    except SignatureError:
        problem = "the applicant's signature does not verify over the stored document"
        return None, problem, anchoring
    if ref is None:
        return None, "not anchored yet", None
    if anchoring is None or not proofs.proves(anchoring, commitment, leaf):
        return None, _NOT_PROVEN, anchoring
    return Checked.of(signed), "", anchoring


@dataclass(frozen=True)
class SourceFailed:
    """A data source's failure, by kind (SourceError does not survive pickling)."""

    kind: str


class SourceAnswer(NamedTuple):
    """What one data source answered for one subject, and when (UTC seconds); a signed
    answer's base64 signature and the department key's id (None when unsigned)."""

    record: Mapping[str, object] | SourceFailed | None
    answered_at: int
    signature: str | None = None
    key_id: str | None = None


SourceData = Mapping[str, SourceAnswer]
ToCompare = tuple[Hash32, Checked, str, SourceData]  # commitment, claims, matter code, records
Compared = tuple[Outcome, tuple[Comparison, ...], SignedReport | None, str]  # ..., note

_LEFT_OUT = " The commitment left this claim out; it was compared with the matter's condition."
_RESTATED = " The commitment stated another condition; it was compared with the matter's condition."
_UNSTATED = "Cannot decide: the commitment leaves out this claim, whose value the applicant states."


def data_hash(record: Mapping[str, object] | None) -> str | None:
    """The snapshot hash of what a source answered: hex keccak256 of the RFC 8785 bytes of
    the record (of the JSON null when it had none); None if JSON cannot hold the record."""
    try:
        plain = record if record is None or type(record) is dict else dict(record)
        return hex32(keccak256(canonical_bytes_fast(plain)))
    except InvalidDocumentError:
        return None


def _condition(
    spec: ClaimSpec, stated: tuple[str, object] | None
) -> tuple[str, object, str] | None:
    """What a claim is compared with, and why: the matter's own condition when it fixes the
    value (an applicant cannot weaken it, nor escape it by leaving the claim out), else the
    value the applicant stated; None when that value is missing."""
    if spec.value is not None:
        if stated is None:
            return spec.op, spec.value, _LEFT_OUT
        if stated != (spec.op, spec.value):
            return spec.op, spec.value, _RESTATED
        return spec.op, spec.value, ""
    if stated is None:
        return None
    return stated[0], stated[1], ""


def _compare_one(
    spec: ClaimSpec,
    stated: tuple[str, object] | None,
    answer: SourceAnswer | None,
    hashes: dict[str, str | None],
    on: date,
) -> Comparison:
    record = None if answer is None else answer.record
    condition = _condition(spec, stated)
    why = ""
    if isinstance(record, SourceFailed):
        claimed = None if condition is None else {"op": condition[0], "value": condition[1]}
        detail = f"data source {spec.source} failed: {record.kind}"
        found = Comparison(spec.key, "undecidable", claimed, None, detail)
    elif condition is None:
        found = Comparison(spec.key, "undecidable", None, None, _UNSTATED)
    else:
        op, value, why = condition
        observed = None if record is None else record.get(spec.source_field)
        found = compare(spec.key, spec.type, op, value, observed, as_of=on)
    if spec.source not in hashes:  # one hash per source and subject, shared by its claims
        hashes[spec.source] = None if isinstance(record, SourceFailed) else data_hash(record)
    # Built whole, not by dataclasses.replace: this runs for every claim of every document.
    return Comparison(
        found.key,
        found.verdict,
        found.claimed,
        found.observed,
        found.detail + why,
        found.gaps,
        spec.source,
        None if answer is None else answer.answered_at,
        hashes[spec.source],
        None if answer is None else answer.signature,
        None if answer is None else answer.key_id,
    )


def _compare(
    commitment: Hash32, found: Checked, matter: Matter, data: SourceData, on: date
) -> Decision:
    claims = {key: (op, value) for key, op, value in found.claims}
    hashes: dict[str, str | None] = {}
    comparisons = []
    exempt = exempt_keys(matter, found.party[0])
    either = any_of_keys(matter)
    for spec in matter.claims:
        stated = claims.get(spec.key)
        if spec.key in exempt:
            continue  # the applicant's kind is exempt: the report says so
        # An optional claim the applicant did not commit to is left out, unless it is one
        # of an any-of condition or binds every applicant not exempt from it.
        binding = spec.required or spec.key in either or spec.exempt_when is not None
        if stated is None and not binding:
            continue
        comparisons.append(_compare_one(spec, stated, data.get(spec.source), hashes, on))
    outcome = _outcome(matter, comparisons)
    tasks = _tasks_note(matter) if matter.tasks and outcome == "needs_manual" else ""
    note = " ".join(part for part in (exempt_note(exempt), tasks) if part)
    return Decision(commitment, matter, outcome, tuple(comparisons), note)


@dataclass(frozen=True)
class Reporter:
    """Who signs the reports of decisions: the department and its report key."""

    department: str
    key: SigningKey


def compare_all(
    todo: Sequence[ToCompare], catalog: Catalog, reporter: Reporter | None, on: date
) -> list[Compared]:
    """Compare each checked document with its department data; sign, given a reporter."""
    compared: list[Compared] = []
    for commitment, found, code, data in todo:
        decision = _compare(commitment, found, catalog.matter(code), data, on)
        report = None
        if reporter is not None:
            report = sign_decision(decision, reporter.department, on, reporter.key)
        compared.append((decision.outcome, decision.comparisons, report, decision.note))
    return compared


# A worker process's own: set once by start_worker, when the pool starts it.
_worker_vault: Vault | None = None
_worker_proofs = ProofChecker()
_worker_catalog: Catalog | None = None
_worker_reporter: Reporter | None = None


def start_worker(master_key: bytes, catalog: Catalog, reporting: tuple[str, bytes] | None) -> None:
    """A worker process starts: its vault, catalog and report key, kept for its life."""
    global _worker_vault, _worker_catalog, _worker_reporter
    _worker_vault = Vault(master_key)
    _worker_catalog = catalog
    if reporting is not None:
        _worker_reporter = Reporter(reporting[0], SigningKey.from_pem(reporting[1]))


def check_in_worker(items: Sequence[CheckItem], trees: Trees) -> list[CheckResult]:
    """`check_document` of each item, in a worker process; `trees`: their batches'."""
    assert _worker_vault is not None
    vault = _worker_vault
    return [check_document(vault, *item, trees, _worker_proofs) for item in items]


def compare_in_worker(todo: Sequence[ToCompare], on: date) -> list[Compared]:
    """`compare_all` in a worker process, with the report key it was started with."""
    assert _worker_catalog is not None
    return compare_all(todo, _worker_catalog, _worker_reporter, on)

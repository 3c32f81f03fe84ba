"""Deciding one commitment: integrity against its anchor, department data, comparisons, outcome."""

from __future__ import annotations

import asyncio
import json
from collections import ChainMap, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from ledger import (
    InvalidDocumentError,
    LedgerContract,
    MerkleError,
    SignatureError,
    SignedCommitment,
    SigningKey,
    keccak256,
    leaf_hash,
    verify_proof,
    verify_signed,
)
from ledger.intake import Intake
from ledger.store import Store
from ledger.types import Hash32
from ledger.vault import ErasedError, Vault, VaultError

from .catalog import Catalog, Matter
from .reports import Outcome, SignedReport, VerificationReport, sign_report
from .rules import Comparison, compare
from .sources import DataSource, SourceError, Subject, lookup_many

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
    decision: Decision, department: str, on: date, key: SigningKey, decided_by: str = "engine"
) -> SignedReport:
    """The department's signed report of a decision."""
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

    @classmethod
    def of(cls, signed: SignedCommitment) -> Checked:
        """The parts of a checked document the comparison needs."""
        document = signed.document
        return cls(
            document.matter_code,
            Subject(document.applicant.id_type, document.applicant.id_number),
            tuple((claim.key, claim.op, claim.value) for claim in document.claims),
        )


def _outcome(matter: Matter, comparisons: Sequence[Comparison]) -> Outcome:
    """FALSE beats MISMATCH beats NEEDS_MANUAL beats KEPT; undecidable never breaches."""
    specs = {spec.key: spec for spec in matter.claims}
    disagreed = [c for c in comparisons if c.verdict == "disagree"]
    if any(specs[c.key].on_disagree == "false" for c in disagreed):
        return "false"
    if disagreed:
        return "mismatch"
    if any(c.verdict == "undecidable" for c in comparisons):
        return "needs_manual"
    return "kept"


_Sealed = tuple[str, bytes, bytes | None]
_Anchoring = tuple[Hash32, tuple[Hash32, ...]]
_Checked = tuple[Checked | None, str, Hash32 | None]
_Item = tuple[Hash32, _Sealed | None, _Anchoring | None]


class ProofCheck:
    """`verify_proof` for the many commitments of a few batches. Their paths share the upper
    nodes of their trees: each pair of nodes is hashed once, not once per commitment (a
    proof of a 1,000-leaf batch is 10 hashes, a chunk of 300 needs about 1,000, not 3,000)."""

    def __init__(self) -> None:
        self._parents: dict[bytes, bytes] = {}

    def __call__(self, root: Hash32, commitment: Hash32, proof: Sequence[Hash32]) -> bool:
        """Whether `proof` shows `commitment` under `root`; MerkleError if it is malformed."""
        if len(root) != 32:
            raise MerkleError("root must be 32 bytes")
        node: bytes = leaf_hash(commitment)
        for step, sibling in enumerate(proof):
            if not isinstance(sibling, bytes) or len(sibling) != 32:
                raise MerkleError(f"proof element {step} must be 32 bytes")
            pair = node + sibling if node <= sibling else sibling + node  # sorted, as OZ does
            parent = self._parents.get(pair)
            if parent is None:
                parent = self._parents[pair] = keccak256(pair)
            node = parent
        return node == root


def _check(
    vault: Vault,
    commitment: Hash32,
    sealed: _Sealed | None,
    anchoring: _Anchoring | None,
    proves: Callable[[Hash32, Hash32, Sequence[Hash32]], bool] = verify_proof,
) -> _Checked:
    """Open and check one stored document against its proof; the root's presence on chain
    is left to the caller (one view call per batch). Returns (document, problem, root)."""
    if sealed is None:
        return None, "no such commitment in the store", None
    try:
        plaintext = vault.open(sealed[1], sealed[2], associated=commitment)
        signed = SignedCommitment.from_json_obj(json.loads(plaintext))
    except ErasedError:
        return None, ERASED, None
    except (VaultError, InvalidDocumentError, ValueError):
        return None, "the sealed document does not open: it was altered in the store", None
    if signed.hash() != commitment:
        return None, "tampered: the stored document does not hash to the anchored value", None
    try:
        verify_signed(signed)
    except SignatureError:
        return None, "the applicant's signature does not verify over the stored document", None
    if anchoring is None:
        return None, "not anchored yet", None
    root, proof = anchoring
    if not proves(root, commitment, proof):
        return None, "the anchor on chain does not prove this commitment", None
    return Checked.of(signed), "", root


@dataclass(frozen=True)
class _Failed:
    """A data source's failure, by kind (SourceError does not survive pickling)."""

    kind: str


_Data = Mapping[str, Mapping[str, object] | _Failed | None]
_ToCompare = tuple[Hash32, Checked, str, _Data]  # commitment, claims, matter code, records
_Compared = tuple[Outcome, tuple[Comparison, ...], SignedReport | None]


def _compare(commitment: Hash32, found: Checked, matter: Matter, data: _Data, on: date) -> Decision:
    claims = {key: (op, value) for key, op, value in found.claims}
    comparisons = []
    for spec in matter.claims:
        claim = claims.get(spec.key)
        if claim is None:
            continue  # the applicant did not commit to it
        op, value = claim
        record = data.get(spec.source)
        if isinstance(record, _Failed):
            detail = f"data source {spec.source} failed: {record.kind}"
            claimed = {"op": op, "value": value}
            comparisons.append(Comparison(spec.key, "undecidable", claimed, None, detail))
            continue
        observed = None if record is None else record.get(spec.source_field)
        comparisons.append(compare(spec.key, spec.type, op, value, observed, as_of=on))
    outcome = _outcome(matter, comparisons)
    return Decision(commitment, matter, outcome, tuple(comparisons))


@dataclass(frozen=True)
class _Reporter:
    department: str
    key: SigningKey


def _compare_all(
    todo: Sequence[_ToCompare], catalog: Catalog, reporter: _Reporter | None, on: date
) -> list[_Compared]:
    compared: list[_Compared] = []
    for commitment, found, code, data in todo:
        decision = _compare(commitment, found, catalog.matter(code), data, on)
        report = None
        if reporter is not None:
            report = sign_decision(decision, reporter.department, on, reporter.key)
        compared.append((decision.outcome, decision.comparisons, report))
    return compared


_worker_vault: Vault | None = None
_worker_catalog: Catalog | None = None
_worker_reporter: _Reporter | None = None


def _start_worker(master_key: bytes, catalog: Catalog, reporting: tuple[str, bytes] | None) -> None:
    global _worker_vault, _worker_catalog, _worker_reporter
    _worker_vault = Vault(master_key)
    _worker_catalog = catalog
    if reporting is not None:
        _worker_reporter = _Reporter(reporting[0], SigningKey.from_pem(reporting[1]))


def _check_in_worker(items: Sequence[_Item]) -> list[_Checked]:
    assert _worker_vault is not None
    proves = ProofCheck()
    return [_check(_worker_vault, *item, proves) for item in items]


def _compare_in_worker(todo: Sequence[_ToCompare], on: date) -> list[_Compared]:
    assert _worker_catalog is not None
    return _compare_all(todo, _worker_catalog, _worker_reporter, on)


@dataclass
class _Started:
    """A chunk whose documents are being checked (in the workers, if there are any)."""

    commitments: Sequence[Hash32]
    sealed: Mapping[bytes, _Sealed]
    items: list[_Item]
    parts: list[Future[list[_Checked]]]


class Decider:
    """Checks integrity, gathers department data and compares it with the claims."""

    def __init__(
        self,
        store: Store,
        intake: Intake,
        ledger: LedgerContract,
        catalog: Catalog,
        sources: Mapping[str, DataSource],
        workers: int = 0,
        reporter: tuple[str, SigningKey] | None = None,
    ) -> None:
        """`reporter`: the department and its report key; with it, decisions come signed
        (by the workers, when there are any)."""
        self.store = store
        self.intake = intake
        self.ledger = ledger
        self.catalog = catalog
        self.sources = dict(sources)
        self._roots_on_chain: dict[bytes, bool] = {}
        self._anchorings: list[Mapping[bytes, _Anchoring]] = [{}, {}, {}]
        # Opening, validating and checking the signature of each document is most of the
        # CPU of a run: with workers it is spread over processes, as intake does.
        self._workers = workers
        self._reporter = None if reporter is None else _Reporter(*reporter)
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0:
            reporting = None if reporter is None else (reporter[0], reporter[1].to_pem())
            self._pool = ProcessPoolExecutor(
                workers,
                initializer=_start_worker,
                initargs=(intake.vault.master_key, catalog, reporting),
            )

    # ------------------------------------------------------------------ integrity

    def _root_on_chain(self, root: Hash32) -> bool:
        # One view call per batch, not per commitment: a thousand share a root.
        if root not in self._roots_on_chain:
            self._roots_on_chain[root] = self.ledger.batch_of(root).size > 0
        return self._roots_on_chain[root]

    def _start(self, hashes: Sequence[Hash32]) -> _Started:
        """Read the chunk's documents and proofs; hand them to the workers, if any."""
        sealed = self.store.sealed_many(hashes)
        anchorings = self.store.anchorings_of(hashes)
        # This chunk's and the two before (one is being sent now): the proofs they carry.
        self._anchorings = [*self._anchorings[-2:], anchorings]
        items = [(h, sealed.get(h), anchorings.get(h)) for h in hashes]
        futures = []
        if self._pool is not None and len(items) >= 4 * self._workers:
            size = -(-len(items) // self._workers)
            futures = [
                self._pool.submit(_check_in_worker, items[i : i + size])
                for i in range(0, len(items), size)
            ]
        return _Started(hashes, sealed, items, futures)

    def _integrity(self, started: _Started) -> list[tuple[Checked | None, str]]:
        if started.parts:
            checked = [c for part in started.parts for c in part.result()]
        else:
            proves = ProofCheck()
            checked = [_check(self.intake.vault, *item, proves) for item in started.items]
        results: list[tuple[Checked | None, str]] = []
        for found, problem, root in checked:
            if found is not None and root is not None and not self._root_on_chain(root):
                results.append((None, "the anchor on chain does not prove this commitment"))
            else:
                results.append((found, problem))
        return results

    @property
    def recent_anchorings(self) -> Mapping[bytes, _Anchoring]:
        """The (root, proof) of the commitments of the last three chunks read, from the store."""
        return ChainMap(*self._anchorings)  # type: ignore[arg-type]

    def integrity_many(self, hashes: Sequence[Hash32]) -> list[tuple[Checked | None, str]]:
        """What each stored document claims if it matches its anchor, else None and what
        is wrong."""
        return self._integrity(self._start(hashes))

    def close(self) -> None:
        """Stop the worker processes, if any."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    # ------------------------------------------------------------------ data and decision

    async def _gather(
        self, documents: Sequence[tuple[Checked, Matter]]
    ) -> list[dict[str, Mapping[str, object] | _Failed | None]]:
        """Each document's records, source by source: one batched lookup per source."""
        wanted: dict[str, list[int]] = defaultdict(list)
        fields: dict[str, set[str]] = defaultdict(set)
        for index, (_, matter) in enumerate(documents):
            for spec in matter.claims:
                if index not in wanted[spec.source]:
                    wanted[spec.source].append(index)
                fields[spec.source].add(spec.source_field)
        found: list[dict[str, Mapping[str, object] | _Failed | None]] = [{} for _ in documents]

        async def one_source(name: str) -> None:
            indexes = wanted[name]
            source = self.sources.get(name)
            subjects = [documents[i][0].subject for i in indexes]
            results: Sequence[Mapping[str, object] | SourceError | None]
            if source is None:
                results = [SourceError(name, "no connector configured for this source")] * len(
                    indexes
                )
            else:
                try:
                    results = await lookup_many(source, subjects, sorted(fields[name]))
                except SourceError as exc:
                    results = [exc] * len(indexes)
            for i, result in zip(indexes, results, strict=True):
                if isinstance(result, SourceError):
                    found[i][name] = _Failed(type(result).__name__)
                else:
                    found[i][name] = result

        await asyncio.gather(*(one_source(name) for name in wanted))
        return found

    async def decide_all(self, commitments: Sequence[Hash32], on: date) -> list[Decision]:
        """Verify many commitments as of `on`; bad data are reported, never raised."""
        started = self._start(commitments)
        decisions, todo = await self._gathered(started, self._integrity(started))
        return self._compared(decisions, self._compare_start(todo, on))

    def decide_chunks(
        self, chunks: Sequence[Sequence[Hash32]], on: date, loop: asyncio.AbstractEventLoop
    ) -> Iterator[list[Decision]]:
        """`decide_all` of each chunk in turn, one chunk behind; `loop` runs in another
        thread (the data sources' loop). While the caller sends one chunk's outcomes, the
        next chunk's department data are fetched on `loop`, and the workers compare and sign
        the next chunk and check the documents of the one after."""
        started = self._start(chunks[0]) if chunks else None
        behind: tuple[list[Decision | None], _Comparing] | None = None
        for index in range(len(chunks)):
            assert started is not None
            current, integrity = started, self._integrity(started)
            started = self._start(chunks[index + 1]) if index + 1 < len(chunks) else None
            fetching = asyncio.run_coroutine_threadsafe(self._gathered(current, integrity), loop)
            if behind is not None:
                yield self._compared(*behind)  # the caller sends it while data arrive
            decisions, todo = fetching.result()
            behind = (decisions, self._compare_start(todo, on))
        if behind is not None:
            yield self._compared(*behind)

    async def _gathered(
        self, started: _Started, integrity: Sequence[tuple[Checked | None, str]]
    ) -> tuple[list[Decision | None], list[_ToCompare]]:
        """Decisions of the documents that failed their check; the others with their data."""
        commitments, sealed = started.commitments, started.sealed
        decisions: list[Decision | None] = [None] * len(commitments)
        checked: list[tuple[int, Checked, Matter]] = []
        for index, commitment in enumerate(commitments):
            found, problem = integrity[index]
            if found is None:
                known = sealed.get(commitment)
                code = known[0] if known else self.catalog.matters[0].code
                # Erased data cannot be compared, but nothing was tampered with: a person decides.
                outcome: Outcome = "needs_manual" if problem == ERASED else "integrity_failure"
                decisions[index] = Decision(
                    commitment, self.catalog.matter(code), outcome, note=problem
                )
                continue
            checked.append((index, found, self.catalog.matter(found.matter_code)))
        gathered = await self._gather([(found, matter) for _, found, matter in checked])
        todo: list[_ToCompare] = [
            (commitments[index], found, matter.code, data)
            for (index, found, matter), data in zip(checked, gathered, strict=True)
        ]
        return decisions, todo

    def _compare_start(self, todo: list[_ToCompare], on: date) -> _Comparing:
        if self._pool is None or len(todo) < 4 * self._workers:
            return _Comparing(todo, [], _compare_all(todo, self.catalog, self._reporter, on))
        size = -(-len(todo) // self._workers)
        parts = [
            self._pool.submit(_compare_in_worker, todo[i : i + size], on)
            for i in range(0, len(todo), size)
        ]
        return _Comparing(todo, parts, [])

    def _compared(self, decisions: list[Decision | None], comparing: _Comparing) -> list[Decision]:
        results = comparing.done or [r for part in comparing.parts for r in part.result()]
        compared = iter(zip(comparing.todo, results, strict=True))
        final: list[Decision] = []
        for decision in decisions:
            if decision is None:
                (commitment, _, code, _), (outcome, comparisons, report) = next(compared)
                matter = self.catalog.matter(code)
                decision = Decision(commitment, matter, outcome, comparisons, report=report)
            final.append(decision)
        return final


@dataclass
class _Comparing:
    """A chunk's comparisons under way in the workers (`parts`), or done here (`done`)."""

    todo: list[_ToCompare]
    parts: list[Future[list[_Compared]]]
    done: list[_Compared]

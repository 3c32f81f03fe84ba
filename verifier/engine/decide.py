"""Deciding chunks of commitments: documents and proofs from the store, the integrity check
and the comparisons in worker processes, department data from the sources, roots on chain."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import ChainMap, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date

from ledger import (
    Applicant,
    Hash32,
    Intake,
    LedgerContract,
    SigningKey,
    Store,
    department_id,
)
from verifier.catalog import Catalog, Matter
from verifier.engine.worker import (
    ERASED,
    Anchoring,
    Checked,
    CheckItem,
    CheckResult,
    Compared,
    Decision,
    ProofChecker,
    Reporter,
    Sealed,
    SourceAnswer,
    SourceData,
    SourceFailed,
    ToCompare,
    Trees,
    check_document,
    check_in_worker,
    compare_all,
    compare_in_worker,
    start_worker,
)
from verifier.errors import SourceError
from verifier.records import Access, AccessLog
from verifier.reports import Outcome
from verifier.sources import Answer, DataSource, lookup_answers


@dataclass
class _Started:
    """A chunk whose documents are being checked (in the workers, if there are any)."""

    commitments: Sequence[Hash32]
    sealed: Mapping[bytes, Sealed]
    items: list[CheckItem]
    trees: Trees
    parts: list[Future[list[CheckResult]]]


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
        accesses: AccessLog | None = None,
    ) -> None:
        """`reporter`: the department and its report key; with it, decisions come signed
        (by the workers, when there are any). Every lookup of department data is logged in
        `accesses` (the store's access log by default) before it is made."""
        self.store = store
        self.accesses = accesses if accesses is not None else AccessLog(store)
        self.requested_by = f"run:{secrets.token_hex(8)}"  # a new one per run
        self.intake = intake
        self.ledger = ledger
        self.catalog = catalog
        self.sources = dict(sources)
        self._roots_on_chain: dict[bytes, bool] = {}
        self._department_ids: dict[str, bytes] = {}
        self._anchorings: list[Mapping[bytes, Anchoring]] = [{}, {}, {}]
        self._checked: list[Mapping[bytes, Checked]] = [{}, {}, {}]
        # Opening, validating and checking the signature of each document is most of the
        # CPU of a run: with workers it is spread over processes, as intake does.
        self._workers = workers
        self._reporter = None if reporter is None else Reporter(*reporter)
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0:
            reporting = None if reporter is None else (reporter[0], reporter[1].to_pem())
            self._pool = ProcessPoolExecutor(
                workers,
                initializer=start_worker,
                initargs=(intake.vault.master_key, catalog, reporting),
            )

    # ------------------------------------------------------------------ integrity

    def _root_on_chain(self, root: Hash32, matter_code: str) -> bool:
        # One view call per batch, not per commitment: a thousand share a root. The batch
        # must be the commitment's department's own (another's batch of the root is not).
        department = self._department_ids.get(matter_code)
        if department is None:  # a keccak each: once per matter, not per commitment
            department = department_id(self.catalog.matter(matter_code).department)
            self._department_ids[matter_code] = department
        key = department + root
        if key not in self._roots_on_chain:
            self._roots_on_chain[key] = self.ledger.batch_of(department, root).size > 0
        return self._roots_on_chain[key]

    def _start(self, hashes: Sequence[Hash32]) -> _Started:
        """Read the chunk's documents, roots and batch trees; hand them to the workers, if
        any, which slice the proofs from the trees where they check them."""
        sealed = self.store.sealed_many(hashes)
        refs = self.store.anchor_refs_of(hashes)
        trees = self.store.batch_trees(sorted({r[2] for r in refs.values() if r[1] is None}))
        items = [(h, sealed.get(h), refs.get(h)) for h in hashes]
        futures = []
        if self._pool is not None and len(items) >= 4 * self._workers:
            size = -(-len(items) // self._workers)
            for i in range(0, len(items), size):
                part = items[i : i + size]
                wanted = {item[2][2] for item in part if item[2] is not None}
                part_trees = {b: tree for b, tree in trees.items() if b in wanted}
                futures.append(self._pool.submit(check_in_worker, part, part_trees))
        return _Started(hashes, sealed, items, trees, futures)

    def _integrity(self, started: _Started) -> list[tuple[Checked | None, str]]:
        if started.parts:
            checked = [c for part in started.parts for c in part.result()]
        else:
            vault, trees, proofs = self.intake.vault, started.trees, ProofChecker()
            checked = [check_document(vault, *item, trees, proofs) for item in started.items]
        # This chunk's and the two before (one is being sent now): the proofs they carry.
        self._anchorings = [
            *self._anchorings[-2:],
            {
                commitment: anchoring
                for commitment, (_, _, anchoring) in zip(started.commitments, checked, strict=True)
                if anchoring is not None
            },
        ]
        results: list[tuple[Checked | None, str]] = []
        for found, problem, anchoring in checked:
            if (
                found is not None
                and anchoring is not None
                and not self._root_on_chain(anchoring[0], found.matter_code)
            ):
                results.append((None, "the anchor on chain does not prove this commitment"))
            else:
                results.append((found, problem))
        return results

    def recent_applicant(self, commitment: Hash32) -> Applicant | None:
        """The applicant of a commitment of the last three chunks compared (None for the
        others): a breach record names them without opening the document a second time."""
        for checked in reversed(self._checked):
            found = checked.get(commitment)
            if found is not None:
                return found.applicant()
        return None

    @property
    def recent_anchorings(self) -> Mapping[bytes, Anchoring]:
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
        self, documents: Sequence[tuple[Checked, Matter]], commitments: Sequence[Hash32]
    ) -> list[SourceData]:
        """Each document's records, source by source (one batched lookup per source), with
        the time each source answered: a report says which source answered and when. Each
        lookup is logged (`commitments`: the documents') before any request goes out."""
        wanted: dict[str, list[int]] = defaultdict(list)
        fields: dict[str, set[str]] = defaultdict(set)
        for index, (_, matter) in enumerate(documents):
            for spec in matter.claims:
                indexes = wanted[spec.source]
                if not indexes or indexes[-1] != index:  # in order: a scan would be quadratic
                    indexes.append(index)
                fields[spec.source].add(spec.source_field)
        found: list[dict[str, SourceAnswer]] = [{} for _ in documents]
        now = time.time()
        await asyncio.to_thread(
            self.accesses.record,
            [
                Access(
                    commitments[i],
                    documents[i][1].department,
                    self.requested_by,
                    name,
                    "verification",
                    now,
                )
                for name, indexes in sorted(wanted.items())
                if name in self.sources
                for i in indexes
            ],
        )

        async def one_source(name: str) -> None:
            indexes = wanted[name]
            source = self.sources.get(name)
            subjects = [documents[i][0].subject for i in indexes]
            results: Sequence[Answer | SourceError]
            if source is None:
                results = [SourceError(name, "no connector configured for this source")] * len(
                    indexes
                )
            else:
                try:
                    results = await lookup_answers(source, subjects, sorted(fields[name]))
                except SourceError as exc:
                    results = [exc] * len(indexes)
            answered_at = int(time.time())
            for i, result in zip(indexes, results, strict=True):
                if isinstance(result, SourceError):
                    found[i][name] = SourceAnswer(SourceFailed(type(result).__name__), answered_at)
                elif result.signature is not None and result.answered_at is not None:
                    # The department's signed time: the report's answer can be checked.
                    found[i][name] = SourceAnswer(
                        result.record, result.answered_at, result.signature, result.key_id
                    )
                else:
                    found[i][name] = SourceAnswer(result.record, answered_at)

        await asyncio.gather(*(one_source(name) for name in wanted))
        return list(found)

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
        self.requested_by = f"run:{secrets.token_hex(8)}"  # the accesses of this run
        started = self._start(chunks[0]) if chunks else None
        behind: tuple[list[Decision | None], _Comparing] | None = None
        for index in range(len(chunks)):
            assert started is not None
            current, integrity = started, self._integrity(started)
            started = self._start(chunks[index + 1]) if index + 1 < len(chunks) else None
            fetching = asyncio.run_coroutine_threadsafe(
                self._gathered_to_workers(current, integrity, on), loop
            )
            if behind is not None:
                yield self._compared(*behind)  # the caller sends it while data arrive
            decisions, todo, comparing = fetching.result()
            behind = (decisions, comparing or self._compare_start(todo, on))
        if behind is not None:
            yield self._compared(*behind)

    async def _gathered_to_workers(
        self, started: _Started, integrity: Sequence[tuple[Checked | None, str]], on: date
    ) -> tuple[list[Decision | None], list[ToCompare], _Comparing | None]:
        """`_gathered`, and the comparisons handed to the workers as soon as the data are
        in, not once the caller has sent the chunk before: the workers compare while the
        caller sends. None when there are no workers for them (the caller compares)."""
        decisions, todo = await self._gathered(started, integrity)
        if self._pool is None or len(todo) < 4 * self._workers:
            return decisions, todo, None
        return decisions, todo, self._compare_start(todo, on)

    async def _gathered(
        self, started: _Started, integrity: Sequence[tuple[Checked | None, str]]
    ) -> tuple[list[Decision | None], list[ToCompare]]:
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
        gathered = await self._gather(
            [(found, matter) for _, found, matter in checked],
            [commitments[index] for index, _, _ in checked],
        )
        todo: list[ToCompare] = [
            (commitments[index], found, matter.code, data)
            for (index, found, matter), data in zip(checked, gathered, strict=True)
        ]
        return decisions, todo

    def _compare_start(self, todo: list[ToCompare], on: date) -> _Comparing:
        if self._pool is None or len(todo) < 4 * self._workers:
            return _Comparing(todo, [], compare_all(todo, self.catalog, self._reporter, on))
        size = -(-len(todo) // self._workers)
        parts = [
            self._pool.submit(compare_in_worker, todo[i : i + size], on)
            for i in range(0, len(todo), size)
        ]
        return _Comparing(todo, parts, [])

    def _compared(self, decisions: list[Decision | None], comparing: _Comparing) -> list[Decision]:
        results = comparing.done or [r for part in comparing.parts for r in part.result()]
        self._checked = [*self._checked[-2:], {c: found for c, found, _, _ in comparing.todo}]
        compared = iter(zip(comparing.todo, results, strict=True))
        final: list[Decision] = []
        for decision in decisions:
            if decision is None:
                (commitment, _, code, _), (outcome, comparisons, report, note) = next(compared)
                matter = self.catalog.matter(code)
                decision = Decision(commitment, matter, outcome, comparisons, note, report)
            final.append(decision)
        return final


@dataclass
class _Comparing:
    """A chunk's comparisons under way in the workers (`parts`), or done here (`done`)."""

    todo: list[ToCompare]
    parts: list[Future[list[Compared]]]
    done: list[Compared]

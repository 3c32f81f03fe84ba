"""Deciding one commitment: integrity against its anchor, department data, comparisons, outcome."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date

from ledger import (
    InvalidDocumentError,
    LedgerContract,
    SignatureError,
    SignedCommitment,
    verify_proof,
    verify_signed,
)
from ledger.intake import Intake
from ledger.store import Store
from ledger.types import Hash32
from ledger.vault import ErasedError, Vault, VaultError

from .catalog import Catalog, Matter
from .reports import Outcome
from .rules import Comparison, compare
from .sources import DataSource, SourceError, Subject, lookup_many

ERASED = "personal data erased: the document can no longer be checked"


@dataclass(frozen=True)
class Decision:
    """What verification found for one commitment (personal data only in `signed`)."""

    commitment_hash: Hash32
    matter: Matter
    outcome: Outcome
    comparisons: tuple[Comparison, ...] = ()
    note: str = ""
    signed: SignedCommitment | None = field(default=None, repr=False)


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
_Checked = tuple[SignedCommitment | None, str, Hash32 | None]


def _check(
    vault: Vault, commitment: Hash32, sealed: _Sealed | None, anchoring: _Anchoring | None
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
    if not verify_proof(root, commitment, proof):
        return None, "the anchor on chain does not prove this commitment", None
    return signed, "", root


_worker_vault: Vault | None = None


def _start_worker(master_key: bytes) -> None:
    global _worker_vault
    _worker_vault = Vault(master_key)


def _check_in_worker(
    items: Sequence[tuple[Hash32, _Sealed | None, _Anchoring | None]],
) -> list[_Checked]:
    assert _worker_vault is not None
    return [_check(_worker_vault, *item) for item in items]


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
    ) -> None:
        self.store = store
        self.intake = intake
        self.ledger = ledger
        self.catalog = catalog
        self.sources = dict(sources)
        self._roots_on_chain: dict[bytes, bool] = {}
        # Opening, validating and checking the signature of each document is most of the
        # CPU of a run: with workers it is spread over processes, as intake does.
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0:
            self._pool = ProcessPoolExecutor(
                workers, initializer=_start_worker, initargs=(intake.vault.master_key,)
            )

    # ------------------------------------------------------------------ integrity

    def _root_on_chain(self, root: Hash32) -> bool:
        # One view call per batch, not per commitment: a thousand share a root.
        if root not in self._roots_on_chain:
            self._roots_on_chain[root] = self.ledger.batch_of(root).size > 0
        return self._roots_on_chain[root]

    def integrity_many(
        self, hashes: Sequence[Hash32], sealed: Mapping[bytes, _Sealed] | None = None
    ) -> list[tuple[SignedCommitment | None, str]]:
        """Each stored document if it matches its anchor, else None and what is wrong.

        `sealed`: the store's `sealed_many(hashes)`, when the caller has it already.
        """
        if sealed is None:
            sealed = self.store.sealed_many(hashes)
        anchorings = self.store.anchorings_of(hashes)
        items = [(h, sealed.get(h), anchorings.get(h)) for h in hashes]
        if self._pool is None or len(items) < 4 * self._workers:
            checked = [_check(self.intake.vault, *item) for item in items]
        else:
            size = -(-len(items) // self._workers)
            parts = [items[i : i + size] for i in range(0, len(items), size)]
            checked = [c for part in self._pool.map(_check_in_worker, parts) for c in part]
        results: list[tuple[SignedCommitment | None, str]] = []
        for signed, problem, root in checked:
            if signed is not None and root is not None and not self._root_on_chain(root):
                results.append((None, "the anchor on chain does not prove this commitment"))
            else:
                results.append((signed, problem))
        return results

    def close(self) -> None:
        """Stop the worker processes, if any."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    # ------------------------------------------------------------------ data and decision

    async def _gather(
        self, documents: Sequence[tuple[SignedCommitment, Matter]]
    ) -> list[dict[str, Mapping[str, object] | SourceError | None]]:
        """Each document's records, source by source: one batched lookup per source."""
        wanted: dict[str, list[int]] = defaultdict(list)
        fields: dict[str, set[str]] = defaultdict(set)
        for index, (_, matter) in enumerate(documents):
            for spec in matter.claims:
                if index not in wanted[spec.source]:
                    wanted[spec.source].append(index)
                fields[spec.source].add(spec.source_field)
        found: list[dict[str, Mapping[str, object] | SourceError | None]] = [{} for _ in documents]

        async def one_source(name: str) -> None:
            indexes = wanted[name]
            source = self.sources.get(name)
            subjects = [
                Subject(
                    documents[i][0].document.applicant.id_type,
                    documents[i][0].document.applicant.id_number,
                )
                for i in indexes
            ]
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
                found[i][name] = result

        await asyncio.gather(*(one_source(name) for name in wanted))
        return found

    def _compare(
        self,
        commitment: Hash32,
        signed: SignedCommitment,
        matter: Matter,
        data: Mapping[str, Mapping[str, object] | SourceError | None],
        on: date,
    ) -> Decision:
        claims = {claim.key: claim for claim in signed.document.claims}
        comparisons = []
        for spec in matter.claims:
            claim = claims.get(spec.key)
            if claim is None:
                continue  # the applicant did not commit to it
            record = data.get(spec.source)
            claimed = {"op": claim.op, "value": claim.value}
            if isinstance(record, SourceError):
                detail = f"data source {spec.source} failed: {type(record).__name__}"
                comparisons.append(Comparison(spec.key, "undecidable", claimed, None, detail))
                continue
            observed = None if record is None else record.get(spec.source_field)
            comparisons.append(
                compare(spec.key, spec.type, claim.op, claim.value, observed, as_of=on)
            )
        outcome = _outcome(matter, comparisons)
        return Decision(commitment, matter, outcome, tuple(comparisons), signed=signed)

    async def decide_all(self, commitments: Sequence[Hash32], on: date) -> list[Decision]:
        """Verify many commitments as of `on`; bad data are reported, never raised."""
        decisions: dict[int, Decision] = {}
        checked: list[tuple[int, SignedCommitment, Matter]] = []
        sealed = self.store.sealed_many(commitments)
        integrity = self.integrity_many(commitments, sealed)
        for index, commitment in enumerate(commitments):
            signed, problem = integrity[index]
            if signed is None:
                known = sealed.get(commitment)
                code = known[0] if known else self.catalog.matters[0].code
                # Erased data cannot be compared, but nothing was tampered with: a person decides.
                outcome: Outcome = "needs_manual" if problem == ERASED else "integrity_failure"
                decisions[index] = Decision(
                    commitment, self.catalog.matter(code), outcome, note=problem
                )
                continue
            checked.append((index, signed, self.catalog.matter(signed.document.matter_code)))
        gathered = await self._gather([(signed, matter) for _, signed, matter in checked])
        for (index, signed, matter), data in zip(checked, gathered, strict=True):
            decisions[index] = self._compare(commitments[index], signed, matter, data, on)
        return [decisions[i] for i in range(len(commitments))]

"""Intake: check a signed commitment, seal its personal data, store it durably, then acknowledge."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass

from ledger.canonical import (
    canonical_bytes_plain,
    commitment_hash_of_canonical,
    load_json_bytes,
)
from ledger.documents import SignedCommitment, check_salt
from ledger.errors import ApplicantExcludedError, CodeTakenError, InvalidDocumentError, LedgerError
from ledger.matter_terms import MatterTerms, check_terms
from ledger.signing import verify_signed
from ledger.store import NewCommitment, Store
from ledger.types import Hash32
from ledger.vault import Vault

MatterDepartments = Mapping[str, MatterTerms | str]
"""What intake holds each known matter code to: its full terms (department, notice
versions, claims; what every production caller passes, from `Catalog.intake_terms()`),
or, in unit fixtures only, just the responsible department."""


@dataclass(frozen=True)
class Acknowledgement:
    """A commitment is durable: its hash, and whether this submission stored it (False: seen)."""

    hash: Hash32
    new: bool


def _parse(document: object) -> SignedCommitment:
    if isinstance(document, SignedCommitment):
        return document
    if isinstance(document, str):
        document = document.encode("utf-8")
    if isinstance(document, bytes):
        document = load_json_bytes(document)  # strict: no duplicate keys, NaN or trailing data
    return SignedCommitment.from_json_obj(document)


def sealed_form(signed: SignedCommitment) -> bytes:
    """The JSON kept sealed for a checked document: its plain value, fields in schema order,
    no spaces, UTF-8 (json.dumps with ensure_ascii=False and compact separators gives the
    same bytes); pydantic's serializer writes it from the model directly."""
    return signed.__pydantic_serializer__.to_json(signed)


class Checker:
    """The pure part of intake: schema, signature, matter terms, hash, seal. Stores nothing."""

    def __init__(self, vault: Vault, matters: MatterDepartments) -> None:
        self.vault = vault
        self.matters = dict(matters)

    def check(self, document: object) -> NewCommitment:
        """Check one document and seal it; raise the LedgerError that names what is wrong."""
        signed = _parse(document)
        # One encoding serves the signed bytes and the hash: the schema admits only what
        # the fast encoder writes as RFC 8785 (Commitment.canonical).
        canonical = canonical_bytes_plain(signed.document.to_json_obj())
        verify_signed(signed, canonical=canonical)
        commitment = signed.document
        check_salt(commitment.salt)
        terms = self.matters.get(commitment.matter_code)
        if terms is None:
            raise InvalidDocumentError(f"unknown matter {commitment.matter_code!r}")
        if isinstance(terms, MatterTerms):
            check_terms(commitment, terms)
        elif terms != commitment.department:
            raise InvalidDocumentError(
                f"matter {commitment.matter_code} belongs to {terms}, not {commitment.department}"
            )
        digest = commitment_hash_of_canonical(canonical)  # the bytes the signature is over
        applicant = commitment.applicant
        sealed = self.vault.seal(sealed_form(signed), associated=digest)
        return NewCommitment(
            hash=digest,
            code=commitment.code,
            matter_code=commitment.matter_code,
            department=commitment.department,
            applicant_fingerprint=self.vault.fingerprint(applicant.id_type, applicant.id_number),
            sealed=sealed.ciphertext,
            wrapped_key=sealed.wrapped_key,
            channel=commitment.channel,
        )

    def check_all(self, documents: Sequence[object]) -> list[NewCommitment | LedgerError]:
        """Check each document; a bad one gives its error in its place."""
        results: list[NewCommitment | LedgerError] = []
        for document in documents:
            try:
                results.append(self.check(document))
            except LedgerError as exc:
                results.append(exc)
        return results


_worker_checker: Checker | None = None


def _start_worker(master_key: bytes, matters: dict[str, MatterTerms | str]) -> None:
    global _worker_checker
    _worker_checker = Checker(Vault(master_key), matters)


def _check_in_worker(documents: Sequence[object]) -> list[NewCommitment | LedgerError]:
    assert _worker_checker is not None
    return _worker_checker.check_all(documents)


class Intake:
    """Accepts signed commitments into the store; nothing is acknowledged before it is durable.

    With `workers`, checking (signatures, hashing, sealing) runs in that many processes,
    so a large submission uses every core while this process writes to the store.
    """

    def __init__(
        self, store: Store, vault: Vault, matters: MatterDepartments, workers: int = 0
    ) -> None:
        self.store = store
        self.vault = vault
        self.checker = Checker(vault, matters)
        self._pool: Executor | None = None
        if workers > 0:
            self._pool = ProcessPoolExecutor(
                workers,
                initializer=_start_worker,
                initargs=(vault.master_key, dict(matters)),
            )
        self._workers = workers

    def close(self) -> None:
        """Stop the worker processes, if any."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def _check_all(self, documents: Sequence[object]) -> list[NewCommitment | LedgerError]:
        if self._pool is None or len(documents) < 2 * self._workers:
            return self.checker.check_all(documents)
        size = -(-len(documents) // self._workers)
        chunks = [documents[i : i + size] for i in range(0, len(documents), size)]
        return [item for part in self._pool.map(_check_in_worker, chunks) for item in part]

    def submit(self, document: object) -> Acknowledgement:
        """Check and store one commitment; raise on bad input or an excluded applicant."""
        result = self.submit_many([document])[0]
        if isinstance(result, LedgerError):
            raise result
        return result

    def submit_many(self, documents: Sequence[object]) -> list[Acknowledgement | LedgerError]:
        """Check each; store the good ones in one transaction; per document, its ack or error."""
        return self._store_checked(self._check_all(documents))

    def submit_stream(
        self, chunks: Iterable[Sequence[object]]
    ) -> Iterator[list[Acknowledgement | LedgerError]]:
        """Submit chunk after chunk, the workers checking ahead while this process stores;
        yields each chunk's results, in order, once that chunk is durable."""
        if self._pool is None:
            for chunk in chunks:
                yield self.submit_many(chunk)
            return
        pool = self._pool
        source = iter(chunks)
        ahead: deque[Future[list[NewCommitment | LedgerError]]] = deque()

        def feed() -> None:
            chunk = next(source, None)
            if chunk is not None:
                ahead.append(pool.submit(_check_in_worker, chunk))

        for _ in range(2 * self._workers):
            feed()
        while ahead:
            checked = ahead.popleft().result()
            feed()
            yield self._store_checked(checked)

    def _store_checked(
        self, checked: list[NewCommitment | LedgerError]
    ) -> list[Acknowledgement | LedgerError]:
        good = [item for item in checked if isinstance(item, NewCommitment)]
        excluded = self.store.excluded_among([item.applicant_fingerprint for item in good])
        admitted = [item for item in good if item.applicant_fingerprint not in excluded]
        taken = self._codes_taken(admitted)
        admitted = [item for item in admitted if item.hash not in taken]
        fresh = iter(self.store.add_commitments(admitted))
        results: list[Acknowledgement | LedgerError] = []
        for item in checked:
            if isinstance(item, LedgerError):
                results.append(item)
            elif item.applicant_fingerprint in excluded:
                results.append(
                    ApplicantExcludedError(
                        "the applicant has an unrepaired breach: the commitment route is "
                        "closed until it is repaired; apply with certificates instead"
                    )
                )
            elif item.hash in taken:
                results.append(
                    CodeTakenError(
                        f"commitment code {item.code} is already used by another commitment "
                        f"of {item.department}: each commitment needs a code of its own"
                    )
                )
            else:
                results.append(Acknowledgement(item.hash, next(fresh)))
        return results

    def _codes_taken(self, items: Sequence[NewCommitment]) -> set[Hash32]:
        """Hashes of items whose code another commitment of their department holds (stored,
        or earlier among `items`); the same document again keeps its code."""
        holders = self.store.code_holders([item.code for item in items])
        taken: set[Hash32] = set()
        for item in items:
            holder = holders.setdefault((item.department, item.code), item.hash)
            if holder != item.hash:
                taken.add(item.hash)
        return taken

    def open_document(self, commitment: Hash32) -> SignedCommitment | None:
        """The stored signed document (None when unknown); ErasedError once erased."""
        stored = self.store.sealed(commitment)
        if stored is None:
            return None
        ciphertext, wrapped_key = stored
        plaintext = self.vault.open(ciphertext, wrapped_key, associated=commitment)
        return SignedCommitment.from_json_obj(json.loads(plaintext))

"""Intake: check, seal, store durably, then acknowledge; bad input stores nothing."""

from __future__ import annotations

import copy
import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from api.demo import sample_commitments
from ledger import (
    Acknowledgement,
    ApplicantExcludedError,
    Checker,
    Commitment,
    ErasedError,
    Hash32,
    Intake,
    InvalidDocumentError,
    LedgerError,
    NewCommitment,
    SignatureError,
    SignedCommitment,
    SigningKey,
    Store,
    StoreError,
    Vault,
    commitments,
    new_salt,
    sign_commitment,
)
from verifier import default_catalog

MATTERS = {matter.code: matter.department for matter in default_catalog().matters}
NO_HASH = Hash32(bytes(32))  # a commitment hash no document has
KEY = SigningKey.generate("ed25519")


def documents(count: int, seed: int = 11) -> list[Commitment]:
    # Signed `seed` days before the samples' first day: seeds do not share codes.
    start = datetime(2026, 11, 2, 9, 0, tzinfo=UTC) - timedelta(days=seed)
    return list(sample_commitments(count, seed=seed, start=start))


def signed(document: Commitment, key: SigningKey = KEY) -> SignedCommitment:
    return sign_commitment(document, key)


def changed(document: Commitment, **fields: Any) -> Commitment:
    """`document` with some fields replaced, validated again."""
    return Commitment.from_json_obj({**document.to_json_obj(), **fields})


def row_count(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(commitments)).scalar_one())


@pytest.fixture
def vault() -> Vault:
    return Vault(secrets.token_bytes(32))


@pytest.fixture
def intake(store: Store, vault: Vault) -> Intake:
    return Intake(store, vault, MATTERS)


# ---------------------------------------------------------------------- the good path


def test_submit_acknowledges_with_the_hash_after_storing(intake: Intake, store: Store) -> None:
    document = documents(1)[0]
    ack = intake.submit(signed(document))
    assert ack == Acknowledgement(document.hash(), True)
    row = store.get(ack.hash)
    assert row is not None
    assert (row.code, row.matter_code, row.department) == (
        document.code,
        document.matter_code,
        document.department,
    )
    assert row.state == "pending"
    assert not row.erased
    assert row_count(store) == 1


def test_acknowledged_commitment_is_durable(tmp_path: Path, vault: Vault) -> None:
    """Another connection (another process, after a restart) sees the commitment."""
    url = f"sqlite:///{tmp_path / 'durable.db'}"
    first = Store(url)
    ack = Intake(first, vault, MATTERS).submit(signed(documents(1)[0]))
    reopened = Store(url)
    try:
        assert reopened.get(ack.hash) is not None
        opened = Intake(reopened, vault, MATTERS).open_document(ack.hash)
        assert opened is not None
        assert opened.hash() == ack.hash
    finally:
        reopened.close()
        first.close()


def test_no_acknowledgement_when_the_write_fails(
    intake: Intake, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object, **_kwargs: object) -> list[bool]:
        raise StoreError("disk full")

    monkeypatch.setattr(store, "add_commitments", broken)
    with pytest.raises(StoreError):
        intake.submit(signed(documents(1)[0]))
    monkeypatch.undo()
    assert row_count(store) == 0


@pytest.mark.parametrize("form", ["model", "dict", "str", "bytes"])
def test_submit_accepts_each_form(intake: Intake, form: str) -> None:
    document = documents(1)[0]
    signed_doc = signed(document)
    obj = signed_doc.to_json_obj()
    given: object = {
        "model": signed_doc,
        "dict": obj,
        "str": json.dumps(obj, ensure_ascii=False),
        "bytes": json.dumps(obj, ensure_ascii=False).encode(),
    }[form]
    assert intake.submit(given) == Acknowledgement(document.hash(), True)


def test_stored_document_opens_as_submitted(intake: Intake) -> None:
    signed_doc = signed(documents(1)[0])
    ack = intake.submit(signed_doc)
    assert intake.open_document(ack.hash) == signed_doc


def test_open_unknown_document_is_none(intake: Intake) -> None:
    assert intake.open_document(NO_HASH) is None


def test_erased_document_cannot_be_opened(intake: Intake, store: Store) -> None:
    ack = intake.submit(signed(documents(1)[0]))
    assert store.erase(ack.hash)
    with pytest.raises(ErasedError):
        intake.open_document(ack.hash)
    row = store.get(ack.hash)
    assert row is not None
    assert row.erased
    assert store.sealed(ack.hash) == (b"", None)


def test_erase_unknown_is_false(store: Store) -> None:
    assert store.erase(NO_HASH) is False


# ---------------------------------------------------------------------- idempotence


def test_resubmitting_returns_the_same_hash_and_stores_nothing(
    intake: Intake, store: Store
) -> None:
    signed_doc = signed(documents(1)[0])
    first = intake.submit(signed_doc)
    sealed_before = store.sealed(first.hash)
    again = intake.submit(json.dumps(signed_doc.to_json_obj()))
    assert again == Acknowledgement(first.hash, False)
    assert row_count(store) == 1
    assert store.sealed(first.hash) == sealed_before  # the stored document is untouched


def test_resubmitting_with_another_signature_keeps_the_first(intake: Intake, store: Store) -> None:
    """The signature is outside the hash: a re-signed copy is the same commitment."""
    document = documents(1)[0]
    first_signed = signed(document)
    first = intake.submit(first_signed)
    again = intake.submit(signed(document, SigningKey.generate("ecdsa-p256")))
    assert again == Acknowledgement(first.hash, False)
    assert row_count(store) == 1
    assert intake.open_document(first.hash) == first_signed


def test_same_document_twice_in_one_call(intake: Intake, store: Store) -> None:
    signed_doc = signed(documents(1)[0])
    results = intake.submit_many([signed_doc, signed_doc.to_json_obj()])
    assert results == [
        Acknowledgement(signed_doc.hash(), True),
        Acknowledgement(signed_doc.hash(), False),
    ]
    assert row_count(store) == 1


# ---------------------------------------------------------------------- bad input


def _signed_obj(document: Commitment | None = None) -> dict[str, Any]:
    return signed(document or documents(1)[0]).to_json_obj()


def _tampered() -> dict[str, Any]:
    obj = _signed_obj()
    obj["document"]["channel"] = "counter" if obj["document"]["channel"] == "online" else "online"
    return obj


def _missing_field() -> dict[str, Any]:
    obj = _signed_obj()
    del obj["document"]["salt"]
    return obj


def _garbled_signature() -> dict[str, Any]:
    obj = _signed_obj()
    obj["signature"]["value"] = "@@@"
    return obj


def _unknown_matter() -> SignedCommitment:
    return signed(changed(documents(1)[0], matter_code="BJ-HRSS-9999"))


def _wrong_department() -> SignedCommitment:
    document = next(d for d in documents(10) if d.department == "BJ-HRSS")
    return signed(changed(document, department="BJ-SAMR"))


def _bare() -> dict[str, Any]:
    return documents(1)[0].to_json_obj()


BAD_INPUTS: dict[str, tuple[Any, type[LedgerError], str]] = {
    "not-json-bytes": (lambda: b"{not json", InvalidDocumentError, "not valid JSON"),
    "not-json-str": (lambda: "", InvalidDocumentError, "not valid JSON"),
    "trailing-data": (
        lambda: json.dumps(_signed_obj()) + " {}",
        InvalidDocumentError,
        "not valid JSON",
    ),
    "not-utf8": (lambda: b'{"document": "\xff"}', InvalidDocumentError, "invalid UTF-8"),
    "json-array": (lambda: b"[]", InvalidDocumentError, "invalid signed commitment"),
    "json-number": (lambda: 42, InvalidDocumentError, "invalid signed commitment"),
    "unsigned": (_bare, InvalidDocumentError, "invalid signed commitment"),
    "missing-field": (_missing_field, InvalidDocumentError, "document.salt"),
    "tampered": (_tampered, SignatureError, "does not verify"),
    "garbled-signature": (_garbled_signature, SignatureError, "signature"),
    "unknown-matter": (_unknown_matter, InvalidDocumentError, "unknown matter 'BJ-HRSS-9999'"),
    "wrong-department": (
        _wrong_department,
        InvalidDocumentError,
        "belongs to BJ-HRSS, not BJ-SAMR",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_and_stores_nothing(intake: Intake, store: Store, case: str) -> None:
    make, error, phrase = BAD_INPUTS[case]
    with pytest.raises(error, match=phrase.replace("(", r"\(")):
        intake.submit(make())
    assert row_count(store) == 0


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_checker_refuses_bad_input(vault: Vault, case: str) -> None:
    make, error, _ = BAD_INPUTS[case]
    with pytest.raises(error):
        Checker(vault, MATTERS).check(make())


def test_duplicate_keys_are_refused(intake: Intake, store: Store) -> None:
    obj = _signed_obj()
    text = json.dumps(obj, ensure_ascii=False)
    # the same key twice: a first-wins reader sees another salt than a last-wins one
    duplicated = text.replace('"salt":', '"salt": "0x' + "00" * 32 + '", "salt":', 1)
    assert duplicated != text
    for given in (duplicated, duplicated.encode()):
        with pytest.raises(InvalidDocumentError, match="duplicate key 'salt'"):
            intake.submit(given)
    assert row_count(store) == 0


@pytest.mark.parametrize(
    "raw",
    [b"\xef\xbb\xbf{}", b'{"document": NaN}'],
    ids=["bom", "nan"],
)
def test_raw_bytes_are_parsed_strictly(intake: Intake, store: Store, raw: bytes) -> None:
    with pytest.raises(InvalidDocumentError, match="not valid JSON"):
        intake.submit(raw)
    assert row_count(store) == 0


# ---------------------------------------------------------------------- excluded applicants


def test_excluded_applicant_is_refused(intake: Intake, store: Store, vault: Vault) -> None:
    first, second = documents(2)
    applicant = first.applicant
    store.exclude(vault.fingerprint(applicant.id_type, applicant.id_number), NO_HASH)
    with pytest.raises(ApplicantExcludedError, match="unrepaired breach"):
        intake.submit(signed(first))
    assert row_count(store) == 0
    # another applicant is not affected
    assert intake.submit(signed(second)).new
    # once repaired, the route is open again
    store.lift_exclusion(vault.fingerprint(applicant.id_type, applicant.id_number))
    assert intake.submit(signed(first)) == Acknowledgement(first.hash(), True)


def test_exclusion_follows_the_person_not_the_document(
    intake: Intake, store: Store, vault: Vault
) -> None:
    document = documents(1)[0]
    applicant = document.applicant
    store.exclude(vault.fingerprint(applicant.id_type, applicant.id_number), NO_HASH)
    other_matter = changed(document, code=document.code[:-1] + "9", salt=new_salt())
    with pytest.raises(ApplicantExcludedError):
        intake.submit(signed(other_matter))


def test_exclusion_is_keyed_by_the_master_key(intake: Intake, store: Store) -> None:
    """A fingerprint under another master key does not match: the ID is not stored in clear."""
    document = documents(1)[0]
    other = Vault(secrets.token_bytes(32))
    store.exclude(
        other.fingerprint(document.applicant.id_type, document.applicant.id_number), NO_HASH
    )
    assert intake.submit(signed(document)).new


def test_excluded_error_is_a_ledger_error() -> None:
    assert issubclass(ApplicantExcludedError, LedgerError)


# ---------------------------------------------------------------------- many at once


def _mixed(good: list[Commitment], excluded_doc: Commitment) -> list[object]:
    return [
        signed(good[0]),
        b"{not json",
        signed(good[1]).to_json_obj(),
        _tampered(),
        signed(excluded_doc),
        json.dumps(signed(good[2]).to_json_obj()),
        _unknown_matter(),
        signed(good[0]),  # a repeat within the call
        signed(good[3]).to_json_obj(),
    ]


def _outline(results: list[Acknowledgement | LedgerError]) -> list[tuple[Any, ...]]:
    return [
        (r.hash, r.new) if isinstance(r, Acknowledgement) else (type(r).__name__, str(r))
        for r in results
    ]


def test_submit_many_mixed_returns_per_document_results_in_order(
    intake: Intake, store: Store, vault: Vault
) -> None:
    excluded_doc = documents(1, seed=99)[0]
    person = excluded_doc.applicant
    store.exclude(vault.fingerprint(person.id_type, person.id_number), NO_HASH)
    good = documents(4, seed=23)
    results = intake.submit_many(_mixed(good, excluded_doc))
    assert len(results) == 9
    expected_types: list[type[object]] = [
        Acknowledgement,
        InvalidDocumentError,
        Acknowledgement,
        SignatureError,
        ApplicantExcludedError,
        Acknowledgement,
        InvalidDocumentError,
        Acknowledgement,
        Acknowledgement,
    ]
    assert [type(r) for r in results] == expected_types
    assert results[0] == Acknowledgement(good[0].hash(), True)
    assert results[2] == Acknowledgement(good[1].hash(), True)
    assert results[5] == Acknowledgement(good[2].hash(), True)
    assert results[7] == Acknowledgement(good[0].hash(), False)
    assert results[8] == Acknowledgement(good[3].hash(), True)
    assert row_count(store) == 4
    assert store.get(excluded_doc.hash()) is None


def test_submit_many_empty(intake: Intake, store: Store) -> None:
    assert intake.submit_many([]) == []
    assert row_count(store) == 0


def test_submit_many_all_bad_stores_nothing(intake: Intake, store: Store) -> None:
    results = intake.submit_many([b"nope", _tampered(), _wrong_department()])
    assert all(isinstance(r, LedgerError) for r in results)
    assert row_count(store) == 0


def test_worker_pool_gives_the_same_results(tmp_path: Path, vault: Vault) -> None:
    excluded_doc = documents(1, seed=99)[0]
    person = excluded_doc.applicant
    fingerprint = vault.fingerprint(person.id_type, person.id_number)
    batch = _mixed(documents(4, seed=23), excluded_doc)
    batch += [signed(d) for d in documents(12, seed=31)]
    outlines = []
    for workers in (0, 2):
        store = Store(f"sqlite:///{tmp_path / f'workers{workers}.db'}")
        store.exclude(fingerprint, NO_HASH)
        intake = Intake(store, vault, MATTERS, workers=workers)
        try:
            results = intake.submit_many(batch)
            outlines.append(_outline(results))
            again = intake.submit_many(batch)  # all seen now
            assert [r.new for r in again if isinstance(r, Acknowledgement)] == [False] * 17
            hashes = [r.hash for r in results if isinstance(r, Acknowledgement)]
            for digest in hashes:  # documents sealed in the workers open here
                opened = intake.open_document(digest)
                assert opened is not None
                assert opened.hash() == digest
            assert row_count(store) == 16
        finally:
            intake.close()
            store.close()
    assert outlines[0] == outlines[1]


def test_worker_pool_single_submission_and_close_twice(store: Store, vault: Vault) -> None:
    intake = Intake(store, vault, MATTERS, workers=2)
    try:
        document = documents(1)[0]
        assert intake.submit(signed(document)) == Acknowledgement(document.hash(), True)
    finally:
        intake.close()
        intake.close()


# ---------------------------------------------------------------------- the checker


def test_checker_seals_and_stores_nothing(store: Store, vault: Vault) -> None:
    document = documents(1)[0]
    signed_doc = signed(document)
    item = Checker(vault, MATTERS).check(signed_doc)
    assert isinstance(item, NewCommitment)
    assert item.hash == document.hash()
    assert item.applicant_fingerprint == vault.fingerprint(
        document.applicant.id_type, document.applicant.id_number
    )
    plain = vault.open(item.sealed, item.wrapped_key, associated=item.hash)
    assert SignedCommitment.from_json_obj(json.loads(plain)) == signed_doc
    assert row_count(store) == 0


def test_checker_check_all_keeps_errors_in_place(vault: Vault) -> None:
    good = signed(documents(1)[0])
    results = Checker(vault, MATTERS).check_all([b"x", good, _tampered()])
    assert isinstance(results[0], InvalidDocumentError)
    assert isinstance(results[1], NewCommitment)
    assert isinstance(results[2], SignatureError)


def test_checker_copies_the_matters(vault: Vault) -> None:
    matters = dict(MATTERS)
    checker = Checker(vault, matters)
    matters.clear()
    assert checker.check(signed(documents(1)[0])).hash


def test_the_input_object_is_not_changed(intake: Intake) -> None:
    obj = _signed_obj()
    before = copy.deepcopy(obj)
    intake.submit(obj)
    assert obj == before


def test_submit_stream_matches_submit_many(tmp_path: Path, vault: Vault) -> None:
    """Streamed chunks (checked ahead in the workers) give each chunk's results in order."""
    excluded_doc = documents(1, seed=99)[0]
    person = excluded_doc.applicant
    fingerprint = vault.fingerprint(person.id_type, person.id_number)
    batch = _mixed(documents(4, seed=23), excluded_doc)
    batch += [signed(d) for d in documents(15, seed=37)]
    chunks = [batch[i : i + 5] for i in range(0, len(batch), 5)]
    chunks.insert(2, [])
    outlines = []
    for workers in (0, 2):
        store = Store(f"sqlite:///{tmp_path / f'stream{workers}.db'}")
        store.exclude(fingerprint, NO_HASH)
        intake = Intake(store, vault, MATTERS, workers=workers)
        try:
            streamed = list(intake.submit_stream(iter(chunks)))
            assert [len(part) for part in streamed] == [len(chunk) for chunk in chunks]
            outlines.append([_outline(part) for part in streamed])
            assert row_count(store) == 19
        finally:
            intake.close()
            store.close()
    assert outlines[0] == outlines[1]
    flat = [item for part in outlines[0] for item in part]
    reference_store = Store(f"sqlite:///{tmp_path / 'reference.db'}")
    reference_store.exclude(fingerprint, NO_HASH)
    try:
        assert _outline(Intake(reference_store, vault, MATTERS).submit_many(batch)) == flat
    finally:
        reference_store.close()

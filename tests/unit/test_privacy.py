"""Privacy: personal data sealed at rest, erasure that erases, a salted hash that reveals nothing,
and logs and command output that never carry a name or an ID number.

Runs on the embedded chain; `commitledger pipeline run`, which connects by JSON-RPC, is
tested against anvil in tests/integration/test_privacy_anvil.py.
"""

from __future__ import annotations

import copy
import json
import secrets
import zlib
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap
from eth_account.signers.local import LocalAccount
from support.deployment import HRSS, HRSS_ID, MARKET, Deployment
from support.privacy import (
    assert_nothing_personal,
    cli,
    debug_everywhere,
    explain,
    log_text,
    personal_data,
)
from support.service_keys import open_master_key

from api.demo import sample_commitments
from ledger import (
    Acknowledgement,
    Anchorer,
    Commitment,
    ErasedError,
    Hash32,
    Intake,
    PipelineConfig,
    ProofBundle,
    SignedCommitment,
    SigningKey,
    Store,
    Vault,
    canonical_bytes,
    check_bundle,
    hex32,
    keccak256,
    make_resident_id,
    sign_commitment,
    verify_proof,
)
from verifier import default_catalog

MATTERS = {matter.code: matter.department for matter in default_catalog().matters}
NO_HASH = Hash32(bytes(32))  # a commitment hash no document has
ZERO_SALT = "0x" + "00" * 32


# ---------------------------------------------------------------------- helpers


def disk_bytes(database: Path) -> bytes:
    """Everything SQLite keeps on disk for this database: the file, its WAL and shared memory."""
    return b"".join(
        path.read_bytes()
        for path in (
            database,
            database.with_name(database.name + "-wal"),
            database.with_name(database.name + "-shm"),
        )
        if path.exists()
    )


def in_clear(secret: str) -> bytes:
    """How a string would be on disk if stored unencrypted (the database encoding is UTF-8)."""
    return secret.encode("utf-8")


def anchor_all(store: Store, deployment: Deployment) -> None:
    registrars: dict[str, LocalAccount] = {
        HRSS: deployment.registrar,
        MARKET: deployment.other_registrar,
    }
    anchorer = Anchorer(store, deployment.ledger, registrars, PipelineConfig(max_age=0.0))
    assert anchorer.drain(60.0), "the pipeline did not drain"


def bundle_of(store: Store, deployment: Deployment, digest: Hash32) -> ProofBundle:
    anchoring = store.anchoring_of(digest)
    assert anchoring is not None, "not anchored"
    batch, proof = anchoring
    assert batch.tx_hash
    assert batch.block_number is not None
    assert batch.block_hash
    return ProofBundle(
        commitment=digest,
        root=batch.root,
        proof=proof,
        chain_id=deployment.chain.chain_id,
        contract=deployment.ledger.address,
        transaction=batch.tx_hash,
        block_number=batch.block_number,
        block_hash=batch.block_hash,
    )


def with_applicant(document: Commitment, **applicant: str) -> Commitment:
    obj = document.to_json_obj()
    obj["applicant"] = {**obj["applicant"], **applicant}
    return Commitment.from_json_obj(obj)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def sqlite_store(database: Path) -> Iterator[Store]:
    """A SQLite store in `database`: the tests look into its file."""
    the_store = Store(f"sqlite:///{database}")
    yield the_store
    the_store.close()


@pytest.fixture
def master_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "master.key"
    result = cli("keys", "new", "--kind", "master", "--out", path)
    assert result.exit_code == 0, explain(result)
    return path


@pytest.fixture
def vault(master_key_file: Path) -> Vault:
    return open_master_key(master_key_file)


@pytest.fixture
def intake(sqlite_store: Store, vault: Vault) -> Intake:
    return Intake(sqlite_store, vault, MATTERS)


def all_kinds(count: int = 30, seed: int = 41) -> list[Commitment]:
    """Persons by resident ID, foreigners by passport, organisations by credit code."""
    documents = list(sample_commitments(count, seed=seed))
    kinds = {d.applicant.id_type for d in documents}
    assert {"resident_id", "passport", "uscc"} <= kinds
    return documents


KEY = SigningKey.generate("ed25519")


def submit_all(intake: Intake, documents: Sequence[Commitment]) -> list[Hash32]:
    results = intake.submit_many([sign_commitment(d, KEY) for d in documents])
    hashes = []
    for result in results:
        assert isinstance(result, Acknowledgement), result
        hashes.append(result.hash)
    return hashes


# ---------------------------------------------------------------------- at rest


def test_the_store_never_holds_personal_data_in_clear(
    intake: Intake, sqlite_store: Store, database: Path
) -> None:
    documents = all_kinds()
    hashes = submit_all(intake, documents)
    raw = disk_bytes(database)
    # the scan does see what is stored in clear: the public columns
    for document, digest in zip(documents, hashes, strict=True):
        assert document.code.encode() in raw
        assert digest in raw
    with sqlite_store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA encoding").scalar() == "UTF-8"
    for secret in personal_data(documents):
        assert in_clear(secret) not in raw, f"{secret!r} is on disk in clear"
    for document, digest in zip(documents, hashes, strict=True):
        sealed = sqlite_store.sealed(digest)
        assert sealed is not None
        ciphertext, wrapped_key = sealed
        assert wrapped_key is not None
        for secret in personal_data([document]):
            assert secret.encode() not in ciphertext
        assert document.salt.encode() not in ciphertext
    sqlite_store.close()  # checkpoint the WAL into the file, and look again
    raw = disk_bytes(database)
    for secret in personal_data(documents):
        assert secret.encode() not in raw


def test_personal_data_are_aes_gcm_under_a_data_key_wrapped_by_the_master_key(
    intake: Intake, sqlite_store: Store, vault: Vault
) -> None:
    """The construction itself (sealed data version 2): RFC 3394 unwrap with the master key,
    then AES-GCM with the version's context and the commitment hash as associated data, then
    raw inflate with the version's dictionary gives back the signed document."""
    from ledger.vault import _DEFLATE_DICTIONARY, _DEFLATED_CONTEXT

    documents = all_kinds(6)
    hashes = submit_all(intake, documents)
    wrapped_keys = set()
    for document, digest in zip(documents, hashes, strict=True):
        sealed = sqlite_store.sealed(digest)
        assert sealed is not None
        assert sealed[1] is not None
        ciphertext, wrapped_key = sealed
        wrapped_keys.add(wrapped_key)
        data_key = aes_key_unwrap(vault.master_key, wrapped_key)
        assert len(data_key) == 32  # AES-256
        assert ciphertext[0] == 2  # the version byte
        packed = AESGCM(data_key).decrypt(
            ciphertext[1:13], ciphertext[13:], _DEFLATED_CONTEXT + digest
        )
        plain = zlib.decompressobj(-15, _DEFLATE_DICTIONARY).decompress(packed)
        opened = SignedCommitment.from_json_obj(json.loads(plain))
        assert opened.document == document
        assert document.applicant.name in plain.decode("utf-8")
    assert len(wrapped_keys) == len(documents), "a data key per commitment"


def test_the_store_keeps_a_keyed_fingerprint_not_the_id(
    intake: Intake, sqlite_store: Store, vault: Vault, database: Path
) -> None:
    documents = all_kinds(6)
    submit_all(intake, documents)
    sqlite_store.close()
    raw = disk_bytes(database)
    for document in documents:
        applicant = document.applicant
        assert vault.fingerprint(applicant.id_type, applicant.id_number) in raw
        assert (
            Vault(secrets.token_bytes(32)).fingerprint(applicant.id_type, applicant.id_number)
            not in raw
        )


# ---------------------------------------------------------------------- erasure


def test_erase_destroys_the_key_but_the_hash_and_proof_still_verify(
    embedded_deployment: Deployment,
    intake: Intake,
    sqlite_store: Store,
    database: Path,
) -> None:
    documents = list(sample_commitments(5, seed=43))
    hashes = submit_all(intake, documents)
    anchor_all(sqlite_store, embedded_deployment)
    ledger = embedded_deployment.ledger
    target, kept = hashes[2], [h for h in hashes if h != hashes[2]]
    before = bundle_of(sqlite_store, embedded_deployment, target)
    assert ledger.is_anchored(HRSS_ID, target, before.root, before.proof)

    result = cli("erase", hex32(target), "--store", f"sqlite:///{database}", "--json")
    assert result.exit_code == 0, explain(result)
    assert json.loads(result.stdout) == {
        "ok": True,
        "hash": hex32(target),
        "erased": True,
        "already": False,
    }

    # the personal data are gone for good
    with pytest.raises(ErasedError):
        intake.open_document(target)
    row = sqlite_store.get(target)
    assert row is not None
    assert row.erased
    assert sqlite_store.sealed(target) == (b"", None)
    # the others are untouched
    for digest in kept:
        opened = intake.open_document(digest)
        assert opened is not None
        assert opened.hash() == digest
    # the hash and its proof remain, in the store and on chain
    after = bundle_of(sqlite_store, embedded_deployment, target)
    assert after == before
    assert row.state == "anchored"
    assert verify_proof(after.root, target, after.proof)
    assert ledger.is_anchored(HRSS_ID, target, after.root, after.proof)
    report = check_bundle(
        after,
        embedded_deployment.chain,
        contract=embedded_deployment.ledger.address,
        chain_id=embedded_deployment.chain.chain_id,
    )
    assert report.ok, report.to_json_obj()
    # and erasing again is harmless
    assert sqlite_store.erase(target)
    with pytest.raises(ErasedError):
        intake.open_document(target)


def test_erased_data_key_leaves_no_copy_on_disk(
    intake: Intake, sqlite_store: Store, database: Path
) -> None:
    hashes = submit_all(intake, list(sample_commitments(5, seed=47)))
    sealed = sqlite_store.sealed(hashes[1])
    assert sealed is not None
    assert sealed[1] is not None
    wrapped_key = sealed[1]
    assert wrapped_key in disk_bytes(database)
    assert sqlite_store.erase(hashes[1])
    # the service keeps running: the store stays open
    assert wrapped_key not in disk_bytes(database)


def test_guessing_id_numbers_cannot_reproduce_the_anchored_hash(
    embedded_deployment: Deployment, intake: Intake, sqlite_store: Store, database: Path
) -> None:
    """Scenario 8. An attacker knows the whole document but the salt, and the applicant's
    birth date and region: 1000 candidate resident IDs. Without the salt no candidate gives
    the anchored hash; with it, the ID would fall at once: the salt is what protects."""
    region, birth, sequence = "110101", date(1990, 3, 7), 417
    true_id = make_resident_id(region, birth, sequence)
    base = next(
        d
        for d in sample_commitments(10, seed=53, department=HRSS)
        if d.applicant.id_type == "resident_id"
    )
    document = with_applicant(base, id_number=true_id)
    (target,) = submit_all(intake, [document])
    anchor_all(sqlite_store, embedded_deployment)
    bundle = bundle_of(sqlite_store, embedded_deployment, target)
    assert embedded_deployment.ledger.is_anchored(HRSS_ID, target, bundle.root, bundle.proof)

    assert sqlite_store.erase(target)
    with pytest.raises(ErasedError):
        intake.open_document(target)

    known = document.to_json_obj()
    real_salt = known.pop("salt")

    def candidate_hash(id_number: str, salt: str) -> Hash32:
        guess: dict[str, Any] = copy.deepcopy(known)
        guess["applicant"]["id_number"] = id_number
        guess["salt"] = salt
        return keccak256(canonical_bytes(guess))

    candidates = [make_resident_id(region, birth, n) for n in range(1000)]
    assert true_id in candidates
    assert len(set(candidates)) == 1000

    for salt in (ZERO_SALT, "0x" + "ff" * 32, document.notice_hash):
        guesses = [candidate_hash(c, salt) for c in candidates]
        assert target not in guesses, f"a guess with salt {salt} reproduced the hash"
        # nor does any guess pass for anchored, by the stored proof or singly
        assert not any(verify_proof(bundle.root, g, bundle.proof) for g in guesses)
        for guess in guesses[sequence - 2 : sequence + 3]:
            assert not embedded_deployment.ledger.is_anchored(
                HRSS_ID, guess, bundle.root, bundle.proof
            )
            assert not embedded_deployment.ledger.is_anchored(HRSS_ID, guess)

    # contrast: were the salt known, the ID would be found among the candidates at once
    found = [c for c in candidates if candidate_hash(c, real_salt) == target]
    assert found == [true_id]

    # and the salt is nowhere in the store now: it lived only in the sealed document
    raw = disk_bytes(database)
    assert real_salt.encode() not in raw
    assert bytes.fromhex(real_salt[2:]) not in raw


# ---------------------------------------------------------------------- logs and output


def test_intake_pipeline_and_erasure_log_nothing_personal(
    embedded_deployment: Deployment,
    sqlite_store: Store,
    vault: Vault,
    caplog: pytest.LogCaptureFixture,
) -> None:
    debug_everywhere(caplog)
    documents = all_kinds(24, seed=59)
    excluded = documents[-1]
    sqlite_store.exclude(
        vault.fingerprint(excluded.applicant.id_type, excluded.applicant.id_number),
        NO_HASH,
    )
    tampered = sign_commitment(documents[0], KEY).to_json_obj()
    tampered["document"]["channel"] = "counter" if documents[0].channel == "online" else "online"
    wrong_department = Commitment.from_json_obj(
        {
            **documents[1].to_json_obj(),
            "department": MARKET if documents[1].department == HRSS else HRSS,
        }
    )
    batch: list[object] = [sign_commitment(d, KEY) for d in documents]
    batch += [tampered, sign_commitment(wrong_department, KEY), b"{broken"]
    intake = Intake(sqlite_store, vault, MATTERS)
    results = intake.submit_many(batch)
    acks = [r for r in results if isinstance(r, Acknowledgement)]
    assert len(acks) == len(documents) - 1
    for error in results[len(documents) - 1 :]:
        assert not isinstance(error, Acknowledgement)
        assert_nothing_personal(str(error), documents, "an intake error")
    anchor_all(sqlite_store, embedded_deployment)
    sqlite_store.erase(acks[0].hash)
    with pytest.raises(ErasedError) as erased:
        intake.open_document(acks[0].hash)
    assert_nothing_personal(str(erased.value), documents, "the erased error")

    assert any(r.name == "commitledger.pipeline" for r in caplog.records), "logs not captured"
    assert_nothing_personal(log_text(caplog), documents, "the logs")
    assert_nothing_personal(caplog.text, documents, "the formatted logs")


def _write_signed(directory: Path, documents: Sequence[Commitment]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, document in enumerate(documents):
        path = directory / f"commitment{i:03d}.json"
        body = sign_commitment(document, KEY).to_json_obj()
        path.write_text(json.dumps(body, ensure_ascii=False, indent=2), encoding="utf-8")
        paths.append(path)
    return paths


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_cli_submit_erase_status_output_nothing_personal(
    tmp_path: Path,
    master_key_file: Path,
    caplog: pytest.LogCaptureFixture,
    as_json: bool,
) -> None:
    debug_everywhere(caplog)
    documents = all_kinds(12, seed=61)
    paths = _write_signed(tmp_path / "in", documents)
    bad = documents[0].to_json_obj()  # unsigned: refused, and the refusal must not echo it
    bad_path = tmp_path / "in" / "unsigned.json"
    bad_path.write_text(json.dumps(bad, ensure_ascii=False), encoding="utf-8")
    tampered = json.loads(paths[1].read_text())
    tampered["document"]["claims"] = tampered["document"]["claims"][:1]
    tampered_path = tmp_path / "in" / "tampered.json"
    tampered_path.write_text(json.dumps(tampered, ensure_ascii=False), encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    flag = ["--json"] if as_json else []
    outputs = []
    submitted = cli(
        "submit",
        *paths,
        bad_path,
        tampered_path,
        "--store",
        url,
        "--master-key-file",
        master_key_file,
        *flag,
    )
    assert submitted.exit_code == 1, explain(submitted)
    outputs.append(submitted)
    digest = documents[2].hash()
    outputs.append(cli("erase", hex32(digest), "--store", url, *flag))
    outputs.append(cli("status", "--store", url, *flag))
    for result in outputs:
        assert_nothing_personal(result.stdout, documents, "stdout")
        assert_nothing_personal(result.stderr, documents, "stderr")
    assert_nothing_personal(log_text(caplog), documents, "the logs")

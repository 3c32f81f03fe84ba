"""A store written by an earlier version opens with today's migrations and reads back the same."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ledger import Hash32, SignedCommitment, Store, Vault
from verifier import BreachRecord
from verifier.feed import FeedStore
from verifier.records import VerifierRecords

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
STORES = sorted(VECTORS.glob("store-*.sqlite"))


def _hash(text: str) -> Hash32:
    return Hash32(bytes.fromhex(text.removeprefix("0x")))


@pytest.fixture(params=STORES, ids=[path.stem for path in STORES])
def opened(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A copy of a frozen store (opening migrates it) and the manifest written with it."""
    source: Path = request.param
    copy = tmp_path / source.name
    shutil.copyfile(source, copy)
    expected = json.loads(source.with_suffix(".json").read_text("utf-8"))
    store = Store(f"sqlite:///{copy}")
    try:
        yield store, expected
    finally:
        store.close()


def test_there_is_a_frozen_store() -> None:
    assert STORES, f"no store-*.sqlite under {VECTORS}"


def test_commitments_read_back_and_their_sealed_documents_open(opened: Any) -> None:
    store, expected = opened
    vault = Vault(bytes.fromhex(expected["vault_master_key"]))
    assert len(expected["commitments"]) >= 5
    for want in expected["commitments"]:
        digest = _hash(want["hash"])
        stored = store.get(digest)
        assert stored is not None, want["kind"]
        assert stored.code == want["code"]
        assert stored.matter_code == want["matter_code"]
        assert stored.department == want["department"]
        assert stored.state == want["state"]
        assert stored.batch_id == want["batch_id"]
        assert ["0x" + node.hex() for node in stored.proof] == want["proof"]
        sealed = store.sealed(digest)
        assert sealed is not None
        plain = vault.open(*sealed, associated=digest)
        assert SignedCommitment.from_json_obj(json.loads(plain)).hash() == digest


def test_verifications_and_breach_records_read_back(opened: Any) -> None:
    store, expected = opened
    records = VerifierRecords(store)
    for want in expected["commitments"]:
        verification = records.verification(_hash(want["hash"]))
        assert verification is not None, want["kind"]
        assert verification.state == want["verification_state"]
        assert verification.outcome_status == want["outcome_status"]
    assert expected["breach_records"]
    for want in expected["breach_records"]:
        assert records.breach(want["id"]) == BreachRecord.from_json(want)


def test_feed_records_read_back(opened: Any) -> None:
    store, expected = opened
    feed = FeedStore(store)
    want = expected["feed"]
    assert want["records"]
    assert feed.head() == want["head"]
    assert feed.head_block() == want["head_block"]
    rows = [
        {"seq": row.seq, "record_id": row.record_id, "kind": row.kind, "scope": row.scope,
         "department": row.department, "body": row.body}
        for row in feed.stored_rows()
    ]  # fmt: skip
    assert rows == want["records"]

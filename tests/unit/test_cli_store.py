"""`commitledger submit`, `status`, `erase` and `pipeline run` over a SQLite store, in-process.

Anchoring through `pipeline run` needs a JSON-RPC node; here only its bad-input paths are run
(they fail before any node is contacted). The full run is in test_privacy.py (integration).
"""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text, update
from support.cli import one_json, one_line, unreachable_rpc, write_json
from support.service_keys import open_master_key, write_account
from typer.testing import CliRunner, Result

from api.cli import app
from api.demo import sample_commitments
from ledger import (
    MASTER_KEY_ENV,
    Commitment,
    ErasedError,
    Hash32,
    Intake,
    SigningKey,
    Store,
    Vault,
    VaultError,
    commitments,
    hex32,
    resident_id_check_digit,
    sign_commitment,
)
from verifier import (
    BreachEvidence,
    BreachRecord,
    default_catalog,
    earliest_repair,
    make_breach_record,
)
from verifier.records import ERASED_PARTY, VerifierRecords

RUNNER = CliRunner()
MATTERS = {matter.code: matter.department for matter in default_catalog().matters}
NO_HASH = Hash32(bytes(32))  # a commitment hash no document has
KEY = SigningKey.generate("ed25519")


def cli(*args: object, env: Mapping[str, str | None] | None = None) -> Result:
    """Run `commitledger ARGS` in-process, never with the caller's master key or store."""
    base: dict[str, str | None] = {
        "COLUMNS": "1000",
        MASTER_KEY_ENV: None,
        "COMMITLEDGER_STORE": None,
    }
    return RUNNER.invoke(app, [str(a) for a in args], env={**base, **(env or {})})


def explain(result: Result) -> str:
    return f"exit {result.exit_code}\nstdout: {result.stdout!r}\nstderr: {result.stderr!r}"


def ok_json(result: Result) -> Any:
    assert result.exit_code == 0, explain(result)
    return one_json(result.stdout)


@dataclass
class Setup:
    root: Path
    url: str
    master_key: Path
    documents: list[Commitment]
    files: list[Path]

    def submit(self, *files: Path, json_out: bool = False) -> Result:
        flag = ["--json"] if json_out else []
        return cli(
            "submit",
            *files,
            "--store",
            self.url,
            "--master-key-file",
            self.master_key,
            *flag,
        )

    def status(self) -> dict[str, Any]:
        document: dict[str, Any] = ok_json(cli("status", "--store", self.url, "--json"))
        return document

    def open_store(self) -> Store:
        return Store(self.url)

    def bad(self, name: str, value: object) -> Path:
        return write_json(self.root / name, value)


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    master_key = tmp_path / "master.key"
    made = ok_json(cli("keys", "new", "--kind", "master", "--out", master_key, "--json"))
    assert made == {"ok": True, "kind": "master", "path": str(master_key), "encrypted": True}
    documents = list(sample_commitments(4, seed=71))
    files = [
        write_json(tmp_path / f"signed{i}.json", sign_commitment(d, KEY).to_json_obj())
        for i, d in enumerate(documents)
    ]
    return Setup(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}", master_key, documents, files)


# ---------------------------------------------------------------------- keys new --kind master


def test_master_key_file_is_secret_and_never_printed(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    result = cli("keys", "new", "--kind", "master", "--out", path)
    assert result.exit_code == 0, explain(result)
    text = path.read_text()
    clear = base64.b64encode(open_master_key(path).master_key).decode()  # the suite's passphrase
    assert json.loads(text)["kind"] == "commitledger master key"  # a keystore, no address
    assert "address" not in json.loads(text)
    assert clear not in text and open_master_key(path).master_key.hex() not in text
    assert path.stat().st_mode & 0o777 == 0o600
    assert clear not in result.stdout + result.stderr
    assert "never printed" in result.stdout
    again = cli("keys", "new", "--kind", "master", "--out", path)
    assert again.exit_code == 2, explain(again)
    assert path.read_text() == text


# ---------------------------------------------------------------------- submit


def test_submit_prints_one_acceptance_per_file(setup: Setup) -> None:
    result = setup.submit(*setup.files)
    assert result.exit_code == 0, explain(result)
    lines = result.stdout.strip().splitlines()
    assert lines == [
        f"accepted {hex32(d.hash())} {path}"
        for d, path in zip(setup.documents, setup.files, strict=True)
    ]
    assert result.stderr == ""
    assert setup.status()["pending"] == 4


def test_submitted_documents_open_with_the_master_key(setup: Setup) -> None:
    assert setup.submit(*setup.files).exit_code == 0
    store = setup.open_store()
    try:
        intake = Intake(store, open_master_key(setup.master_key), MATTERS)
        for document in setup.documents:
            opened = intake.open_document(document.hash())
            assert opened is not None
            assert opened.document == document
        with pytest.raises(VaultError):  # another master key opens nothing
            Intake(store, Vault.from_text(Vault.new_master_key()), MATTERS).open_document(
                setup.documents[0].hash()
            )
    finally:
        store.close()


def test_submit_json(setup: Setup) -> None:
    document = ok_json(setup.submit(*setup.files[:2], json_out=True))
    assert document == {
        "ok": True,
        "accepted": 2,
        "results": [
            {"file": str(path), "hash": hex32(d.hash()), "new": True}
            for d, path in zip(setup.documents[:2], setup.files[:2], strict=True)
        ],
    }


def test_resubmit_gives_the_same_hash_and_new_false(setup: Setup) -> None:
    first = ok_json(setup.submit(setup.files[0], json_out=True))
    again = ok_json(setup.submit(setup.files[0], setup.files[1], json_out=True))
    assert again["results"][0] == {**first["results"][0], "new": False}
    assert again["results"][1]["new"] is True
    assert setup.status()["pending"] == 2
    text = setup.submit(setup.files[0])
    assert text.exit_code == 0, explain(text)
    assert one_line(text.stdout) == (
        f"accepted {first['results'][0]['hash']} {setup.files[0]} (already accepted before)"
    )


def test_master_key_from_the_environment(setup: Setup) -> None:
    env = {MASTER_KEY_ENV: base64.b64encode(open_master_key(setup.master_key).master_key).decode()}
    result = cli("submit", setup.files[0], "--store", setup.url, "--json", env=env)
    assert ok_json(result)["accepted"] == 1


def test_store_from_the_environment(setup: Setup) -> None:
    env: dict[str, str | None] = {"COMMITLEDGER_STORE": setup.url}
    result = cli("submit", setup.files[0], "--master-key-file", setup.master_key, env=env)
    assert result.exit_code == 0, explain(result)
    assert ok_json(cli("status", "--json", env=env))["pending"] == 1


def test_a_bad_file_among_good_ones_exits_1_and_keeps_the_good(setup: Setup) -> None:
    unsigned = setup.bad("unsigned.json", setup.documents[0].to_json_obj())
    result = setup.submit(setup.files[0], unsigned, setup.files[1])
    assert result.exit_code == 1, explain(result)
    assert result.stdout.strip().splitlines() == [
        f"accepted {hex32(setup.documents[0].hash())} {setup.files[0]}",
        f"accepted {hex32(setup.documents[1].hash())} {setup.files[1]}",
    ]
    refused = one_line(result.stderr)
    assert refused.startswith(f"refused {unsigned}: ")
    assert setup.status()["pending"] == 2


def test_a_bad_file_among_good_ones_json(setup: Setup) -> None:
    missing = setup.root / "missing.json"
    result = setup.submit(setup.files[0], missing, json_out=True)
    assert result.exit_code == 1, explain(result)
    document = one_json(result.stdout)
    assert document["ok"] is False
    assert document["accepted"] == 1
    assert document["results"][0]["new"] is True
    assert document["results"][1]["file"] == str(missing)
    assert document["results"][1]["type"] == "InvalidDocumentError"
    assert "No such file" in document["results"][1]["error"]


def _bad_files(setup: Setup) -> list[Path]:
    tampered = json.loads(setup.files[0].read_text())
    tampered["document"]["channel"] = (
        "counter" if tampered["document"]["channel"] == "online" else "online"
    )
    wrong = setup.documents[1].to_json_obj()
    wrong["matter_code"] = "BJ-HRSS-9999"
    not_json = setup.root / "not.json"
    not_json.write_text("{nope")
    return [
        setup.bad("tampered.json", tampered),
        setup.bad(
            "unknown-matter.json",
            sign_commitment(Commitment.from_json_obj(wrong), KEY).to_json_obj(),
        ),
        not_json,
        setup.root / "absent.json",
    ]


def test_all_bad_exits_2_and_stores_nothing(setup: Setup) -> None:
    bad = _bad_files(setup)
    result = setup.submit(*bad)
    assert result.exit_code == 2, explain(result)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == len(bad)
    for path, line in zip(bad, lines, strict=True):
        assert line.startswith(f"refused {path}: ")
    assert "signature" in lines[0]
    assert "unknown matter 'BJ-HRSS-9999'" in lines[1]
    assert "not valid JSON" in lines[2]
    assert setup.status()["pending"] == 0


def test_all_bad_json(setup: Setup) -> None:
    bad = _bad_files(setup)
    result = setup.submit(*bad, json_out=True)
    assert result.exit_code == 2, explain(result)
    document = one_json(result.stdout)
    assert document["ok"] is False
    assert document["accepted"] == 0
    assert [r["type"] for r in document["results"]] == [
        "SignatureError",
        "InvalidDocumentError",
        "InvalidDocumentError",
        "InvalidDocumentError",
    ]


def test_excluded_applicant_is_refused(setup: Setup) -> None:
    vault = open_master_key(setup.master_key)
    store = setup.open_store()
    applicant = setup.documents[0].applicant
    store.exclude(vault.fingerprint(applicant.id_type, applicant.id_number), NO_HASH)
    store.close()
    result = setup.submit(setup.files[0], setup.files[1], json_out=True)
    assert result.exit_code == 1, explain(result)
    document = one_json(result.stdout)
    assert document["results"][0]["type"] == "ApplicantExcludedError"
    assert "unrepaired breach" in document["results"][0]["error"]
    assert setup.status()["pending"] == 1


@pytest.mark.parametrize("how", ["no-env-no-file", "empty-env", "missing-file", "malformed-file"])
def test_missing_master_key_is_bad_input(setup: Setup, how: str) -> None:
    args: list[object] = ["submit", setup.files[0], "--store", setup.url]
    env: dict[str, str | None] = {}
    if how == "empty-env":
        env[MASTER_KEY_ENV] = ""
    elif how == "missing-file":
        args += ["--master-key-file", setup.root / "absent.key"]
    elif how == "malformed-file":
        short = setup.root / "short.key"
        short.write_text("0x1234\n")
        args += ["--master-key-file", short]
    result = cli(*args, env=env)
    assert result.exit_code == 2, explain(result)


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_missing_master_key_names_the_variable_and_stores_nothing(
    setup: Setup, as_json: bool
) -> None:
    flag = ["--json"] if as_json else []
    elsewhere = {"COMMITLEDGER_DATA_DIR": str(setup.root / "empty")}  # not the checkout's data/
    result = cli("submit", setup.files[0], "--store", setup.url, *flag, env=elsewhere)
    assert result.exit_code != 0, explain(result)
    assert "Traceback" not in result.stderr
    if as_json:
        document = one_json(result.stdout)
        assert document["ok"] is False
        assert document["error"]["type"] == "VaultError"
        assert MASTER_KEY_ENV in document["error"]["message"]
    else:
        assert result.stdout == ""
        line = one_line(result.stderr)
        assert line.startswith("error: ")
        assert MASTER_KEY_ENV in line
        assert "keys new --kind master" in line
    assert setup.status()["pending"] == 0


def test_unreadable_master_key_file_is_named(setup: Setup) -> None:
    absent = setup.root / "absent.key"
    result = cli("submit", setup.files[0], "--store", setup.url, "--master-key-file", absent)
    assert result.exit_code != 0, explain(result)
    assert str(absent) in one_line(result.stderr)


# ---------------------------------------------------------------------- status


def test_status_of_an_empty_store(setup: Setup) -> None:
    assert setup.status() == {
        "ok": True,
        "pending": 0,
        "in_flight": 0,
        "anchored": 0,
        "oldest_pending_age": None,
        "last_anchored_block": None,
        "batches_in_flight": 0,
    }
    text = cli("status", "--store", setup.url)
    assert text.exit_code == 0, explain(text)
    assert "pending 0" in text.stdout
    assert "anchored 0" in text.stdout
    assert "oldest pending -" in text.stdout


def test_status_after_submit(setup: Setup) -> None:
    assert setup.submit(*setup.files).exit_code == 0
    figures = setup.status()
    assert figures["pending"] == 4
    assert figures["in_flight"] == figures["anchored"] == figures["batches_in_flight"] == 0
    assert figures["last_anchored_block"] is None
    assert isinstance(figures["oldest_pending_age"], float)
    assert 0.0 <= figures["oldest_pending_age"] < 60.0
    text = cli("status", "--store", setup.url)
    assert text.exit_code == 0, explain(text)
    assert "pending 4" in text.stdout


# ---------------------------------------------------------------------- erase


def test_erase_unknown_hash_exits_2(setup: Setup) -> None:
    unknown = "0x" + "ab" * 32
    result = cli("erase", unknown, "--store", setup.url)
    assert result.exit_code == 2, explain(result)
    assert result.stdout == ""
    line = one_line(result.stderr)
    assert line.startswith("error: ")
    assert unknown in line
    as_json = cli("erase", unknown, "--store", setup.url, "--json")
    assert as_json.exit_code == 2, explain(as_json)
    assert one_json(as_json.stdout)["ok"] is False


@pytest.mark.parametrize("text", ["0x1234", "nothex", "ab" * 32 + "zz"])
def test_erase_malformed_hash_exits_2(setup: Setup, text: str) -> None:
    result = cli("erase", text, "--store", setup.url)
    assert result.exit_code == 2, explain(result)
    assert result.stdout == ""


def test_erasing_an_erased_commitment_says_it_was_already_erased(setup: Setup) -> None:
    assert setup.submit(*setup.files).exit_code == 0
    digest = hex32(setup.documents[0].hash())
    assert cli("erase", digest, "--store", setup.url).exit_code == 0
    again = cli("erase", digest, "--store", setup.url)
    assert again.exit_code == 0, explain(again)
    assert one_line(again.stdout) == f"already erased: the personal data of {digest} are gone"
    document = ok_json(cli("erase", digest, "--store", setup.url, "--json"))
    assert document["already"] is True and document["erased"] is True


def test_erase_a_stored_commitment(setup: Setup) -> None:
    assert setup.submit(*setup.files).exit_code == 0
    digest = setup.documents[1].hash()
    result = cli("erase", hex32(digest), "--store", setup.url)
    assert result.exit_code == 0, explain(result)
    assert one_line(result.stdout) == (
        f"erased the personal data of {hex32(digest)}; its hash and proof remain"
    )
    # status still counts it: the commitment remains, only its personal data are gone
    assert setup.status()["pending"] == 4
    store = setup.open_store()
    try:
        row = store.get(digest)
        assert row is not None
        assert row.erased
        assert row.state == "pending"
        intake = Intake(store, open_master_key(setup.master_key), MATTERS)
        with pytest.raises(ErasedError):
            intake.open_document(digest)
        other = intake.open_document(setup.documents[0].hash())
        assert other is not None
    finally:
        store.close()
    again = ok_json(cli("erase", hex32(digest), "--store", setup.url, "--json"))
    assert again == {"ok": True, "hash": hex32(digest), "erased": True, "already": True}
    # resubmitting the same document does not bring the personal data back
    resubmitted = ok_json(setup.submit(setup.files[1], json_out=True))
    assert resubmitted["results"][0]["new"] is False


def _publish_breach(setup: Setup, document: Commitment) -> tuple[BreachRecord, bytes]:
    """A published breach of `document` (as a run publishes it), with its exclusion."""
    vault = open_master_key(setup.master_key)
    applicant = document.applicant
    fingerprint = vault.fingerprint(applicant.id_type, applicant.id_number)
    digest = document.hash()
    evidence = BreachEvidence(
        chain_id=31337,
        contract="0x" + "11" * 20,
        transaction="0x" + "22" * 32,
        block=7,
        commitment_hash=hex32(digest),
    )
    record = make_breach_record(
        applicant,
        default_catalog().matter(document.matter_code),
        digest,
        facts="承诺内容与核查数据不符",
        decision="撤销审批决定，记入失信记录",
        document_number="京BJ-HRSS承诺〔2026〕000001号",
        decision_date=date(2026, 11, 27),
        evidence=evidence,
    )
    store = setup.open_store()
    try:
        assert VerifierRecords(store).add_breach(record, fingerprint)
        store.exclude(fingerprint, digest)
    finally:
        store.close()
    return record, fingerprint


def _stored_values(path: Path) -> set[bytes]:
    """Every 32-byte value in any column of any table of the SQLite store."""
    found: set[bytes] = set()
    with sqlite3.connect(path) as connection:
        tables = [
            r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for table in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"'):
                found.update(v for v in row if isinstance(v, bytes) and len(v) == 32)
    return found


def _guesses(region: str, tail: str, around: date, days: int) -> Iterator[str]:
    """Resident IDs of `region` ending in `tail` born within `days` of `around`: the masked
    ID hides only the birth date and two digits (the brute force of issue 13, narrowed to a
    window that holds the true birth date so that the test stays fast)."""
    for offset in range(-days, days + 1):
        born = around + timedelta(days=offset)
        for hidden in range(100):
            first17 = f"{region}{born:%Y%m%d}{hidden:02d}{tail[0]}"
            if resident_id_check_digit(first17) == tail[1]:
                yield first17 + tail[1]


def test_erasure_waits_for_a_published_breach_then_leaves_nothing_to_test_a_guess_against(
    setup: Setup,
) -> None:
    assert setup.submit(*setup.files).exit_code == 0
    document = next(d for d in setup.documents if d.applicant.id_type == "resident_id")
    digest = document.hash()
    record, fingerprint = _publish_breach(setup, document)
    db = setup.root / "ledger.db"

    refused = cli("erase", hex32(digest), "--store", setup.url, "--json")
    assert refused.exit_code == 1, explain(refused)
    assert "law requires" in one_json(refused.stdout)["error"]["message"]
    store = setup.open_store()
    try:
        assert not store.get(digest).erased  # type: ignore[union-attr]
        assert fingerprint in _stored_values(db)
        records = VerifierRecords(store)
        repaired_on = earliest_repair(record)
        records.update_breach_status(record.id, "repaired", repaired_on)
        store.lift_exclusion(fingerprint)
    finally:
        store.close()

    assert cli("erase", hex32(digest), "--store", setup.url).exit_code == 0
    vault = open_master_key(setup.master_key)  # even with the master key
    number = document.applicant.id_number
    region, tail = record.party_code[:6], record.party_code[-2:]
    born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    guesses = list(_guesses(region, tail, born, days=60))
    assert number in guesses  # before the fix, one of these matched a stored fingerprint
    stored = _stored_values(db)
    assert not any(vault.fingerprint("resident_id", guess) in stored for guess in guesses)
    assert fingerprint not in db.read_bytes()  # nor in a freed page or the log
    store = setup.open_store()
    try:
        shown = VerifierRecords(store).breach(record.id)
        assert shown is not None
        assert (shown.party_name, shown.party_code) == (ERASED_PARTY, ERASED_PARTY)
        assert shown.status == "repaired"  # the record and its history stay
    finally:
        store.close()


def test_records_of_commitments_erased_before_are_redacted_when_the_store_opens(
    setup: Setup,
) -> None:
    assert setup.submit(*setup.files).exit_code == 0
    listed, excluded = _publish_breach(setup, setup.documents[0])
    repaired, fingerprint = _publish_breach(setup, setup.documents[1])
    store = setup.open_store()
    try:
        records = VerifierRecords(store)
        records.update_breach_status(repaired.id, "repaired", earliest_repair(repaired))
        store.lift_exclusion(fingerprint)
        with store.engine.begin() as connection:  # erased as before, then back to version 3
            connection.execute(
                update(commitments)
                .where(commitments.c.hash.in_([d.hash() for d in setup.documents[:2]]))
                .values(wrapped_key=None, sealed=b"")
            )
            connection.execute(text("DELETE FROM verifier_migrations WHERE version = 4"))
    finally:
        store.close()
    db = setup.root / "ledger.db"
    assert {excluded, fingerprint} <= _stored_values(db)

    store = setup.open_store()
    try:
        records = VerifierRecords(store)  # opening applies migration 4
        for record in (listed, repaired):
            shown = records.breach(record.id)
            assert shown is not None
            assert (shown.party_name, shown.party_code) == (ERASED_PARTY, ERASED_PARTY)
        stored = _stored_values(db)
        assert excluded in stored  # a published breach: the law keeps it, its repair finds it
        assert fingerprint not in stored
    finally:
        store.close()


# ---------------------------------------------------------------------- pipeline run, bad input


def _deployment(setup: Setup, **fields: object) -> Path:
    record = {
        "rpc": unreachable_rpc(),
        "chain_id": 31337,
        "contract": "0x" + "11" * 20,
        "department": "BJ-HRSS",
        **fields,
    }
    return write_json(
        setup.root / "deployment.json", {k: v for k, v in record.items() if v is not None}
    )


def _registrar(setup: Setup) -> Path:
    from eth_account import Account

    return write_account(setup.root / "registrar.json", Account.create())  # suite's passphrase


def test_pipeline_run_without_a_deployment_exits_2(setup: Setup) -> None:
    result = cli(
        "pipeline",
        "run",
        "--key",
        _registrar(setup),
        "--store",
        setup.url,
        "--deployment",
        setup.root / "absent.json",
    )
    assert result.exit_code == 2, explain(result)
    assert "absent.json" in one_line(result.stderr)


def test_pipeline_run_without_a_department_exits_2(setup: Setup) -> None:
    deployment = _deployment(setup, department=None)
    result = cli(
        "pipeline",
        "run",
        "--key",
        _registrar(setup),
        "--store",
        setup.url,
        "--deployment",
        deployment,
        "--json",
    )
    assert result.exit_code == 2, explain(result)
    assert "--department" in one_json(result.stdout)["error"]["message"]


def test_pipeline_run_with_no_node_exits_3(setup: Setup) -> None:
    deployment = _deployment(setup)
    result = cli(
        "pipeline",
        "run",
        "--key",
        _registrar(setup),
        "--store",
        setup.url,
        "--deployment",
        deployment,
        "--until-idle",
    )
    assert result.exit_code == 3, explain(result)
    assert "no Ethereum node answers" in one_line(result.stderr)


def test_pipeline_run_needs_a_key(setup: Setup) -> None:
    result = cli("pipeline", "run", "--store", setup.url)
    assert result.exit_code == 2, explain(result)
    assert "--key" in result.stderr

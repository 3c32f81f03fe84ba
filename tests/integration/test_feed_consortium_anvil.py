"""The credit feed of a consortium (issue 18), on one PostgreSQL and one anvil: two department
instances (`serve --department D`), each holding only its own encrypted keys, and a keyless
public instance. Whoever sequences, each department's records are signed by its own
instance: the feed is gapless, every record verifies under its department's key, `feed
check` passes; with one department's instance stopped the head waits at its first record,
and goes on when that instance is back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import select, update
from support.department_machines import PASSPHRASES, answers, department_dir, share_master_key
from support.deployment import HRSS, MARKET, Deployment, deploy
from support.service_world import write_deployment_file

from api.demo import sample_commitments
from api.keyfiles import KeyUnlock, load_report_key, pem_bytes
from api.service import TokenStore
from ledger import (
    AnvilNode,
    Chain,
    Hash32,
    Leases,
    LedgerContract,
    SigningKey,
    Status,
    Store,
    free_port,
    keccak256,
    sign_commitment,
    to_hash32,
)
from verifier.feed import FeedRecord, FeedStore, sign_record, verify_record
from verifier.feed.tables import feed_records

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("anvil_binary")]

COMMITLEDGER = Path(sys.executable).parent / "commitledger"
CHECKER_PASSPHRASE = "an auditor's own passphrase"
WAIT_S = 90.0  # a bound to stop polling on a loaded machine, not a timing claim


def until(condition: Callable[[], bool], what: str, deadline_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {deadline_s} s: {what}")
        time.sleep(0.1)


@contextmanager
def serving(data_dir: Path, common: list[str], env: dict[str, str], *extra: str) -> Iterator[str]:
    """`commitledger serve` on a free port, ready; stopped (SIGTERM) after."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = data_dir / "serve.log"
    command = [str(COMMITLEDGER), "serve", "--data-dir", str(data_dir), *common, *extra]
    with log.open("ab") as output:
        process = subprocess.Popen(
            [*command, "--port", str(port)], stdout=output, stderr=output, env=env
        )
    base = f"http://127.0.0.1:{port}"
    try:
        until(lambda: process.poll() is not None or answers(f"{base}/readyz"), "ready")
        assert process.poll() is None, log.read_text()
        yield base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    for passphrase in PASSPHRASES.values():
        assert passphrase not in log.read_text()


def department_instance(
    data_dir: Path, department: str, common: list[str], env: dict[str, str]
) -> Any:
    return serving(
        data_dir, common, env,
        "--department", department, "--passphrase-file", str(data_dir / "passphrase"),
    )  # fmt: skip


def report_key(data_dir: Path, department: str) -> SigningKey:
    unlock = KeyUnlock(PASSPHRASES[department], scrypt_n=2**4)
    return load_report_key(data_dir / "keys" / department / "report.pem", unlock)


def checker_keys(folder: Path, keys: dict[str, SigningKey]) -> Path:
    """An auditor's folder of the departments' report keys (under its own passphrase), as
    `feed check` reads them."""
    unlock = KeyUnlock(CHECKER_PASSPHRASE, scrypt_n=2**4)
    for department, key in keys.items():
        private = serialization.load_pem_private_key(key.to_pem(), None)
        assert isinstance(private, ed25519.Ed25519PrivateKey)
        (folder / department).mkdir(parents=True)
        (folder / department / "report.pem").write_bytes(pem_bytes(private, unlock))
    return folder


class Consortium:
    """What the test sends and reads: each department's actions at its own instance."""

    def __init__(self, store: Store, ledger: LedgerContract) -> None:
        self.store = store
        self.ledger = ledger
        issued = TokenStore(store)
        self.tokens = {
            f"{dep}:{role}": issued.issue(dep, role).token
            for dep in (HRSS, MARKET)
            for role in ("registrar", "verifier")
        }
        self.tokens["feed"] = issued.issue("FEED", "feed", scope="all").token
        self.applicant = SigningKey.generate("ed25519")

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def anchored(self, base: str, department: str, document: Any) -> Hash32:
        signed = sign_commitment(document, self.applicant)
        response = httpx.post(
            f"{base}/v1/commitments?wait=true&timeout=30",
            content=json.dumps(signed.to_json_obj()).encode(),
            headers=self.headers(f"{department}:registrar"),
            timeout=40,
        )
        assert response.status_code in (200, 201), response.text
        return to_hash32(response.json()["hash"])

    def kept(self, base: str, department: str, digest: Hash32) -> None:
        """Approved, then verified kept by the department's officer: an outcome on chain."""
        path = f"{base}/v1/commitments/0x{digest.hex()}/decision"
        decided = httpx.post(
            path, json={"result": "approved"}, headers=self.headers(f"{department}:registrar"),
            timeout=40,
        )  # fmt: skip
        assert decided.status_code == 201, decided.text
        verified = httpx.post(
            f"{base}/v1/verifications/0x{digest.hex()}/decision",
            json={"outcome": "kept", "note": "checked at the counter"},
            headers=self.headers(f"{department}:verifier"),
            timeout=40,
        )
        assert verified.status_code == 200, verified.text

    def outcomes(self) -> list[tuple[int, int, str]]:
        """(block, log index, department code hex) of every OutcomeRecorded on chain."""
        return [
            (int(e["blockNumber"]), int(e["logIndex"]), bytes(e["args"]["department"]).hex())
            for e in self.ledger.events("OutcomeRecorded")
        ]

    def served(self, base: str) -> list[dict[str, Any]]:
        """The whole feed as a consumer pulls it from `base`."""
        records: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 200, **({"after": after} if after else {})}
            response = httpx.get(
                f"{base}/v1/feed", params=params, headers=self.headers("feed"), timeout=30
            )
            assert response.status_code == 200, response.text
            page = response.json()
            if not page["records"]:
                return records
            records += page["records"]
            after = page["next"]


def settled(feed: FeedStore, count: int) -> Callable[[], bool]:
    return lambda: feed.head() == feed.assigned() == count


@pytest.fixture
def anvil_deployment(anvil: AnvilNode) -> Deployment:
    return deploy(Chain.connect(anvil.url, kind="anvil"))


def test_each_department_signs_its_own_records_and_the_head_waits_for_a_stopped_one(
    tmp_path: Path, anvil: AnvilNode, anvil_deployment: Deployment, postgres_url: str
) -> None:
    d = anvil_deployment
    hrss_dir = department_dir(tmp_path, HRSS, d.registrar, d.verifier)
    market_dir = department_dir(tmp_path, MARKET, d.other_registrar, d.other_verifier)
    keys = {HRSS: report_key(hrss_dir, HRSS), MARKET: report_key(market_dir, MARKET)}
    public_machine = share_master_key(tmp_path, hrss_dir, market_dir)  # the store's key
    deployment_file = write_deployment_file(tmp_path / "deployment.json", d, anvil.url)
    store = Store(postgres_url)
    ledger = LedgerContract(Chain.connect(anvil.url, kind="anvil"), d.ledger.address)
    consortium = Consortium(store, ledger)
    common = ["--chain", anvil.url, "--store", postgres_url, "--deployment", str(deployment_file)]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMITLEDGER_")},
        "COMMITLEDGER_ANCHOR_MAX_AGE": "0.1",
        "COMMITLEDGER_FEED": "true",
        "COMMITLEDGER_LIFECYCLE": "false",
        "COMMITLEDGER_LEASE_TTL_SECONDS": "2",
        "COMMITLEDGER_LEASE_POLL_SECONDS": "0.2",
        "COMMITLEDGER_RATE_LIMIT_BURST": "100000",
        "COMMITLEDGER_RATE_LIMIT_PER_SECOND": "100000",
    }  # encrypted keys only; the public instance holds none
    hrss_docs = list(sample_commitments(2, department=HRSS))
    market_docs = list(sample_commitments(2, seed=9, department=MARKET))
    feed = FeedStore(store)
    try:
        with (
            serving(
                public_machine, common, env, "--passphrase-file", str(public_machine / "passphrase")
            ) as public,
            department_instance(hrss_dir, HRSS, common, env) as hrss,
        ):
            with department_instance(market_dir, MARKET, common, env) as market:
                hrss_first = consortium.anchored(hrss, HRSS, hrss_docs[0])
                market_first = consortium.anchored(market, MARKET, market_docs[0])
                market_later = consortium.anchored(market, MARKET, market_docs[1])
                hrss_later = consortium.anchored(hrss, HRSS, hrss_docs[1])
                consortium.kept(market, MARKET, market_first)
                consortium.kept(hrss, HRSS, hrss_first)
                before = len(consortium.outcomes())
                assert before >= 2
                until(settled(feed, before), "both departments' records signed", WAIT_S)

            # MARKET's instance is stopped: an outcome of MARKET (recorded with its
            # verifier key elsewhere), then one of HRSS, after it on chain.
            anchoring = store.anchoring_of(market_later)
            assert anchoring is not None
            batch, proof = anchoring
            ledger.record_outcome(
                d.other_verifier, market_later, Status.KEPT, keccak256(b"kept, recorded "
                b"by another machine of the market bureau"), batch.root, proof,
            )  # fmt: skip
            consortium.kept(hrss, HRSS, hrss_later)
            total = len(consortium.outcomes())
            assert total >= before + 2
            until(lambda: feed.assigned() == total, "every outcome given its place", WAIT_S)
            until(lambda: len(feed.sequenced()) == 1, "HRSS's record signed behind it", WAIT_S)
            [waiting] = feed.sequenced()
            assert waiting.department == MARKET
            assert feed.head() == waiting.sequence - 1  # the head waits at its place
            assert feed.blocked_on() == MARKET
            assert [r["sequence"] for r in consortium.served(public)] == list(
                range(1, feed.head() + 1)
            )
            # MARKET's instance back: its signer takes the place, the head moves on.
            with department_instance(market_dir, MARKET, common, env):
                back = time.monotonic()
                until(settled(feed, total), "the head past MARKET's record", WAIT_S)
                resumed_s = time.monotonic() - back
            records = consortium.served(public)
        lease_names = [row.name for row in Leases(store).all()]
    finally:
        feed.store.close()
    assert [r["sequence"] for r in records] == list(range(1, total + 1))
    chain_order = [(b, i) for b, i, _ in consortium.outcomes()]
    assert [(r["evidence"]["block"], r["evidence"]["log_index"]) for r in records] == chain_order
    by_department: dict[str, int] = {}
    for body in records:
        record = FeedRecord.from_json_obj(body)
        department = record.facts.department_code
        verify_record(record, keys[department].public_key_b64())
        by_department[department] = by_department.get(department, 0) + 1
    assert total == 4 and by_department == {HRSS: 2, MARKET: 2}
    assert {f"feed-sign:{HRSS}", f"feed-sign:{MARKET}", "feed"} <= set(lease_names)

    checked = subprocess.run(
        [str(COMMITLEDGER), "feed", "check", "--store", postgres_url,
         "--deployment", str(deployment_file),
         "--keys-dir", str(checker_keys(tmp_path / "auditor", keys)), "--json"],
        capture_output=True, text=True, timeout=120,
        env={**env, "COMMITLEDGER_KEY_PASSPHRASE": CHECKER_PASSPHRASE},
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["ok"] and report["served"] == report["on_chain"] == total, report
    print(f"head moved past MARKET's record {resumed_s:.2f} s after its instance was ready")


def test_the_public_instance_serves_both_keys_and_check_needs_no_private_key(
    tmp_path: Path, anvil: AnvilNode, anvil_deployment: Deployment, postgres_url: str
) -> None:
    d = anvil_deployment
    hrss_dir = department_dir(tmp_path, HRSS, d.registrar, d.verifier)
    market_dir = department_dir(tmp_path, MARKET, d.other_registrar, d.other_verifier)
    keys = {HRSS: report_key(hrss_dir, HRSS), MARKET: report_key(market_dir, MARKET)}
    public_machine = share_master_key(tmp_path, hrss_dir, market_dir)
    deployment_file = write_deployment_file(tmp_path / "deployment.json", d, anvil.url)
    store = Store(postgres_url)
    ledger = LedgerContract(Chain.connect(anvil.url, kind="anvil"), d.ledger.address)
    consortium = Consortium(store, ledger)
    common = ["--chain", anvil.url, "--store", postgres_url, "--deployment", str(deployment_file)]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMITLEDGER_")},
        "COMMITLEDGER_ANCHOR_MAX_AGE": "0.1",
        "COMMITLEDGER_FEED": "true",
        "COMMITLEDGER_LIFECYCLE": "false",
        "COMMITLEDGER_LEASE_TTL_SECONDS": "2",
        "COMMITLEDGER_LEASE_POLL_SECONDS": "0.2",
        "COMMITLEDGER_RATE_LIMIT_BURST": "100000",
        "COMMITLEDGER_RATE_LIMIT_PER_SECOND": "100000",
    }
    feed = FeedStore(store)
    try:
        with (
            serving(
                public_machine, common, env, "--passphrase-file", str(public_machine / "passphrase")
            ) as public,
            department_instance(hrss_dir, HRSS, common, env) as hrss,
            department_instance(market_dir, MARKET, common, env) as market,
        ):
            for base, department, seed in ((hrss, HRSS, 3), (market, MARKET, 5)):
                [document] = sample_commitments(1, seed=seed, department=department)
                consortium.kept(base, department, consortium.anchored(base, department, document))
            total = len(consortium.outcomes())
            until(settled(feed, total), "both departments' records signed", WAIT_S)
            response = httpx.get(f"{public}/v1/feed/keys", timeout=30)
        assert response.status_code == 200, response.text
        served = response.json()
        # The keyless public instance serves each department's key its signer published.
        assert served["keys"] == {
            department: {"algorithm": "ed25519", "public_key": key.public_key_b64()}
            for department, key in keys.items()
        }
        assert {dep: [k["public_key"] for k in ks] for dep, ks in served["history"].items()} == {
            department: [key.public_key_b64()] for department, key in keys.items()
        }
        pinned = tmp_path / "feed-keys.json"  # the auditor's copy, pinned
        pinned.write_text(response.text)

        def check(*keys_from: str) -> tuple[int, dict[str, Any]]:
            checked = subprocess.run(
                [str(COMMITLEDGER), "feed", "check", "--store", postgres_url,
                 "--deployment", str(deployment_file), "--keys-dir", str(tmp_path / "none"),
                 *keys_from, "--json"],
                capture_output=True, text=True, timeout=120, env=env,
            )  # fmt: skip
            return checked.returncode, json.loads(checked.stdout)

        code, report = check("--public-keys", str(pinned))
        assert code == 0 and report["ok"] and report["served"] == total == 2, report
        # A record re-signed in the database with a stranger's key: the check fails.
        stranger = SigningKey.generate("ed25519")
        with store.engine.begin() as connection:
            body = connection.execute(
                select(feed_records.c.body).where(feed_records.c.seq == 1)
            ).scalar_one()
            forged = sign_record(FeedRecord.from_json_obj(json.loads(body)), stranger)
            connection.execute(
                update(feed_records).where(feed_records.c.seq == 1).values(body=forged.to_json())
            )
        for keys_from in (("--public-keys", str(pinned)), ("--store-keys",)):
            code, report = check(*keys_from)
            assert code != 0 and not report["ok"], report
            assert [(p["kind"], p["sequence"]) for p in report["problems"]] == [
                ("bad_signature", 1)
            ]
    finally:
        feed.store.close()

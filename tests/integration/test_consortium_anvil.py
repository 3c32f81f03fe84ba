"""Three service instances on one PostgreSQL and one anvil, each holding every department's
keys: a mixed load sent round-robin while the holder of each lease is killed (SIGKILL) in
turn; then, against the chain, every acknowledged commitment anchored exactly once, no
outcome recorded twice, no nonce error shown to a client, a gapless feed, and every lease
taken over (the take-over times written to leases.json and printed)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from hexbytes import HexBytes
from support.deployment import HRSS, MARKET, Deployment, deploy
from support.pipeline import check_exactly_once
from support.service_keys import CHEAP_UNLOCK, TEST_PASSPHRASE, write_all_keys
from support.service_world import write_deployment_file
from web3.types import TxParams, Wei

from api.demo import sample_commitments
from api.keyfiles import new_key
from api.service import ServiceContext, Settings, TokenStore, department_actions
from api.service.anchoring_task import BackgroundAnchoring
from ledger import (
    AnvilNode,
    Chain,
    Leases,
    LedgerContract,
    SigningKey,
    Store,
    free_port,
    sign_commitment,
    to_hash32,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("anvil_binary")]

COMMITLEDGER = Path(sys.executable).parent / "commitledger"
TTL_S, POLL_S = 2.0, 0.2
LEASES = (f"anchor:{HRSS}", f"anchor:{MARKET}", "feed", "lifecycle", "notices", "reconcile",
          f"feed-sign:{HRSS}", f"feed-sign:{MARKET}")  # fmt: skip
DEADLINE_S = 60.0
# A bound to stop polling, not a timing claim: a loaded CI machine starves the taker for
# many seconds; the take-over times themselves are measured and printed.
TAKEOVER_DEADLINE_S = TTL_S + POLL_S + 60.0
HOST = socket.gethostname()
WORKERS = 4  # clients sending the load, two for each department
MIN_KILLS = 2


def until(condition: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {deadline_s} s: {what}")
        time.sleep(0.05)


@dataclass
class Instance:
    """One `commitledger serve` process; restarted under a new pid after a kill."""

    name: str
    data_dir: Path
    common: list[str]
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def holder(self) -> str:
        assert self.process is not None
        return f"{HOST}:{self.process.pid}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir / "serve.log").open("ab") as output:
            self.process = subprocess.Popen(
                [str(COMMITLEDGER), "serve", "--data-dir", str(self.data_dir), *self.common,
                 "--port", str(self.port)],
                stdout=output, stderr=output, env=self.env,
            )  # fmt: skip

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.base}/readyz", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


@dataclass
class Load:
    """The mixed load: submissions of two departments, decisions on applications and on
    verifications, searches and feed pulls, each sent to the next instance in turn."""

    instances: list[Instance]
    tokens: dict[str, str]
    documents: dict[str, list[Any]]
    acknowledged: dict[str, str] = field(default_factory=dict)  # hash -> department
    anchored: list[tuple[str, str]] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)
    nonce_errors: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    feed_sequences: dict[int, list[int]] = field(default_factory=dict)  # by worker
    stop: threading.Event = field(default_factory=threading.Event)
    _turn: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _feed_after: dict[int, str] = field(default_factory=dict)  # each worker's cursor

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """To the next live instance; on a dead one (killed meanwhile) to the one after."""
        for _ in range(2 * len(self.instances)):
            with self._lock:
                instance = self.instances[next(self._turn) % len(self.instances)]
            if not instance.alive():
                continue
            try:
                response = httpx.request(method, instance.base + path, timeout=45, **kwargs)
            except httpx.HTTPError:
                continue  # killed mid-request, or not up yet after a restart: the next one
            kind = f"{method} {path.split('/')[2]} {response.status_code}"
            with self._lock:
                self.answers[kind] += 1
                if "nonce" in response.text.lower() or "already known" in response.text.lower():
                    self.nonce_errors.append(f"{kind}: {response.text[:300]}")
                if response.status_code >= 500 and response.status_code != 503:
                    self.server_errors.append(f"{kind}: {response.text[:300]}")
            return response
        return None

    def submit(self, department: str, document: Any, wait: bool) -> None:
        """Durable once answered (202), anchored too when waited for (201, 200)."""
        body = json.dumps(document.to_json_obj()).encode()
        headers = {"Authorization": f"Bearer {self.tokens[department + ':registrar']}"}
        path = "/v1/commitments?wait=true&timeout=20" if wait else "/v1/commitments"
        response = None
        while response is None or response.status_code in (502, 503):
            if self.stop.is_set() and response is None:
                return
            response = self.send("POST", path, content=body, headers=headers)
        assert response.status_code in (200, 201, 202), response.text
        digest = response.json()["hash"]
        with self._lock:
            self.acknowledged[digest] = department
            if response.status_code in (200, 201):
                self.anchored.append((digest, department))

    def decide_application(self, department: str, digest: str) -> None:
        headers = {"Authorization": f"Bearer {self.tokens[department + ':registrar']}"}
        response = self.send(
            "POST", f"/v1/commitments/{digest}/decision", json={"result": "approved"},
            headers=headers,
        )  # fmt: skip
        assert response is None or response.status_code in (201, 409, 503), response.text

    def decide_verification(self, department: str, digest: str) -> None:
        headers = {"Authorization": f"Bearer {self.tokens[department + ':verifier']}"}
        body = {"outcome": "kept", "note": "checked at the counter"}
        response = self.send(
            "POST", f"/v1/verifications/{digest}/decision", json=body, headers=headers
        )
        assert response is None or response.status_code in (200, 409, 503), response.text

    def read(self, worker: int) -> None:
        """A search, and the next page of the feed after this worker's cursor."""
        self.send("GET", "/v1/breaches", params={"q": "公司"})
        headers = {"Authorization": f"Bearer {self.tokens['feed']}"}
        after = self._feed_after.get(worker)
        params = {"limit": 50, **({"after": after} if after else {})}
        response = self.send("GET", "/v1/feed", params=params, headers=headers)
        if response is not None and response.status_code == 200:
            page = response.json()
            seen = self.feed_sequences.setdefault(worker, [])
            seen += [record["sequence"] for record in page["records"]]
            self._feed_after[worker] = page["next"]

    def run(self, worker: int) -> None:
        department = (HRSS, MARKET)[worker % 2]
        mine = self.documents[department][:-1]  # the last of each is sent after the kills
        decided: set[str] = set()
        for n, document in enumerate(mine[worker // 2 :: WORKERS // 2]):
            if self.stop.is_set():
                return
            self.submit(department, document, wait=n % 3 == 0)
            with self._lock:
                stored = [d for d, dep in self.acknowledged.items() if dep == department]
                anchored = [d for d, dep in self.anchored if dep == department]
            if stored:
                self.decide_application(department, stored[-1])
            fresh = [d for d in anchored if d not in decided]
            if fresh:  # another worker may decide it too: one of the two is refused (409)
                decided.add(fresh[0])
                self.decide_verification(department, fresh[0])
            self.read(worker)


def holders(store: Store) -> dict[str, tuple[str, int]]:
    """Each lease held now: its holder and token."""
    return {row.name: (row.holder, row.token) for row in Leases(store).all() if row.held}


def test_three_instances_share_the_work_and_take_over_every_lease_of_a_killed_holder(
    tmp_path: Path, anvil: AnvilNode, postgres_url: str
) -> None:
    chain = Chain.connect(anvil.url, kind="anvil")
    d: Deployment = deploy(chain)
    keys_dir = tmp_path / "keys"
    write_all_keys(keys_dir, d)  # every instance holds both departments' keys
    new_key("master", tmp_path / "master.key", CHEAP_UNLOCK)
    deployment_file = write_deployment_file(tmp_path / "deployment.json", d, anvil.url)
    store = Store(postgres_url)
    issued = TokenStore(store)
    tokens = {
        f"{dep}:{role}": issued.issue(dep, role).token
        for dep in (HRSS, MARKET)
        for role in ("registrar", "verifier")
    }
    tokens["feed"] = issued.issue("FEED", "feed", scope="all").token
    common = ["--chain", anvil.url, "--store", postgres_url, "--deployment",
              str(deployment_file), "--master-key-file", str(tmp_path / "master.key")]  # fmt: skip
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("COMMITLEDGER_")},
        "COMMITLEDGER_KEY_PASSPHRASE": TEST_PASSPHRASE,  # write_all_keys's keystores
        "COMMITLEDGER_KEYS_DIR": str(keys_dir),
        "COMMITLEDGER_ANCHOR_MAX_AGE": "0.2",
        "COMMITLEDGER_LEASE_TTL_SECONDS": str(TTL_S),
        "COMMITLEDGER_LEASE_POLL_SECONDS": str(POLL_S),
        "COMMITLEDGER_RATE_LIMIT_BURST": "100000",
        "COMMITLEDGER_RATE_LIMIT_PER_SECOND": "100000",
        # A gateway that answers nothing: only the notices' lease matters here.
        "COMMITLEDGER_NOTICE_GATEWAYS": json.dumps({HRSS: "http://127.0.0.1:9/notices"}),
    }
    instances = [Instance(f"i{n}", tmp_path / f"i{n}", common, env) for n in range(3)]
    applicant = SigningKey.generate("ed25519")
    documents = {
        department: [sign_commitment(doc, applicant) for doc in sample_commitments(
            40, seed=seed, department=department)]
        for department, seed in ((HRSS, 11), (MARKET, 12))
    }  # fmt: skip
    load = Load(instances, tokens, documents)
    takeovers: list[dict[str, Any]] = []
    try:
        for instance in instances:
            instance.start()
        until(lambda: all(i.ready() for i in instances), "three instances ready")
        until(lambda: set(LEASES) <= set(holders(store)), "every lease held")
        workers = [threading.Thread(target=load.run, args=(w,)) for w in range(WORKERS)]
        for worker in workers:
            worker.start()
        until(lambda: len(load.anchored) >= 4, "some commitments anchored under load")
        kills = 0
        # The holder of each lease not yet taken over is killed in turn (one instance may
        # hold several: all of them change hands then), and at least twice in all, so a
        # holder that took over is killed too.
        while kills < MIN_KILLS or not set(LEASES) <= {t["lease"] for t in takeovers}:
            done = {t["lease"] for t in takeovers}
            lease = next((name for name in LEASES if name not in done), LEASES[0])
            held = holders(store)
            holder, _ = held[lease]
            # Another instance is up to take over: the time measured is a take-over's, not
            # a start-up's (the one killed last may still be starting).
            others = [i for i in instances if i.alive() and i.holder != holder]
            until(lambda others=others: any(i.ready() for i in others), "another instance up")
            [victim] = [i for i in instances if i.alive() and i.holder == holder]
            lost = {name: token for name, (who, token) in held.items() if who == holder}
            killed_at = time.monotonic()
            victim.kill()
            for name, token in lost.items():

                def taken(name: str = name, token: int = token, holder: str = holder) -> bool:
                    now = holders(store).get(name)
                    return now is not None and now[0] != holder and now[1] > token

                until(taken, f"{name} taken over from {holder}", TAKEOVER_DEADLINE_S)
                takeovers.append(
                    {"lease": name, "killed": holder, "by": holders(store)[name][0],
                     "seconds": round(time.monotonic() - killed_at, 3)}
                )  # fmt: skip
            victim.start()  # restarted under a new pid; it asks for every lease again
            kills += 1
        load.stop.set()
        for worker in workers:
            worker.join(DEADLINE_S)
            assert not worker.is_alive(), "a load worker is stuck"
        until(lambda: all(i.ready() for i in instances), "three instances ready again")
        load.stop.clear()  # and anchoring goes on after the kills: one more of each, waited for
        for department, document in ((HRSS, documents[HRSS][-1]), (MARKET, documents[MARKET][-1])):
            before = len(load.anchored)
            load.submit(department, document, wait=True)
            assert len(load.anchored) == before + 1
        until(lambda: settled(store), "every acknowledged commitment anchored")
        ledger = LedgerContract(chain, d.ledger.address)
        acknowledged = [to_hash32(h) for h in load.acknowledged]
        check_exactly_once(store, ledger, acknowledged)
        moves = Counter(
            (bytes(e["args"]["commitment"]), int(e["args"]["to"]))
            for e in ledger.events("OutcomeRecorded")
        )
        assert moves and max(moves.values()) == 1, "an outcome recorded twice"
        # The feed read to its end after the load: gapless from 1.
        feed_store_full: list[int] = []
        after: str | None = None
        feed_headers = {"Authorization": f"Bearer {tokens['feed']}"}
        while True:
            params: dict[str, Any] = {"limit": 200, **({"after": after} if after else {})}
            page = httpx.get(f"{instances[0].base}/v1/feed", params=params,
                             headers=feed_headers, timeout=30).json()  # fmt: skip
            if not page["records"]:
                break
            feed_store_full += [r["sequence"] for r in page["records"]]
            after = page["next"]
        assert feed_store_full == list(range(1, len(feed_store_full) + 1))
        for seen in load.feed_sequences.values():  # pulled under load: a gapless prefix
            assert seen == feed_store_full[: len(seen)]
        assert load.nonce_errors == [], load.nonce_errors
        assert load.server_errors == [], load.server_errors
        assert {t["lease"] for t in takeovers} == set(LEASES)
        # Each new instance answers any request: readiness shows what it holds.
        operator = issued.issue("OPS", "operator").token
        for instance in instances:
            ready = httpx.get(f"{instance.base}/readyz",
                              headers={"Authorization": f"Bearer {operator}"}).json()  # fmt: skip
            assert ready["leases"]["instance"] == instance.holder
            assert set(ready["leases"]["wanted"]) == set(LEASES)
        held_now = holders(store)
        assert set(held_now) == set(LEASES)
        assert {h for h, _ in held_now.values()} <= {i.holder for i in instances}
    finally:
        load.stop.set()
        for instance in instances:
            instance.stop()
        store.close()
    figures = {
        "ttl_s": TTL_S,
        "poll_s": POLL_S,
        "takeovers": takeovers,
        "acknowledged": len(load.acknowledged),
        "outcomes": sum(moves.values()),
        "feed_records": len(feed_store_full),
        "answers": dict(load.answers),
    }
    (tmp_path / "leases.json").write_text(json.dumps(figures, indent=2) + "\n")
    print("take-over times (s):", json.dumps(takeovers))


def a_payment(to: str, chain_id: int) -> TxParams:
    return {"to": to, "value": Wei(1), "gas": 21_000, "gasPrice": Wei(10**10), "chainId": chain_id}


def test_a_nonce_taken_by_another_process_is_recovered_inside_the_client(
    anvil: AnvilNode,
) -> None:
    account = Account.create()
    first = Chain.connect(anvil.url, kind="anvil")
    second = Chain.connect(anvil.url, kind="anvil")  # another process with the same key
    first.fund(account.address)
    payment = a_payment(account.address, first.chain_id)
    first.wait(first.send(account, payment))  # its next nonce is cached now: 1
    second.wait(second.send(account, payment))  # nonce 1 taken by the other
    recorded: list[bytes] = []
    sent = first.send_recorded(account, payment, record=recorded.append)
    assert first.wait(sent)["status"] == 1
    assert len(recorded) == 2 and recorded[-1] == sent  # signed again, recorded again
    assert first.w3.eth.get_transaction(HexBytes(sent))["nonce"] == 2


def test_shared_accounts_read_each_nonce_from_the_node_under_the_lock(anvil: AnvilNode) -> None:
    account = Account.create()
    held: list[str] = []
    first = Chain.connect(anvil.url, kind="anvil")
    second = Chain.connect(anvil.url, kind="anvil")
    first.fund(account.address)

    class Lock:
        def __init__(self, address: str) -> None:
            self.address = address

        def __enter__(self) -> None:
            held.append(self.address)

        def __exit__(self, *exc: object) -> None:
            return None

    for chain in (first, second):
        chain.share_accounts(Lock)
    payment = a_payment(account.address, first.chain_id)
    recorded: list[bytes] = []
    for chain in (first, second, first):
        chain.wait(chain.send_recorded(account, payment, record=recorded.append))
    assert len(recorded) == 3  # no nonce taken: each read from the node, none resent
    assert held == [account.address] * 3
    nonces = [first.w3.eth.get_transaction(HexBytes(h))["nonce"] for h in recorded]
    assert nonces == [0, 1, 2]


def test_a_departments_long_action_holds_up_neither_another_departments_anchoring_nor_its_own(
    tmp_path: Path, anvil: AnvilNode, postgres_url: str
) -> None:
    # A verification run holds its department's lock for its whole length; anchoring holds
    # no lock of the service on a node (the chain client locks each account while it sends).
    chain = Chain.connect(anvil.url, kind="anvil")
    d = deploy(chain)
    keys_dir = tmp_path / "keys"
    write_all_keys(keys_dir, d)
    new_key("master", tmp_path / "master.key", CHEAP_UNLOCK)
    settings = Settings(
        data_dir=tmp_path,
        store_url=postgres_url,
        deployment_file=write_deployment_file(tmp_path / "deployment.json", d, anvil.url),
        master_key_file=tmp_path / "master.key",
        keys_dir=keys_dir,
        anchor_max_age=0.05,
    )
    context = ServiceContext.open(settings, chain=chain)
    assert context.intake is not None
    anchoring = BackgroundAnchoring(context, context.keys.registrars())
    applicant = SigningKey.generate("ed25519")
    acks = [
        context.intake.submit(sign_commitment(doc, applicant))
        for department, seed in ((HRSS, 21), (MARKET, 22))
        for doc in sample_commitments(2, seed=seed, department=department)
    ]
    held, release = threading.Event(), threading.Event()

    def a_long_run() -> None:
        with department_actions(context, HRSS):
            held.set()
            release.wait()

    runner = threading.Thread(target=a_long_run)
    runner.start()
    try:
        assert held.wait(30)
        stepper = threading.Thread(
            target=lambda: until(lambda: bool(anchoring.step()) and settled(context.store),
                                 "both departments anchored")
        )  # fmt: skip
        stepper.start()
        stepper.join(DEADLINE_S + 5)  # a deadline for a step that waits on a lock
        assert not stepper.is_alive(), "anchoring waited for a department's action"
    finally:
        release.set()
        runner.join()
    ledger = context.chain.ledger()
    assert ledger is not None
    check_exactly_once(context.store, ledger, [ack.hash for ack in acks])
    context.leases.stop()
    context.close()


def settled(store: Store) -> bool:
    status = store.status()
    return status.pending == 0 and status.batches_in_flight == 0

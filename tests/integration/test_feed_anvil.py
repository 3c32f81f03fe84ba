"""The credit feed on a real anvil node: two departments' verification runs and two
followers at once give one gapless feed; `feed run` and `feed check` from the command line,
and a record altered in the store is reported."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update
from support.service_keys import write_master_key, write_report_key
from support.verifier_world import DAY, HRSS, SAMR, World, open_world
from typer.testing import CliRunner, Result

from api.cli import app as cli_app
from api.demo import sample_commitments
from api.service import BackgroundFeed, ServiceContext, Settings
from ledger import MASTER_KEY_ENV, AnvilNode, Chain, LedgerContract, SigningKey, Store
from verifier.engine import EngineConfig
from verifier.feed import FeedFollower, FeedStore, StepResult, check_feed, feed_records

pytestmark = pytest.mark.integration

SMALL = EngineConfig(chunk=10, outcomes_per_transaction=5)  # many transactions, interleaved


@pytest.fixture
def world(tmp_path: Path, anvil: AnvilNode) -> Iterator[World]:
    with open_world(Chain.connect(anvil.url, kind="anvil"), tmp_path, config=SMALL) as opened:
        yield opened


def own_ledger(world: World) -> LedgerContract:
    """The contract through a connection of its own (as another process has)."""
    assert world.chain.url is not None
    return LedgerContract(Chain.connect(world.chain.url, kind="anvil"), world.ledger.address)


def test_two_verification_runs_and_two_followers_at_once_give_one_gapless_feed(
    world: World,
) -> None:
    world.commit(*sample_commitments(40, seed=11, department=HRSS))
    world.commit(*sample_commitments(30, seed=12, department=SAMR))
    keys = {HRSS: SigningKey.generate("ed25519"), SAMR: SigningKey.generate("ed25519")}
    stores = [Store(f"sqlite:///{world.db_path}") for _ in range(2)]
    followers = [
        FeedFollower(
            store, own_ledger(world), world.catalog, world.vault, keys.get, confirmations=1
        )
        for store in stores
    ]
    market = world.new_engine(SAMR, ledger=own_ledger(world), config=SMALL)
    runs_done = threading.Event()
    errors: list[BaseException] = []

    def guarded(action: object) -> None:
        try:
            action()  # type: ignore[operator]
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    def follow(follower: FeedFollower) -> None:
        while not runs_done.is_set():
            follower.step()
            runs_done.wait(0.02)  # as the service's task does between rounds, shorter
        follower.step()

    runs = [
        threading.Thread(target=guarded, args=(lambda: world.engine.run(DAY),)),
        threading.Thread(target=guarded, args=(lambda: market.run(DAY),)),
    ]
    follows = [threading.Thread(target=guarded, args=(lambda f=f: follow(f),)) for f in followers]
    for thread in (*runs, *follows):
        thread.start()
    for thread in runs:
        thread.join(timeout=180)
    world.chain.w3.provider.make_request("evm_mine", [])  # the last outcome gets its block
    runs_done.set()
    for thread in follows:
        thread.join(timeout=180)
    assert not errors, errors
    followers[0].step()

    feed = FeedStore(world.store)
    events = world.ledger.events("OutcomeRecorded")
    assert len(events) == 70
    assert feed.sequences() == list(range(1, 71))  # no gap, no duplicate
    served = [json.loads(body) for _, body in feed.bodies()]
    assert len({r["id"] for r in served}) == 70
    assert {r["department_code"] for r in served} == {HRSS, SAMR}
    # Chain order: (block, log index) ascending along the sequence.
    where = [(r["evidence"]["block"], r["evidence"]["log_index"]) for r in served]
    assert where == sorted(where)

    def public_key(department: str) -> str | None:
        return keys[department].public_key_b64()

    report = check_feed(feed, world.ledger, world.catalog, public_key, confirmations=1)
    assert report.ok, report.problems
    for follower in followers:
        follower.close()
    for store in stores:
        store.close()


def cli(*args: object) -> Result:
    return CliRunner().invoke(
        cli_app, [str(a) for a in args], env={MASTER_KEY_ENV: None, "COMMITLEDGER_STORE": None}
    )


def test_feed_run_and_check_from_the_command_line_find_an_altered_record(
    world: World, tmp_path: Path
) -> None:
    world.commit(*sample_commitments(12, seed=13, department=HRSS))
    world.engine.run(DAY)
    keys_dir = tmp_path / "keys"
    write_report_key(keys_dir / HRSS / "report.pem")  # encrypted: the suite's passphrase
    master = tmp_path / "master.key"
    write_master_key(master, world.vault)
    deployment = tmp_path / "deployment.json"
    deployment.write_text(
        json.dumps(
            {
                "rpc": world.chain.url,
                "chain_id": world.chain.chain_id,
                "contract": world.ledger.address,
                "department": HRSS,
            }
        )
    )
    common = ["--store", f"sqlite:///{world.db_path}", "--deployment", deployment]
    keys = ["--keys-dir", keys_dir]

    ran = cli("feed", "run", "--until-idle", *common, *keys, "--master-key-file", master, "--json")
    assert ran.exit_code == 0, ran.stdout + ran.stderr
    assert json.loads(ran.stdout)["appended"] == 12 == json.loads(ran.stdout)["head"]
    checked = cli("feed", "check", *common, *keys, "--json")
    assert checked.exit_code == 0, checked.stdout
    assert json.loads(checked.stdout)["served"] == 12

    with world.store.engine.begin() as connection:
        body = json.loads(
            connection.execute(feed_records.select().where(feed_records.c.seq == 5)).one().body
        )
        body["evidence"]["block"] += 1
        connection.execute(
            update(feed_records).where(feed_records.c.seq == 5).values(body=json.dumps(body))
        )
    checked = cli("feed", "check", *common, *keys, "--json")
    assert checked.exit_code == 1, checked.stdout
    problems = json.loads(checked.stdout)["problems"]
    assert {(p["kind"], p["sequence"]) for p in problems} == {
        ("altered", 5),
        ("bad_signature", 5),
    }


def test_a_served_record_whose_event_a_reorg_removed_stays_and_is_reported(
    world: World,
) -> None:
    world.commit(*sample_commitments(4, seed=14, department=HRSS))
    provider = world.chain.w3.provider
    before_outcomes = provider.make_request("evm_snapshot", [])["result"]
    world.engine.run(DAY)
    keys = {HRSS: SigningKey.generate("ed25519")}
    follower = FeedFollower(world.store, world.ledger, world.catalog, world.vault, keys.get)
    assert follower.step().appended == 4
    served = follower.feed.sequences()

    # A reorg deeper than the (zero) confirmations: the outcomes' blocks are replaced.
    assert provider.make_request("evm_revert", [before_outcomes])["result"] is True
    for _ in range(6):
        provider.make_request("evm_mine", [])  # other blocks in their place
    follower.step()

    assert world.ledger.events("OutcomeRecorded") == []
    assert world.store.events("OutcomeRecorded") == []  # the index was rewound
    assert follower.feed.sequences() == served  # the feed was not: nothing vanishes
    report = check_feed(
        follower.feed, world.ledger, world.catalog, lambda d: keys[d].public_key_b64()
    )
    assert [p.kind for p in report.problems] == ["not_on_chain"] * 4

    # Changes in the replacing chain join the feed after them, with new numbers.
    world.chain.forget_nonces()  # the accounts' nonces went back with the blocks
    # Serials after the first four: the store kept those (the chain alone went back), and a
    # commitment code is its department's once.
    world.commit(*list(sample_commitments(6, seed=15, department=HRSS))[4:])
    world.engine.run(DAY)
    assert follower.step().appended == 2
    assert follower.feed.sequences() == [*served, 5, 6]
    report = check_feed(
        follower.feed, world.ledger, world.catalog, lambda d: keys[d].public_key_b64()
    )
    assert (
        sorted(p.kind for p in report.problems if p.kind != "out_of_order") == ["not_on_chain"] * 4
    )
    follower.close()


def test_the_services_feed_step_on_a_node_does_not_wait_for_the_chain_write_lock(
    tmp_path: Path, anvil: AnvilNode
) -> None:
    # The follower only reads the chain; anchoring and department actions hold the write
    # lock while they send, and on a node neither side needs to wait for the other.
    chain = Chain.connect(anvil.url, kind="anvil")
    deployment = tmp_path / "deployment.json"
    deployment.write_text(
        json.dumps({"rpc": anvil.url, "chain_id": chain.chain_id, "contract": "0x" + "11" * 20})
    )
    settings = Settings(
        data_dir=tmp_path,
        store_url=f"sqlite:///{tmp_path / 'served.db'}",
        deployment_file=deployment,
        anchoring=False,
    )
    context = ServiceContext.open(settings, chain=chain)
    feed = BackgroundFeed(context)
    held, release = threading.Event(), threading.Event()

    def hold_the_write_lock() -> None:
        with context.chain.write_lock:
            held.set()
            release.wait()

    holder = threading.Thread(target=hold_the_write_lock)
    holder.start()
    results: list[StepResult] = []
    try:
        assert held.wait(30)
        stepper = threading.Thread(target=lambda: results.append(feed.step()))
        stepper.start()
        stepper.join(30)  # a deadline for a step that waits on the lock, not a timing
        assert not stepper.is_alive(), "the feed step waited for the chain's write lock"
    finally:
        release.set()
        holder.join()
    assert results == [StepResult(0, 0, 0, None, 0)]
    context.close()

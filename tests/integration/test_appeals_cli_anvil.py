"""`commitledger objection file|decide|list` and `commitledger repair apply|decide|list` on a
real anvil node: the department's own only, refusals with the command line's exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from support.appeals import published
from support.deployment import HRSS, HRSS_ID, MARKET, deploy
from support.service_keys import write_all_keys
from support.service_world import ServiceWorld, open_service
from support.verify_cli import cli, explain

from ledger import MASTER_KEY_ENV, AnvilNode, Chain, Status
from verifier import add_months, earliest_repair

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("anvil_binary")]

TODAY = date.today()  # the command line's day: the records are published on it


@pytest.fixture
def world(tmp_path: Path, anvil: AnvilNode) -> Iterator[ServiceWorld]:
    deployment = deploy(Chain.connect(anvil.url, kind="anvil"))
    write_all_keys(tmp_path / "keys", deployment)
    opened = open_service(
        tmp_path, deployment, today=TODAY, rpc=anvil.url, feed=False, anchoring=False
    )
    yield opened
    opened.context.close()


def run(world: ServiceWorld, *args: object) -> Any:
    """`commitledger ARGS --data-dir <the world's> --json`: (exit code, its JSON)."""
    result = cli(
        *args,
        "--data-dir",
        world.tmp_path,
        "--json",
        env={MASTER_KEY_ENV: "0x" + world.vault.master_key.hex()},
    )
    assert result.stdout.strip(), explain(result)
    return result.exit_code, json.loads(result.stdout)


def test_an_objection_filed_listed_and_upheld_from_the_command_line(world: ServiceWorld) -> None:
    digest, record = published(world)
    code, filed = run(
        world, "objection", "file", record.id, "--department", HRSS,
        "--reason", "身份被冒用", "--evidence", "公安机关证明",
    )  # fmt: skip
    assert code == 0, filed
    appeal_id = filed["appeal"]["id"]
    assert filed["appeal"]["state"] == "open"

    code, other = run(world, "objection", "list", "--department", MARKET)
    assert (code, other["appeals"]) == (0, [])
    code, refused = run(
        world, "objection", "decide", appeal_id, "--department", MARKET,
        "--outcome", "upheld", "--reasons", "异议成立",
    )  # fmt: skip
    assert code == 1 and refused["error"]["type"] == "other-department"
    code, again = run(
        world, "objection", "file", record.id, "--department", HRSS, "--reason", "再次异议"
    )
    assert code == 1 and "already has an objection open" in again["error"]["message"]

    code, decided = run(
        world, "objection", "decide", appeal_id, "--department", HRSS,
        "--outcome", "upheld", "--reasons", "异议成立：身份被冒用",
    )  # fmt: skip
    assert code == 0, decided
    assert decided["appeal"]["state"] == "upheld"
    assert world.deployment.ledger.status_of(HRSS_ID, digest).status == Status.CORRECTED
    code, listed = run(world, "objection", "list", "--department", HRSS, "--texts")
    [row] = listed["appeals"]
    assert (row["text"], row["reasons"]) == ("身份被冒用", "异议成立：身份被冒用")


def test_repair_from_the_command_line_refused_early_then_granted(world: ServiceWorld) -> None:
    _, fresh = published(world)
    code, early = run(
        world, "repair", "apply", fresh.id, "--department", HRSS, "--evidence-text", "已纠正"
    )
    assert code == 1
    assert early["error"]["earliest_repair"] == earliest_repair(fresh).isoformat()
    code, blank = run(
        world, "repair", "apply", fresh.id, "--department", HRSS, "--evidence-text", "   "
    )
    assert code == 2, blank

    # A record decided four months ago: its minimum period (three months) has passed.
    old = world.add_breach(decision_date=add_months(TODAY, -4))
    code, filed = run(
        world, "repair", "apply", old.id, "--department", HRSS, "--by", "applicant",
        "--evidence-text", "已补缴并提交证明",
    )  # fmt: skip
    assert code == 0, filed
    assert filed["appeal"]["filed_by"] == "applicant"
    code, decided = run(
        world, "repair", "decide", filed["appeal"]["id"], "--department", HRSS,
        "--outcome", "granted", "--reasons", "已纠正失信行为",
    )  # fmt: skip
    assert code == 0, decided
    stored = world.context.records.breach(old.id)
    assert stored is not None and stored.status == "repaired"
    code, listed = run(world, "repair", "list", "--department", HRSS, "--state", "granted")
    assert [a["record_id"] for a in listed["appeals"]] == [old.id]

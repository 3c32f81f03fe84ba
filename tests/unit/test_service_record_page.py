"""A breach record's own page, /records/{id}: the evidence explained for citizens."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from support.deployment import Deployment
from support.service_world import DAY, ServiceWorld, open_service

from api.service import Settings
from ledger import Applicant, Hash32, hex32, make_uscc
from verifier import BreachEvidence, BreachRecord, default_catalog, make_breach_record


def _open(tmp_path: Path, deployment: Deployment, **settings: str) -> ServiceWorld:
    return open_service(tmp_path, deployment, **settings)


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    opened = _open(
        tmp_path,
        embedded_deployment,
        public_rpc_url="https://rpc.example/",
        explorer_url="https://explorer.example/tx/{tx}",
    )
    yield opened
    opened.context.close()


def _add(
    world: ServiceWorld, block: int | None = None, decided: date = date(2026, 11, 20)
) -> BreachRecord:
    """A record whose evidence is in a block the chain has (the head, unless told)."""
    chain = world.deployment.chain
    digest = Hash32(os.urandom(32))
    record = make_breach_record(
        Applicant(
            kind="organisation",
            name="北京<甲>科技有限公司",
            id_type="uscc",
            id_number=make_uscc("110105", "12345678"),
        ),
        default_catalog().matter("BJ-HRSS-0001"),
        digest,
        facts="承诺内容与核查数据不符",
        decision="撤销审批决定，记入失信记录",
        document_number="京BJ-HRSS承诺〔2026〕000001号",
        decision_date=decided,
        evidence=BreachEvidence(
            chain_id=chain.chain_id,
            contract=world.deployment.ledger.address,
            transaction=hex32(os.urandom(32)),
            block=chain.block_number() if block is None else block,
            commitment_hash=hex32(digest),
        ),
    )
    assert world.context.records.add_breach(record, os.urandom(32))
    return record


def _block_time(world: ServiceWorld, number: int) -> str:
    stamp = world.deployment.chain.w3.eth.get_block(number)["timestamp"]
    return datetime.fromtimestamp(int(stamp), UTC).strftime("%Y-%m-%d %H:%M:%S")


def test_a_record_page_explains_what_when_who_and_where_to_check(world: ServiceWorld) -> None:
    record = _add(world)
    response = world.client.get(f"/records/{record.id}")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<html lang="zh-CN">' in page
    assert "<script" not in page  # works without JavaScript
    assert "北京&lt;甲&gt;科技有限公司" in page and "<甲>" not in page  # escaped
    evidence = record.evidence
    for shown in (
        "What was recorded",
        "北京市人力资源和社会保障局",
        "积分落户申请",
        "When, and by whom",
        f"{_block_time(world, evidence.block)} UTC",
        "Where anyone can check it",
        f'href="https://explorer.example/tx/{evidence.transaction}"',
        "https://rpc.example/",
        f"/v1/audit/commitments/{evidence.commitment_hash}/proof",
        "Objecting, and credit repair",
        record.document_number,
        evidence.transaction,
        evidence.contract,
    ):
        assert shown in page, shown
    assert "<RPC-URL>" not in page and "&lt;RPC-URL&gt;" not in page
    # Every English half says it is English.
    assert '<span lang="en">What was recorded</span>' in page
    assert '<span lang="en">Objecting, and credit repair</span>' in page


def test_without_an_explorer_or_public_node_the_page_says_any_node_of_the_chain(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    world = _open(tmp_path, embedded_deployment)
    record = _add(world, block=10**9)  # a block the node does not have: no time to show
    page = world.client.get(f"/records/{record.id}").text
    assert f"Any node of the chain with id {record.evidence.chain_id}" in page
    assert "explorer" not in page
    assert "the chain&#x27;s node is not answering now" in page
    listed = world.client.get("/").text  # the list's commands name the chain, not <RPC-URL>
    assert f"--rpc &lt;URL-OF-ANY-NODE-OF-CHAIN-{record.evidence.chain_id}&gt;" in listed
    world.context.close()


def test_the_list_links_each_record_to_its_page(world: ServiceWorld) -> None:
    record = _add(world)
    page = world.client.get("/").text
    assert f'href="/records/{record.id}"' in page
    assert world.client.head(f"/records/{record.id}").status_code == 200


def test_an_unknown_or_unlisted_record_is_a_404_page(world: ServiceWorld) -> None:
    response = world.client.get("/records/nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert '<span lang="en">No such record is published</span>' in response.text
    record = _add(world, decided=date(2026, 1, 15))
    world.context.records.update_breach_status(record.id, "repaired", DAY)
    assert world.client.get(f"/records/{record.id}").status_code == 404


def test_narrow_screens_stack_labels_above_values(world: ServiceWorld) -> None:
    css = world.client.get("/assets/lookup.css").text
    narrow = re.search(r"@media \(max-width: 600px\) \{(.*?)\n\}", css, re.S)
    assert narrow is not None
    assert "dl { display: block; }" in narrow.group(1)


@pytest.mark.parametrize(
    "url", ["ftp://x.example/{tx}", "https://x.example/tx/", 'https://x.example/"{tx}']
)
def test_an_explorer_url_is_an_http_template_of_the_transaction(url: str) -> None:
    with pytest.raises(ValidationError, match="explorer_url"):
        Settings(explorer_url=url)

"""The public's routes: the breach list as JSON and the server-rendered lookup page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from html import escape
from pathlib import Path

import pytest
from pydantic import ValidationError
from support.deployment import Deployment
from support.service_world import DAY, ServiceWorld, assert_problem, open_service
from support.verifier_world import open_world

from api.service import Settings
from ledger import Chain, hex32
from verifier import BreachRecord


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    opened = open_service(tmp_path, embedded_deployment)
    yield opened
    opened.context.close()


@pytest.fixture
def listed(world: ServiceWorld) -> dict[str, BreachRecord]:
    """Two listed records and three that the public list must not show."""
    records = {
        "recent": world.add_breach("北京甲科技有限公司", date(2026, 11, 20)),
        "older": world.add_breach("北京乙商贸有限公司", date(2026, 3, 2), "BJ-SAMR-0001"),
        # general severity: published 12 months, so this one ended on 2026-06-01
        "ended": world.add_breach("北京丙有限公司", date(2025, 6, 1)),
        "future": world.add_breach("北京丁有限公司", date(2026, 12, 1)),
        "repaired": world.add_breach("北京戊有限公司", date(2026, 1, 15)),
    }
    world.context.records.update_breach_status(records["repaired"].id, "repaired", DAY)
    return records


# ---------------------------------------------------------------------- the JSON list


def test_the_list_shows_only_records_within_their_publication_period(
    world: ServiceWorld, listed: dict[str, BreachRecord]
) -> None:
    response = world.client.get("/v1/breaches")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["on"] == DAY.isoformat()
    assert body["total"] == 2
    assert [r["id"] for r in body["records"]] == [listed["recent"].id, listed["older"].id]
    assert body["records"][0] == listed["recent"].to_public_json()
    assert body["records"][0]["evidence"]["transaction"] == listed["recent"].evidence.transaction


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"name": "甲科技"}, ["recent"]),
        ({"name": "  "}, ["recent", "older"]),  # blank fields are left out
        ({"matter": "BJ-SAMR-0001"}, ["older"]),
        ({"department": "BJ-SAMR"}, ["older"]),
        ({"department": "BJ-HRSS"}, ["recent"]),
        ({"decided_from": "2026-06-01"}, ["recent"]),
        ({"decided_to": "2026-06-01"}, ["older"]),
        ({"decided_from": "2026-01-01", "decided_to": "2026-12-31"}, ["recent", "older"]),
        ({"name": "丙"}, []),  # ended: not listed whatever the search
    ],
)
def test_the_list_is_searched_by_the_given_fields(
    world: ServiceWorld,
    listed: dict[str, BreachRecord],
    params: dict[str, str],
    expected: list[str],
) -> None:
    body = world.client.get("/v1/breaches", params=params).json()
    assert [r["id"] for r in body["records"]] == [listed[k].id for k in expected]
    assert body["total"] == len(expected)


def test_the_list_is_searched_by_credit_code(
    world: ServiceWorld, listed: dict[str, BreachRecord]
) -> None:
    code = listed["older"].party_code
    body = world.client.get("/v1/breaches", params={"credit_code": code}).json()
    assert [r["id"] for r in body["records"]] == [listed["older"].id]


def test_the_list_is_paged(world: ServiceWorld, listed: dict[str, BreachRecord]) -> None:
    second = world.client.get("/v1/breaches", params={"page": 2, "page_size": 1}).json()
    assert (second["total"], second["page"], second["page_size"]) == (2, 2, 1)
    assert [r["id"] for r in second["records"]] == [listed["older"].id]
    beyond = world.client.get("/v1/breaches", params={"page": 3, "page_size": 1}).json()
    assert beyond["records"] == []


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"page": "0"}, "query.page"),
        ({"page": "x"}, "query.page"),
        ({"page_size": "101"}, "query.page_size"),
        ({"page_size": "0"}, "query.page_size"),
        ({"decided_from": "2026-13-01"}, "query.decided_from"),
        ({"name": "张" * 101}, "query.name"),
    ],
)
def test_bad_search_parameters_are_a_422_problem_that_echoes_nothing(
    world: ServiceWorld, params: dict[str, str], where: str
) -> None:
    response = world.client.get("/v1/breaches", params=params)
    body = assert_problem(response, 422, "invalid-request")
    assert body["detail"].startswith(where)
    assert body["errors"][0]["location"] == where.split(".")
    value = next(iter(params.values()))
    assert len(value) < 3 or value not in response.text


def test_one_record_by_id(world: ServiceWorld, listed: dict[str, BreachRecord]) -> None:
    response = world.client.get(f"/v1/breaches/{listed['recent'].id}")
    assert response.status_code == 200
    assert response.json() == listed["recent"].to_public_json()


@pytest.mark.parametrize("which", ["ended", "future", "repaired"])
def test_a_record_off_the_list_is_a_404_problem(
    world: ServiceWorld, listed: dict[str, BreachRecord], which: str
) -> None:
    assert_problem(world.client.get(f"/v1/breaches/{listed[which].id}"), 404, "not-found")


def test_an_unknown_record_is_a_404_problem(world: ServiceWorld) -> None:
    assert_problem(world.client.get("/v1/breaches/BR-0000000000000000"), 404, "not-found")


# ---------------------------------------------------------------------- the lookup page


def test_the_page_shows_each_record_with_its_on_chain_evidence(
    world: ServiceWorld, listed: dict[str, BreachRecord]
) -> None:
    response = world.client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text.replace('<span lang="en">', "").replace("</span>", "")
    assert "失信记录查询 / Breach record lookup" in page
    assert '<form method="get" action="/"' in page
    assert "<script" not in page  # no script is needed
    record = listed["recent"]
    evidence = record.evidence
    for shown in (
        record.party_name,
        record.party_code,
        evidence.transaction,
        evidence.contract,
        evidence.commitment_hash,
        str(evidence.chain_id),
        "链上证据 / On-chain evidence",
        "交易 / Transaction",
        "如何独立核验 / How to check it yourself",
        "commitledger verify-proof proof.json --rpc",
        f"/v1/audit/commitments/{evidence.commitment_hash}/proof",
        "eth_getTransactionReceipt",
    ):
        assert shown in page, shown
    assert listed["older"].party_name in page
    for hidden in ("ended", "future", "repaired"):
        assert listed[hidden].party_name not in page


def test_the_page_names_the_public_rpc_url_when_configured(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    world = open_service(tmp_path, embedded_deployment, public_rpc_url="https://rpc.example/")
    world.add_breach()
    assert "--rpc https://rpc.example/" in world.client.get("/").text


def test_the_page_names_the_configured_public_url_never_the_host_header(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    world = open_service(
        tmp_path, embedded_deployment, public_base_url="https://ledger.example.org/"
    )
    world.add_breach()
    page = world.client.get("/", headers={"Host": "evil.example"}).text
    assert "curl -s https://ledger.example.org/v1/audit/commitments/0x" in page
    assert "evil.example" not in page


def test_without_a_public_url_the_page_shows_a_placeholder_not_the_host(
    world: ServiceWorld,
) -> None:
    world.add_breach()
    page = world.client.get("/", headers={"Host": "evil.example"}).text
    assert "curl -s &lt;SERVICE-URL&gt;/v1/audit/commitments/0x" in page
    assert "evil.example" not in page


@pytest.mark.parametrize("url", ["ftp://x.example", "https://x.example/?q=1", "https://a b"])
def test_a_public_url_must_be_a_plain_http_url(url: str) -> None:
    with pytest.raises(ValidationError, match="public_base_url"):
        Settings(public_base_url=url)


def test_the_page_escapes_everything_it_shows(world: ServiceWorld) -> None:
    world.add_breach(name="<script>alert('x')</script>有限公司")
    page = world.client.get("/").text
    assert "<script>" not in page
    assert escape("<script>alert('x')</script>有限公司") in page
    searched = world.client.get("/", params={"name": '"><script>alert(1)</script>'}).text
    assert "<script>" not in searched
    assert 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in searched


def test_the_page_searches_and_pages(world: ServiceWorld, listed: dict[str, BreachRecord]) -> None:
    page = world.client.get("/", params={"department": "BJ-SAMR"}).text
    assert listed["older"].party_name in page
    assert listed["recent"].party_name not in page
    assert 'value="BJ-SAMR"' in page
    first = world.client.get("/", params={"page_size": "1"}).text
    assert '<span lang="en">page 1 of 2</span>' in first
    assert 'href="/?page=2&amp;page_size=1"' in first
    none = world.client.get("/", params={"name": "不存在的公司"}).text
    assert '未找到记录 / <span lang="en">No records found</span>' in none


@pytest.mark.parametrize(
    "params",
    [{"decided_from": "yesterday"}, {"page": "0"}, {"page_size": "1000"}, {"name": "x" * 101}],
)
def test_a_bad_search_on_the_page_is_explained_on_the_page(
    world: ServiceWorld, params: dict[str, str]
) -> None:
    response = world.client.get("/", params=params)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert 'class="error"' in response.text
    assert "失信记录查询 / Breach record lookup" in response.text


def test_the_style_sheet_is_served_apart(world: ServiceWorld) -> None:
    response = world.client.get("/assets/lookup.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert '<link rel="stylesheet" href="/assets/lookup.css">' in world.client.get("/").text


# ---------------------------------------------------------------------- a real breach


def test_a_breach_found_by_the_engine_is_listed_with_evidence_on_chain(
    tmp_path: Path, embedded_chain: Chain
) -> None:
    with open_world(embedded_chain, tmp_path) as engine_world:
        digest, _commitment = engine_world.commit_kind("false")
        summary = engine_world.engine.run(DAY)
        assert summary.breaches == []  # proposed and notified (issue #14)
        assert len(engine_world.publish(DAY, summary)) == 1
        service = open_service(tmp_path, engine_world.deployment)  # the same store
        body = service.client.get("/v1/breaches").json()
        assert body["total"] == 1
        [record] = body["records"]
        evidence = record["evidence"]
        assert evidence["commitment_hash"] == hex32(digest)
        assert evidence["contract"] == engine_world.ledger.address
        receipt = embedded_chain.receipt(bytes.fromhex(evidence["transaction"][2:]))
        assert receipt is not None
        assert receipt["status"] == 1
        assert int(receipt["blockNumber"]) == evidence["block"]
        page = service.client.get("/").text
        assert evidence["transaction"] in page
        audit = service.client.get(f"/v1/audit/commitments/{hex32(digest)}").json()
        assert audit["verification_state"] == "breached"
        assert audit["on_chain"]["status"] == "breached"
        service.context.close()

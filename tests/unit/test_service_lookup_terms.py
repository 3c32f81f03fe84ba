"""The public search as people type it: a full name with a full ID, matter and department
names, a reversed date range, a page past the records."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from support.deployment import Deployment
from support.service_world import ServiceWorld, assert_problem, open_service

from api.service import department_code, identity_fingerprints, matter_code
from ledger import Applicant, Hash32, hex32, make_resident_id, make_uscc
from verifier import BreachEvidence, BreachRecord, default_catalog, make_breach_record

RESIDENT_ID = make_resident_id("110101", date(1989, 2, 1), 98)
PERSON = "冯杰霞"


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    opened = open_service(tmp_path, embedded_deployment)
    yield opened
    opened.context.close()


def _add(world: ServiceWorld, applicant: Applicant, matter: str = "BJ-HRSS-0001") -> BreachRecord:
    digest = Hash32(os.urandom(32))
    record = make_breach_record(
        applicant,
        default_catalog().matter(matter),
        digest,
        facts="承诺内容与核查数据不符",
        decision="撤销审批决定，记入失信记录",
        document_number=f"京承诺〔2026〕{os.urandom(3).hex()}号",
        decision_date=date(2026, 11, 20),
        evidence=BreachEvidence(
            chain_id=world.deployment.chain.chain_id,
            contract=world.deployment.ledger.address,
            transaction=hex32(os.urandom(32)),
            block=13,
            commitment_hash=hex32(digest),
        ),
    )
    fingerprint = world.vault.fingerprint(applicant.id_type, applicant.id_number)
    assert world.context.records.add_breach(record, fingerprint)
    return record


@pytest.fixture
def person(world: ServiceWorld) -> BreachRecord:
    applicant = Applicant(kind="person", name=PERSON, id_type="resident_id", id_number=RESIDENT_ID)
    _add(
        world,
        Applicant(
            kind="person",
            name="冯杰",
            id_type="resident_id",
            id_number=make_resident_id("110101", date(1990, 3, 4), 12),
        ),
    )
    return _add(world, applicant)


def _ids(world: ServiceWorld, **params: str) -> list[str]:
    response = world.client.get("/v1/breaches", params=params)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["records"]]


def test_a_full_name_with_a_full_id_finds_the_record_shown_masked(
    world: ServiceWorld, person: BreachRecord
) -> None:
    assert _ids(world, name=PERSON, credit_code=RESIDENT_ID) == [person.id]
    assert _ids(world, credit_code=RESIDENT_ID) == [person.id]
    assert _ids(world, credit_code=RESIDENT_ID.lower()) == [person.id]  # a small x
    assert _ids(world, name="冯杰", credit_code=RESIDENT_ID) == []  # another person's name
    other = make_resident_id("110101", date(1989, 2, 1), 99)
    assert _ids(world, name=PERSON, credit_code=other) == []
    page = world.client.get("/", params={"name": PERSON, "credit_code": RESIDENT_ID})
    assert page.status_code == 200
    assert person.id in page.text
    shown = page.text.split("</form>", 1)[1]  # the form keeps what was typed
    assert RESIDENT_ID not in shown and PERSON not in shown  # shown masked
    assert "冯**" in page.text


def test_a_full_id_is_never_logged(
    world: ServiceWorld, person: BreachRecord, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        assert _ids(world, name=PERSON, credit_code=RESIDENT_ID) == [person.id]
    ours = [r for r in caplog.records if r.name.startswith("commitledger")]
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in ours)
    assert ours and RESIDENT_ID not in logged and PERSON not in logged


def test_a_credit_code_as_shown_still_finds_an_organisation(world: ServiceWorld) -> None:
    code = make_uscc("110105", "77777777")
    found = _add(
        world, Applicant(kind="organisation", name="北京庚有限公司", id_type="uscc", id_number=code)
    )
    assert _ids(world, credit_code=code) == [found.id]
    assert _ids(world, name="北京庚有限公司", credit_code=code) == [found.id]


def test_without_the_master_key_a_full_id_finds_nothing_but_errs_not() -> None:
    assert identity_fingerprints(None, RESIDENT_ID) == ()
    assert identity_fingerprints(None, "1101**********0982") == ()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"matter": "积分落户申请"}, ["hrss"]),
        ({"matter": "积分落户"}, ["hrss"]),  # a part that names one matter
        ({"matter": "food business licence"}, ["samr"]),
        ({"matter": "BJ-SAMR-0001"}, ["samr"]),
        ({"department": "北京市市场监督管理局"}, ["samr"]),
        ({"department": "市场监督"}, ["samr"]),
        ({"department": "BJ-HRSS"}, ["hrss"]),
        ({"matter": "不存在的事项"}, []),
    ],
)
def test_matters_and_departments_are_found_by_name(
    world: ServiceWorld, params: dict[str, str], expected: list[str]
) -> None:
    made = {
        "hrss": world.add_breach("北京甲有限公司"),
        "samr": world.add_breach("北京乙有限公司", date(2026, 11, 19), "BJ-SAMR-0001"),
    }
    assert _ids(world, **params) == [made[k].id for k in expected]
    page = world.client.get("/", params=params)
    assert all(made[k].id in page.text for k in expected)


def test_names_that_fit_several_are_left_as_typed() -> None:
    assert matter_code("落户") == "落户"  # two matters
    assert department_code("北京市") == "北京市"
    assert matter_code(None) is None and department_code(None) is None


def test_a_reversed_date_range_is_a_clear_error(world: ServiceWorld) -> None:
    params = {"decided_from": "2026-12-01", "decided_to": "2026-01-01"}
    response = world.client.get("/v1/breaches", params=params)
    assert_problem(response, 422, "invalid-request")
    assert "decided_from" in response.json()["detail"]
    page = world.client.get("/", params=params)
    assert page.status_code == 400
    assert "The start date is after the end date" in page.text


def test_a_page_past_the_records_says_how_many_there_are(world: ServiceWorld) -> None:
    for n in range(3):
        world.add_breach(f"北京第{n}有限公司")
    for page_number in ("2", "999"):
        page = world.client.get("/", params={"page": page_number})
        assert page.status_code == 400
        assert f"No records on page {page_number}; there are 3" in page.text
        assert "Only the first" not in page.text

"""A corrected record's page and the feed's `admin_approval`, on the embedded chain.

A department's own correction (an objection upheld) shows on the record's page as corrected
on chain by the department, without the party and without any approvers; the feed's optional
`admin_approval` reads back and signs only when present (older records keep their bytes),
and the served schema accepts it on a correction only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import jsonschema_rs
import pytest
from support.appeals import published
from support.deployment import HRSS, Deployment
from support.service_keys import write_all_keys
from support.service_world import ServiceWorld, open_service

from api.service.correction_page import CorrectionOnChain, render_correction_page
from api.service.engines import department_actions
from ledger import SigningKey, Status, department_id
from verifier.feed import (
    AdminApproval,
    Details,
    FeedRecord,
    chain_facts,
    department_codes,
    record_schema,
    sign_record,
    verify_record,
)

OWNERS = ("0x" + "1a" * 20, "0x" + "2b" * 20)


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    write_all_keys(tmp_path / "keys", embedded_deployment)
    opened = open_service(tmp_path, embedded_deployment, feed=False, anchoring=False)
    yield opened
    opened.context.close()


def test_a_department_s_own_correction_shows_as_corrected_without_the_party(
    world: ServiceWorld,
) -> None:
    digest, record = published(world)
    with department_actions(world.context, HRSS) as actions:
        actions.annul(record.id, world.context.today(), "objection upheld")
    assert world.deployment.ledger.status_of(department_id(HRSS), digest).status == (
        Status.CORRECTED
    )
    page = world.client.get(f"/records/{record.id}")
    assert page.status_code == 404  # no such record is published
    assert "Record corrected" in page.text
    assert "recorded the correction on the blockchain" in page.text
    assert 'class="approvers"' not in page.text  # no Safe: nobody else approved it
    assert record.party_name not in page.text
    assert record.party_code not in page.text
    assert world.client.get("/records/unknown").status_code == 404


def test_the_page_names_the_safe_and_its_approvers_escaped(world: ServiceWorld) -> None:
    _, record = published(world)
    corrected = replace(record, status="corrected")
    html = render_correction_page(
        corrected, CorrectionOnChain("0x" + "ab" * 32, 9, None, "0x" + "5a" * 20, OWNERS)
    )
    for owner in OWNERS:
        assert f"<li><code>{owner}</code></li>" in html
    assert "/v1/admin/acts?transaction=0x" + "ab" * 32 in html
    assert record.party_name not in html
    assert "<script" not in html


def _correction(approval: AdminApproval | None, to: Status = Status.CORRECTED) -> FeedRecord:
    facts = chain_facts(
        chain_id=31337,
        contract="0x" + "11" * 20,
        transaction="0x" + "22" * 32,
        block=7,
        log_index=0,
        block_timestamp=1_790_000_000,
        args={
            "commitment": "0x" + "33" * 32,
            "department": department_id(HRSS),
            "evidence": "0x" + "44" * 32,
            "from": int(Status.BREACHED),
            "to": int(to),
        },
        departments=department_codes([HRSS]),
        admin_approval=approval,
    )
    return FeedRecord(1, facts, Details(determining_unit="北京市人力资源和社会保障局"))


def test_admin_approval_is_optional_signed_and_only_on_a_correction() -> None:
    key = SigningKey.generate("ed25519")
    validator = jsonschema_rs.Draft202012Validator(record_schema())
    approval = AdminApproval("0x" + "5a" * 20, "0x" + "66" * 32, OWNERS)
    with_it = sign_record(_correction(approval), key)
    body = with_it.to_json_obj()
    assert body["admin_approval"]["approved_by"] == list(OWNERS)
    back = FeedRecord.from_json_obj(json.loads(with_it.to_json()))
    assert back == with_it
    verify_record(back, key.public_key_b64())
    altered = json.loads(with_it.to_json())
    altered["admin_approval"]["approved_by"] = [OWNERS[0]]
    with pytest.raises(ValueError, match="does not verify"):
        verify_record(FeedRecord.from_json_obj(altered), key.public_key_b64())

    without = sign_record(_correction(None), key)
    assert "admin_approval" not in without.to_json_obj()  # an older record's bytes, unchanged
    assert not list(validator.iter_errors(without.to_json_obj()))
    assert not list(validator.iter_errors(body))
    repair = sign_record(_correction(approval, Status.REPAIRED), key).to_json_obj()
    assert list(validator.iter_errors(repair))  # approvals belong to corrections only

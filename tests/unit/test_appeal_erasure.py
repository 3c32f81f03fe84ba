"""Erasing a commitment's personal data destroys the texts written about its records too:
the objections' and repair applications' reasons and evidence, and the decisions' reasons."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from support.deployment import HRSS, Deployment
from support.service_keys import write_all_keys
from support.service_world import ServiceWorld, open_service
from support.verify_cli import cli, explain

from api.service import appeal_records, apply_for_repair, decide_repair
from ledger import ErasedError, hex32
from verifier import add_months

TODAY = date(2026, 11, 27)


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    write_all_keys(tmp_path / "keys", embedded_deployment)
    opened = open_service(tmp_path, embedded_deployment, today=TODAY, feed=False)
    yield opened
    opened.context.close()


def test_erasure_destroys_the_appeal_texts_and_keeps_the_rest(world: ServiceWorld) -> None:
    digest = world.submit(world.signed())
    record = world.add_breach(decision_date=add_months(TODAY, -4), commitment=digest)
    other = world.add_breach(decision_date=add_months(TODAY, -4))
    application = apply_for_repair(world.context, record.id, "已补缴并提交证明")
    kept = apply_for_repair(world.context, other.id, "另一位申请人的证明")
    decided = decide_repair(
        world.context, application.id, "granted", department=HRSS,
        decided_by="BJ-HRSS verifier", reasons="已纠正失信行为",
    )  # fmt: skip
    assert decided.state == "granted"
    appeals = appeal_records(world.context, sealing=True)
    assert appeals.texts(application.id).reasons == "已纠正失信行为"

    result = cli("erase", hex32(digest), "--store", world.settings.store_url, "--json")
    assert result.exit_code == 0, explain(result)
    with pytest.raises(ErasedError):
        appeals.texts(application.id)
    assert appeals.get(application.id) == decided  # dates, state, who decided: kept
    assert appeals.texts(kept.id).text == "另一位申请人的证明"  # another's: untouched

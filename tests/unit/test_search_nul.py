"""A NUL in a search term is removed, never a 500: no published name holds one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.breach_records import ON, breach, company, fingerprint
from support.deployment import Deployment
from support.service_world import ServiceWorld, open_service

from ledger import Store
from verifier.records import VerifierRecords


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    opened = open_service(tmp_path, embedded_deployment)
    yield opened
    opened.context.close()


def test_a_nul_in_a_term_is_removed_before_searching(store: Store) -> None:
    records = VerifierRecords(store)
    records.add_breach(breach(1, company("北京恒达科技有限公司")), fingerprint(1))
    for term in ["恒达\x00科技", "恒达科技\x00", "\x00恒达科技"]:
        found = records.search_breaches(ON, name=term, credit_code=None).records
        assert [r.party_name for r in found] == ["北京恒达科技有限公司"], repr(term)
    coded = records.search_breaches(ON, credit_code="\x00nothing").records
    assert coded == []


@pytest.mark.parametrize("path", ["/v1/breaches?name=ab%00cd", "/?name=abc%00", "/?name=%00"])
def test_a_nul_in_a_query_is_not_a_server_error(world: ServiceWorld, path: str) -> None:
    world.add_breach()
    response = world.client.get(path)
    assert response.status_code == 200, response.text

"""On a managed anvil or the embedded chain, `/readyz`, the lookup page and each record's
page say that it is a development chain whose history any local process can rewrite; on a
chain URL they do not."""

from __future__ import annotations

from html import escape
from pathlib import Path

import pytest
from support.deployment import Deployment
from support.service_world import ServiceWorld, open_service

from api.service.dev_chain import WARNING_EN, WARNING_ZH


def _operator(world: ServiceWorld) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.context.tokens.issue('OPERATOR', 'operator').token}"}


@pytest.mark.parametrize("chain", ["anvil", "embedded"])
def test_a_development_chain_is_named_on_readyz_and_on_the_page(
    tmp_path: Path, embedded_deployment: Deployment, chain: str
) -> None:
    world = open_service(tmp_path, embedded_deployment, chain=chain)
    try:
        public = world.client.get("/readyz")
        assert public.status_code == 200, public.text
        assert public.json()["development_chain"] == WARNING_EN
        full = world.client.get("/readyz", headers=_operator(world)).json()
        assert full["development_chain"] == WARNING_EN
        assert full["reconciliation"] == {"taken_up": 0, "conflicts": 0}
        page = world.client.get("/").text
        assert WARNING_ZH in page
        assert escape(WARNING_EN) in page
        assert 'class="dev-chain"' in page
        record = world.client.get(f"/records/{world.add_breach().id}").text
        assert WARNING_ZH in record
        assert escape(WARNING_EN) in record
    finally:
        world.context.close()


def test_a_chain_given_by_url_carries_no_development_warning(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    # The embedded chain answers, but the settings name a node by URL, as a real service's do.
    world = open_service(tmp_path, embedded_deployment, chain="https://node.example.org")
    try:
        public = world.client.get("/readyz")
        assert public.status_code == 200, public.text
        assert "development_chain" not in public.json()
        page = world.client.get("/").text
        assert WARNING_ZH not in page
        assert 'class="dev-chain"' not in page
        record = world.client.get(f"/records/{world.add_breach().id}")
        assert record.status_code == 200
        assert WARNING_ZH not in record.text
    finally:
        world.context.close()

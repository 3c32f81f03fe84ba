"""What `serve` sets up before it serves: the chain (embedded here; the managed anvil in
tests/integration/test_serve_anvil.py), the deployment and roles, keys, demo data."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from eth_account import Account
from pydantic import ValidationError
from support.deployment import HRSS, MARKET
from support.service_keys import write_department_keys

from api.demo import (
    DEMO_TOKENS_FILE,
    demo_refusal,
    demo_tokens,
    load_demo,
    planted,
    prepare_keys,
    sample_commitments,
)
from api.errors import DemoError, MissingKeyError
from api.managed_chain import bootstrap_deployment, served_chain
from api.service import DepartmentKeys, Settings, TokenStore
from ledger import (
    REGISTRAR_ROLE,
    VERIFIER_ROLE,
    Chain,
    ChainError,
    LedgerContract,
    Store,
    department_id,
)


def settings_for(tmp_path: Path, **extra: object) -> Settings:
    return Settings(data_dir=tmp_path, **extra)  # type: ignore[arg-type]


def test_the_embedded_chain_is_deployed_afresh_with_roles_for_departments_with_keys(
    tmp_path: Path,
) -> None:
    registrar, verifier = Account.create(), Account.create()
    write_department_keys(tmp_path / "keys", HRSS, registrar, verifier)
    with served_chain(settings_for(tmp_path, chain="embedded")) as served:
        assert (served.kind, served.deployed_now, served.supervisor) == ("embedded", True, None)
        assert served.chain is not None
        assert served.deployment_file.parent != tmp_path  # not kept: the chain is not either
        contract = LedgerContract(served.chain, _contract(served.deployment_file))
        assert contract.has_role(REGISTRAR_ROLE, registrar.address)
        assert contract.has_role(VERIFIER_ROLE, verifier.address)
        assert contract.department_of(verifier.address) == department_id(HRSS)
    admin = tmp_path / "keys" / "admin.json"
    assert stat.S_IMODE(admin.stat().st_mode) == 0o600
    assert not (tmp_path / "deployment.json").exists()


def _contract(path: Path) -> str:
    import json

    return str(json.loads(path.read_text())["contract"])


def test_an_existing_deployment_gets_roles_for_keys_added_since(tmp_path: Path) -> None:
    chain = Chain.embedded()
    path = tmp_path / "deployment.json"
    settings = settings_for(tmp_path)
    assert bootstrap_deployment(chain, settings, path, "embedded") is True
    market = Account.create()
    write_department_keys(tmp_path / "keys", MARKET, None, market, report=False)
    assert bootstrap_deployment(chain, settings, path, "embedded") is False  # not redeployed
    contract = LedgerContract(chain, _contract(path))
    assert contract.department_of(market.address) == department_id(MARKET)
    assert contract.has_role(VERIFIER_ROLE, market.address)


def test_a_deployment_the_node_does_not_hold_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "deployment.json"
    assert bootstrap_deployment(Chain.embedded(), settings_for(tmp_path), path, "x") is True
    another_chain = Chain.embedded()  # a node that lost its state
    with pytest.raises(ChainError, match="does not hold"):
        bootstrap_deployment(another_chain, settings_for(tmp_path), path, "x")


def test_a_url_chain_is_only_connected_to(tmp_path: Path) -> None:
    with served_chain(settings_for(tmp_path, chain="http://127.0.0.1:1")) as served:
        assert (served.kind, served.rpc_url, served.chain) == ("rpc", "http://127.0.0.1:1", None)
    assert not (tmp_path / "keys").exists()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"chain": "ganache"}, "anvil, embedded or an http(s)"),
        ({"chain": "ftp://node"}, "anvil, embedded or an http(s)"),
        ({"sources_url": "http://127.0.0.1:9"}, "go together"),
        ({"sources_url": "ftp://x", "sources_token_file": "token"}, "must be an http(s) URL"),
    ],
)
def test_bad_serve_settings_say_what_is_allowed(
    tmp_path: Path, extra: dict[str, object], words: str
) -> None:
    with pytest.raises(ValidationError, match=words.replace("(", r"\(").replace(")", r"\)")):
        settings_for(tmp_path, **extra)


def test_department_keys_are_created_0600_and_never_overwritten(tmp_path: Path) -> None:
    keys = DepartmentKeys(tmp_path / "keys", {HRSS})
    keys.create(HRSS)
    for kind in ("registrar", "verifier", "report"):
        path = keys.path(HRSS, kind)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = keys.account(HRSS, "verifier").address
    keys.create(HRSS)  # only what is missing
    assert DepartmentKeys(tmp_path / "keys", {HRSS}).account(HRSS, "verifier").address == before
    with pytest.raises(MissingKeyError, match="not a department"):
        keys.path("../etc", "report")
    assert keys.admin_account(create=False) is None


def test_demo_data_fill_an_empty_directory_once_and_publish_the_false_ones(
    tmp_path: Path,
) -> None:
    count = 300  # two false commitments among them
    expected_false = sum(
        planted(c.applicant.id_number) == "false" for c in sample_commitments(count)
    )
    assert expected_false > 0  # the sample is big enough to show a breach
    settings = prepare_keys(settings_for(tmp_path, chain="embedded"))
    assert settings.master_key_file == tmp_path / "master.key"
    with served_chain(settings) as served:
        settings = settings.model_copy(update={"deployment_file": served.deployment_file})
        facts = load_demo(settings, served.chain, count=count)
        assert (facts.commitments, facts.breaches) == (count, expected_false)
        again = load_demo(settings, served.chain, count=count)
    assert (again.commitments, again.breaches) == (0, 0)
    # A restart prints the tokens it printed before: no new live tokens pile up.
    assert (again.registrar_token, again.verifier_token) == (
        facts.registrar_token,
        facts.verifier_token,
    )
    assert again.tokens_kept and not facts.tokens_kept
    store = Store(settings.resolved_store_url)
    try:
        status = store.status()
        assert (status.anchored, status.pending) == (count, 0)
        tokens = TokenStore(store)
        for token, role in (
            (again.registrar_token, "registrar"),
            (again.verifier_token, "verifier"),
        ):
            principal = tokens.lookup(token)
            assert principal is not None
            assert (principal.department, principal.role) == (facts.department, role)
    finally:
        store.close()


def test_the_demo_tokens_are_kept_while_valid_and_replaced_as_a_pair(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ledger.db'}")
    saved = tmp_path / DEMO_TOKENS_FILE
    try:
        tokens = TokenStore(store)
        (registrar, verifier), kept = demo_tokens(saved, tokens)
        assert not kept
        assert saved.stat().st_mode & 0o777 == 0o600
        assert demo_tokens(saved, tokens) == ((registrar, verifier), True)
        assert len(tokens.listing()) == 2
        tokens.revoke(verifier)
        (new_registrar, new_verifier), kept = demo_tokens(saved, tokens)
        assert not kept
        assert {new_registrar, new_verifier}.isdisjoint({registrar, verifier})
        assert tokens.lookup(registrar) is None  # the old pair is gone, both of it
        live = [t for t in tokens.listing() if t.revoked_at is None]
        assert len(live) == 2
        saved.write_text("not json")
        assert demo_tokens(saved, tokens)[1] is False
    finally:
        store.close()


def test_a_new_data_directory_is_the_owners_only(tmp_path: Path) -> None:
    settings = prepare_keys(settings_for(tmp_path / "data", chain="embedded"))
    assert settings.data_dir.stat().st_mode & 0o777 == 0o700
    assert (settings.data_dir / "master.key").stat().st_mode & 0o777 == 0o600


def test_serve_demo_refuses_a_directory_made_by_deploy_before_writing_anything(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "deployment.json").write_text(
        '{"rpc": "http://127.0.0.1:8545", "chain_id": 31337, "contract": '
        '"0x5FbDB2315678afecb367f032d93F642f64180aa3", "department": "BJ-HRSS"}\n'
    )
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(DemoError, match="not written by the demo's managed chain") as caught:
        prepare_keys(settings_for(folder))
    assert "--data-dir demo-data" in str(caught.value)
    assert sorted(p.name for p in folder.iterdir()) == before  # no master.key, no keys/


def test_serve_demo_refuses_a_store_whose_master_key_is_not_there(tmp_path: Path) -> None:
    Store(f"sqlite:///{tmp_path / 'ledger.db'}").close()
    with pytest.raises(DemoError, match="master key that is not there"):
        prepare_keys(settings_for(tmp_path, chain="embedded"))
    assert not (tmp_path / "master.key").exists()
    assert not (tmp_path / "keys").exists()


def test_serve_demo_accepts_its_own_directory_again(tmp_path: Path) -> None:
    settings = prepare_keys(settings_for(tmp_path, chain="embedded"))
    Store(settings.resolved_store_url).close()
    (tmp_path / "anvil-state.json").write_text("{}")
    (tmp_path / "deployment.json").write_text("{}")
    (tmp_path / "keys" / "admin.json").write_text("{}")
    assert demo_refusal(settings_for(tmp_path)) is None
    (tmp_path / "anvil-state.json").unlink()
    refusal = demo_refusal(settings_for(tmp_path))
    assert refusal is not None and "anvil-state.json) is gone" in refusal

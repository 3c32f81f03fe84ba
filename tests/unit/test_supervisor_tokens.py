"""The supervisor role (reads every department, changes nothing) and a department's own
token management: `TokenStore.list_for`, `revoke(token_id, department)`, `rotate`, the
routes under /v1/tokens and `tokens issue --role supervisor`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts
from support.deployment import HRSS, MARKET, Deployment
from support.service_keys import write_all_keys
from support.service_world import ServiceWorld, assert_problem, open_service, snapshot
from typer.testing import CliRunner, Result

from api.cli import app as cli_app
from api.errors import TokenError
from api.service import SUPERVISOR, Principal, ProblemError, TokenStore
from api.service.deps import get_principal, reader_for, reader_for_any
from api.service.tokens import Role
from ledger import MASTER_KEY_ENV, Store, hex32

RUNNER = CliRunner()
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SUPERVISOR_ONLY: tuple[Role, ...] = ("supervisor",)


def cli(*args: object) -> Result:
    env: dict[str, str | None] = {
        "COLUMNS": "1000",
        MASTER_KEY_ENV: None,
        "COMMITLEDGER_STORE": None,
    }
    return RUNNER.invoke(cli_app, [str(a) for a in args], env=env)


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    write_all_keys(tmp_path / "keys", embedded_deployment)
    opened = open_service(tmp_path, embedded_deployment, feed=False, anchoring=False)
    yield opened
    opened.context.close()


def supervisor_auth(world: ServiceWorld) -> dict[str, str]:
    issued = world.context.tokens.issue(SUPERVISOR, "supervisor")
    return {"Authorization": f"Bearer {issued.token}"}


# ---------------------------------------------------------------------- the role


def test_a_supervisor_token_has_the_supervisor_column_and_no_other(store: Store) -> None:
    tokens = TokenStore(store)
    issued = tokens.issue(SUPERVISOR, "supervisor")
    assert (issued.principal.department, issued.principal.role) == ("SUPERVISOR", "supervisor")
    with pytest.raises(TokenError, match="only it"):
        tokens.issue(HRSS, "supervisor")  # a supervisor acts for no department
    with pytest.raises(TokenError, match="only it"):
        tokens.issue(SUPERVISOR, "registrar")  # nor does any other token take its column
    assert len(tokens.listing()) == 1


def test_a_supervisor_token_is_accepted_only_where_asked_for(store: Store) -> None:
    tokens = TokenStore(store)
    issued = tokens.issue(SUPERVISOR, "supervisor")
    assert tokens.lookup(issued.token) is None  # not by the default (department) lookup
    assert tokens.lookup(issued.token, roles=SUPERVISOR_ONLY) == issued.principal


def _principal(department: str, role: str) -> Principal:
    return Principal(department, role, "0" * 12)  # type: ignore[arg-type]


def test_a_department_token_reads_its_own_department_only() -> None:
    own = _principal(HRSS, "verifier")
    assert reader_for(own, None) == HRSS
    assert reader_for(own, HRSS) == HRSS
    assert reader_for_any(own, None) == HRSS
    with pytest.raises(ProblemError) as refused:
        reader_for(own, MARKET)
    assert refused.value.kind.status == 403


def test_a_supervisor_reads_any_named_department_or_all() -> None:
    supervisor = _principal(SUPERVISOR, "supervisor")
    assert reader_for(supervisor, MARKET) == MARKET
    assert reader_for_any(supervisor, HRSS) == HRSS
    assert reader_for_any(supervisor, None) is None  # every department
    with pytest.raises(ProblemError) as unnamed:
        reader_for(supervisor, None)  # where one department is read, it must name it
    assert unnamed.value.kind.status == 422
    for bad in ("bj-hrss", "BJ HRSS", "X" * 65, ""):
        with pytest.raises(ProblemError) as malformed:
            reader_for_any(supervisor, bad)
        assert malformed.value.kind.status == 422


# ---------------------------------------------------------------------- changes nothing


def _needs_a_department_token(dependant: Dependant) -> bool:
    return any(
        sub.call is get_principal or _needs_a_department_token(sub)
        for sub in dependant.dependencies
    )


def _write_routes(app: FastAPI) -> Iterator[tuple[str, str, Any]]:
    """(method, path, route) of every route of the app that may change something."""
    for context in iter_route_contexts(app.routes):
        methods = context.methods or set()
        if context.path is None:
            continue
        for method in sorted(methods & WRITES):
            yield method, context.path, context.original_route


def _filled(path: str, values: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        return values.get(name, "0123456789ab")

    return re.sub(r"\{([^}]+)\}", one, path)


def test_no_route_that_changes_anything_lets_a_supervisor_through(world: ServiceWorld) -> None:
    digest = world.submit(world.signed())
    record = world.add_breach(commitment=digest)
    own = world.context.tokens.issue(HRSS, "registrar")
    values = {
        "hash": hex32(digest),
        "commitment": hex32(digest),
        "record_id": record.id,
        "token_id": own.principal.token_id,
    }
    auth = supervisor_auth(world)
    before = snapshot(world)
    walked = 0
    app = world.client.app
    assert isinstance(app, FastAPI)
    for method, path, route in _write_routes(app):
        url = _filled(path, values)
        answer = world.client.request(method, url, json={}, headers=auth)
        assert answer.status_code in {401, 403, 404, 405, 422}, (method, path, answer.text)
        dependant = getattr(route, "dependant", None)
        if dependant is not None and _needs_a_department_token(dependant):
            assert_problem(answer, 403, "wrong-role")
        walked += 1
    assert walked >= 10  # the walk found the write routes
    assert snapshot(world) == before


def test_a_supervisor_may_not_submit_and_is_not_counted_as_a_guessed_token(
    world: ServiceWorld,
) -> None:
    auth = supervisor_auth(world)
    before = snapshot(world)
    signed = world.signed()
    for _ in range(3):
        answer = world.client.post("/v1/commitments", content=world.body(signed), headers=auth)
        body = assert_problem(answer, 403, "wrong-role")
        assert "supervisor" in body["detail"]
    assert snapshot(world) == before


def test_a_supervisor_token_is_refused_by_the_department_reads_too(world: ServiceWorld) -> None:
    digest = world.submit(world.signed())
    answer = world.client.get(
        f"/v1/commitments/{hex32(digest)}/status", headers=supervisor_auth(world)
    )
    assert_problem(answer, 403, "wrong-role")


# ---------------------------------------------------------------------- `tokens issue`


def test_tokens_issue_a_supervisor_token_on_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    result = cli("tokens", "issue", "--role", "supervisor", "--store", url, "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert (body["department"], body["role"]) == ("SUPERVISOR", "supervisor")
    principal = TokenStore(Store(url)).lookup(body["token"], roles=SUPERVISOR_ONLY)
    assert principal is not None and principal.token_id == body["token_id"]
    refused = cli(
        *("tokens", "issue", "--role", "supervisor", "--department", HRSS),
        *("--store", url, "--json"),
    )
    assert refused.exit_code != 0
    assert "only it" in json.loads(refused.stdout)["error"]["message"]

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
from api.service import DAY_S, SUPERVISOR, Principal, ProblemError, TokenStore, api_tokens
from api.service.deps import get_principal, reader_for, reader_for_any
from api.service.tokens import Role, UnknownTokenError
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
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    # Two wrong tokens a minute drain the address's allowance: a supervisor's refusals
    # (403, a real token) must not.
    throttled = open_service(
        tmp_path, embedded_deployment, feed=False, anchoring=False, auth_failure_limit=2
    )
    try:
        auth = supervisor_auth(throttled)
        before = snapshot(throttled)
        signed = throttled.signed()
        for _ in range(4):
            answer = throttled.client.post(
                "/v1/commitments", content=throttled.body(signed), headers=auth
            )
            body = assert_problem(answer, 403, "wrong-role")
            assert "supervisor" in body["detail"]
        assert snapshot(throttled) == before
        assert throttled.client.get("/v1/tokens", headers=throttled.auth()).status_code == 200
        wrong = {"Authorization": "Bearer clt_" + "A" * 43}
        for _ in range(2):
            assert_problem(throttled.client.get("/v1/tokens", headers=wrong), 401, "unauthorized")
        answer = throttled.client.get("/v1/tokens", headers=throttled.auth())
        assert_problem(answer, 429, "rate-limited")  # the throttle was there to be drained
    finally:
        throttled.context.close()


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


# ---------------------------------------------------------------------- the token store


def test_a_department_lists_its_own_tokens_only(store: Store) -> None:
    tokens = TokenStore(store)
    first = tokens.issue(HRSS, "registrar", now=1000.0)
    second = tokens.issue(HRSS, "verifier", now=2000.0, expires_in_days=5)
    tokens.issue(MARKET, "registrar", now=1500.0)
    tokens.issue(HRSS, "feed", now=1600.0, scope="public")  # a consumer named like it
    tokens.issue(SUPERVISOR, "supervisor", now=1700.0)
    listed = tokens.list_for(HRSS)
    assert [(t.token_id, t.role) for t in listed] == [
        (second.principal.token_id, "verifier"),  # newest first
        (first.principal.token_id, "registrar"),
    ]
    assert listed[0].expires_at == 2000.0 + 5 * DAY_S
    assert all(first.token not in repr(t) and second.token not in repr(t) for t in listed)
    assert tokens.list_for(SUPERVISOR) == []  # not a department's own tokens
    assert len(tokens.list_for(HRSS, limit=1)) == 1


def test_a_department_revokes_its_own_token_by_id(store: Store) -> None:
    tokens = TokenStore(store)
    own = tokens.issue(HRSS, "verifier")
    other = tokens.issue(MARKET, "verifier")
    feed = tokens.issue(HRSS, "feed", scope="public")
    for token_id in (other.principal.token_id, feed.principal.token_id, "0" * 12):
        with pytest.raises(UnknownTokenError, match=f"no token {token_id} of {HRSS}"):
            tokens.revoke(token_id, HRSS)
    with pytest.raises(TokenError, match="12 hex digits"):
        tokens.revoke("not-an-id!!!", HRSS)
    assert tokens.lookup(other.token) is not None
    assert tokens.lookup(feed.token) is not None
    revoked = tokens.revoke(own.principal.token_id.upper(), HRSS, now=5000.0)
    assert (revoked.token_id, revoked.revoked_at) == (own.principal.token_id, 5000.0)
    assert tokens.lookup(own.token) is None
    with pytest.raises(TokenError, match="revoked already"):
        tokens.revoke(own.principal.token_id, HRSS)
    assert tokens.revoke(other.token) is True  # by the token itself, as before


def test_a_department_rotates_its_own_token_keeping_its_expiry(store: Store) -> None:
    tokens = TokenStore(store)
    old = tokens.issue(HRSS, "registrar", now=1000.0, expires_in_days=10)
    with pytest.raises(UnknownTokenError):
        tokens.rotate(old.principal.token_id, MARKET)
    rotated = tokens.rotate(old.principal.token_id, HRSS, now=2000.0)
    assert tokens.lookup(old.token, now=2000.0) is None
    assert rotated.principal == tokens.lookup(rotated.token, now=2000.0)
    assert (rotated.principal.department, rotated.principal.role) == (HRSS, "registrar")
    assert rotated.expires_at == 1000.0 + 10 * DAY_S  # never lengthened by a department
    [new, gone] = tokens.list_for(HRSS)
    assert (new.token_id, new.issued_at, new.revoked_at) == (
        rotated.principal.token_id,
        2000.0,
        None,
    )
    assert (gone.token_id, gone.revoked_at) == (old.principal.token_id, 2000.0)
    with pytest.raises(TokenError, match="revoked already"):
        tokens.rotate(old.principal.token_id, HRSS)
    assert len(tokens.listing()) == 2  # the refused rotation inserted nothing


def test_an_expired_token_is_not_rotated_by_its_department(store: Store) -> None:
    tokens = TokenStore(store)
    old = tokens.issue(HRSS, "verifier", now=1000.0, expires_in_days=1)
    with pytest.raises(TokenError, match="has expired"):
        tokens.rotate(old.principal.token_id, HRSS, now=1000.0 + 2 * DAY_S)
    assert [t.revoked_at for t in tokens.listing()] == [None]  # nothing changed
    renewed = tokens.rotate(old.principal.token_id, now=1000.0 + 2 * DAY_S)  # the operator's
    assert renewed.expires_at == 1000.0 + 3 * DAY_S


def test_a_rotation_that_fails_midway_changes_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = TokenStore(store)
    old = tokens.issue(HRSS, "registrar")

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr("api.service.tokens._insert", broken)
    with pytest.raises(RuntimeError):
        tokens.rotate(old.principal.token_id, HRSS)
    assert tokens.lookup(old.token) is not None  # the revocation was rolled back with it
    assert len(tokens.listing()) == 1


# ---------------------------------------------------------------------- /v1/tokens


def test_get_tokens_lists_the_department_s_own_and_marks_the_caller(world: ServiceWorld) -> None:
    world.context.tokens.issue(SUPERVISOR, "supervisor")
    answer = world.client.get("/v1/tokens", headers=world.auth(HRSS, "verifier"))
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert body["department"] == HRSS
    assert sorted(t["role"] for t in body["tokens"]) == ["registrar", "verifier"]
    assert {t["department"] for t in body["tokens"]} == {HRSS}
    [mine] = [t for t in body["tokens"] if t["current"]]
    assert mine["role"] == "verifier" and mine["state"] == "live"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", mine["issued_at"])
    for token in world.tokens.values():
        assert token not in answer.text


def _token_id_of(world: ServiceWorld, department: str, role: str) -> str:
    principal = world.context.tokens.lookup(world.tokens[department, role])
    assert principal is not None
    return principal.token_id


def test_a_department_token_revokes_its_department_s_token(world: ServiceWorld) -> None:
    target = _token_id_of(world, HRSS, "verifier")
    answer = world.client.post(f"/v1/tokens/{target}/revoke", headers=world.auth(HRSS))
    assert answer.status_code == 200, answer.text
    assert (answer.json()["token_id"], answer.json()["state"]) == (target, "revoked")
    refused = world.client.get("/v1/tokens", headers=world.auth(HRSS, "verifier"))
    assert_problem(refused, 401, "unauthorized")
    again = world.client.post(f"/v1/tokens/{target}/revoke", headers=world.auth(HRSS))
    assert_problem(again, 409, "action-refused")


def test_another_department_s_token_is_unknown_and_untouched(world: ServiceWorld) -> None:
    target = _token_id_of(world, MARKET, "verifier")
    before = snapshot(world)
    for action in ("revoke", "rotate"):
        answer = world.client.post(f"/v1/tokens/{target}/{action}", headers=world.auth(HRSS))
        body = assert_problem(answer, 404, "not-found")
        assert MARKET not in body["detail"]
    assert snapshot(world) == before


@pytest.mark.parametrize("token_id", ["0123456789a", "0123456789abc", "0123456789ag", "x" * 200])
def test_a_malformed_token_id_is_refused(world: ServiceWorld, token_id: str) -> None:
    before = snapshot(world)
    answer = world.client.post(f"/v1/tokens/{token_id}/revoke", headers=world.auth(HRSS))
    assert_problem(answer, 422, "invalid-request")
    assert snapshot(world) == before


def test_rotating_answers_the_new_token_once_and_revokes_the_old(world: ServiceWorld) -> None:
    target = _token_id_of(world, HRSS, "registrar")
    answer = world.client.post(
        f"/v1/tokens/{target.upper()}/rotate", headers=world.auth(HRSS, "verifier")
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    assert (body["replaces"], body["department"], body["role"]) == (target, HRSS, "registrar")
    assert body["expires_at"] is None
    old = world.auth(HRSS, "registrar")
    assert_problem(world.client.get("/v1/tokens", headers=old), 401, "unauthorized")
    new = {"Authorization": f"Bearer {body['token']}"}
    listed = world.client.get("/v1/tokens", headers=new).json()["tokens"]
    [current] = [t for t in listed if t["current"]]
    assert current["token_id"] == body["token_id"]
    assert body["token"] not in json.dumps(listed)


@pytest.mark.parametrize("kind", ["feed", "operator", "supervisor", "none"])
def test_only_a_department_token_manages_tokens(world: ServiceWorld, kind: str) -> None:
    issue = {
        "feed": lambda: world.context.tokens.issue("FEED", "feed", scope="all"),
        "operator": lambda: world.context.tokens.issue("OPERATOR", "operator"),
        "supervisor": lambda: world.context.tokens.issue(SUPERVISOR, "supervisor"),
    }
    headers = {} if kind == "none" else {"Authorization": f"Bearer {issue[kind]().token}"}
    target = _token_id_of(world, HRSS, "registrar")
    before = snapshot(world)
    for method, url in [
        ("GET", "/v1/tokens"),
        ("POST", f"/v1/tokens/{target}/revoke"),
        ("POST", f"/v1/tokens/{target}/rotate"),
    ]:
        answer = world.client.request(method, url, headers=headers)
        assert answer.status_code in {401, 403}, (kind, url, answer.text)
        if kind in {"feed", "supervisor"}:
            assert_problem(answer, 403, "wrong-role")
    assert snapshot(world) == before


def test_no_token_reaches_the_logs(world: ServiceWorld, caplog: pytest.LogCaptureFixture) -> None:
    target = _token_id_of(world, HRSS, "registrar")
    with caplog.at_level("DEBUG"):
        answer = world.client.post(f"/v1/tokens/{target}/rotate", headers=world.auth(HRSS))
    assert answer.status_code == 200, answer.text
    new = answer.json()["token"]
    logged = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert "token rotated" in logged and target in logged
    for token in (new, *world.tokens.values()):
        assert token not in logged


def test_tokens_list_shows_one_department_column_on_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    tokens = TokenStore(Store(url))
    supervisor = tokens.issue(SUPERVISOR, "supervisor")
    department = tokens.issue(HRSS, "registrar")
    result = cli("tokens", "list", "--department", SUPERVISOR, "--store", url, "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)["tokens"]
    assert [(t["token_id"], t["role"]) for t in listed] == [
        (supervisor.principal.token_id, "supervisor")
    ]
    assert department.principal.token_id not in result.stdout
    assert supervisor.token not in result.stdout


def test_a_supervisor_row_with_a_department_speaks_for_nobody(store: Store) -> None:
    tokens = TokenStore(store)
    issued = tokens.issue(SUPERVISOR, "supervisor")
    with store.engine.begin() as connection:  # as if written by hand into the table
        connection.execute(api_tokens.update().values(department=HRSS))
    assert tokens.lookup(issued.token, roles=SUPERVISOR_ONLY) is None

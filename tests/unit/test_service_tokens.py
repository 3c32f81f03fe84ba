"""Department tokens (only their SHA-256 is stored) and the `tokens issue` and `serve` commands."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from support.service_keys import write_master_key
from typer.testing import CliRunner, Result

from api.cli import app
from api.errors import TokenError
from api.service import DAY_S, TOKEN_PREFIX, Settings, TokenStore, api_tokens
from ledger import MASTER_KEY_ENV, Store

RUNNER = CliRunner()


def cli(*args: object, env: Mapping[str, str | None] | None = None) -> Result:
    base: dict[str, str | None] = {
        "COLUMNS": "1000",
        MASTER_KEY_ENV: None,
        "COMMITLEDGER_STORE": None,
    }
    return RUNNER.invoke(app, [str(a) for a in args], env={**base, **(env or {})})


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    """A SQLite store, for the tests that read its file or speak SQLite's SQL."""
    return Store(f"sqlite:///{tmp_path / 'ledger.db'}")


def rows(store: Store) -> list[Any]:
    with store.engine.connect() as connection:
        return list(connection.execute(select(api_tokens)).all())


# ---------------------------------------------------------------------- the token store


def test_an_issued_token_speaks_for_its_department_and_role(store: Store) -> None:
    tokens = TokenStore(store)
    issued = tokens.issue("BJ-HRSS", "registrar", now=1000.0)
    assert issued.token.startswith(TOKEN_PREFIX)
    principal = tokens.lookup(issued.token)
    assert principal == issued.principal
    assert (principal.department, principal.role) == ("BJ-HRSS", "registrar")
    other = tokens.issue("BJ-HRSS", "registrar")
    assert other.token != issued.token


def test_the_store_keeps_only_the_sha256_of_a_token(sqlite_store: Store) -> None:
    issued = TokenStore(sqlite_store).issue("BJ-SAMR", "verifier", now=1234.5)
    [row] = rows(sqlite_store)
    assert bytes(row.token_hash) == hashlib.sha256(issued.token.encode()).digest()
    assert (row.department, row.role, row.issued_at, row.revoked_at) == (
        "BJ-SAMR",
        "verifier",
        1234.5,
        None,
    )
    raw = Path(sqlite_store.engine.url.database or "").read_bytes()
    wal = Path(str(sqlite_store.engine.url.database) + "-wal")
    everything = raw + (wal.read_bytes() if wal.exists() else b"")
    assert issued.token.encode() not in everything
    assert issued.token[len(TOKEN_PREFIX) :].encode() not in everything


def test_a_token_is_checked_in_constant_time(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = TokenStore(store)
    issued = tokens.issue("BJ-HRSS", "verifier")
    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr("api.service.tokens.hmac.compare_digest", spy)
    assert tokens.lookup(issued.token) is not None
    digest = hashlib.sha256(issued.token.encode()).digest()
    assert calls == [(digest, digest)]


@pytest.mark.parametrize(
    "token",
    [
        "",
        "clt_",
        "not-a-token",
        TOKEN_PREFIX + "A" * 43,  # well formed, never issued
        TOKEN_PREFIX + "A" * 44,
        TOKEN_PREFIX + "!" * 43,
    ],
)
def test_unknown_or_malformed_tokens_speak_for_nobody(store: Store, token: str) -> None:
    tokens = TokenStore(store)
    tokens.issue("BJ-HRSS", "registrar")
    assert tokens.lookup(token) is None


def test_a_revoked_token_speaks_for_nobody(store: Store) -> None:
    tokens = TokenStore(store)
    issued = tokens.issue("BJ-HRSS", "registrar")
    kept = tokens.issue("BJ-HRSS", "registrar")
    assert tokens.revoke(issued.token, now=99.0)
    assert tokens.lookup(issued.token) is None
    assert tokens.lookup(kept.token) is not None
    assert not tokens.revoke(issued.token)  # already revoked
    assert not tokens.revoke(TOKEN_PREFIX + "B" * 43)  # never issued


@pytest.mark.parametrize(
    ("department", "role", "message"),
    [
        ("BJ-HRSS", "admin", "role must be one of registrar, verifier"),
        ("bj-hrss", "registrar", "not a department code"),
        ("", "verifier", "not a department code"),
    ],
)
def test_bad_issue_requests_are_refused_and_store_nothing(
    store: Store, department: str, role: str, message: str
) -> None:
    with pytest.raises(TokenError, match=message):
        TokenStore(store).issue(department, role)
    assert rows(store) == []


def test_the_token_table_lives_beside_the_ledger_tables(store: Store) -> None:
    TokenStore(store)
    TokenStore(store)  # opening again changes nothing
    from sqlalchemy import inspect

    names = set(inspect(store.engine).get_table_names())
    assert {"api_tokens", "commitments", "batches"} <= names


def test_a_token_expires_after_the_days_it_was_issued_for(store: Store) -> None:
    tokens = TokenStore(store)
    issued = tokens.issue("BJ-HRSS", "registrar", now=1000.0, expires_in_days=2)
    assert tokens.lookup(issued.token, now=1000.0 + 2 * DAY_S - 1) == issued.principal
    assert tokens.lookup(issued.token, now=1000.0 + 2 * DAY_S) is None
    assert tokens.lookup(issued.token) is None  # long past, by the clock
    forever = tokens.issue("BJ-HRSS", "registrar", now=1000.0)
    assert tokens.lookup(forever.token, now=1e12) is not None
    with pytest.raises(TokenError, match="expires in"):
        tokens.issue("BJ-HRSS", "registrar", expires_in_days=0)
    assert len(rows(store)) == 2


def test_an_operator_token_is_accepted_only_where_asked_for(store: Store) -> None:
    tokens = TokenStore(store)
    issued = tokens.issue("OPERATOR", "operator")
    assert tokens.lookup(issued.token) is None  # not by the department routes' lookup
    principal = tokens.lookup(issued.token, roles=("operator",))
    assert principal is not None and principal.role == "operator"
    department = tokens.issue("BJ-HRSS", "registrar")
    assert tokens.lookup(department.token, roles=("operator",)) is None


def test_tokens_are_listed_by_id_and_revoked_or_rotated_by_it(store: Store) -> None:
    tokens = TokenStore(store)
    first = tokens.issue("BJ-HRSS", "registrar", now=1000.0)
    feed = tokens.issue("FEED", "feed", now=1001.0, scope="restricted", expires_in_days=30)
    listed = tokens.listing()
    assert [(t.token_id, t.role, t.revoked_at) for t in listed] == [
        (first.principal.token_id, "registrar", None),
        (feed.principal.token_id, "feed:restricted", None),
    ]
    assert listed[1].expires_at == 1001.0 + 30 * DAY_S
    assert all(first.token not in repr(t) for t in listed)  # ids, never the tokens
    revoked = tokens.revoke_id(first.principal.token_id, now=2000.0)
    assert revoked.revoked_at == 2000.0
    assert tokens.lookup(first.token) is None
    with pytest.raises(TokenError, match="revoked already"):
        tokens.revoke_id(first.principal.token_id)
    rotated = tokens.rotate(feed.principal.token_id.upper(), now=3000.0)
    assert tokens.lookup(feed.token) is None
    assert rotated.principal == tokens.lookup(rotated.token, now=3000.0)
    assert (rotated.principal.department, rotated.principal.scope) == ("FEED", "restricted")
    [new] = [t for t in tokens.listing() if t.token_id == rotated.principal.token_id]
    assert new.expires_at == pytest.approx(3000.0 + 30 * DAY_S)  # as long a life


@pytest.mark.parametrize(
    ("token_id", "message"), [("abc", "12 hex digits"), ("0" * 12, "no token 000000000000")]
)
def test_revoking_an_unknown_id_is_refused_and_changes_nothing(
    store: Store, token_id: str, message: str
) -> None:
    tokens = TokenStore(store)
    issued = tokens.issue("BJ-HRSS", "registrar")
    with pytest.raises(TokenError, match=message):
        tokens.revoke_id(token_id)
    with pytest.raises(TokenError, match=message):
        tokens.rotate(token_id)
    assert tokens.lookup(issued.token) is not None
    assert len(rows(store)) == 1


def test_a_token_table_from_before_expiry_is_migrated_and_its_tokens_kept(
    sqlite_store: Store,
) -> None:
    token = TOKEN_PREFIX + "Q" * 43
    with sqlite_store.engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE api_tokens (token_hash BLOB PRIMARY KEY, department VARCHAR(64) NOT "
            "NULL, role VARCHAR(16) NOT NULL, issued_at FLOAT NOT NULL, revoked_at FLOAT)"
        )
        connection.exec_driver_sql(
            "INSERT INTO api_tokens VALUES (?, 'BJ-HRSS', 'verifier', 5.0, NULL)",
            (hashlib.sha256(token.encode()).digest(),),
        )
    tokens = TokenStore(sqlite_store)
    principal = tokens.lookup(token)
    assert principal is not None and principal.role == "verifier"
    assert tokens.listing()[0].expires_at is None
    with sqlite_store.engine.connect() as connection:
        versions = connection.exec_driver_sql("SELECT version FROM api_token_migrations")
        assert sorted(v for (v,) in versions) == [1, 2]
    TokenStore(sqlite_store)  # opening again changes nothing


# ---------------------------------------------------------------------- `tokens`


def test_tokens_list_revoke_and_rotate_on_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    issued = json.loads(
        cli(
            *("tokens", "issue", "--department", "BJ-HRSS", "--role", "verifier"),
            *("--expires-in", "7", "--store", url, "--json"),
        ).stdout
    )
    operator = cli("tokens", "issue", "--role", "operator", "--store", url)
    assert operator.exit_code == 0, operator.output
    listed = cli("tokens", "list", "--store", url)
    assert listed.exit_code == 0, listed.output
    assert issued["token_id"] in listed.stdout
    assert issued["token"] not in listed.stdout
    assert "OPERATOR" in listed.stdout
    rotated = cli("tokens", "rotate", issued["token_id"], "--store", url, "--json")
    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.stdout)
    assert (new["role"], new["department"], new["revoked"]) == (
        "verifier",
        "BJ-HRSS",
        issued["token_id"],
    )
    tokens = TokenStore(Store(url))
    assert tokens.lookup(issued["token"]) is None
    assert tokens.lookup(new["token"]) is not None
    revoked = cli("tokens", "revoke", new["token_id"], "--store", url)
    assert revoked.exit_code == 0, revoked.output
    assert tokens.lookup(new["token"]) is None
    states = {
        t["token_id"]: t["state"]
        for t in json.loads(cli("tokens", "list", "--store", url, "--json").stdout)["tokens"]
    }
    assert states[issued["token_id"]] == states[new["token_id"]] == "revoked"
    again = cli("tokens", "revoke", new["token_id"], "--store", url)
    assert again.exit_code != 0
    assert "revoked already" in again.output


# ---------------------------------------------------------------------- `tokens issue`


def test_tokens_issue_prints_the_token_once_and_stores_its_hash(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    result = cli("tokens", "issue", "--department", "BJ-HRSS", "--role", "verifier", "--store", url)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith(TOKEN_PREFIX)
    assert "shown once" in result.stderr
    principal = TokenStore(Store(url)).lookup(token)
    assert principal is not None
    assert (principal.department, principal.role) == ("BJ-HRSS", "verifier")


def test_tokens_issue_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    result = cli(
        "tokens",
        "issue",
        "--department",
        "BJ-SAMR",
        "--role",
        "registrar",
        "--store",
        url,
        "--json",
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["ok"] is True
    assert (body["department"], body["role"]) == ("BJ-SAMR", "registrar")
    assert body["token_id"] == hashlib.sha256(body["token"].encode()).hexdigest()[:12]
    assert TokenStore(Store(url)).lookup(body["token"]) is not None


@pytest.mark.parametrize(
    ("department", "role", "message"),
    [
        ("BJ-NOPE", "registrar", "unknown department 'BJ-NOPE'"),
        ("BJ-HRSS", "admin", "role must be one of registrar, verifier"),
    ],
)
def test_tokens_issue_refuses_bad_requests(
    tmp_path: Path, department: str, role: str, message: str
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    result = cli(
        "tokens", "issue", "--department", department, "--role", role, "--store", url, "--json"
    )
    assert result.exit_code != 0
    body = json.loads(result.stdout)
    assert body["ok"] is False
    assert message in body["error"]["message"]
    opened = Store(url)
    TokenStore(opened)
    assert rows(opened) == []


# ---------------------------------------------------------------------- `serve`


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import logging

    import uvicorn

    calls: list[dict[str, Any]] = []

    def fake_run(app: object, **kwargs: Any) -> None:
        calls.append({"app": app, **kwargs})

    monkeypatch.setattr(uvicorn, "run", fake_run)
    yield calls
    # `serve` sends the project's logs to stderr as JSON: give them back to pytest.
    for name in ("commitledger", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


def test_serve_runs_uvicorn_on_loopback_with_the_given_files(
    tmp_path: Path, uvicorn_calls: list[dict[str, Any]]
) -> None:
    key_file = tmp_path / "master.key"
    write_master_key(key_file)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    result = cli(
        "serve",
        "--port",
        "8123",
        "--chain",
        "http://127.0.0.1:1",  # a node of its own: connected to, nothing started or deployed
        "--data-dir",
        tmp_path,
        "--store",
        url,
        "--deployment",
        tmp_path / "absent.json",
        "--master-key-file",
        key_file,
    )
    assert result.exit_code == 0, result.output
    [call] = uvicorn_calls
    assert (call["host"], call["port"]) == ("127.0.0.1", 8123)
    assert call["access_log"] is False  # its lines would hold query strings
    # Every client of a loopback service is 127.0.0.1: no forwarding header is believed
    # unless proxies are named.
    assert call["proxy_headers"] is False
    assert call["forwarded_allow_ips"] == []
    assert call["http"].header_timeout == 10.0
    context = call["app"].state.context
    assert context.settings.resolved_store_url == url
    assert context.settings.public_base_url == "http://127.0.0.1:8123"
    assert context.intake is not None
    assert context.chain.deployment is None
    assert "intake open" in result.stderr
    assert "no deployment file" in result.stderr
    assert not (tmp_path / "keys").exists()


def test_serve_believes_forwarding_headers_from_the_named_proxies_only(
    tmp_path: Path, uvicorn_calls: list[dict[str, Any]]
) -> None:
    result = cli(
        *("serve", "--chain", "http://127.0.0.1:1", "--data-dir", tmp_path),
        *("--deployment", tmp_path / "absent.json"),
        env={
            "COMMITLEDGER_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8",
            "COMMITLEDGER_PUBLIC_BASE_URL": "https://ledger.example.org/",
        },
    )
    assert result.exit_code == 0, result.output
    [call] = uvicorn_calls
    assert call["proxy_headers"] is True
    assert call["forwarded_allow_ips"] == ["127.0.0.1", "10.0.0.0/8"]
    settings = call["app"].state.context.settings
    assert settings.public_base_url == "https://ledger.example.org"


def test_a_trusted_proxy_must_be_an_address() -> None:
    with pytest.raises(ValueError, match=r"'proxy\.example' is not an IP address"):
        Settings(trusted_proxies="127.0.0.1,proxy.example")


def test_serve_on_the_embedded_chain_deploys_and_warns_that_it_is_ephemeral(
    tmp_path: Path, uvicorn_calls: list[dict[str, Any]]
) -> None:
    result = cli("serve", "--chain", "embedded", "--data-dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert "embedded chain lives in this process only" in result.stderr
    [call] = uvicorn_calls
    context = call["app"].state.context
    assert context.chain.deployment is not None
    assert context.chain.ledger() is not None  # the in-process chain, no URL
    assert context.intake is None  # no master key given
    assert (tmp_path / "keys" / "admin.json").exists()
    assert not (tmp_path / "deployment.json").exists()  # the chain is not kept, nor is it


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.org"])
def test_serve_refuses_anything_but_loopback(
    tmp_path: Path, uvicorn_calls: list[dict[str, Any]], host: str
) -> None:
    result = cli(
        "serve", "--host", host, "--data-dir", tmp_path, "--store", f"sqlite:///{tmp_path / 'x.db'}"
    )
    assert result.exit_code == 2
    assert "loopback only" in result.stderr
    assert uvicorn_calls == []


def test_serve_reports_a_bad_master_key(
    tmp_path: Path, uvicorn_calls: list[dict[str, Any]]
) -> None:
    key_file = tmp_path / "master.key"
    key_file.write_text("not a key")
    result = cli(
        "serve",
        *("--chain", "http://127.0.0.1:1", "--data-dir", tmp_path),
        *("--store", f"sqlite:///{tmp_path / 'x.db'}", "--master-key-file", key_file),
    )
    assert result.exit_code == 2
    assert "master key" in result.stderr
    assert uvicorn_calls == []

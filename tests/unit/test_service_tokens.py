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
from typer.testing import CliRunner, Result

from api.cli.main import app
from api.errors import TokenError
from api.service import TokenStore
from api.service.tokens import TOKEN_PREFIX, api_tokens
from ledger.store import Store
from ledger.vault import MASTER_KEY_ENV, Vault

RUNNER = CliRunner()


def cli(*args: object, env: Mapping[str, str | None] | None = None) -> Result:
    base: dict[str, str | None] = {
        "COLUMNS": "1000",
        MASTER_KEY_ENV: None,
        "COMMITLEDGER_STORE": None,
    }
    return RUNNER.invoke(app, [str(a) for a in args], env={**base, **(env or {})})


@pytest.fixture
def store(tmp_path: Path) -> Store:
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


def test_the_store_keeps_only_the_sha256_of_a_token(store: Store) -> None:
    issued = TokenStore(store).issue("BJ-SAMR", "verifier", now=1234.5)
    [row] = rows(store)
    assert bytes(row.token_hash) == hashlib.sha256(issued.token.encode()).digest()
    assert (row.department, row.role, row.issued_at, row.revoked_at) == (
        "BJ-SAMR",
        "verifier",
        1234.5,
        None,
    )
    raw = Path(store.engine.url.database or "").read_bytes()
    wal = Path(str(store.engine.url.database) + "-wal")
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
    key_file.write_text(Vault.new_master_key() + "\n")
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
    assert call["proxy_headers"] is True
    assert call["forwarded_allow_ips"] == "127.0.0.1"
    context = call["app"].state.context
    assert context.settings.resolved_store_url == url
    assert context.intake is not None
    assert context.chain.deployment is None
    assert "intake open" in result.stderr
    assert "no deployment file" in result.stderr
    assert not (tmp_path / "keys").exists()


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

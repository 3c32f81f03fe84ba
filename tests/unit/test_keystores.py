"""Departments' keys at rest: Web3 Secret Storage keystores and encrypted PKCS#8, opened with
a passphrase from a file or the environment; clear key files refused everywhere but
`serve --demo` (the old COMMITLEDGER_ALLOW_CLEAR_KEYS changes nothing), by the service and
by every command given a key file; a chain account never written in clear; a department's
instance (`serve --department`) holding and acting for its department only. The store's
master key likewise: a keystore of its own kind, never taken for a chain account nor one
for it, a clear master.key refused by `serve` and the commands but in the demo."""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keyfile.keyfile import decode_keyfile_json
from pydantic import SecretStr
from support.deployment import HRSS, MARKET, Deployment
from support.service_keys import write_clear_account
from support.service_world import anchored, assert_problem, open_service, post_signed
from typer.testing import CliRunner, Result

from api.cli import app
from api.demo import sample_commitments
from api.errors import MissingKeyError
from api.keyfiles import (
    MASTER_KIND,
    PASSPHRASE_ENV,
    PASSPHRASE_FILE_ENV,
    SCRYPT_N_ENV,
    KeyFileError,
    KeyUnlock,
    keystore_bytes,
    load_account,
    load_master_key,
    load_report_key,
    new_key,
    pem_bytes,
)
from api.service import DepartmentKeys, Settings, key_unlock
from ledger import SigningKey, Vault, hex32, sign_commitment

PASSPHRASE = "correct horse battery staple"
OLD_SWITCH = "COMMITLEDGER_ALLOW_CLEAR_KEYS"  # the development setting that is gone
CHEAP = KeyUnlock(PASSPHRASE, scrypt_n=2**4)  # keys the tests make: scrypt at n=2**18 takes ~1 s
RUNNER = CliRunner()

# The Web3 Secret Storage Definition's test vectors (ethereum.org, "Web3 secret storage
# definition", Test Vectors; go-ethereum accounts/keystore/testdata/v3_test_vector.json).
VECTOR_PASSWORD = "testpassword"
VECTOR_PRIVATE_KEY = "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d"
SCRYPT_VECTOR: dict[str, Any] = {
    "crypto": {
        "cipher": "aes-128-ctr",
        "cipherparams": {"iv": "83dbcc02d8ccb40e466191a123791e0e"},
        "ciphertext": "d172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c",
        "kdf": "scrypt",
        "kdfparams": {
            "dklen": 32,
            "n": 262144,
            "r": 1,
            "p": 8,
            "salt": "ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19",
        },
        "mac": "2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097",
    },
    "id": "3198bc9c-6672-5ab3-d995-4942343ae5b6",
    "version": 3,
}
PBKDF2_VECTOR: dict[str, Any] = {
    "crypto": {
        "cipher": "aes-128-ctr",
        "cipherparams": {"iv": "6087dab2f9fdbbfaddc31a909735c1e6"},
        "ciphertext": "5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46",
        "kdf": "pbkdf2",
        "kdfparams": {
            "c": 262144,
            "dklen": 32,
            "prf": "hmac-sha256",
            "salt": "ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd",
        },
        "mac": "517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2",
    },
    "id": "3198bc9c-6672-5ab3-d995-4942343ae5b6",
    "version": 3,
}


@pytest.fixture(autouse=True)
def _no_suite_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take away the suite's passphrase and scrypt cost (tests/conftest.py)."""
    for name in (PASSPHRASE_ENV, PASSPHRASE_FILE_ENV, SCRYPT_N_ENV):
        monkeypatch.delenv(name, raising=False)


def write_keystore(path: Path, account: LocalAccount, unlock: KeyUnlock = CHEAP) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(keystore_bytes(account, unlock))
    path.chmod(0o600)


def write_report_key(path: Path, unlock: KeyUnlock = CHEAP) -> SigningKey:
    private = ed25519.Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem_bytes(private, unlock))
    return SigningKey(private)


def encrypted_department(keys_dir: Path, department: str) -> dict[str, Any]:
    """A department's three keys, encrypted with PASSPHRASE: the accounts and the report key."""
    registrar, verifier = Account.create(), Account.create()
    write_keystore(keys_dir / department / "registrar.json", registrar)
    write_keystore(keys_dir / department / "verifier.json", verifier)
    report = write_report_key(keys_dir / department / "report.pem")
    return {"registrar": registrar, "verifier": verifier, "report": report}


# ---------------------------------------------------------------------- opening key files


@pytest.mark.parametrize("vector", [SCRYPT_VECTOR, PBKDF2_VECTOR], ids=["scrypt", "pbkdf2"])
def test_the_definitions_test_vectors_open_to_their_private_key(
    tmp_path: Path, vector: dict[str, Any]
) -> None:
    path = tmp_path / "vector.json"
    path.write_text(json.dumps(vector))
    account = load_account(path, KeyUnlock(VECTOR_PASSWORD))
    assert account.key.hex().removeprefix("0x") == VECTOR_PRIVATE_KEY
    assert account.address == Account.from_key(VECTOR_PRIVATE_KEY).address


def test_a_wrong_passphrase_is_refused_with_the_file_named_and_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "vector.json"
    path.write_text(json.dumps(SCRYPT_VECTOR))
    with pytest.raises(KeyFileError, match="wrong passphrase") as caught:
        load_account(path, KeyUnlock("not the password"))
    assert str(path) in str(caught.value)
    assert "not the password" not in str(caught.value)
    assert VECTOR_PRIVATE_KEY not in str(caught.value)


def test_an_encrypted_key_without_a_passphrase_says_where_to_give_one(tmp_path: Path) -> None:
    write_keystore(tmp_path / "a.json", Account.create())
    write_report_key(tmp_path / "r.pem")
    for opened in (load_account, load_report_key):
        path = tmp_path / ("a.json" if opened is load_account else "r.pem")
        with pytest.raises(KeyFileError, match="COMMITLEDGER_KEY_PASSPHRASE"):
            opened(path, KeyUnlock(None))


def test_keystores_round_trip_with_any_scrypt_cost(tmp_path: Path) -> None:
    account = Account.create()
    for n in (2**2, 2**10):
        path = tmp_path / f"n{n}.json"
        write_keystore(path, account, KeyUnlock(PASSPHRASE, scrypt_n=n))
        body = json.loads(path.read_text())
        assert body["crypto"]["kdf"] == "scrypt" and body["crypto"]["kdfparams"]["n"] == n
        assert account.key.hex().removeprefix("0x") not in path.read_text()
        assert load_account(path, KeyUnlock(PASSPHRASE)).address == account.address


def test_an_encrypted_report_key_opens_with_its_passphrase_only(tmp_path: Path) -> None:
    path = tmp_path / "report.pem"
    key = write_report_key(path)
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert load_report_key(path, KeyUnlock(PASSPHRASE)).public_key_b64() == key.public_key_b64()
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        load_report_key(path, KeyUnlock("wrong"))


def test_clear_key_files_are_refused_whatever_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = Account.create()
    write_clear_account(tmp_path / "registrar.json", account)
    (tmp_path / "report.pem").write_bytes(SigningKey.generate("ed25519").to_pem())
    monkeypatch.setenv(OLD_SWITCH, "true")  # once accepted them: no longer read
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    assert KeyUnlock.from_env().allow_clear is False
    assert key_unlock(Settings()).allow_clear is False
    for opened, name in ((load_account, "registrar.json"), (load_report_key, "report.pem")):
        for unlock in (KeyUnlock(PASSPHRASE), None, key_unlock(Settings())):
            with pytest.raises(KeyFileError, match="clear key file") as caught:
                opened(tmp_path / name, unlock)
            assert f"commitledger keys encrypt {tmp_path / name}" in str(caught.value)
            assert "serve --demo" in str(caught.value)
        opened(tmp_path / name, KeyUnlock(None, allow_clear=True))  # the demo's: accepted
    assert load_account(tmp_path / "registrar.json", KeyUnlock(allow_clear=True)) == account
    demo = key_unlock(Settings().for_demo())
    assert demo.allow_clear and load_account(tmp_path / "registrar.json", demo) == account


def test_the_settings_give_the_passphrase_from_a_file_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    assert key_unlock(Settings(key_passphrase_file=secret)).passphrase == PASSPHRASE
    monkeypatch.setenv(PASSPHRASE_ENV, "from the environment")
    from_env = key_unlock(Settings())
    assert from_env.passphrase == "from the environment"
    assert from_env.allow_clear is False
    assert "from the environment" not in repr(from_env)
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(KeyFileError, match="empty"):
        key_unlock(Settings(key_passphrase_file=empty))


# ---------------------------------------------------------------------- the department keys


def test_an_instance_opens_every_key_at_once_or_none(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    made = encrypted_department(keys_dir, HRSS)
    write_keystore(keys_dir / MARKET / "registrar.json", Account.create(), KeyUnlock("other"))
    keys = DepartmentKeys(keys_dir, {HRSS, MARKET}, unlock=KeyUnlock(PASSPHRASE))
    with pytest.raises(KeyFileError, match=f"{MARKET}/registrar.json: wrong passphrase"):
        keys.unlock_all()
    (keys_dir / HRSS / "registrar.json").rename(tmp_path / "away.json")
    with pytest.raises(MissingKeyError):  # nothing of HRSS was kept from the failed start
        keys.account(HRSS, "registrar")
    (tmp_path / "away.json").rename(keys_dir / HRSS / "registrar.json")
    (keys_dir / MARKET / "registrar.json").unlink()
    assert keys.unlock_all() == [f"{HRSS} registrar", f"{HRSS} verifier", f"{HRSS} report"]
    assert keys.account(HRSS, "verifier").address == made["verifier"].address
    assert keys.report_key(HRSS).public_key_b64() == made["report"].public_key_b64()


def test_a_department_instance_holds_that_departments_keys_only(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    mine = encrypted_department(keys_dir, HRSS)
    encrypted_department(keys_dir, MARKET)
    settings = Settings(keys_dir=keys_dir, department=HRSS, key_passphrase=SecretStr(PASSPHRASE))
    keys = DepartmentKeys.from_settings(settings, {HRSS, MARKET})
    assert keys.unlock_all() == [f"{HRSS} registrar", f"{HRSS} verifier", f"{HRSS} report"]
    assert keys.registrars() == {HRSS: mine["registrar"]}
    assert not keys.has(MARKET, "registrar")
    assert keys.report_key_if_present(MARKET) is None
    with pytest.raises(MissingKeyError, match=f"holds {HRSS}'s keys only"):
        keys.account(MARKET, "verifier")
    with pytest.raises(MissingKeyError, match="not a department of the catalog"):
        DepartmentKeys(keys_dir, {HRSS, MARKET}, only="BJ-NOPE")


def test_new_department_keys_are_encrypted_when_a_passphrase_is_known(tmp_path: Path) -> None:
    keys = DepartmentKeys(tmp_path, {HRSS}, unlock=CHEAP)
    keys.create(HRSS)
    assert "crypto" in json.loads((tmp_path / HRSS / "registrar.json").read_text())
    assert b"ENCRYPTED PRIVATE KEY" in (tmp_path / HRSS / "report.pem").read_bytes()
    assert all(os.stat(p).st_mode & 0o777 == 0o600 for p in (tmp_path / HRSS).iterdir())
    assert keys.unlock_all() == [f"{HRSS} registrar", f"{HRSS} verifier", f"{HRSS} report"]


# ---------------------------------------------------------------------- the service


def test_a_department_instance_refuses_another_departments_writes(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    d = embedded_deployment
    for department, registrar, verifier in (
        (HRSS, d.registrar, d.verifier),
        (MARKET, d.other_registrar, d.other_verifier),
    ):
        write_keystore(tmp_path / "keys" / department / "registrar.json", registrar)
        write_keystore(tmp_path / "keys" / department / "verifier.json", verifier)
        write_report_key(tmp_path / "keys" / department / "report.pem")
    world = open_service(tmp_path, d, department=HRSS, key_passphrase=PASSPHRASE)
    try:
        other = post_signed(world, world.signed(MARKET), **world.auth(MARKET))
        problem = assert_problem(other, 403, "other-department")
        assert f"acts for {HRSS} only" in problem["detail"]
        assert world.store.status().pending == 0  # nothing taken in
        own = post_signed(world, world.signed(HRSS), **world.auth(HRSS))
        assert own.status_code in (200, 201, 202), own.text
        assert world.store.status().pending == 1
        assert world.context.keys.registrars() == {HRSS: d.registrar}
    finally:
        world.context.close()


def test_a_key_opened_on_first_use_with_a_wrong_passphrase_is_a_503_naming_it(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    d = embedded_deployment
    write_keystore(tmp_path / "keys" / HRSS / "verifier.json", d.verifier)
    write_report_key(tmp_path / "keys" / HRSS / "report.pem")
    world = open_service(tmp_path, d, key_passphrase="a guess")
    try:
        [(digest, _)] = anchored(world)
        response = world.client.post(
            f"/v1/verifications/{hex32(digest)}/decision",
            json={"outcome": "needs_manual", "note": "on-site check at the premises"},
            headers=world.auth(HRSS, "verifier"),
        )
        problem = assert_problem(response, 503, "key-missing")
        assert "wrong passphrase" in problem["detail"]
        assert f"{HRSS}/verifier.json" in problem["detail"] and "a guess" not in response.text
    finally:
        world.context.close()


# ---------------------------------------------------------------------- the command line


def cli(*args: object, env: dict[str, str | None] | None = None) -> Result:
    return RUNNER.invoke(app, [str(a) for a in args], env={"COLUMNS": "1000", **(env or {})})


def test_keys_new_encrypts_with_a_passphrase_file_and_never_shows_it(tmp_path: Path) -> None:
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    account_path, report_path = tmp_path / "registrar.json", tmp_path / "report.pem"
    made = cli("keys", "new", "--kind", "ethereum", "--out", account_path,
               "--passphrase-file", secret, "--json")  # fmt: skip
    assert made.exit_code == 0, made.output
    facts = json.loads(made.stdout)
    assert facts["encrypted"] is True
    assert json.loads(account_path.read_text())["crypto"]["kdfparams"]["n"] == 2**18  # standard
    assert load_account(account_path, KeyUnlock(PASSPHRASE)).address == facts["address"]
    report = cli("keys", "new", "--out", report_path, env={PASSPHRASE_ENV: PASSPHRASE})
    assert report.exit_code == 0, report.output
    assert "encrypted" in report.stdout
    load_report_key(report_path, KeyUnlock(PASSPHRASE))
    for result in (made, report):
        assert PASSPHRASE not in result.stdout + result.stderr


def test_keys_encrypt_turns_clear_files_into_encrypted_ones_in_place(tmp_path: Path) -> None:
    account = Account.create()
    write_clear_account(tmp_path / "verifier.json", account)
    clear = SigningKey.generate("ed25519")
    (tmp_path / "report.pem").write_bytes(clear.to_pem())
    (tmp_path / "report.pem").chmod(0o600)
    env: dict[str, str | None] = {PASSPHRASE_ENV: PASSPHRASE}
    files = (tmp_path / "verifier.json", tmp_path / "report.pem")
    result = cli("keys", "encrypt", *files, "--json", env=env)
    assert result.exit_code == 0, result.output
    assert [f["changed"] for f in json.loads(result.stdout)["files"]] == [True, True]
    assert load_account(files[0], KeyUnlock(PASSPHRASE)).address == account.address
    assert load_report_key(files[1], KeyUnlock(PASSPHRASE)).public_key_b64() == (
        clear.public_key_b64()
    )
    assert all(os.stat(p).st_mode & 0o777 == 0o600 for p in files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.pem", "verifier.json"]
    again = cli("keys", "encrypt", *files, env=env)
    assert again.exit_code == 0 and again.stdout.count("encrypted already") == 2
    without = cli("keys", "encrypt", files[0])
    assert without.exit_code != 0 and "no passphrase" in without.stderr


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append({"app": app, **kwargs}))
    yield calls
    for name in ("commitledger", "uvicorn", "uvicorn.error"):  # `serve` took them over
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


def serve(tmp_path: Path, *args: object, env: dict[str, str | None] | None = None) -> Result:
    return cli(
        *("serve", "--chain", "http://127.0.0.1:1", "--data-dir", tmp_path),
        *("--deployment", tmp_path / "absent.json", *args),
        env=env,
    )


def test_serve_department_opens_its_keys_at_start(
    tmp_path: Path, uvicorn_calls: list[dict[str, Any]]
) -> None:
    encrypted_department(tmp_path / "keys", HRSS)
    encrypted_department(tmp_path / "keys", MARKET)
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE)
    result = serve(tmp_path, "--department", HRSS, "--passphrase-file", secret)
    assert result.exit_code == 0, result.output
    [call] = uvicorn_calls
    keys = call["app"].state.context.keys
    assert keys.only == HRSS and keys.registrars().keys() == {HRSS}
    assert f"{HRSS}'s instance: 3 keys" in result.stderr
    assert PASSPHRASE not in result.output


@pytest.mark.parametrize("problem", ["wrong passphrase", "clear key file"])
def test_serve_refuses_to_start_with_keys_it_cannot_open(
    tmp_path: Path, uvicorn_calls: list[dict[str, Any]], problem: str
) -> None:
    encrypted_department(tmp_path / "keys", HRSS)
    if problem == "clear key file":
        (tmp_path / "keys" / HRSS / "registrar.json").unlink()
        write_clear_account(tmp_path / "keys" / HRSS / "registrar.json", Account.create())
    env: dict[str, str | None] = {
        PASSPHRASE_ENV: PASSPHRASE if problem == "clear key file" else "guessed",
        OLD_SWITCH: "true",  # the development switch that once let clear keys in: gone
    }
    for department in (("--department", HRSS), ()):  # its instance, or every department's
        result = serve(tmp_path, *department, env=env)
        assert result.exit_code != 0
        assert problem in result.stderr and str(tmp_path / "keys" / HRSS) in result.stderr
        if problem == "clear key file":
            assert "commitledger keys encrypt" in result.stderr
        assert uvicorn_calls == []
        assert "guessed" not in result.output


def test_a_public_instance_without_keys_serves_public_routes_only(
    tmp_path: Path, uvicorn_calls: list[dict[str, Any]]
) -> None:
    result = serve(tmp_path)
    assert result.exit_code == 0, result.output
    assert "every department: no department keys, public routes only" in result.stderr


def test_init_without_a_passphrase_makes_nothing(tmp_path: Path) -> None:
    result = cli("init", "--data-dir", tmp_path / "d", "--json")
    assert result.exit_code == 2, result.output
    assert "never made in clear" in result.stdout and PASSPHRASE_ENV in result.stdout
    assert not (tmp_path / "d").exists()
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE)
    made = cli("init", "--data-dir", tmp_path / "d", "--passphrase-file", secret, "--json",
               env={SCRYPT_N_ENV: "16"})  # fmt: skip
    assert made.exit_code == 0, made.output
    path = tmp_path / "d" / "keys" / HRSS / "registrar.json"
    assert json.loads(path.read_text())["crypto"]["kdfparams"]["n"] == 16
    load_account(path, KeyUnlock(PASSPHRASE))
    again = cli("init", "--data-dir", tmp_path / "d", "--json")  # nothing left to make
    assert again.exit_code == 0, again.output


def test_keys_new_never_writes_a_chain_account_in_clear(tmp_path: Path) -> None:
    path = tmp_path / "registrar.json"
    result = cli("keys", "new", "--kind", "ethereum", "--out", path)
    assert result.exit_code == 2 and "never written in clear" in result.stderr
    assert not path.exists()
    applicant = cli("keys", "new", "--out", tmp_path / "applicant.pem")  # an applicant's: clear
    assert applicant.exit_code == 0 and "note: the key is in clear" in applicant.stderr
    assert b"BEGIN PRIVATE KEY" in (tmp_path / "applicant.pem").read_bytes()


def test_keys_check_warns_of_a_keystore_below_the_standard_cost(tmp_path: Path) -> None:
    encrypted_department(tmp_path / "keys", HRSS)  # scrypt n = 2**4
    write_keystore(
        tmp_path / "keys" / HRSS / "verifier.json.new",
        Account.create(),
        KeyUnlock(PASSPHRASE, scrypt_n=2**18),
    )
    (tmp_path / "keys" / HRSS / "verifier.json.new").replace(
        tmp_path / "keys" / HRSS / "verifier.json"
    )
    args = ("keys", "check", "--data-dir", tmp_path, "--department", HRSS)
    result = cli(*args, env={PASSPHRASE_ENV: PASSPHRASE})
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"{HRSS}/registrar.json: scrypt n = 16" in warnings[0]
    rows = json.loads(cli(*args, "--json", env={PASSPHRASE_ENV: PASSPHRASE}).stdout)["keys"]
    assert [r["weak_kdf"] is None for r in rows] == [False, True, True]


def test_a_scrypt_cost_that_is_no_power_of_two_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SCRYPT_N_ENV, "1000")
    with pytest.raises(KeyFileError, match="power of two"):
        KeyUnlock.from_env()
    with pytest.raises(ValueError, match="power of two"):
        Settings()
    monkeypatch.setenv(SCRYPT_N_ENV, "1024")
    assert KeyUnlock.from_env().scrypt_n == key_unlock(Settings()).scrypt_n == 1024


def test_keys_encrypt_changes_nothing_when_one_file_is_no_key(tmp_path: Path) -> None:
    write_clear_account(tmp_path / "registrar.json", Account.create())
    (tmp_path / "notes.json").write_text('{"hello": "world"}')
    before = (tmp_path / "registrar.json").read_bytes()
    files = (tmp_path / "registrar.json", tmp_path / "notes.json")
    result = cli("keys", "encrypt", *files, env={PASSPHRASE_ENV: PASSPHRASE})
    assert result.exit_code == 2 and "notes.json is not an account key file" in result.stderr
    assert (tmp_path / "registrar.json").read_bytes() == before


def test_serve_demo_is_not_a_department_instance(
    tmp_path: Path, uvicorn_calls: list[dict[str, Any]]
) -> None:
    result = serve(tmp_path, "--demo", "--department", HRSS)
    assert result.exit_code == 2 and "drop --department" in result.stderr
    assert uvicorn_calls == [] and not (tmp_path / "keys").exists()


def test_keys_check_opens_what_an_instance_would_hold(tmp_path: Path) -> None:
    made = encrypted_department(tmp_path / "keys", HRSS)
    encrypted_department(tmp_path / "keys", MARKET)
    args = ("keys", "check", "--data-dir", tmp_path, "--department", HRSS, "--json")
    result = cli(*args, env={PASSPHRASE_ENV: PASSPHRASE})
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["keys"]
    assert [(r["department"], r["key"]) for r in rows] == [
        (HRSS, "registrar"),
        (HRSS, "verifier"),
        (HRSS, "report"),
    ]
    assert rows[0]["public"] == made["registrar"].address
    assert PASSPHRASE not in result.output
    wrong = cli(*args, env={PASSPHRASE_ENV: "a guess"})
    assert wrong.exit_code == 2 and "wrong passphrase" in wrong.stdout + wrong.stderr


# ---------------------------------------------------------------------- commands given a key


def command_given(name: str, tmp_path: Path, account: Path, report: Path) -> list[object]:
    """The command line of `name` given the key files; each needs a deployment file and a
    store in tmp_path, and no node (the key is refused before one is asked)."""
    deployment = tmp_path / "deployment.json"
    store = ("--store", f"sqlite:///{tmp_path / 'ledger.db'}")
    return {
        "deploy": ["deploy", "--rpc", "http://127.0.0.1:1", "--admin-key", account,
                   "--out", deployment],
        "deploy-registrar": ["deploy", "--rpc", "http://127.0.0.1:1", "--admin-key",
                             tmp_path / "ok.json", "--department", HRSS, "--registrar-key",
                             account, "--out", deployment],
        "anchor": ["anchor", tmp_path / "signed.json", "--key", account, "--deployment",
                   deployment],
        "pipeline-run": ["pipeline", "run", "--key", account, *store, "--deployment",
                         deployment, "--until-idle"],
        "verify-run": ["verify", "run", "--key", tmp_path / "ok.json", "--report-key", report,
                       "--all-manual", *store, "--deployment", deployment],
        "feed-run": ["feed", "run", "--keys-dir", report.parent.parent, *store, "--deployment",
                     deployment, "--until-idle"],
        "admin-handover": ["admin", "handover", "--admin-key", account, "--safe",
                           "0x" + "22" * 20, "--deployment", deployment],
    }[name]  # fmt: skip


@pytest.mark.parametrize(
    "name",
    ["deploy", "deploy-registrar", "anchor", "pipeline-run", "verify-run", "feed-run",
     "admin-handover"],
)  # fmt: skip
def test_a_command_given_a_clear_key_file_refuses_it_and_does_nothing(
    tmp_path: Path, name: str
) -> None:
    write_keystore(tmp_path / "ok.json", Account.create())
    account = write_clear_account(tmp_path / "clear.json", Account.create())
    report = tmp_path / "keys" / HRSS / "report.pem"
    report.parent.mkdir(parents=True)
    report.write_bytes(SigningKey.generate("ed25519").to_pem())
    clear = report if name in ("verify-run", "feed-run") else account
    deployment = {"rpc": "http://127.0.0.1:1", "chain_id": 31337, "department": HRSS,
                  "contract": "0x" + "11" * 20}  # fmt: skip
    if name != "deploy" and name != "deploy-registrar":
        (tmp_path / "deployment.json").write_text(json.dumps(deployment))
    (tmp_path / "signed.json").write_text("{}")
    before = sorted(p.name for p in tmp_path.iterdir())
    env: dict[str, str | None] = {PASSPHRASE_ENV: PASSPHRASE, OLD_SWITCH: "true"}
    result = cli(*command_given(name, tmp_path, account, report), "--json", env=env)
    assert result.exit_code == 2, result.output
    problem = json.loads(result.stdout)["error"]
    assert f"{clear} is a clear key file" in problem["message"]
    assert f"commitledger keys encrypt {clear}" in problem["message"]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no deployment, no store


def test_a_command_reads_its_keys_passphrase_from_a_file(tmp_path: Path) -> None:
    write_keystore(tmp_path / "admin.json", Account.create())
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    args = ("deploy", "--rpc", "http://127.0.0.1:1", "--admin-key", tmp_path / "admin.json",
            "--out", tmp_path / "deployment.json", "--json")  # fmt: skip
    without = cli(*args)
    assert without.exit_code == 2 and "is an encrypted keystore" in without.stdout
    with_file = cli(*args, "--passphrase-file", secret)  # opened: then no node answers
    assert "keystore" not in with_file.stdout and "passphrase" not in with_file.stdout
    assert "127.0.0.1:1" in with_file.stdout and PASSPHRASE not in with_file.output


def test_serve_demo_still_makes_and_takes_its_clear_keys(
    tmp_path: Path, uvicorn_calls: list[dict[str, Any]]
) -> None:
    result = cli("serve", "--demo", "--chain", "embedded", "--data-dir", tmp_path / "demo")
    assert result.exit_code == 0, result.output
    registrar = tmp_path / "demo" / "keys" / HRSS / "registrar.json"
    assert "private_key" in json.loads(registrar.read_text())  # no passphrase: in clear
    [call] = uvicorn_calls
    keys = call["app"].state.context.keys
    assert keys.unlock.allow_clear and HRSS in keys.registrars()
    assert "every department: " in result.stderr and " keys" in result.stderr
    with pytest.raises(KeyFileError, match="clear key file"):  # outside the demo: refused
        load_account(registrar)


# ---------------------------------------------------------------------- the store's master key


def write_clear_master(path: Path) -> Vault:
    """A master key file in clear, as `keys new --kind master` wrote it before (0600)."""
    text = Vault.new_master_key()
    path.write_text(text + "\n")
    path.chmod(0o600)
    return Vault.from_text(text)


def signed_file(tmp_path: Path) -> Path:
    [document] = sample_commitments(1, seed=5)
    signed = sign_commitment(document, SigningKey.generate("ed25519"))
    path = tmp_path / "signed.json"
    path.write_text(json.dumps(signed.to_json_obj()))
    return path


def test_the_master_key_is_a_web3_secret_storage_keystore_of_its_own_kind(
    tmp_path: Path,
) -> None:
    path = tmp_path / "master.key"
    made = new_key("master", path, CHEAP)
    assert made == {"kind": "master", "path": str(path), "encrypted": True}
    body = json.loads(path.read_text())
    assert body["version"] == 3 and body["kind"] == MASTER_KIND and "address" not in body
    crypto = body["crypto"]
    assert (crypto["cipher"], crypto["kdf"]) == ("aes-128-ctr", "scrypt")
    assert crypto["kdfparams"] | {"salt": None} == {
        "dklen": 32, "n": 2**4, "r": 8, "p": 1, "salt": None,
    }  # fmt: skip
    vault = load_master_key(path, KeyUnlock(PASSPHRASE))
    # Any keystore v3 reader opens it: eth-keyfile's, which eth-account and web3 use.
    assert decode_keyfile_json(body, PASSPHRASE.encode()) == vault.master_key
    assert vault.master_key.hex() not in path.read_text()
    assert os.stat(path).st_mode & 0o777 == 0o600
    with pytest.raises(KeyFileError, match="wrong passphrase"):
        load_master_key(path, KeyUnlock("a guess"))


def test_keys_new_never_writes_the_master_key_in_clear(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    result = cli("keys", "new", "--kind", "master", "--out", path)
    assert result.exit_code == 2 and "never written in clear" in result.stderr
    assert not path.exists()
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    made = cli("keys", "new", "--kind", "master", "--out", path, "--passphrase-file", secret)
    assert made.exit_code == 0, made.output
    assert "encrypted" in made.stdout and "never printed" in made.stdout
    vault = load_master_key(path, KeyUnlock(PASSPHRASE))
    assert base64.b64encode(vault.master_key).decode() not in made.output


def test_a_chain_keystore_is_never_taken_for_the_master_key_nor_the_reverse(
    tmp_path: Path, uvicorn_calls: list[dict[str, Any]]
) -> None:
    account = tmp_path / "registrar.json"
    write_keystore(account, Account.create())
    master = tmp_path / "master.key"
    new_key("master", master, CHEAP)
    with pytest.raises(KeyFileError, match="is a chain account, not the store's master key"):
        load_master_key(account, CHEAP)
    with pytest.raises(KeyFileError, match="is the store's master key, not a chain account"):
        load_account(master, CHEAP)
    env: dict[str, str | None] = {PASSPHRASE_ENV: PASSPHRASE}
    result = serve(tmp_path, "--master-key-file", account, env=env)
    assert result.exit_code == 2 and "not the store's master key" in result.stderr
    assert uvicorn_calls == []
    submitted = cli(
        *("submit", signed_file(tmp_path), "--store", f"sqlite:///{tmp_path / 'l.db'}"),
        *("--master-key-file", account, "--json"),
        env=env,
    )
    assert submitted.exit_code == 2 and "not the store's master key" in submitted.stdout
    assert not (tmp_path / "l.db").exists()


def test_serve_refuses_a_clear_master_key_file(
    tmp_path: Path, uvicorn_calls: list[dict[str, Any]]
) -> None:
    master = tmp_path / "master.key"  # the data directory's: serve finds it there
    write_clear_master(master)
    env: dict[str, str | None] = {PASSPHRASE_ENV: PASSPHRASE, OLD_SWITCH: "true"}
    for given in ((), ("--master-key-file", master)):
        result = serve(tmp_path, *given, env=env)
        assert result.exit_code == 2, result.output
        assert f"{master} is a clear key file" in result.stderr
        assert f"commitledger keys encrypt {master}" in result.stderr
        assert uvicorn_calls == []
        assert master.read_text() not in result.output


def test_a_command_refuses_a_clear_master_key_file_and_stores_nothing(tmp_path: Path) -> None:
    master = tmp_path / "master.key"
    write_clear_master(master)
    store = tmp_path / "ledger.db"
    result = cli(
        *("submit", signed_file(tmp_path), "--store", f"sqlite:///{store}"),
        *("--master-key-file", master, "--json"),
        env={PASSPHRASE_ENV: PASSPHRASE, OLD_SWITCH: "true"},
    )
    assert result.exit_code == 2, result.output
    problem = json.loads(result.stdout)["error"]
    assert f"{master} is a clear key file" in problem["message"]
    assert f"commitledger keys encrypt {master}" in problem["message"]
    assert not store.exists()


@pytest.mark.parametrize("how", ["passphrase file", "environment"])
def test_an_encrypted_master_key_opens_with_its_passphrase(
    tmp_path: Path, uvicorn_calls: list[dict[str, Any]], how: str
) -> None:
    master = tmp_path / "master.key"
    new_key("master", master, CHEAP)
    vault = load_master_key(master, CHEAP)
    secret = tmp_path / "passphrase"
    secret.write_text(PASSPHRASE + "\n")
    given: tuple[object, ...] = ("--passphrase-file", secret) if how == "passphrase file" else ()
    env: dict[str, str | None] = {PASSPHRASE_ENV: PASSPHRASE} if how == "environment" else {}
    result = serve(tmp_path, *given, env=env)
    assert result.exit_code == 0, result.output
    [call] = uvicorn_calls
    intake = call["app"].state.context.intake
    assert intake is not None and intake.vault.master_key == vault.master_key
    store = f"sqlite:///{tmp_path / 'cli.db'}"
    args = ("submit", signed_file(tmp_path), "--store", store, "--master-key-file", master)
    submitted = cli(*args, *given, "--json", env=env)
    assert submitted.exit_code == 0, submitted.output
    assert json.loads(submitted.stdout)["accepted"] == 1
    assert PASSPHRASE not in result.output + submitted.output


def test_a_wrong_master_passphrase_is_refused_and_nothing_is_stored(
    tmp_path: Path, uvicorn_calls: list[dict[str, Any]]
) -> None:
    master = tmp_path / "master.key"
    new_key("master", master, CHEAP)
    env: dict[str, str | None] = {PASSPHRASE_ENV: "a guess"}
    result = serve(tmp_path, env=env)
    assert result.exit_code == 2 and f"{master}: wrong passphrase" in result.stderr
    assert uvicorn_calls == []
    store = tmp_path / "cli.db"
    args = ("submit", signed_file(tmp_path), "--store", f"sqlite:///{store}")
    submitted = cli(*args, "--master-key-file", master, "--json", env=env)
    assert submitted.exit_code == 2
    assert "wrong passphrase" in json.loads(submitted.stdout)["error"]["message"]
    assert not store.exists()
    without = cli(*args, "--master-key-file", master, "--json")
    assert without.exit_code == 2 and "is an encrypted master key" in without.stdout
    assert "a guess" not in result.output + submitted.output


def test_keys_encrypt_turns_a_clear_master_key_into_a_keystore_in_place(tmp_path: Path) -> None:
    master = tmp_path / "master.key"
    clear = write_clear_master(master)
    before = master.read_text()
    env: dict[str, str | None] = {PASSPHRASE_ENV: PASSPHRASE}
    result = cli("keys", "encrypt", master, "--json", env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files"] == [
        {"path": str(master), "kind": "master", "changed": True}
    ]
    assert load_master_key(master, KeyUnlock(PASSPHRASE)).master_key == clear.master_key
    assert before.strip() not in master.read_text() and before.strip() not in result.output
    assert os.stat(master).st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["master.key"]  # no copy left beside it
    again = cli("keys", "encrypt", master, env=env)
    assert again.exit_code == 0 and "encrypted already" in again.stdout
    not_a_key = tmp_path / "notes.txt"
    not_a_key.write_text("not a key\n")
    refused = cli("keys", "encrypt", not_a_key, env=env)
    assert refused.exit_code == 2 and not_a_key.read_text() == "not a key\n"


def test_keys_check_opens_the_master_key_too(tmp_path: Path) -> None:
    encrypted_department(tmp_path / "keys", HRSS)
    new_key("master", tmp_path / "master.key", CHEAP)
    args = ("keys", "check", "--data-dir", tmp_path, "--department", HRSS)
    result = cli(*args, "--json", env={PASSPHRASE_ENV: PASSPHRASE})
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["keys"]
    assert rows[0]["department"] == "store" and rows[0]["key"] == "master"
    assert rows[0]["weak_kdf"] == "scrypt n = 16, below the standard 262144"
    write_clear_master(tmp_path / "clear.key")
    clear = cli(*args, "--json", env={PASSPHRASE_ENV: PASSPHRASE,
                "COMMITLEDGER_MASTER_KEY_FILE": str(tmp_path / "clear.key")})  # fmt: skip
    assert clear.exit_code == 2 and "is a clear key file" in clear.stdout


def test_serve_demo_makes_and_takes_a_clear_master_key_only_there(
    tmp_path: Path, uvicorn_calls: list[dict[str, Any]]
) -> None:
    result = cli("serve", "--demo", "--chain", "embedded", "--data-dir", tmp_path / "demo")
    assert result.exit_code == 0, result.output
    master = tmp_path / "demo" / "master.key"
    Vault.from_text(master.read_text())  # no passphrase: in clear
    [call] = uvicorn_calls
    assert call["app"].state.context.intake is not None
    with pytest.raises(KeyFileError, match="clear key file"):  # outside the demo: refused
        load_master_key(master, KeyUnlock(PASSPHRASE))

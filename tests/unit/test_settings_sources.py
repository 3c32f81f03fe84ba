"""Settings in one place: flags over environment over commitledger.toml over defaults;
`config show`, one-line errors, the README's table, and every command's data directory."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from api.cli import app, readme_with_table, settings_table
from api.service import Settings, SettingsError, origins
from verifier import default_catalog

README = Path(__file__).resolve().parents[2] / "README.md"
RUNNER = CliRunner()
CLEAN: dict[str, str | None] = {
    "COLUMNS": "1000",
    "COMMITLEDGER_MASTER_KEY": None,
    "COMMITLEDGER_STORE": None,
    "COMMITLEDGER_STORE_URL": None,
    "COMMITLEDGER_DATA_DIR": None,
    "COMMITLEDGER_CONFIG": None,
    "COMMITLEDGER_RATE_LIMIT_BURST": None,
}


def cli(*args: object, env: Mapping[str, str | None] | None = None) -> Result:
    """Run `commitledger ARGS` in-process, with none of the caller's settings."""
    return RUNNER.invoke(app, [str(a) for a in args], env={**CLEAN, **(env or {})})


def explain(result: Result) -> str:
    return f"exit {result.exit_code}\nstdout: {result.stdout!r}\nstderr: {result.stderr!r}"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in CLEAN:
        if name != "COLUMNS":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def _toml(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "commitledger.toml"
    path.write_text(text)
    return path


def test_precedence_is_flags_then_environment_then_file_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _toml(tmp_path / "data", "rate_limit_burst = 7\nauth_failure_limit = 9\nfeed = false\n")
    monkeypatch.setenv("COMMITLEDGER_AUTH_FAILURE_LIMIT", "11")
    settings = Settings.load({"chain": "embedded", "rate_limit_per_second": None})
    assert settings.rate_limit_burst == 7  # the file
    assert settings.auth_failure_limit == 11  # the environment beats the file
    assert settings.feed is False
    assert settings.chain == "embedded"  # the flag
    assert settings.rate_limit_per_second == 2.0  # the default (a None flag is no flag)
    assert Settings.load({"auth_failure_limit": 3}).auth_failure_limit == 3  # flag beats env
    found = origins({"chain": "embedded"})
    assert found["chain"] == "flag"
    assert found["auth_failure_limit"] == "COMMITLEDGER_AUTH_FAILURE_LIMIT"
    assert found["rate_limit_burst"] == str(Path("data") / "commitledger.toml")
    assert found["max_body_bytes"] == "default"


def test_the_file_is_the_data_directorys_or_the_one_named(tmp_path: Path) -> None:
    _toml(tmp_path / "elsewhere", "rate_limit_burst = 5\n")
    assert Settings.load({"data_dir": tmp_path / "elsewhere"}).rate_limit_burst == 5
    named = _toml(tmp_path / "etc", "rate_limit_burst = 6\n")
    assert Settings.load(config=named).rate_limit_burst == 6
    assert Settings.load({"config": named}).rate_limit_burst == 6  # serve's --config
    with pytest.raises(SettingsError, match="no such file"):
        Settings.load(config=tmp_path / "missing.toml")


def test_a_bad_value_is_one_line_naming_where_it_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMITLEDGER_RATE_LIMIT_BURST", "0")
    with pytest.raises(SettingsError) as caught:
        Settings.load()
    message = str(caught.value)
    assert message == "COMMITLEDGER_RATE_LIMIT_BURST: Input should be greater than or equal to 1"
    monkeypatch.delenv("COMMITLEDGER_RATE_LIMIT_BURST")
    with pytest.raises(SettingsError, match=r"^--chain: chain must be anvil"):
        Settings.load({"chain": "ganache"})
    toml = _toml(tmp_path / "data", "header_timeout_seconds = -1\n")
    with pytest.raises(
        SettingsError, match=r"^header_timeout_seconds in data/commitledger\.toml: "
    ):
        Settings.load()
    toml.write_text("this is = = not toml")
    with pytest.raises(SettingsError, match="not TOML"):
        Settings.load()
    toml.write_text("rate_limit_brust = 5\n")
    with pytest.raises(SettingsError, match="no setting is called rate_limit_brust"):
        Settings.load()


def test_a_bad_value_ends_any_command_in_one_line_with_exit_2(tmp_path: Path) -> None:
    for args in (("status",), ("config", "show"), ("tokens", "list")):
        result = cli(*args, env={"COMMITLEDGER_RATE_LIMIT_BURST": "lots"})
        assert result.exit_code == 2, explain(result)
        assert result.stderr.strip().splitlines() == [
            "error: COMMITLEDGER_RATE_LIMIT_BURST: Input should be a valid integer, unable to "
            "parse string as an integer"
        ]
        assert "Traceback" not in result.output


def test_config_show_says_where_each_value_came_from_and_masks_secrets(tmp_path: Path) -> None:
    _toml(tmp_path / "d", "rate_limit_burst = 8\n")
    result = cli(
        "config",
        "show",
        "--json",
        "--data-dir",
        tmp_path / "d",
        env={
            "COMMITLEDGER_MASTER_KEY": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYnl0ZXM=",
            "COMMITLEDGER_STORE": "postgresql://ledger:hunter2@db/ledger",
        },
    )
    assert result.exit_code == 0, explain(result)
    rows = {row["name"]: row for row in json.loads(result.stdout)["settings"]}
    assert set(rows) == set(Settings.model_fields)
    assert rows["data_dir"] == {"name": "data_dir", "value": str(tmp_path / "d"), "source": "flag"}
    assert rows["rate_limit_burst"]["value"] == 8
    assert rows["rate_limit_burst"]["source"] == str(tmp_path / "d" / "commitledger.toml")
    assert rows["master_key"] == {
        "name": "master_key",
        "value": "********",
        "source": "COMMITLEDGER_MASTER_KEY",
    }
    assert rows["store_url"]["source"] == "COMMITLEDGER_STORE"
    assert "hunter2" not in result.stdout and "c2VjcmV0" not in result.stdout
    assert rows["chain"] == {"name": "chain", "value": "anvil", "source": "default"}
    assert rows["deployment_file"]["value"] == str(tmp_path / "d" / "deployment.json")
    assert rows["keys_dir"]["value"] == str(tmp_path / "d" / "keys")
    text = cli("config", "show", env={"COLUMNS": "80"})
    assert text.exit_code == 0, explain(text)
    assert all(len(line) <= 80 for line in text.stdout.splitlines())
    assert "rate_limit_burst" in text.stdout


def test_the_readme_settings_table_is_the_models() -> None:
    text = README.read_text()
    assert readme_with_table(text) == text, (
        "README.md's settings table differs from Settings: run `python scripts/settings_table.py`"
    )
    for name in Settings.model_fields:
        assert f"`COMMITLEDGER_{name.upper()}`" in settings_table()


def test_every_command_finds_the_store_in_the_data_directory(tmp_path: Path) -> None:
    made = cli("init", "--data-dir", tmp_path / "d", "--json")
    assert made.exit_code == 0, explain(made)
    env = {"COMMITLEDGER_DATA_DIR": str(tmp_path / "d")}
    listed = cli("tokens", "list", "--json", env=env)
    assert listed.exit_code == 0, explain(listed)
    # The tokens init issued there: each department's registrar and verifier, an operator.
    issued = 2 * len(default_catalog().departments()) + 1
    assert len(json.loads(listed.stdout)["tokens"]) == issued
    status = cli("status", "--json", env=env)
    assert status.exit_code == 0, explain(status)
    assert not (tmp_path / "data").exists()  # nothing went to ./data


def test_path_options_left_at_their_defaults_are_found_in_the_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.cli import in_data_dir
    from api.files import DEFAULT_DEPLOYMENT, DEFAULT_PROOFS

    assert in_data_dir(DEFAULT_DEPLOYMENT) == Path("data/deployment.json")
    monkeypatch.setenv("COMMITLEDGER_DATA_DIR", str(tmp_path / "d"))
    assert in_data_dir(DEFAULT_DEPLOYMENT) == tmp_path / "d" / "deployment.json"
    assert in_data_dir(DEFAULT_PROOFS) == tmp_path / "d" / "proofs"
    assert in_data_dir(Path("mine.json")) == Path("mine.json")  # given: as given
    result = cli("proof", "0x" + "ab" * 32, env={"COMMITLEDGER_DATA_DIR": str(tmp_path / "d")})
    assert result.exit_code == 1, explain(result)
    assert f"looked in {tmp_path / 'd' / 'proofs'}" in result.stderr


def test_the_service_started_by_its_factory_reads_the_file_too(tmp_path: Path) -> None:
    # uvicorn --factory api.service.app:create_app builds its settings itself: from the same
    # sources as every command, so a mistake in commitledger.toml is named, not ignored.
    from api.service.app import create_app

    _toml(tmp_path / "data", "rate_limit_brust = 7\n")
    with pytest.raises(SettingsError, match="rate_limit_brust"):
        create_app()

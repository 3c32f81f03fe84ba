"""`commitledger init` makes a data directory ready to serve; `serve` says what one lacks."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from api.cli import app, missing_for_serving
from api.service import Settings
from verifier import default_catalog

RUNNER = CliRunner()


def cli(*args: object) -> Result:
    env: dict[str, str | None] = {
        "COLUMNS": "1000",
        "COMMITLEDGER_MASTER_KEY": None,
        "COMMITLEDGER_STORE": None,
        "COMMITLEDGER_DATA_DIR": None,
        "COMMITLEDGER_CONFIG": None,
    }
    return RUNNER.invoke(app, [str(a) for a in args], env=env)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("COMMITLEDGER_MASTER_KEY", "COMMITLEDGER_STORE", "COMMITLEDGER_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_init_makes_keys_tokens_and_a_config_file_then_keeps_them(tmp_path: Path) -> None:
    folder = tmp_path / "d"
    before = missing_for_serving(Settings.load({"data_dir": folder}))
    assert [note.split(" ")[1] for note in before] == ["master", "department", "tokens:"]
    assert all(f"commitledger init --data-dir {folder}" in note for note in before)
    assert not folder.exists()  # asking changes nothing

    first = cli("init", "--data-dir", folder, "--json")
    assert first.exit_code == 0, first.output
    made = json.loads(first.stdout)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "keys").stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "master.key").stat().st_mode) == 0o600
    departments = default_catalog().departments()  # each department of the catalog
    for department in departments:
        for name in ("registrar.json", "verifier.json", "report.pem"):
            assert (folder / "keys" / department / name).is_file()
    roles = sorted((t["role"], t["department"]) for t in made["tokens"])
    assert roles == [
        ("operator", "OPERATOR"),
        *(("registrar", d) for d in departments),
        *(("verifier", d) for d in departments),
    ]
    assert any("commitledger serve --data-dir" in step for step in made["next"])
    assert missing_for_serving(Settings.load({"data_dir": folder})) == []
    # The file it wrote is valid TOML that changes nothing until edited.
    assert Settings.load({"data_dir": folder}).rate_limit_burst == 60

    key = (folder / "master.key").read_text()
    again = cli("init", "--data-dir", folder, "--json")
    assert again.exit_code == 0, again.output
    repeat = json.loads(again.stdout)
    assert repeat["made"] == [] and repeat["tokens"] == []
    assert (folder / "master.key").read_text() == key  # never replaced


def test_init_prints_tokens_once_and_what_to_do_next(tmp_path: Path) -> None:
    result = cli("init", "--data-dir", tmp_path / "d")
    assert result.exit_code == 0, result.output
    assert "first tokens (shown once" in result.stdout
    assert "next:" in result.stdout
    # Each department's registrar and verifier, and the operator.
    assert result.stdout.count("clt_") == 2 * len(default_catalog().departments()) + 1
    assert "clt_" not in cli("init", "--data-dir", tmp_path / "d").stdout

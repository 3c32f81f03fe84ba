"""The command line for a newcomer: quick to start, every option described, help not cut,
--version, `sign` of many files, `feed export --json`."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from support.cli import one_json
from support.feed_world import FeedWorld, feed_world
from typer.testing import CliRunner

from api.cli import app
from api.cli import config as cli_config
from api.cli import verify as cli_verify
from api.service import settings
from ledger import Chain, SignedCommitment
from verifier.records import MAX_PAGE_SIZE

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# What takes seconds to import: no command line module may load these before a command runs.
HEAVY = ("web3", "eth_account", "fastapi", "sqlalchemy", "uvicorn", "api.service", "api.keyfiles")
# The modules of the command line that `commitledger` imports before any command runs.
QUICK_MODULES = ("main", "new", "feed", "store", "verify", "serve", "config", "refusals")


def run(*args: object) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def _commands(command: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    # Typer vendors click privately: its classes are not the `click` package's.
    yield path, command
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _commands(sub, f"{path} {name}".strip())


@pytest.mark.parametrize("module", QUICK_MODULES)
def test_no_command_line_module_imports_a_slow_library_at_the_top(module: str) -> None:
    tree = ast.parse((ROOT / "api" / "cli" / f"{module}.py").read_text(encoding="utf-8"))
    for node in tree.body:  # top level only: an `if TYPE_CHECKING:` block is not imported
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            assert not any(name == h or name.startswith(h + ".") for h in HEAVY), (module, name)


def test_every_option_of_every_command_is_described() -> None:
    undescribed = [
        f"{path} {param.opts[0]}"
        for path, command in _commands(typer.main.get_command(app))
        for param in command.params
        if param.param_type_name == "option" and not param.help
        if "config" not in (getattr(command.callback, "__module__", "") or "")
    ]
    assert undescribed == []


def test_help_is_not_cut_at_80_columns() -> None:
    result = run("verify", "breaches", "--help")
    assert result.exit_code == 0
    assert "An organisation's unified social credit code, or a masked ID as shown." in result.output
    assert max(len(line) for line in result.output.splitlines()) > 80


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.output.startswith("commitledger 0.")


def test_page_size_bound_agrees_with_the_records() -> None:
    assert cli_verify.MAX_PAGE_SIZE == MAX_PAGE_SIZE


def test_config_file_names_agree_with_the_settings() -> None:
    assert cli_config.CONFIG_FILE == settings.CONFIG_FILE
    assert cli_config.DEFAULT_DATA_DIR == settings.DEFAULT_DATA_DIR
    assert cli_config.MASTER_KEY_FILE == settings.MASTER_KEY_FILE


def test_sign_takes_many_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("keys", "new", "--out", "applicant.pem").exit_code == 0
    files = []
    for n in range(3):
        made = run("new", "--matter", "BJ-HRSS-0001", "--applicant", EXAMPLES / "applicant.json",
                   "--out", f"c{n}.json")  # fmt: skip
        assert made.exit_code == 0, made.output
        files.append(f"c{n}.json")
    result = run("sign", *files, "--key", "applicant.pem", "--json")
    assert result.exit_code == 0, result.output
    signed = one_json(result.stdout)["signed"]
    assert [item["signed"] for item in signed] == [f"c{n}.signed.json" for n in range(3)]
    for item in signed:
        document = SignedCommitment.from_json_obj(json.loads(Path(item["signed"]).read_text()))
        assert "0x" + document.hash().hex() == item["hash"]
    refused = run("sign", *files, "--key", "applicant.pem", "--out", "x.json")
    assert refused.exit_code == 2 and "--out names one file" in refused.output


@pytest.fixture
def fw(tmp_path: Path, embedded_chain: Chain) -> Iterator[FeedWorld]:
    with feed_world(embedded_chain, tmp_path) as opened:
        opened.follower().step()
        yield opened


def test_feed_export_takes_json(fw: FeedWorld, tmp_path: Path) -> None:
    url = f"sqlite:///{fw.world.db_path}"
    since = (date.today() - timedelta(days=2)).isoformat()
    args = ("feed", "export", "--since", since, "--scope", "all", "--store", url)
    lines = run(*args).stdout.splitlines()
    document = one_json(run(*args, "--json").stdout)
    assert document["ok"] is True
    assert document["count"] == len(lines) > 0
    assert document["records"] == [json.loads(line) for line in lines]
    out = tmp_path / "feed.jsonl"
    written = one_json(run(*args, "--out", out, "--json").stdout)
    assert written == {"ok": True, "count": len(lines), "file": str(out)}
    bad = run("feed", "export", "--since", "yesterday", "--json")
    assert bad.exit_code == 2
    assert one_json(bad.stdout)["error"]["type"] == "BadInput"


def test_the_packages_surfaces_load_nothing_heavy_until_a_name_is_used() -> None:
    # `from ledger import X` at the top of a command module is cheap because the packages'
    # surfaces are lazy: importing them loads none of the slow libraries.
    probe = f"import sys, ledger, verifier\nprint([m for m in {HEAVY[:5]!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

"""The README's shell session ("A session against a local anvil node") runs verbatim."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from ledger import AnvilNode

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


def readme_session() -> str:
    """The first ```sh block after the heading line of the anvil session, as written."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("A session against a local anvil node")
    found = re.search(r"```sh\n(.*?)```", text[start:], re.DOTALL)
    assert found is not None, "README.md lost its anvil session"
    return found.group(1)


def test_the_readme_session_runs_verbatim(anvil: AnvilNode, tmp_path: Path) -> None:
    session = readme_session()
    assert "commitledger new --matter" in session
    # The session runs from a checkout: its .venv and examples/, everything else fresh.
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", session],
        cwd=tmp_path,
        env={**os.environ, "RPC": anvil.url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"stdout: {done.stdout}\nstderr: {done.stderr}"
    assert "verified" in done.stdout
    assert "NOT verified" not in done.stdout
    deployment = json.loads((tmp_path / "data" / "deployment.json").read_text())
    assert deployment["rpc"] == anvil.url
    assert len(list((tmp_path / "data" / "proofs").glob("0x*.json"))) == 1

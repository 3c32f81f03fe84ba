"""`serve --demo` after the README's session: refused, with what to do, before any write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledger import AnvilNode

pytestmark = [pytest.mark.integration]

COMMITLEDGER = Path(sys.executable).parent / "commitledger"


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {  # the README's session: none of the suite's settings but its keys' passphrase
        k: v
        for k, v in os.environ.items()
        if not k.startswith("COMMITLEDGER_") or k.startswith("COMMITLEDGER_KEY_")
    }
    return subprocess.run(
        [str(COMMITLEDGER), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_serve_demo_refuses_the_directory_deploy_wrote(anvil: AnvilNode, tmp_path: Path) -> None:
    made = run("keys", "new", "--kind", "ethereum", "--out", "admin.key", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    deployed = run("deploy", "--rpc", anvil.url, "--admin-key", "admin.key", "--fund", cwd=tmp_path)
    assert deployed.returncode == 0, deployed.stderr
    before = sorted(p.name for p in (tmp_path / "data").iterdir())
    assert before == ["deployment.json"]

    served = run("serve", "--demo", "--port", "1", cwd=tmp_path)
    assert served.returncode == 1, served.stderr
    lines = served.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "not written by the demo's managed chain" in lines[0]
    assert "--data-dir demo-data" in lines[0]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == before  # nothing written

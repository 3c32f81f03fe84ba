"""Privacy of `commitledger pipeline run`, which connects by JSON-RPC, so against anvil: its
output and logs never carry a name or an ID number."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from support.deployment import HRSS, deploy
from support.privacy import assert_nothing_personal, cli, debug_everywhere, explain, log_text
from support.service_keys import open_master_key, write_account

from api.demo import sample_commitments
from ledger import MASTER_KEY_ENV, AnvilNode, Chain, Commitment, SigningKey, sign_commitment

KEY = SigningKey.generate("ed25519")


@pytest.fixture
def master_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "master.key"
    result = cli("keys", "new", "--kind", "master", "--out", path)
    assert result.exit_code == 0, explain(result)
    return path


def _write_signed(directory: Path, documents: Sequence[Commitment]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, document in enumerate(documents):
        path = directory / f"commitment{i:03d}.json"
        body = sign_commitment(document, KEY).to_json_obj()
        path.write_text(json.dumps(body, ensure_ascii=False, indent=2), encoding="utf-8")
        paths.append(path)
    return paths


@pytest.mark.usefixtures("restore_signals")
def test_cli_pipeline_run_outputs_and_logs_nothing_personal(
    anvil: AnvilNode,
    tmp_path: Path,
    master_key_file: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    debug_everywhere(caplog)
    deployment = deploy(Chain.connect(anvil.url, kind="anvil"))
    record = {
        "rpc": anvil.url,
        "chain_id": deployment.chain.chain_id,
        "contract": deployment.ledger.address,
        "department": HRSS,
    }
    deployment_file = tmp_path / "deployment.json"
    deployment_file.write_text(json.dumps(record))
    registrar = deployment.registrar
    key_file = write_account(tmp_path / "registrar.json", registrar)  # the suite's passphrase
    documents = list(sample_commitments(8, seed=67, department=HRSS))
    paths = _write_signed(tmp_path / "in", documents)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    env = {MASTER_KEY_ENV: "0x" + open_master_key(master_key_file).master_key.hex()}
    submitted = cli("submit", *paths, "--store", url, env=env)
    assert submitted.exit_code == 0, explain(submitted)
    outputs = [submitted]
    for flag in ([], ["--json"]):
        run = cli(
            "pipeline",
            "run",
            "--key",
            key_file,
            "--store",
            url,
            "--deployment",
            deployment_file,
            "--max-age",
            "0",
            "--until-idle",
            "--timeout",
            "60",
            *flag,
        )
        assert run.exit_code == 0, explain(run)
        outputs.append(run)
    assert json.loads(outputs[-1].stdout)["anchored"] == len(documents)
    for result in outputs:
        assert_nothing_personal(result.stdout, documents, "stdout")
        assert_nothing_personal(result.stderr, documents, "stderr")
    assert any(r.name == "commitledger.pipeline" for r in caplog.records), "logs not captured"
    assert_nothing_personal(log_text(caplog), documents, "the logs")

"""A commitment code belongs to one commitment of its department: a second commitment under
a code already used is refused at intake (409 `code-taken` at HTTP, exit 2 at the CLI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import write_json
from support.deployment import Deployment
from support.service_keys import write_master_key
from support.service_world import ServiceWorld, assert_problem, open_service, post_signed, snapshot
from typer.testing import CliRunner

from api.cli import app
from ledger import Acknowledgement, CodeTakenError, new_salt, sign_commitment


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    opened = open_service(tmp_path, embedded_deployment)
    yield opened
    opened.context.close()


def test_a_second_commitment_under_a_used_code_is_refused(world: ServiceWorld) -> None:
    first = world.signed()
    intake = world.context.intake
    assert intake is not None
    assert intake.submit(first).new
    assert intake.submit(first) == Acknowledgement(first.hash(), False)  # the same again
    again = sign_commitment(
        first.document.model_copy(update={"salt": new_salt()}), world.applicant_key
    )
    with pytest.raises(CodeTakenError, match=f"code {first.document.code} is already used"):
        intake.submit(again)
    other = world.signed()
    twins = [
        sign_commitment(other.document.model_copy(update={"salt": new_salt()}), world.applicant_key)
        for _ in range(2)
    ]
    results = intake.submit_many(twins)  # two new ones under one code in one call
    assert isinstance(results[0], Acknowledgement)
    assert isinstance(results[1], CodeTakenError)


def test_a_used_code_is_a_409_problem_and_stores_nothing(world: ServiceWorld) -> None:
    first = world.signed()
    world.submit(first)
    again = sign_commitment(
        first.document.model_copy(update={"salt": new_salt()}), world.applicant_key
    )
    before = snapshot(world)
    problem = assert_problem(post_signed(world, again, **world.auth()), 409, "code-taken")
    assert first.document.code in problem["detail"]
    assert snapshot(world) == before


def test_a_used_code_is_refused_by_submit_with_exit_2(tmp_path: Path, world: ServiceWorld) -> None:
    first = world.signed()
    again = sign_commitment(
        first.document.model_copy(update={"salt": new_salt()}), world.applicant_key
    )
    key_file = tmp_path / "master.key"
    write_master_key(key_file)
    key_file.chmod(0o600)
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    first_file = write_json(tmp_path / "first.json", first.to_json_obj())
    again_file = write_json(tmp_path / "again.json", again.to_json_obj())
    common = ["--store", url, "--master-key-file", str(key_file)]
    accepted = CliRunner().invoke(app, ["submit", str(first_file), *common])
    assert accepted.exit_code == 0, accepted.output
    refused = CliRunner().invoke(app, ["submit", str(again_file), *common])
    assert refused.exit_code == 2, refused.output
    assert f"refused {again_file}: commitment code" in refused.stderr
    assert "already used" in refused.stderr


def test_a_refused_file_is_named_once(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    write_master_key(key_file)
    key_file.chmod(0o600)
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'{"schema_version": 1,')
    args = ["submit", str(broken), "--store", f"sqlite:///{tmp_path / 'cli.db'}"]
    refused = CliRunner().invoke(app, [*args, "--master-key-file", str(key_file)])
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.count("broken.json") == 1, refused.stderr
    assert "not valid JSON" in refused.stderr

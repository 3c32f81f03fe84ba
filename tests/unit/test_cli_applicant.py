"""`commitledger applicant`: signing a challenge with the key file, and the whole exchange
against a running service."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import one_line, unreachable_rpc
from support.deployment import Deployment
from support.privacy import cli, explain
from support.service_world import ServiceWorld, open_service

from api.demo import running
from api.service import challenge_message
from ledger import SigningKey, hex32, verify_bytes


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    opened = open_service(tmp_path, embedded_deployment)
    yield opened
    opened.context.close()


def key_file(path: Path, key: SigningKey) -> Path:
    path.write_bytes(key.to_pem())
    return path


@pytest.mark.parametrize("algorithm", ["ed25519", "ecdsa-p256"])
def test_sign_challenge_prints_a_signature_the_key_verifies(tmp_path: Path, algorithm: str) -> None:
    key = SigningKey.generate(algorithm)  # type: ignore[arg-type]
    commitment = "0x" + "11" * 32
    result = cli(
        "applicant", "sign-challenge", "--key", key_file(tmp_path / "k.pem", key),
        "--challenge", "ab" * 32, "--commitment", commitment,
    )  # fmt: skip
    assert result.exit_code == 0, explain(result)
    signature = one_line(result.stdout)
    message = challenge_message("ab" * 32, bytes.fromhex("11" * 32))  # type: ignore[arg-type]
    assert verify_bytes(key.algorithm, key.public_key_b64(), signature, message)


def test_sign_challenge_refuses_a_malformed_challenge(tmp_path: Path) -> None:
    key = key_file(tmp_path / "k.pem", SigningKey.generate("ed25519"))
    result = cli(
        "applicant", "sign-challenge", "--key", key, "--challenge", "xyz",
        "--commitment", "0x" + "11" * 32, "--json",
    )  # fmt: skip
    assert result.exit_code == 2, explain(result)
    assert json.loads(result.stdout)["ok"] is False


def test_view_does_the_whole_exchange(tmp_path: Path, world: ServiceWorld) -> None:
    signed = world.signed()
    digest = world.submit(signed)
    key = key_file(tmp_path / "applicant.pem", world.applicant_key)
    with running(world.client.app) as url:
        result = cli("applicant", "view", "--key", key, "--commitment", hex32(digest),
                     "--url", url, "--json")  # fmt: skip
        assert result.exit_code == 0, explain(result)
        view = json.loads(result.stdout)
        assert [c["hash"] for c in view["commitments"]] == [hex32(digest)]
        assert view["applicant_name"] == signed.document.applicant.name

        result = cli("applicant", "view", "--key", key, "--commitment", hex32(digest),
                     "--url", url)  # fmt: skip
        assert result.exit_code == 0, explain(result)
        assert hex32(digest) in result.stdout
        assert "verification: not verified yet" in result.stdout

        other = key_file(tmp_path / "other.pem", SigningKey.generate("ed25519"))
        result = cli("applicant", "view", "--key", other, "--commitment", hex32(digest),
                     "--url", url)  # fmt: skip
        assert result.exit_code == 1, explain(result)
        assert "401" in result.stdout + result.stderr


def test_view_says_when_no_service_answers(tmp_path: Path) -> None:
    key = key_file(tmp_path / "k.pem", SigningKey.generate("ed25519"))
    result = cli("applicant", "view", "--key", key, "--commitment", "0x" + "11" * 32,
                 "--url", unreachable_rpc())  # fmt: skip
    assert result.exit_code == 3, explain(result)

"""GET /v1/reports/{evidence}: the signed report whose hash is on chain, public for a published
breach and token-scoped otherwise, checked from outside as an auditor would (issue 12,
finding 6): keccak256 of its RFC 8785 bytes against the chain with web3 directly, the
signature against the key at /v1/feed/keys, by the README's own snippet."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from sqlalchemy import select
from support.deployment import HRSS, MARKET, Deployment, deploy
from support.service_keys import write_all_keys
from support.service_world import ServiceWorld, assert_problem, open_service
from web3 import Web3

from api.demo import create_app as sample_app
from api.demo import planted, running, sample_commitments
from api.run_start import chain_day
from api.service.routes.reports import public_copy
from ledger import (
    Chain,
    Commitment,
    Hash32,
    SignedCommitment,
    canonical_bytes,
    hex32,
    keccak256,
    outcome_outbox,
    sign_commitment,
    to_hash32,
)

README = Path(__file__).resolve().parents[2] / "README.md"
POINTS = "BJ-HRSS-0001"  # general severity, no task for a person: the engine decides
WITNESS_ID = "110101198001011234"  # someone's resident ID typed into a decision's note


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    write_all_keys(tmp_path / "keys", embedded_deployment)
    opened = open_service(tmp_path, embedded_deployment)
    yield opened
    opened.context.close()


def _anchored(world: ServiceWorld) -> tuple[Hash32, SignedCommitment]:
    signed = world.signed()
    while signed.document.matter_code != POINTS:
        signed = world.signed()
    digest = world.submit(signed)
    world.anchor()
    return digest, signed


def _decide(world: ServiceWorld, digest: Hash32, outcome: str, note: str) -> None:
    response = world.client.post(
        f"/v1/verifications/{hex32(digest)}/decision",
        json={"outcome": outcome, "note": note},
        headers=world.auth(HRSS, "verifier"),
    )
    assert response.status_code == 200, response.text
    if outcome == "false":  # proposed and notified: the officer confirms it (issue #14)
        _confirm(world, digest, note)


def _confirm(world: ServiceWorld, digest: Hash32, reasons: str) -> None:
    response = world.client.post(
        f"/v1/commitments/{hex32(digest)}/confirm-breach",
        json={"reasons": reasons},
        headers=world.auth(HRSS, "verifier"),
    )
    assert response.status_code == 200, response.text


def _evidence(world: ServiceWorld, digest: Hash32) -> str:
    """The evidence of the commitment's last recorded outcome, from the store."""
    with world.store.engine.connect() as connection:
        evidence = connection.execute(
            select(outcome_outbox.c.evidence)
            .where(outcome_outbox.c.commitment_hash == digest)
            .order_by(outcome_outbox.c.id.desc())
            .limit(1)
        ).scalar_one()
    return hex32(bytes(evidence))


def _url(evidence: str) -> str:
    return f"/v1/reports/{evidence}"


def _readme_snippet() -> dict[str, Any]:
    """The README's 'Checking a report' Python code, run: its names."""
    section = README.read_text(encoding="utf-8").split("## Checking a report", 1)[1]
    [code] = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.S)
    names: dict[str, Any] = {}
    exec(compile(code, "README.md#checking-a-report", "exec"), names)
    return names


# ---------------------------------------------------------------------- who may read


def test_a_published_breachs_report_is_public_and_hashes_to_its_evidence(
    world: ServiceWorld,
) -> None:
    digest, signed = _anchored(world)
    _decide(world, digest, "false", "on-site check: no such premises")
    evidence = _evidence(world, digest)

    response = world.client.get(_url(evidence))  # no token

    assert response.status_code == 200, response.text
    served = response.json()
    assert (served["scope"], served["masked"], served["evidence"]) == ("public", False, evidence)
    assert hex32(keccak256(canonical_bytes(served["report"]))) == evidence
    place = served["on_chain"]
    assert place["contract"] == world.deployment.ledger.address
    assert place["chain_id"] == world.deployment.chain.chain_id
    assert (place["commitment_hash"], place["status"]) == (hex32(digest), "breached")
    assert place["transaction"].startswith("0x") and place["block"] > 0
    applicant = signed.document.applicant
    assert applicant.name not in response.text and applicant.id_number not in response.text


def test_a_report_of_no_published_breach_needs_its_departments_token(
    world: ServiceWorld,
) -> None:
    digest, _ = _anchored(world)
    _decide(world, digest, "needs_manual", "documents to be seen at the counter")
    url = _url(_evidence(world, digest))

    assert_problem(world.client.get(url), 401, "unauthorized")
    assert_problem(
        world.client.get(url, headers=world.auth(MARKET, "verifier")), 403, "other-department"
    )
    own = world.client.get(url, headers=world.auth(HRSS, "registrar"))
    assert own.status_code == 200, own.text
    assert (own.json()["scope"], own.json()["on_chain"]["status"]) == ("department", "needs_manual")


@pytest.mark.parametrize(
    ("evidence", "status", "slug"),
    [
        ("0x" + "ab" * 32, 404, "not-found"),
        ("0x1234", 400, "invalid-hash"),
        ("not-a-hash", 400, "invalid-hash"),
    ],
)
def test_unknown_and_malformed_evidence(
    world: ServiceWorld, evidence: str, status: int, slug: str
) -> None:
    assert_problem(world.client.get(_url(evidence)), status, slug)


def test_an_id_typed_into_a_note_is_masked_in_the_public_copy_only(world: ServiceWorld) -> None:
    digest, _ = _anchored(world)
    _decide(world, digest, "false", f"witness {WITNESS_ID} saw no premises")
    evidence = _evidence(world, digest)

    public = world.client.get(_url(evidence)).json()
    assert public["masked"] is True
    assert WITNESS_ID not in public["report"]["note"]
    assert hex32(keccak256(canonical_bytes(public["report"]))) != evidence  # and it says so
    own = world.client.get(_url(evidence), headers=world.auth(HRSS, "verifier")).json()
    assert own["masked"] is False and WITNESS_ID in own["report"]["note"]
    assert hex32(keccak256(canonical_bytes(own["report"]))) == evidence


def test_the_public_copy_masks_a_name_or_id_a_source_or_a_person_wrote() -> None:
    """Reports name no person by design; should a source's value or a note carry the
    applicant's name or ID, the public copy masks it in observed values, details and notes."""
    secrets_ = [("110101199001011234", "110101**********34"), ("张三丰", "张**")]
    report = {
        "outcome": "false",
        "note": "张三丰 did not appear",
        "decided_by": "engine",
        "comparisons": [
            {
                "key": "employer_name",
                "claimed": {"op": "==", "value": "x"},
                "observed": "张三丰",
                "detail": "d",
                "source": "employer_records",
                "data_hash": "0x" + "0" * 64,
            },
            {
                "key": "months",
                "claimed": {"op": ">=", "value": 84},
                "observed": {"consecutive_months": 3},
                "detail": "A run of 3 months.",
            },
        ],
    }
    public = public_copy(report, secrets_)
    assert public is not report
    text = json.dumps(public, ensure_ascii=False)
    assert "张三丰" not in text and "110101199001011234" not in text
    assert public["note"] == "张** did not appear"
    assert public["comparisons"][0]["observed"] == "张**"
    assert public["comparisons"][1] == report["comparisons"][1]
    clean = {**report, "note": "", "comparisons": report["comparisons"][1:]}
    assert public_copy(clean, secrets_) is clean  # nothing to mask: served as signed


# ---------------------------------------------------------------------- an auditor on anvil


def _planted_false(count: int = 1) -> list[Commitment]:
    """Sample applicants to the points matter whose criminal record the data service holds."""
    found = []
    for commitment in sample_commitments(10**5, seed=41, department=HRSS):
        if commitment.matter_code == POINTS and planted(commitment.applicant.id_number) == "false":
            found.append(commitment)
            if len(found) == count:
                return found
    raise AssertionError("no planted false applicant")


def test_an_auditor_checks_an_engine_breach_report_against_anvil_with_the_readme_snippet(
    tmp_path: Path, anvil_chain: Chain
) -> None:
    deployment = deploy(anvil_chain)
    write_all_keys(tmp_path / "keys", deployment)
    token = secrets.token_urlsafe(16)
    token_file = tmp_path / "sources.token"
    token_file.write_text(token + "\n")
    # A run is dated the day of the blocks that record it (the node's clock).
    day = chain_day(deployment.ledger)
    with running(sample_app(token)) as sources:
        world = open_service(
            tmp_path, deployment, today=day, sources_url=sources, sources_token_file=token_file
        )
        try:
            [commitment] = _planted_false()
            signed = sign_commitment(commitment, world.applicant_key)
            world.submit(signed)
            world.anchor()
            ran = world.client.post(
                "/v1/verifications/run",
                json={"on": day.isoformat()},
                headers=world.auth(HRSS, "verifier"),
            )
            assert ran.status_code == 200, ran.text
            assert ran.json()["outcomes"] == {"false": 1}
            [proposed] = world.client.get(
                "/v1/notices", headers=world.auth(HRSS, "verifier")
            ).json()["notices"]
            _confirm(world, to_hash32(proposed["commitment_hash"]), "the finding stands")

            # The auditor: the public list, the chain (web3, not the service's helpers), the keys.
            [breach] = world.client.get("/v1/breaches").json()["records"]
            w3 = Web3(Web3.HTTPProvider(anvil_chain.url))
            contract = deployment.ledger.address
            snippet = _readme_snippet()
            ledger = w3.eth.contract(address=contract, abi=[snippet["OUTCOME_RECORDED"]])
            logs = ledger.events.OutcomeRecorded().get_logs(
                from_block=0,
                argument_filters={"commitment": bytes.fromhex(breach["commitment_hash"][2:])},
            )
            [log] = [entry for entry in logs if entry["args"]["to"] == 6]  # Status.BREACHED
            evidence = hex32(bytes(log["args"]["evidence"]))
            response = world.client.get(_url(evidence))
            assert response.status_code == 200, response.text
            served = response.json()
            keys = world.client.get("/v1/feed/keys").json()

            snippet["check_report"](served, keys, w3, contract)

            # What it compared, and with what: each comparison names its source and data.
            comparisons = served["report"]["comparisons"]
            assert comparisons and all(
                c["source"] and isinstance(c["answered_at"], int) and c["data_hash"]
                for c in comparisons
            )
            criminal = next(c for c in comparisons if c["key"] == "no_criminal_record")
            assert criminal["verdict"] == "disagree"
            assert criminal["data_hash"] == hex32(
                keccak256(canonical_bytes({"no_criminal_record": False}))
            )
            # No personal data in the public copy: the observed values and notes hold none.
            applicant = commitment.applicant
            assert served["masked"] is False
            for secret in (applicant.name, applicant.id_number):
                assert secret not in response.text

            # A forged report, a forged signature, another contract: each is caught.
            forged = {**served, "report": {**served["report"], "outcome": "kept"}}
            with pytest.raises(ValueError, match="does not hash"):
                snippet["check_report"](forged, keys, w3, contract)
            rehashed = {**forged, "evidence": hex32(keccak256(canonical_bytes(forged["report"])))}
            with pytest.raises(InvalidSignature):
                snippet["check_report"](rehashed, keys, w3, contract)
            other = "0x" + "11" * 20  # a contract the auditor did not pin records nothing here
            with pytest.raises(ValueError, match="no OutcomeRecorded"):
                snippet["check_report"](served, keys, w3, other)
        finally:
            world.context.close()

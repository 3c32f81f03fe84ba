"""Department actions over HTTP with the department's own keys: withdraw, decide (and
rectify), repair, run verification; their refusals by the engine and by the contract."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from support.deployment import HRSS, HRSS_ID, MARKET, Deployment
from support.service_keys import write_account, write_all_keys
from support.service_world import DAY, ServiceWorld, assert_problem, open_service, snapshot

from api.demo import create_app as sample_app
from api.demo import running
from ledger import Hash32, SignedCommitment, Status, hex32, outcome_outbox
from verifier import earliest_repair
from verifier.engine import VerificationEngine

GENERAL_MATTERS = {"BJ-HRSS-0001", "BJ-HRSS-0002"}  # general severity: 3 months before repair


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    write_all_keys(tmp_path / "keys", embedded_deployment)
    opened = open_service(tmp_path, embedded_deployment)
    yield opened
    opened.context.close()


def anchored(
    world: ServiceWorld, matters: set[str] | None = None
) -> tuple[Hash32, SignedCommitment]:
    """A stored and anchored HRSS commitment (of one of `matters` if given)."""
    signed = world.signed()
    while matters is not None and signed.document.matter_code not in matters:
        signed = world.signed()
    digest = world.submit(signed)
    world.anchor()
    return digest, signed


def on_chain(world: ServiceWorld, digest: Hash32) -> Status:
    return world.deployment.ledger.status_of(HRSS_ID, digest).status


def decide(world: ServiceWorld, digest: Hash32, outcome: str, **extra: str) -> httpx.Response:
    return world.client.post(
        f"/v1/verifications/{hex32(digest)}/decision",
        json={"outcome": outcome, "note": "on-site check at the applicant's premises", **extra},
        headers=world.auth(HRSS, "verifier"),
    )


def confirm(world: ServiceWorld, digest: Hash32) -> httpx.Response:
    """The officer publishes the proposed breach (a person's `false` is notified first)."""
    return world.client.post(
        f"/v1/commitments/{hex32(digest)}/confirm-breach",
        json={"reasons": "the on-site check stands"},
        headers=world.auth(HRSS, "verifier"),
    )


# ---------------------------------------------------------------------- withdraw


def test_a_registrar_withdraws_an_anchored_commitment(world: ServiceWorld) -> None:
    digest, _ = anchored(world)
    response = world.client.post(
        f"/v1/commitments/{hex32(digest)}/withdraw",
        json={"note": "withdrawn at the counter before the decision"},
        headers=world.auth(HRSS, "registrar"),
    )
    assert response.status_code == 200, response.text
    assert response.json()["verification"]["state"] == "withdrawn"
    assert on_chain(world, digest) == Status.WITHDRAWN


def test_withdrawing_a_commitment_not_anchored_yet_is_refused_by_the_contract(
    world: ServiceWorld,
) -> None:
    digest = world.submit(world.signed())
    response = world.client.post(
        f"/v1/commitments/{hex32(digest)}/withdraw",
        json={"note": "too soon"},
        headers=world.auth(HRSS, "registrar"),
    )
    problem = assert_problem(response, 409, "contract-refused")
    assert problem["error"] == "NotAnchored"
    assert on_chain(world, digest) == Status.NONE


# ---------------------------------------------------------------------- decisions


def test_a_verifier_records_a_manual_decision_with_its_evidence(world: ServiceWorld) -> None:
    digest, _ = anchored(world)
    response = decide(world, digest, "needs_manual", evidence="file 2026-0042")
    assert response.status_code == 200, response.text
    verification = response.json()["verification"]
    assert (verification["state"], verification["outcome_status"]) == ("manual", "needs_manual")
    assert on_chain(world, digest) == Status.NEEDS_MANUAL
    with world.store.engine.connect() as connection:
        reports = connection.execute(
            select(outcome_outbox.c.report).where(outcome_outbox.c.commitment_hash == digest)
        ).scalars()
        assert any("file 2026-0042" in report for report in reports)


def test_kept_on_an_open_mismatch_rectifies_it(world: ServiceWorld) -> None:
    digest, _ = anchored(world)
    assert decide(world, digest, "mismatch").status_code == 200
    found = world.context.records.verification(digest)
    assert found is not None and found.state == "mismatch" and found.rectify_by is not None
    response = decide(world, digest, "kept", evidence="transfer certificate")
    assert response.status_code == 200, response.text
    assert response.json()["verification"]["state"] == "kept"
    assert on_chain(world, digest) == Status.KEPT


def test_a_rectification_after_its_window_is_refused(world: ServiceWorld) -> None:
    digest, _ = anchored(world)
    assert decide(world, digest, "mismatch").status_code == 200
    found = world.context.records.verification(digest)
    assert found is not None and found.rectify_by is not None
    late = found.rectify_by + timedelta(days=1)
    world.context.today = lambda: late
    problem = assert_problem(decide(world, digest, "kept"), 409, "action-refused")
    assert "too late" in problem["detail"]
    assert on_chain(world, digest) == Status.MISMATCH


def test_a_decision_the_chain_would_refuse_is_a_409_and_sends_nothing(
    world: ServiceWorld,
) -> None:
    digest, _ = anchored(world)
    assert decide(world, digest, "kept").status_code == 200
    block = world.deployment.chain.block_number()
    problem = assert_problem(decide(world, digest, "false"), 409, "action-refused")
    assert "KEPT on chain" in problem["detail"]
    assert world.deployment.chain.block_number() == block
    assert on_chain(world, digest) == Status.KEPT


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"outcome": "breached", "note": "x"},
        {"outcome": "kept", "note": ""},
        {"outcome": "kept", "note": "x" * 1001},
        {"outcome": "kept", "note": "x", "evidence": "e" * 201},
        {"outcome": "kept", "note": "x", "by": "someone"},
    ],
)
def test_a_bad_decision_body_is_a_422_and_changes_nothing(
    world: ServiceWorld, body: dict[str, str]
) -> None:
    digest, _ = anchored(world)
    before = snapshot(world)
    response = world.client.post(
        f"/v1/verifications/{hex32(digest)}/decision",
        json=body,
        headers=world.auth(HRSS, "verifier"),
    )
    assert_problem(response, 422, "invalid-request")
    assert snapshot(world) == before
    assert on_chain(world, digest) == Status.NONE


def test_the_contract_refuses_an_account_bound_to_another_department(
    world: ServiceWorld,
) -> None:
    """The service lets the HRSS token through; the key it holds for HRSS is (wrongly) the
    market bureau's verifier, and the contract says no."""
    digest, _ = anchored(world)
    path = world.tmp_path / "keys" / HRSS / "verifier.json"
    path.unlink()
    write_account(path, world.deployment.other_verifier)
    problem = assert_problem(decide(world, digest, "needs_manual"), 403, "contract-forbidden")
    assert problem["error"] == "AccountBoundElsewhere"
    assert HRSS in problem["detail"]
    assert on_chain(world, digest) == Status.NONE


def test_a_missing_key_is_a_503_naming_the_file_not_the_key(world: ServiceWorld) -> None:
    digest, _ = anchored(world)
    (world.tmp_path / "keys" / HRSS / "report.pem").unlink()
    problem = assert_problem(decide(world, digest, "needs_manual"), 503, "key-missing")
    assert "report" in problem["detail"] and f"{HRSS}/report.pem" in problem["detail"]
    assert "PRIVATE" not in problem["detail"]
    assert on_chain(world, digest) == Status.NONE
    assert world.context.report_key(HRSS) is None
    assert world.context.report_key(MARKET) is not None


# ---------------------------------------------------------------------- repair


def test_a_breach_is_repaired_after_its_minimum_period_only(world: ServiceWorld) -> None:
    digest, _ = anchored(world, GENERAL_MATTERS)
    assert decide(world, digest, "false").status_code == 200
    assert world.context.records.search_breaches(DAY).total == 0  # proposed, notified
    assert confirm(world, digest).status_code == 200
    [record] = world.context.records.search_breaches(DAY).records
    url = f"/v1/breaches/{record.id}/repair"
    body = {"decision": "信用修复：当事人已纠正失信行为"}
    headers = world.auth(HRSS, "verifier")
    too_early = assert_problem(
        world.client.post(url, json=body, headers=headers), 409, "action-refused"
    )
    assert earliest_repair(record).isoformat() in too_early["detail"]
    assert on_chain(world, digest) == Status.BREACHED
    later = earliest_repair(record)
    world.context.today = lambda: later
    response = world.client.post(url, json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": record.id,
        "commitment_hash": hex32(digest),
        "status": "repaired",
        "repaired_on": later.isoformat(),
        "on_chain_status": "repaired",
    }
    assert world.context.records.search_breaches(later).total == 0


def test_withdraw_decide_and_repair_build_no_verification_run(
    world: ServiceWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("a department action built a verification engine")

    # No engine means no event loop, no data sources and no decider for one transaction.
    monkeypatch.setattr(VerificationEngine, "__init__", no_run)
    withdrawn, _ = anchored(world)
    response = world.client.post(
        f"/v1/commitments/{hex32(withdrawn)}/withdraw",
        json={"note": "withdrawn at the counter"},
        headers=world.auth(HRSS, "registrar"),
    )
    assert response.status_code == 200, response.text
    breached, _ = anchored(world, GENERAL_MATTERS)
    assert decide(world, breached, "false").status_code == 200
    assert confirm(world, breached).status_code == 200
    [record] = world.context.records.search_breaches(DAY).records
    later = earliest_repair(record)
    world.context.today = lambda: later
    response = world.client.post(
        f"/v1/breaches/{record.id}/repair",
        json={"decision": "信用修复：当事人已纠正失信行为"},
        headers=world.auth(HRSS, "verifier"),
    )
    assert response.status_code == 200, response.text
    assert (on_chain(world, withdrawn), on_chain(world, breached)) == (
        Status.WITHDRAWN,
        Status.REPAIRED,
    )


def test_repairing_an_unknown_breach_is_a_404(world: ServiceWorld) -> None:
    response = world.client.post(
        "/v1/breaches/BR-0000000000000000/repair",
        json={"decision": "x"},
        headers=world.auth(HRSS, "verifier"),
    )
    assert_problem(response, 404, "not-found")


# ---------------------------------------------------------------------- runs


def test_a_verifier_runs_verification_against_the_data_service(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    token = secrets.token_urlsafe(16)
    token_file = tmp_path / "sources.token"
    token_file.write_text(token + "\n")
    write_all_keys(tmp_path / "keys", embedded_deployment)
    with running(sample_app(token)) as url:
        world = open_service(
            tmp_path, embedded_deployment, sources_url=url, sources_token_file=token_file
        )
        try:
            hashes = [world.submit(world.signed()) for _ in range(4)]
            world.submit(world.signed(MARKET))
            world.anchor()
            response = world.client.post(
                "/v1/verifications/run",
                json={"on": date(2026, 11, 27).isoformat()},
                headers=world.auth(HRSS, "verifier"),
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert (body["department"], body["on"], body["examined"]) == (HRSS, "2026-11-27", 4)
            assert sum(body["outcomes"].values()) == 4
            assert body["recorded_on_chain"] == 4
            assert body["transactions"] >= 1
            for digest in hashes:
                assert on_chain(world, digest) != Status.NONE
            # Without a body the run is for today; nothing is due any more.
            again = world.client.post("/v1/verifications/run", headers=world.auth(HRSS, "verifier"))
            assert again.status_code == 200, again.text
            assert again.json()["examined"] == 0
        finally:
            world.context.close()


def test_a_run_for_a_day_to_come_is_refused_and_changes_nothing(world: ServiceWorld) -> None:
    digest, _ = anchored(world)
    before, standing = snapshot(world), on_chain(world, digest)
    block = world.deployment.chain.block_number()
    tomorrow = world.context.today() + timedelta(days=1)
    response = world.client.post(
        "/v1/verifications/run",
        json={"on": tomorrow.isoformat()},
        headers=world.auth(HRSS, "verifier"),
    )
    assert_problem(response, 422, "invalid-request")
    assert snapshot(world) == before
    assert world.deployment.chain.block_number() == block
    assert on_chain(world, digest) == standing


def test_a_run_before_the_first_commitment_is_refused_and_changes_nothing(
    world: ServiceWorld,
) -> None:
    digest, _ = anchored(world)
    before, standing = snapshot(world), on_chain(world, digest)
    response = world.client.post(
        "/v1/verifications/run",
        json={"on": "1900-01-01", "all_manual": True},
        headers=world.auth(HRSS, "verifier"),
    )
    assert_problem(response, 422, "invalid-request")
    assert "before the first commitment" in response.json()["detail"]
    assert snapshot(world) == before
    assert on_chain(world, digest) == standing


def test_a_run_without_a_data_service_is_refused_unless_all_manual(world: ServiceWorld) -> None:
    digest, _ = anchored(world)
    before, standing = snapshot(world), on_chain(world, digest)
    refused = world.client.post(
        "/v1/verifications/run", json={}, headers=world.auth(HRSS, "verifier")
    )
    assert_problem(refused, 503, "unavailable")
    assert "all_manual" in refused.json()["detail"]
    assert snapshot(world) == before
    assert on_chain(world, digest) == standing
    response = world.client.post(
        "/v1/verifications/run", json={"all_manual": True}, headers=world.auth(HRSS, "verifier")
    )
    assert response.status_code == 200, response.text
    assert response.json()["outcomes"] == {"needs_manual": 1}
    assert on_chain(world, digest) == Status.NEEDS_MANUAL


# ---------------------------------------------------------------------- notice and defence


def test_a_statement_filed_and_accepted_by_the_officer_leaves_no_breach(
    world: ServiceWorld,
) -> None:
    digest, _ = anchored(world, GENERAL_MATTERS)
    assert decide(world, digest, "false").status_code == 200
    url = f"/v1/commitments/{hex32(digest)}"
    shown = world.client.get(f"{url}/notice", headers=world.auth(HRSS, "verifier"))
    assert shown.status_code == 200, shown.text
    assert shown.json()["state"] == "open" and shown.json()["defence_working_days"] == 5
    assert on_chain(world, digest) == Status.PROPOSED

    text = "我已于上月补缴社保，附缴费凭证。"
    too_long = world.client.post(
        f"{url}/statement", json={"text": "x" * 5001}, headers=world.auth(HRSS, "registrar")
    )
    assert too_long.status_code == 422
    filed = world.client.post(
        f"{url}/statement", json={"text": text}, headers=world.auth(HRSS, "registrar")
    )
    assert filed.status_code == 200, filed.text
    assert len(filed.json()["statements"]) == 1 and text not in filed.text

    decided = world.client.post(
        f"{url}/defence-decision",
        json={"accept": True, "outcome": "kept", "reasons": "payment proven"},
        headers=world.auth(HRSS, "verifier"),
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["state"] == "defended" and decided.json()["outcome"] == "kept"
    assert on_chain(world, digest) == Status.KEPT
    assert world.context.records.search_breaches(DAY).total == 0
    again = world.client.post(
        f"{url}/confirm-breach",
        json={"reasons": "too late"},
        headers=world.auth(HRSS, "verifier"),
    )
    assert again.status_code == 409
    listed = world.client.get("/v1/notices", headers=world.auth(HRSS, "verifier"))
    assert [n["commitment_hash"] for n in listed.json()["notices"]] == [hex32(digest)]

"""Rectification evidence (整改材料), issue #14: during a mismatch's rectification window the
applicant (their session's JSON route or the page's form) or an officer of the commitment's
department files it; it is sealed in the store, listed for the department only, decided by
a verifier (accepted: the mismatch is kept on chain, the filing's id in the note), shown to
the applicant with its state, destroyed by `commitledger erase`, never logged. Outside the
window it is refused naming the deadline, and nothing is stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from support.deployment import HRSS, HRSS_ID, MARKET, Deployment
from support.privacy import assert_nothing_personal, debug_everywhere, log_text
from support.service_keys import write_all_keys
from support.service_world import ServiceWorld, assert_problem, open_service
from support.verify_cli import cli, explain

from api.service import run_lifecycles, sign_challenge
from api.service.applicant_access import SESSION_COOKIE
from api.service.engines import department_actions
from api.service.rectifications import rectification_records
from ledger import (
    MASTER_KEY_ENV,
    ErasedError,
    Hash32,
    SignedCommitment,
    Status,
    hex32,
    outcome_outbox,
)
from verifier.records.rectifications import rectifications

EVIDENCE = "已补缴2026年11月社保费，附缴费凭证编号 JF-2026-1188（秘密证据 secret evidence）"


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    write_all_keys(tmp_path / "keys", embedded_deployment)
    opened = open_service(tmp_path, embedded_deployment, feed=False, anchoring=False)
    yield opened
    opened.context.close()


def mismatched(world: ServiceWorld) -> tuple[Hash32, SignedCommitment, date]:
    """An HRSS commitment, anchored, decided a mismatch today: its rectification deadline."""
    signed = world.signed()
    digest = world.submit(signed)
    world.anchor()
    with department_actions(world.context, HRSS) as actions:
        actions.decide(digest, "mismatch", world.context.today(), "verifier", "records differ")
    verification = world.context.records.verification(digest)
    assert verification is not None and verification.rectify_by is not None
    return digest, signed, verification.rectify_by


def stored_count(world: ServiceWorld) -> int:
    rectification_records(world.context)  # its table exists
    with world.store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(rectifications)).scalar())


def bearer(world: ServiceWorld, digest: Hash32) -> dict[str, str]:
    issued = world.client.post("/v1/applicant/challenge", json={"commitment": hex32(digest)}).json()
    signature = sign_challenge(world.applicant_key, issued["challenge"], digest)
    answer = world.client.post(
        "/v1/applicant/session",
        json={
            "commitment": hex32(digest),
            "challenge": issued["challenge"],
            "signature": signature,
        },
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def view_of(world: ServiceWorld, headers: dict[str, str], digest: Hash32) -> dict[str, Any]:
    response = world.client.get("/v1/applicant/commitments", headers=headers)
    assert response.status_code == 200, response.text
    [item] = [c for c in response.json()["commitments"] if c["hash"] == hex32(digest)]
    return dict(item)


def officer_files(world: ServiceWorld, digest: Hash32, department: str = HRSS) -> Any:
    return world.client.post(
        f"/v1/commitments/{hex32(digest)}/rectification",
        json={"text": EVIDENCE},
        headers=world.auth(department, "registrar"),
    )


def decide(world: ServiceWorld, filing_id: str, accepted: bool, department: str = HRSS) -> Any:
    return world.client.post(
        f"/v1/rectifications/{filing_id}/decision",
        json={"accepted": accepted, "note": "凭证核实无误"},
        headers=world.auth(department, "verifier"),
    )


def test_the_applicant_files_evidence_and_its_acceptance_keeps_the_mismatch(
    world: ServiceWorld,
) -> None:
    digest, _signed, deadline = mismatched(world)
    headers = bearer(world, digest)
    assert "rectification" in {f["kind"] for f in view_of(world, headers, digest)["filings"]}

    answer = world.client.post(
        f"/v1/applicant/commitments/{hex32(digest)}/rectification",
        json={"text": EVIDENCE},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    filed = answer.json()["rectification"]
    assert (filed["state"], filed["filed_by"]) == ("open", "applicant")
    assert filed["rectify_by"] == deadline.isoformat()
    assert EVIDENCE not in answer.text
    [shown] = view_of(world, headers, digest)["rectifications"]
    assert (shown["id"], shown["state"]) == (filed["id"], "open")

    listed = world.client.get("/v1/rectifications", headers=world.auth(HRSS, "registrar"))
    assert [r["id"] for r in listed.json()["rectifications"]] == [filed["id"]]
    assert EVIDENCE not in listed.text  # texts stay sealed; lists need no key
    assert rectification_records(world.context, sealing=True).text(filed["id"]) == EVIDENCE

    decided = decide(world, filed["id"], accepted=True)
    assert decided.status_code == 200, decided.text
    assert decided.json()["state"] == "accepted"
    assert world.deployment.ledger.status_of(HRSS_ID, digest).status == Status.KEPT
    verification = world.context.records.verification(digest)
    assert verification is not None and verification.state == "kept"
    report = (verification.report or {}).get("report", {})
    assert filed["id"] in str(report)  # the note names the evidence accepted
    item = view_of(world, headers, digest)
    assert [r["state"] for r in item["rectifications"]] == ["accepted"]
    assert "rectification" not in {f["kind"] for f in item["filings"]}
    assert_problem(decide(world, filed["id"], accepted=True), 409, "action-refused")


def test_the_page_form_files_evidence_and_shows_it(world: ServiceWorld) -> None:
    digest, _signed, _deadline = mismatched(world)
    form = {"commitment": hex32(digest)}
    page = world.client.post("/applicant/challenge", data=form)
    challenge_hex = page.text.split('name="challenge" value="', 1)[1][:64]
    signature = sign_challenge(world.applicant_key, challenge_hex, digest)
    signed_in = world.client.post(
        "/applicant/session",
        data={**form, "challenge": challenge_hex, "signature": signature},
        follow_redirects=False,
    )
    assert SESSION_COOKIE in signed_in.cookies
    page = world.client.get("/applicant").text
    assert 'data-kind="rectification"' in page
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    answer = world.client.post(
        "/applicant/file",
        data={**form, "kind": "rectification", "text": EVIDENCE, "csrf": csrf},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    page = world.client.get(answer.headers["location"]).text
    assert "已提交整改材料" in page
    assert '<li class="rectification" data-state="open">' in page
    assert EVIDENCE not in page
    assert stored_count(world) == 1


def test_an_officer_files_for_the_applicant_and_a_rejection_leaves_the_window(
    world: ServiceWorld,
) -> None:
    digest, _signed, _deadline = mismatched(world)
    answer = officer_files(world, digest)
    assert answer.status_code == 201, answer.text
    assert answer.json()["filed_by"] == "officer"
    decided = decide(world, answer.json()["id"], accepted=False)
    assert decided.json()["state"] == "rejected"
    assert world.deployment.ledger.status_of(HRSS_ID, digest).status == Status.MISMATCH
    again = officer_files(world, digest)  # the window still runs: more evidence may come
    assert again.status_code == 201, again.text
    headers = bearer(world, digest)
    states = [r["state"] for r in view_of(world, headers, digest)["rectifications"]]
    assert states == ["rejected", "open"]


def test_outside_the_window_it_is_refused_naming_the_deadline(world: ServiceWorld) -> None:
    digest, _signed, deadline = mismatched(world)
    headers = bearer(world, digest)
    world.context.today = lambda: deadline + timedelta(days=1)
    refused = world.client.post(
        f"/v1/applicant/commitments/{hex32(digest)}/rectification",
        json={"text": EVIDENCE},
        headers=headers,
    )
    body = assert_problem(refused, 409, "action-refused")
    assert deadline.isoformat() in body["detail"]
    assert body["rectify_by"] == deadline.isoformat()
    assert_problem(officer_files(world, digest), 409, "action-refused")
    assert stored_count(world) == 0
    item = view_of(world, headers, digest)  # the view no longer offers it
    assert item["verification_state"] == "mismatch"
    assert "rectification" not in {f["kind"] for f in item["filings"]}

    # No mismatch at all (not verified yet): refused too, nothing stored.
    fresh = world.submit(world.signed())
    assert_problem(officer_files(world, fresh), 409, "action-refused")
    assert stored_count(world) == 0


def test_another_department_can_neither_file_nor_see_nor_decide(world: ServiceWorld) -> None:
    digest, _signed, _deadline = mismatched(world)
    assert_problem(officer_files(world, digest, MARKET), 403, "other-department")
    assert stored_count(world) == 0
    filed = officer_files(world, digest).json()
    listed = world.client.get("/v1/rectifications", headers=world.auth(MARKET, "registrar"))
    assert listed.status_code == 200 and listed.json()["rectifications"] == []
    assert_problem(decide(world, filed["id"], True, MARKET), 403, "other-department")
    assert world.deployment.ledger.status_of(HRSS_ID, digest).status == Status.MISMATCH
    assert rectification_records(world.context).get(filed["id"]).state == "open"  # type: ignore[union-attr]
    assert world.client.get("/v1/rectifications").status_code == 401
    response = world.client.get(
        "/v1/rectifications", params={"who": "x"}, headers=world.auth(HRSS, "registrar")
    )
    assert response.status_code == 422


def test_erasure_destroys_the_evidence_text(world: ServiceWorld) -> None:
    digest, _signed, _deadline = mismatched(world)
    filed = officer_files(world, digest).json()
    records = rectification_records(world.context, sealing=True)
    assert records.text(filed["id"]) == EVIDENCE
    result = cli("erase", hex32(digest), "--store", world.settings.store_url, "--json")
    assert result.exit_code == 0, explain(result)
    with pytest.raises(ErasedError):
        records.text(filed["id"])
    assert records.get(filed["id"]) is not None  # dates and state stay


def test_the_command_lists_and_decides(world: ServiceWorld) -> None:
    digest, _signed, _deadline = mismatched(world)
    filed = officer_files(world, digest).json()
    data_dir = str(world.settings.data_dir)
    listed = cli("rectification", "list", "--department", HRSS, "--data-dir", data_dir, "--json")
    assert listed.exit_code == 0, explain(listed)
    assert filed["id"] in listed.output and EVIDENCE not in listed.output
    other = cli("rectification", "list", "--department", MARKET, "--data-dir", data_dir)
    assert filed["id"] not in other.output
    key = {MASTER_KEY_ENV: "0x" + world.vault.master_key.hex()}
    texts = cli(
        "rectification", "list", "--department", HRSS, "--data-dir", data_dir, "--texts", env=key
    )
    assert texts.exit_code == 0, explain(texts)
    assert "JF-2026-1188" in texts.output  # only when the department asks for the texts
    decide_args = ("--department", HRSS, "--outcome", "rejected", "--note", "凭证不全")
    elsewhere = cli(
        "rectification", "decide", filed["id"], "--department", MARKET, "--outcome",
        "rejected", "--note", "x", "--data-dir", data_dir, env=key,
    )  # fmt: skip
    assert elsewhere.exit_code == 1, explain(elsewhere)
    decided = cli(
        "rectification",
        "decide",
        filed["id"],
        *decide_args,
        "--data-dir",
        data_dir,
        "--json",
        env=key,
    )
    assert decided.exit_code == 0, explain(decided)
    assert '"state": "rejected"' in decided.output
    assert world.deployment.ledger.status_of(HRSS_ID, digest).status == Status.MISMATCH


def test_filing_logs_no_text(world: ServiceWorld, caplog: pytest.LogCaptureFixture) -> None:
    digest, signed, _deadline = mismatched(world)
    debug_everywhere(caplog)
    headers = bearer(world, digest)
    world.client.post(
        f"/v1/applicant/commitments/{hex32(digest)}/rectification",
        json={"text": EVIDENCE},
        headers=headers,
    )
    filed = officer_files(world, digest).json()
    decide(world, filed["id"], accepted=True)
    logged = log_text(caplog) + "\n".join(str(r.__dict__) for r in caplog.records)
    assert "secret evidence" not in logged and "JF-2026-1188" not in logged
    assert_nothing_personal(logged, [signed.document], "the logs")


def test_evidence_filed_in_time_holds_the_breach_until_it_is_decided(world: ServiceWorld) -> None:
    """The lifecycle job does not propose a breach over evidence filed in time and not yet
    decided; accepted after the window, the mismatch is kept; rejected, the next job
    proposes the breach."""
    accepted_one, _signed, deadline = mismatched(world)
    rejected_one, _signed, other_deadline = mismatched(world)  # its matter's window may differ
    accepted = officer_files(world, accepted_one).json()
    rejected = officer_files(world, rejected_one).json()
    later = max(deadline, other_deadline) + timedelta(days=1)
    world.context.today = lambda: later
    [summary] = run_lifecycles(world.context, later, [HRSS])
    assert summary.overdue == 0
    ledger = world.deployment.ledger
    assert ledger.status_of(HRSS_ID, accepted_one).status == Status.MISMATCH
    assert ledger.status_of(HRSS_ID, rejected_one).status == Status.MISMATCH

    assert decide(world, accepted["id"], accepted=True).json()["state"] == "accepted"
    assert ledger.status_of(HRSS_ID, accepted_one).status == Status.KEPT
    assert decide(world, rejected["id"], accepted=False).json()["state"] == "rejected"
    [summary] = run_lifecycles(world.context, later, [HRSS])
    assert summary.overdue == 1
    assert ledger.status_of(HRSS_ID, rejected_one).status == Status.PROPOSED
    assert ledger.status_of(HRSS_ID, accepted_one).status == Status.KEPT


def test_a_decision_that_died_after_its_rectify_action_is_marked_without_a_second(
    world: ServiceWorld,
) -> None:
    digest, _signed, _deadline = mismatched(world)
    filed = officer_files(world, digest).json()
    with department_actions(world.context, HRSS) as actions:  # the attempt's action, then death
        actions.rectify(digest, world.context.today(), "HRSS verifier",
                        f"rectification evidence {filed['id']}: 凭证核实无误")  # fmt: skip
    sent = outbox_count(world)
    assert_problem(decide(world, filed["id"], accepted=False), 409, "action-refused")
    again = decide(world, filed["id"], accepted=True)
    assert again.status_code == 200, again.text
    assert again.json()["state"] == "accepted"
    assert outbox_count(world) == sent  # nothing sent twice
    assert world.deployment.ledger.status_of(HRSS_ID, digest).status == Status.KEPT


def outbox_count(world: ServiceWorld) -> int:
    with world.store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(outcome_outbox)).scalar())

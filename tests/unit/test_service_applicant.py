"""The applicant's own view over HTTP: a challenge signed with the commitment's key opens a
session over that key's commitments of the same person (and no other's), which shows each
claim against the department's data, deadlines and breach records; refusals change nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.deployment import HRSS, Deployment
from support.privacy import assert_nothing_personal, debug_everywhere, log_text
from support.service_world import ServiceWorld, assert_problem, open_service, snapshot

from api.service import ApplicantAuth, sign_challenge
from api.service.applicant_access import SESSION_COOKIE
from ledger import Hash32, SignedCommitment, SigningKey, hex32, new_salt, sign_commitment
from verifier.records import NoticeRecords


class Clock:
    def __init__(self) -> None:
        self.now = 2_000_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    opened = open_service(tmp_path, embedded_deployment)
    yield opened
    opened.context.close()


@pytest.fixture
def clock(world: ServiceWorld) -> Clock:
    """The app's challenges and sessions on a clock the test moves."""
    ticking = Clock()
    world.client.app.state.applicant_auth = ApplicantAuth.create(clock=ticking)  # type: ignore[attr-defined]
    return ticking


def again(signed: SignedCommitment, key: SigningKey, offset: int = 500_000) -> SignedCommitment:
    """A new commitment by the same person (fresh salt and code) signed with `key`."""
    document = signed.document
    serial = (int(document.code[-6:]) + offset) % 1_000_000
    copy = document.model_copy(
        update={"salt": new_salt(), "code": f"{document.code[:-6]}{serial:06d}"}
    )
    return sign_commitment(copy, key)


def challenge(world: ServiceWorld, digest: Hash32) -> dict[str, Any]:
    response = world.client.post("/v1/applicant/challenge", json={"commitment": hex32(digest)})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def session(
    world: ServiceWorld,
    digest: Hash32,
    key: SigningKey | None = None,
    issued: dict[str, Any] | None = None,
) -> httpx.Response:
    issued = issued or challenge(world, digest)
    signature = sign_challenge(key or world.applicant_key, issued["challenge"], digest)
    return world.client.post(
        "/v1/applicant/session",
        json={
            "commitment": hex32(digest),
            "challenge": issued["challenge"],
            "signature": signature,
        },
    )


def bearer(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_the_challenge_names_the_exact_message_and_the_command(world: ServiceWorld) -> None:
    digest = world.submit(world.signed())
    body = challenge(world, digest)
    assert body["commitment"] == hex32(digest)
    assert (
        body["message"]
        == f"commitledger-applicant-challenge:v1:{body['challenge']}:{hex32(digest)}"
    )
    assert f"--challenge {body['challenge']} --commitment {hex32(digest)}" in body["sign_with"]


def test_no_challenge_for_an_unknown_commitment(world: ServiceWorld) -> None:
    response = world.client.post(
        "/v1/applicant/challenge", json={"commitment": hex32(os.urandom(32))}
    )
    assert_problem(response, 404, "not-found")
    response = world.client.post("/v1/applicant/challenge", json={"commitment": "0x12"})
    assert response.status_code == 422


def test_the_key_that_signed_opens_a_session_over_its_own_commitments(world: ServiceWorld) -> None:
    first = world.signed()
    mine = [world.submit(first), world.submit(again(first, world.applicant_key))]
    other_key = SigningKey.generate("ecdsa-p256")
    same_person_other_key = world.submit(again(first, other_key, offset=700_000))
    someone_else = world.submit(world.signed())  # same key, another person
    headers = bearer(session(world, mine[0]))
    listed = session(world, mine[1]).json()["commitments"]
    assert sorted(listed) == sorted(hex32(h) for h in mine)

    response = world.client.get("/v1/applicant/commitments", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    shown = {c["hash"] for c in response.json()["commitments"]}
    assert shown == {hex32(h) for h in mine}
    assert hex32(same_person_other_key) not in response.text
    assert hex32(someone_else) not in response.text
    assert response.json()["applicant_name"] == first.document.applicant.name

    # The other key proves its own commitment, and sees only it.
    theirs = bearer(session(world, same_person_other_key, other_key))
    shown = world.client.get("/v1/applicant/commitments", headers=theirs).json()["commitments"]
    assert [c["hash"] for c in shown] == [hex32(same_person_other_key)]


def test_another_key_is_refused_and_changes_nothing(world: ServiceWorld, clock: Clock) -> None:
    digest = world.submit(world.signed())
    issued = challenge(world, digest)
    before = snapshot(world)
    response = session(world, digest, SigningKey.generate("ed25519"), issued)
    assert_problem(response, 401, "applicant-unauthorized")
    assert snapshot(world) == before
    assert bearer(session(world, digest, issued=issued))  # the challenge still works


def test_a_challenge_works_once(world: ServiceWorld, clock: Clock) -> None:
    digest = world.submit(world.signed())
    issued = challenge(world, digest)
    assert bearer(session(world, digest, issued=issued))
    assert_problem(session(world, digest, issued=issued), 401, "applicant-unauthorized")


def test_an_expired_challenge_is_refused(world: ServiceWorld, clock: Clock) -> None:
    digest = world.submit(world.signed())
    issued = challenge(world, digest)
    clock.now += 300
    assert_problem(session(world, digest, issued=issued), 401, "applicant-unauthorized")


def test_a_challenge_for_one_commitment_does_not_open_another(world: ServiceWorld) -> None:
    first, second = world.submit(world.signed()), world.submit(world.signed())
    issued = challenge(world, first)
    signature = sign_challenge(world.applicant_key, issued["challenge"], second)
    response = world.client.post(
        "/v1/applicant/session",
        json={
            "commitment": hex32(second),
            "challenge": issued["challenge"],
            "signature": signature,
        },
    )
    assert_problem(response, 401, "applicant-unauthorized")


def test_a_session_expires_and_ends(world: ServiceWorld, clock: Clock) -> None:
    digest = world.submit(world.signed())
    headers = bearer(session(world, digest))
    assert world.client.get("/v1/applicant/commitments", headers=headers).status_code == 200
    clock.now += 900
    response = world.client.get("/v1/applicant/commitments", headers=headers)
    assert_problem(response, 401, "applicant-unauthorized")
    headers = bearer(session(world, digest))
    assert world.client.delete("/v1/applicant/session", headers=headers).status_code == 204
    assert world.client.get("/v1/applicant/commitments", headers=headers).status_code == 401


def test_without_a_session_nothing_is_shown(world: ServiceWorld) -> None:
    response = world.client.get("/v1/applicant/commitments")
    assert_problem(response, 401, "applicant-unauthorized")
    response = world.client.get("/v1/applicant/commitments", headers=world.auth(HRSS))
    assert_problem(response, 401, "applicant-unauthorized")  # a department's token is not one


def _verified(
    world: ServiceWorld, digest: Hash32, signed: SignedCommitment
) -> list[dict[str, Any]]:
    """Schedule and record a mismatch whose report compares every claim (store only)."""
    records = world.context.records
    document = signed.document

    class Due:
        day = date(2026, 12, 1)
        provisional = False

    records.schedule(digest, document.matter_code, document.department, Due())
    comparisons = [
        {
            "key": claim.key,
            "verdict": "mismatch",
            "claimed": {"op": claim.op, "value": claim.value},
            "observed": 12,
            "detail": "the department's records show fewer",
            "source": "hrss-social-insurance",
            "answered_at": 1_796_000_000,
            "data_hash": "0x" + "ab" * 32,
        }
        for claim in document.claims
    ]
    report = {
        "outcome": "mismatch",
        "comparisons": comparisons,
        "decided_at": "2026-11-27T08:00:00Z",
        "decided_by": "engine",
    }
    records.record_outcome(
        digest,
        "mismatch",
        outcome_status=3,
        evidence=Hash32(os.urandom(32)),
        report={"report": report, "signature": {}},
        tx_hash=os.urandom(32),
        block_number=9,
        rectify_by=date(2026, 12, 11),
    )
    return comparisons


def test_the_view_shows_comparisons_deadlines_and_breaches(world: ServiceWorld) -> None:
    signed = world.signed()
    digest = world.submit(signed)
    world.anchor()
    comparisons = _verified(world, digest, signed)
    record = world.add_breach(commitment=digest)
    headers = bearer(session(world, digest))
    [item] = world.client.get("/v1/applicant/commitments", headers=headers).json()["commitments"]

    assert item["verification_state"] == "mismatch"
    assert item["anchored"] is True
    claim = item["claims"][0]
    assert claim["key"] == comparisons[0]["key"]
    assert claim["verdict"] == "mismatch"
    assert claim["source"] == "hrss-social-insurance"
    assert claim["answered_at"] == "2026-11-30T00:53:20Z"
    assert claim["data_hash"] == "0x" + "ab" * 32
    deadlines = {(d["kind"], d["day"]) for d in item["deadlines"]}
    assert ("verification_due", "2026-12-01") in deadlines
    assert ("rectify_by", "2026-12-11") in deadlines
    assert ("publication_until", record.publication_end.isoformat()) in deadlines
    assert ("earliest_repair", "2027-02-20") in deadlines
    [breach] = item["breaches"]
    assert (breach["id"], breach["status"]) == (record.id, "published")
    kinds = {(f["kind"], f["breach_id"]) for f in item["filings"]}
    assert kinds == {  # no notice open: no statement to file
        ("rectification", None),
        ("objection", record.id),
        ("repair", record.id),
    }


def test_a_filing_outside_the_session_is_not_found(world: ServiceWorld) -> None:
    mine, theirs = world.submit(world.signed()), world.submit(world.signed())
    headers = bearer(session(world, mine))
    response = world.client.post(
        f"/v1/applicant/commitments/{hex32(theirs)}/statement",
        json={"text": "I was abroad"},
        headers=headers,
    )
    assert_problem(response, 404, "not-found")


# ---------------------------------------------------------------------- the page


def _page_session(world: ServiceWorld, digest: Hash32) -> str:
    form = {"commitment": hex32(digest)}
    page = world.client.post("/applicant/challenge", data=form)
    assert page.status_code == 200, page.text
    challenge_hex = page.text.split('name="challenge" value="', 1)[1][:64]
    signature = sign_challenge(world.applicant_key, challenge_hex, digest)
    answer = world.client.post(
        "/applicant/session",
        data={**form, "challenge": challenge_hex, "signature": signature},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/applicant" in cookie
    return answer.cookies[SESSION_COOKIE]


def test_the_page_signs_in_with_a_cookie_and_shows_the_commitment(world: ServiceWorld) -> None:
    signed = world.signed()
    digest = world.submit(signed)
    assert "承诺哈希" in world.client.get("/applicant").text  # the sign-in form
    _page_session(world, digest)
    page = world.client.get("/applicant")
    assert page.status_code == 200
    assert hex32(digest) in page.text
    assert signed.document.applicant.name in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "<script" not in page.text


def test_a_wrong_signature_on_the_page_is_a_401_page(world: ServiceWorld) -> None:
    digest = world.submit(world.signed())
    page = world.client.post("/applicant/challenge", data={"commitment": hex32(digest)})
    challenge_hex = page.text.split('name="challenge" value="', 1)[1][:64]
    signature = sign_challenge(SigningKey.generate("ed25519"), challenge_hex, digest)
    answer = world.client.post(
        "/applicant/session",
        data={"commitment": hex32(digest), "challenge": challenge_hex, "signature": signature},
        follow_redirects=False,
    )
    assert answer.status_code == 401
    assert SESSION_COOKIE not in answer.headers.get("set-cookie", "")


def test_a_form_without_the_sessions_csrf_token_is_refused(world: ServiceWorld) -> None:
    digest = world.submit(world.signed())
    _page_session(world, digest)
    form = {"kind": "rectification", "commitment": hex32(digest), "text": "paid since"}
    answer = world.client.post("/applicant/file", data={**form, "csrf": "forged"})
    assert answer.status_code == 403
    page = world.client.get("/applicant").text
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    answer = world.client.post(
        "/applicant/file", data={**form, "csrf": csrf}, follow_redirects=False
    )
    assert answer.status_code == 409  # past the CSRF check: no mismatch to rectify
    assert "no mismatch open to rectification" in answer.text


# ---------------------------------------------------------------------- filings


def _file(
    world: ServiceWorld, headers: dict[str, str], digest: Hash32, kind: str, **body: Any
) -> httpx.Response:
    return world.client.post(
        f"/v1/applicant/commitments/{hex32(digest)}/{kind}", json=body, headers=headers
    )


def test_the_applicant_objects_to_their_own_published_record(world: ServiceWorld) -> None:
    digest = world.submit(world.signed())
    record = world.add_breach(commitment=digest)
    headers = bearer(session(world, digest))
    response = _file(world, headers, digest, "objection", text="not me", breach_id=record.id)
    assert response.status_code == 200, response.text
    appeal = response.json()["appeal"]
    assert (appeal["kind"], appeal["record_id"], appeal["filed_by"]) == (
        "objection",
        record.id,
        "applicant",
    )
    assert appeal["state"] == "open"
    [item] = world.client.get("/v1/applicant/commitments", headers=headers).json()["commitments"]
    [breach] = item["breaches"]
    assert [(a["id"], a["state"]) for a in breach["appeals"]] == [(appeal["id"], "open")]
    assert [f["kind"] for f in item["filings"]] == ["repair"]  # one objection open at a time
    due = [d for d in item["deadlines"] if d["kind"] == "decision_due"]
    assert due == [
        {
            "kind": "decision_due",
            "day": appeal["decide_by"],
            "provisional": False,
            "breach_id": record.id,
        }
    ]


def test_no_objection_to_another_commitments_record(world: ServiceWorld) -> None:
    mine, theirs = world.submit(world.signed()), world.submit(world.signed())
    record = world.add_breach(commitment=theirs)
    headers = bearer(session(world, mine))
    before = snapshot(world)
    response = _file(world, headers, mine, "objection", text="not me", breach_id=record.id)
    assert_problem(response, 404, "not-found")
    response = _file(world, headers, mine, "objection", text="not me")
    assert_problem(response, 422, "invalid-request")
    assert snapshot(world) == before


def test_repair_before_its_time_is_refused(world: ServiceWorld) -> None:
    digest = world.submit(world.signed())
    record = world.add_breach(commitment=digest)  # decided 2026-11-20, general: 3 months
    headers = bearer(session(world, digest))
    response = _file(world, headers, digest, "repair", text="paid", breach_id=record.id)
    body = assert_problem(response, 409, "action-refused")
    assert body["earliest_repair"] == "2027-02-20"


def test_the_applicant_routes_are_rate_limited(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    limited = open_service(
        tmp_path, embedded_deployment, rate_limit_burst=2, rate_limit_per_second=0.001
    )
    try:
        digest = limited.submit(limited.signed())
        body = {"commitment": hex32(digest)}
        for _ in range(2):
            assert limited.client.post("/v1/applicant/challenge", json=body).status_code == 200
        response = limited.client.post("/v1/applicant/challenge", json=body)
        assert_problem(response, 429, "rate-limited")
        assert_problem(limited.client.get("/applicant"), 429, "rate-limited")
    finally:
        limited.context.close()


def test_only_the_pages_forms_may_be_urlencoded(world: ServiceWorld) -> None:
    digest = world.submit(world.signed())
    form = {"commitment": hex32(digest)}
    assert world.client.post("/applicant/challenge", data=form).status_code == 200
    response = world.client.post("/v1/applicant/challenge", data=form)
    assert_problem(response, 400, "malformed-json")  # the JSON routes parse JSON only
    response = world.client.post("/v1/commitments", data=form, headers=world.auth())
    assert_problem(response, 400, "malformed-json")


def _propose(world: ServiceWorld, digest: Hash32) -> int:
    """A notice of a proposed breach of `digest`, as the engine issues one (store only)."""
    notices = NoticeRecords(world.store)
    body = {"kind": "proposed_breach", "commitment_hash": hex32(digest)}
    notice = notices.issue(
        digest,
        HRSS,
        {"report": body, "signature": {}},
        Hash32(os.urandom(32)),
        issued_on=date(2026, 11, 27),
        defence_days=5,
        defence_by=date(2026, 12, 4),
    )
    return notice.id


def test_the_applicant_answers_a_notice_with_a_statement(world: ServiceWorld) -> None:
    digest = world.submit(world.signed())
    headers = bearer(session(world, digest))
    world.client.get("/v1/applicant/commitments", headers=headers)  # the notice tables exist
    before = snapshot(world)
    response = _file(world, headers, digest, "statement", text="I was abroad then")
    body = assert_problem(response, 409, "action-refused")  # no breach proposed
    assert "I was abroad" not in body["detail"]
    assert snapshot(world) == before

    notice_id = _propose(world, digest)
    [item] = world.client.get("/v1/applicant/commitments", headers=headers).json()["commitments"]
    [notice] = item["notices"]
    assert (notice["id"], notice["state"], notice["defence_ends"]) == (
        str(notice_id),
        "open",
        "2026-12-04",
    )
    assert notice["notice"]["report"]["kind"] == "proposed_breach"
    assert {
        "kind": "defence_ends",
        "day": "2026-12-04",
        "provisional": False,
        "breach_id": None,
    } in (item["deadlines"])
    assert [f["kind"] for f in item["filings"]] == ["statement"]
    response = _file(world, headers, digest, "statement", text="I was abroad then")
    assert response.status_code == 200, response.text
    assert response.json()["statement"]["notice_id"] == notice_id
    notices = NoticeRecords(world.store)
    opened = notices.notice(notice_id)
    assert opened is not None
    [statement] = notices.statements_of(opened)
    assert statement.filed_by == "applicant"
    [item] = world.client.get("/v1/applicant/commitments", headers=headers).json()["commitments"]
    [filed] = item["notices"][0]["statements"]
    assert (filed["id"], filed["filed_by"]) == (statement.id, "applicant")
    _page_session(world, digest)
    page = world.client.get("/applicant").text
    assert "statements filed: 1" in page
    assert "I was abroad" not in page  # the text stays sealed


def test_the_applicant_flow_logs_no_personal_data_token_or_text(
    world: ServiceWorld, caplog: pytest.LogCaptureFixture
) -> None:
    signed = world.signed()
    digest = world.submit(signed)
    record = world.add_breach(commitment=digest)
    debug_everywhere(caplog)
    issued = challenge(world, digest)
    wrong = session(world, digest, SigningKey.generate("ed25519"), issued)
    assert wrong.status_code == 401
    answer = session(world, digest, issued=issued)
    headers = bearer(answer)
    view = world.client.get("/v1/applicant/commitments", headers=headers)
    assert signed.document.applicant.name in view.text  # shown to the applicant...
    _file(world, headers, digest, "objection", text="秘密的理由 secret reason", breach_id=record.id)
    _page_session(world, digest)
    world.client.get("/applicant")
    logged = log_text(caplog) + "\n".join(str(r.__dict__) for r in caplog.records)
    assert_nothing_personal(logged, [signed.document], "the logs")  # ...never logged
    for secret in (answer.json()["token"], issued["challenge"], "secret reason"):
        assert secret not in logged


def test_an_erased_commitment_gives_no_challenge_and_leaves_the_view(world: ServiceWorld) -> None:
    first = world.signed()
    kept = world.submit(first)
    erased = world.submit(again(first, world.applicant_key))
    headers = bearer(session(world, kept))
    assert world.store.erase(erased)
    response = world.client.post("/v1/applicant/challenge", json={"commitment": hex32(erased)})
    assert_problem(response, 404, "not-found")
    shown = world.client.get("/v1/applicant/commitments", headers=headers).json()["commitments"]
    assert [c["hash"] for c in shown] == [hex32(kept)]


def test_a_form_posted_from_another_site_is_refused(world: ServiceWorld) -> None:
    digest = world.submit(world.signed())
    form = {"commitment": hex32(digest)}
    answer = world.client.post(
        "/applicant/challenge", data=form, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert answer.status_code == 403
    assert 'name="challenge"' not in answer.text  # no challenge issued
    same = world.client.post(
        "/applicant/challenge", data=form, headers={"Sec-Fetch-Site": "same-origin"}
    )
    assert same.status_code == 200

"""Departments' routes: submitting commitments, their status, and who may do what."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest
from support.deployment import HRSS, MARKET, Deployment
from support.service_world import ServiceWorld, assert_problem, open_service, post_signed, snapshot

from ledger import Hash32, SignedCommitment, hex32, new_salt, sign_commitment


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    opened = open_service(tmp_path, embedded_deployment)
    yield opened
    opened.context.close()


# ---------------------------------------------------------------------- submitting


def test_a_registrar_submits_a_commitment_of_its_department(world: ServiceWorld) -> None:
    signed = world.signed()
    response = post_signed(world, signed, **world.auth(HRSS, "registrar"))
    assert response.status_code == 202, response.text
    body = response.json()
    digest = hex32(signed.hash())
    assert body == {"hash": digest, "new": True, "status_url": f"/v1/commitments/{digest}/status"}
    assert response.headers["location"] == body["status_url"]
    stored = world.store.get(signed.hash())
    assert stored is not None
    assert (stored.department, stored.state) == (HRSS, "pending")
    assert world.context.intake is not None
    assert world.context.intake.open_document(signed.hash()) == signed


def test_submitting_the_same_document_twice_stores_it_once(world: ServiceWorld) -> None:
    signed = world.signed()
    assert post_signed(world, signed, **world.auth()).json()["new"] is True
    again = post_signed(world, signed, **world.auth())
    assert again.status_code == 202
    assert again.json()["new"] is False
    assert world.store.status().pending == 1


@pytest.mark.parametrize(
    ("body", "status", "slug", "words"),
    [
        (b"", 400, "malformed-json", ""),
        (b"{not json", 400, "malformed-json", ""),
        (b'{"document": {}, "document": {}}', 400, "malformed-json", "duplicate"),
        (b"[1, 2]", 422, "invalid-document", "signed commitment"),
        (b'{"document": {"schema_version": 1}, "signature": {}}', 422, "invalid-document", ""),
    ],
)
def test_a_bad_document_is_a_problem_naming_what_is_wrong(
    world: ServiceWorld, body: bytes, status: int, slug: str, words: str
) -> None:
    before = snapshot(world)
    response = world.client.post("/v1/commitments", content=body, headers=world.auth())
    problem = assert_problem(response, status, slug)
    assert words in problem["detail"]
    assert snapshot(world) == before


def test_a_document_missing_a_field_names_the_field(world: ServiceWorld) -> None:
    document = world.signed().to_json_obj()
    del document["document"]["salt"]
    response = world.client.post(
        "/v1/commitments", content=json.dumps(document).encode(), headers=world.auth()
    )
    assert "document.salt" in assert_problem(response, 422, "invalid-document")["detail"]


def test_a_signature_that_does_not_verify_is_refused(world: ServiceWorld) -> None:
    signed = world.signed()
    other = world.signed()
    forged = SignedCommitment(document=signed.document, signature=other.signature)
    before = snapshot(world)
    assert_problem(post_signed(world, forged, **world.auth()), 422, "invalid-signature")
    assert snapshot(world) == before


def test_another_departments_commitment_is_refused(world: ServiceWorld) -> None:
    signed = world.signed(MARKET)
    before = snapshot(world)
    problem = assert_problem(
        post_signed(world, signed, **world.auth(HRSS, "registrar")), 403, "other-department"
    )
    assert HRSS in problem["detail"]
    assert snapshot(world) == before
    accepted = post_signed(world, signed, **world.auth(MARKET, "registrar"))
    assert accepted.status_code == 202


def test_an_excluded_applicant_is_refused_with_a_stable_type(world: ServiceWorld) -> None:
    first = world.signed()
    world.submit(first)
    applicant = first.document.applicant
    fingerprint = world.vault.fingerprint(applicant.id_type, applicant.id_number)
    world.store.exclude(fingerprint, first.hash())
    # The same applicant commits again (same document but for a fresh salt).
    again = sign_commitment(
        first.document.model_copy(update={"salt": new_salt()}), world.applicant_key
    )
    before = snapshot(world)
    problem = assert_problem(post_signed(world, again, **world.auth()), 403, "applicant-excluded")
    assert "unrepaired breach" in problem["detail"]
    assert snapshot(world) == before


# ---------------------------------------------------------------------- status


@dataclass(frozen=True)
class Due:
    day: date
    provisional: bool = False


@pytest.mark.parametrize("role", ["registrar", "verifier"])
def test_a_department_follows_its_commitment(world: ServiceWorld, role: str) -> None:
    signed = world.signed()
    digest = world.submit(signed)
    url = f"/v1/commitments/{hex32(digest)}/status"
    pending = world.client.get(url, headers=world.auth(HRSS, role))
    assert pending.status_code == 200, pending.text
    body = pending.json()
    assert body["hash"] == hex32(digest)
    assert (body["department"], body["state"], body["erased"]) == (HRSS, "pending", False)
    assert body["matter_code"] == signed.document.matter_code
    assert body["batch"] is None
    assert body["verification"] is None
    assert signed.document.applicant.id_number not in pending.text
    world.anchor()
    world.context.records.schedule_many(
        [(digest, signed.document.matter_code, Due(date(2026, 12, 31)))], HRSS
    )
    anchored = world.client.get(url, headers=world.auth(HRSS, role)).json()
    assert anchored["state"] == "anchored"
    batch = anchored["batch"]
    found = world.store.anchoring_of(digest)
    assert found is not None
    assert batch["root"] == hex32(found[0].root)
    assert batch["state"] == "anchored"
    assert batch["transaction"] == hex32(found[0].tx_hash or b"")
    assert batch["block_number"] == found[0].block_number
    assert anchored["verification"] == {
        "state": "due",
        "due_on": "2026-12-31",
        "deadline_provisional": False,
        "rectify_by": None,
        "outcome_status": None,
        "transaction": None,
        "block_number": None,
    }


def test_status_of_an_unknown_commitment_is_a_404_problem(world: ServiceWorld) -> None:
    url = f"/v1/commitments/0x{'11' * 32}/status"
    assert_problem(world.client.get(url, headers=world.auth()), 404, "not-found")


@pytest.mark.parametrize("bad", ["0x1234", "zz" * 32, "0x" + "00" * 33])
def test_a_malformed_hash_is_a_400_problem(world: ServiceWorld, bad: str) -> None:
    response = world.client.get(f"/v1/commitments/{bad}/status", headers=world.auth())
    assert "64 hex digits" in assert_problem(response, 400, "invalid-hash")["detail"]


# ---------------------------------------------------------------------- who may do what


@dataclass(frozen=True)
class Action:
    """One department route, and the role it needs (None: either role)."""

    name: str
    role: str | None
    call: Callable[[ServiceWorld, Hash32, SignedCommitment, dict[str, str]], httpx.Response]


def _submit(w: ServiceWorld, _d: Hash32, s: SignedCommitment, h: dict[str, str]) -> httpx.Response:
    return w.client.post("/v1/commitments", content=w.body(s), headers=h)


def _status(w: ServiceWorld, d: Hash32, _s: SignedCommitment, h: dict[str, str]) -> httpx.Response:
    return w.client.get(f"/v1/commitments/{hex32(d)}/status", headers=h)


def _withdraw(
    w: ServiceWorld, d: Hash32, _s: SignedCommitment, h: dict[str, str]
) -> httpx.Response:
    body = {"note": "withdrawn at the counter"}
    return w.client.post(f"/v1/commitments/{hex32(d)}/withdraw", json=body, headers=h)


def _decide(w: ServiceWorld, d: Hash32, _s: SignedCommitment, h: dict[str, str]) -> httpx.Response:
    body = {"outcome": "false", "note": "on-site check", "evidence": "file 7"}
    return w.client.post(f"/v1/verifications/{hex32(d)}/decision", json=body, headers=h)


def _repair(w: ServiceWorld, d: Hash32, _s: SignedCommitment, h: dict[str, str]) -> httpx.Response:
    record_id = f"BR-{hex32(d)[2:18]}"  # the breach record `hrss_commitment` publishes
    return w.client.post(f"/v1/breaches/{record_id}/repair", json={"decision": "x"}, headers=h)


def _run(w: ServiceWorld, _d: Hash32, _s: SignedCommitment, h: dict[str, str]) -> httpx.Response:
    return w.client.post("/v1/verifications/run", json={"on": "2026-11-27"}, headers=h)


ACTIONS = [
    Action("submit", "registrar", _submit),
    Action("status", None, _status),
    Action("withdraw", "registrar", _withdraw),
    Action("decision", "verifier", _decide),
    Action("repair", "verifier", _repair),
    Action("run", "verifier", _run),
]


@pytest.fixture
def hrss_commitment(world: ServiceWorld) -> tuple[Hash32, SignedCommitment]:
    """A stored HRSS commitment, and a fresh HRSS document not yet submitted."""
    digest = world.submit(world.signed())
    world.add_breach(commitment=digest)
    return digest, world.signed()


CASES = [
    ("no token", 401, "unauthorized"),
    ("not a bearer token", 401, "unauthorized"),
    ("unknown token", 401, "unauthorized"),
    ("revoked token", 401, "unauthorized"),
    ("wrong role", 403, "wrong-role"),
    ("feed token named like the department", 403, "wrong-role"),
    ("other department", 403, "other-department"),
]


@pytest.mark.parametrize(
    ("action", "case", "status", "slug"),
    [
        pytest.param(action, *case, id=f"{action.name}-{case[0]}")
        for action in ACTIONS
        for case in CASES
        if not (case[0] == "wrong role" and action.role is None)  # either role may ask status
        # a run is always for the token's own department
        and not (case[0] == "other department" and action.name == "run")
    ],
)
def test_authorisation_matrix(
    world: ServiceWorld,
    hrss_commitment: tuple[Hash32, SignedCommitment],
    action: Action,
    case: str,
    status: int,
    slug: str,
) -> None:
    digest, fresh = hrss_commitment
    if case == "no token":
        headers: dict[str, str] = {}
    elif case == "not a bearer token":
        headers = {"Authorization": f"Basic {world.tokens[HRSS, 'registrar']}"}
    elif case == "unknown token":
        headers = {"Authorization": "Bearer clt_" + "x" * 43}
    elif case == "revoked token":
        revoked = world.context.tokens.issue(HRSS, action.role or "registrar").token
        assert world.context.tokens.revoke(revoked)
        headers = {"Authorization": f"Bearer {revoked}"}
    elif case == "wrong role":
        other_role = "verifier" if action.role == "registrar" else "registrar"
        headers = world.auth(HRSS, other_role)
    elif case.startswith("feed token"):
        feed_token = world.context.tokens.issue(HRSS, "feed", scope="all").token
        headers = {"Authorization": f"Bearer {feed_token}"}
    else:
        headers = world.auth(MARKET, action.role or "verifier")
    before = snapshot(world)
    block = world.deployment.chain.block_number()
    response = action.call(world, digest, fresh, headers)
    assert_problem(response, status, slug)
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert snapshot(world) == before
    assert world.deployment.chain.block_number() == block  # no transaction either


@pytest.mark.parametrize(
    ("path", "role", "body"),
    [
        ("/v1/commitments/0x{h}/withdraw", "registrar", {"note": "n"}),
        ("/v1/verifications/0x{h}/decision", "verifier", {"outcome": "kept", "note": "n"}),
        ("/v1/breaches/BR-{h}/repair", "verifier", {"decision": "d"}),
    ],
)
def test_actions_on_unknown_things_are_404_problems(
    world: ServiceWorld, path: str, role: str, body: dict[str, str]
) -> None:
    response = world.client.post(
        path.format(h="22" * 32), json=body, headers=world.auth(HRSS, role)
    )
    assert_problem(response, 404, "not-found")

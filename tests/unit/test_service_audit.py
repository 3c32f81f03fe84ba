"""Auditors' routes: anchors, portable proofs checked against the chain, document checks."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support.cli import unreachable_rpc
from support.deployment import HRSS, MARKET, Deployment
from support.service_keys import write_all_keys
from support.service_world import ServiceWorld, anchored, assert_problem, open_service

from api.service import chain_reads
from ledger import (
    Hash32,
    ProofBundle,
    SignedCommitment,
    check_bundle,
    decode_proof,
    encode_proof,
    hex32,
)


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    opened = open_service(tmp_path, embedded_deployment)
    yield opened
    opened.context.close()


def personal_data(signed: SignedCommitment) -> list[str]:
    applicant = signed.document.applicant
    return [applicant.name, applicant.id_number, signed.document.code, signed.document.salt]


# ---------------------------------------------------------------------- the anchor


def _rfc3339(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    shown = datetime.fromtimestamp(stamp, UTC)
    return shown.strftime("%Y-%m-%dT%H:%M:%S.") + f"{shown.microsecond // 1000:03d}Z"


def test_an_anchored_commitment_shows_its_anchor_and_outcome(world: ServiceWorld) -> None:
    [(digest, signed)] = anchored(world)
    response = world.client.get(f"/v1/audit/commitments/{hex32(digest)}")
    assert response.status_code == 200, response.text
    body = response.json()
    batch, _proof = world.store.anchoring_of(digest) or (None, ())
    assert batch is not None
    chain = world.deployment.chain
    assert body["hash"] == hex32(digest)
    assert body["state"] == "anchored"
    stored = world.store.get(digest)
    assert stored is not None
    # Times as RFC 3339 in UTC, not Unix floats (issue 15's finding).
    assert body["received_at"] == _rfc3339(stored.received_at)
    assert body["received_at"].endswith("Z") and "T" in body["received_at"]
    assert body["anchor"] == {
        "batch_root": hex32(batch.root),
        "batch_size": 1,
        "transaction": hex32(batch.tx_hash or b""),
        "block_number": batch.block_number,
        "block_hash": hex32(batch.block_hash or b""),
        "anchored_at": _rfc3339(batch.anchored_at),
        "confirmations": chain.block_number() - (batch.block_number or 0),
    }
    assert body["on_chain"] == {
        "reachable": True,
        "chain_id": chain.chain_id,
        "contract": world.deployment.ledger.address,
        "anchored": True,
        "status": None,  # not a published breach: the public is told it is anchored, no more
    }
    own = world.client.get(
        f"/v1/audit/commitments/{hex32(digest)}", headers=world.auth(HRSS, "verifier")
    ).json()
    assert own["on_chain"]["status"] == "none"  # a batch member: its record comes later
    assert body["verification_state"] is None
    assert body["proof_url"] == f"/v1/audit/commitments/{hex32(digest)}/proof"
    for secret in personal_data(signed):
        assert secret not in response.text


def test_confirmations_grow_with_the_chain(world: ServiceWorld) -> None:
    [(digest, _)] = anchored(world)
    url = f"/v1/audit/commitments/{hex32(digest)}"
    before = world.client.get(url).json()["anchor"]["confirmations"]
    world.deployment.chain.fund(world.deployment.outsider.address)  # one more block
    assert world.client.get(url).json()["anchor"]["confirmations"] == before + 1


def test_a_pending_commitment_has_no_anchor_yet(world: ServiceWorld) -> None:
    digest = world.submit(world.signed())
    body = world.client.get(f"/v1/audit/commitments/{hex32(digest)}").json()
    assert body["state"] == "pending"
    assert body["anchor"] is None
    assert body["proof_url"] is None
    assert body["on_chain"]["reachable"] is True
    assert body["on_chain"]["anchored"] is None
    assert body["on_chain"]["status"] is None  # only published breach states are named


def test_the_anchor_is_shown_when_the_node_is_down(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    world = open_service(tmp_path, embedded_deployment)
    [(digest, _)] = anchored(world)
    # A second service on the same store whose node does not answer.
    offline = open_service(tmp_path, embedded_deployment, rpc=unreachable_rpc())
    body = offline.client.get(f"/v1/audit/commitments/{hex32(digest)}").json()
    assert body["anchor"]["transaction"].startswith("0x")
    assert body["anchor"]["confirmations"] is None
    assert body["on_chain"]["reachable"] is False
    assert body["on_chain"]["status"] is None
    assert body["on_chain"]["chain_id"] == embedded_deployment.chain.chain_id


def test_a_node_that_never_answers_is_unreachable_not_a_hang(
    tmp_path: Path, embedded_deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chain_reads, "READ_TIMEOUT_S", 0.3)
    world = open_service(tmp_path, embedded_deployment)
    [(digest, _)] = anchored(world)
    with socket.socket() as silent:  # takes connections (its backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        offline = open_service(tmp_path, embedded_deployment, rpc=url)
        response = offline.client.get(f"/v1/audit/commitments/{hex32(digest)}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["on_chain"]["reachable"] is False
    assert body["on_chain"]["anchored"] is None and body["on_chain"]["status"] is None
    assert body["anchor"]["confirmations"] is None
    assert body["anchor"]["transaction"].startswith("0x")  # the store's facts still shown
    assert offline.context.chain.last_error is not None


def test_an_unknown_commitment_is_a_404_problem(world: ServiceWorld) -> None:
    assert_problem(world.client.get(f"/v1/audit/commitments/0x{'33' * 32}"), 404, "not-found")


def test_a_malformed_hash_is_a_400_problem(world: ServiceWorld) -> None:
    assert_problem(world.client.get("/v1/audit/commitments/0xabc"), 400, "invalid-hash")
    assert_problem(world.client.get("/v1/audit/commitments/0xabc/proof"), 400, "invalid-hash")


# ---------------------------------------------------------------------- the proof


def test_the_proof_bundle_checks_against_the_chain(world: ServiceWorld) -> None:
    members = anchored(world, count=5)
    for digest, _ in members:
        response = world.client.get(f"/v1/audit/commitments/{hex32(digest)}/proof")
        assert response.status_code == 200, response.text
        bundle = ProofBundle.from_json_obj(response.json())
        assert bundle.commitment == digest
        assert len(bundle.proof) >= 2  # five leaves: two or three siblings
        report = check_bundle(
            bundle,
            world.deployment.chain,
            contract=world.deployment.ledger.address,
            chain_id=world.deployment.chain.chain_id,
        )
        assert report.ok, report.to_json_obj()


def test_a_tampered_proof_bundle_does_not_check(world: ServiceWorld) -> None:
    digest = anchored(world, count=2)[0][0]
    body = world.client.get(f"/v1/audit/commitments/{hex32(digest)}/proof").json()
    proof = decode_proof(body["proof"])
    body["proof"] = encode_proof([Hash32(bytes(32)), *proof[1:]])
    assert not check_bundle(
        ProofBundle.from_json_obj(body),
        world.deployment.chain,
        contract=world.deployment.ledger.address,
        chain_id=world.deployment.chain.chain_id,
    ).ok


def test_a_pending_commitment_has_no_proof_yet(world: ServiceWorld) -> None:
    digest = world.submit(world.signed())
    response = world.client.get(f"/v1/audit/commitments/{hex32(digest)}/proof")
    assert_problem(response, 409, "not-anchored")


def test_the_proof_of_an_unknown_commitment_is_a_404_problem(world: ServiceWorld) -> None:
    response = world.client.get(f"/v1/audit/commitments/0x{'44' * 32}/proof")
    assert_problem(response, 404, "not-found")


def test_without_a_deployment_there_is_no_proof(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    world = open_service(tmp_path, embedded_deployment, with_deployment=False)
    digest = world.submit(world.signed())
    response = world.client.get(f"/v1/audit/commitments/{hex32(digest)}/proof")
    assert "deployment" in assert_problem(response, 503, "unavailable")["detail"]


# ---------------------------------------------------------------------- documents


def check(
    world: ServiceWorld, document: object, headers: dict[str, str] | None = None
) -> dict[str, object]:
    response = world.client.post(
        "/v1/audit/documents",
        content=json.dumps(document, ensure_ascii=False).encode(),
        headers=headers or {},
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_a_signed_document_that_was_committed_matches(world: ServiceWorld) -> None:
    [(digest, signed)] = anchored(world)
    body = check(world, signed.to_json_obj())
    assert body == {
        "status": "matches",
        "signature_valid": True,
        "hash": hex32(digest),
        "anchored": True,
        "audit_url": f"/v1/audit/commitments/{hex32(digest)}",
        "committed_hashes": [],
    }


def test_a_bare_document_matches_without_a_signature_verdict(world: ServiceWorld) -> None:
    signed = world.signed()
    digest = world.submit(signed)
    body = check(world, signed.document.to_json_obj())
    assert body["status"] == "matches"
    assert body["signature_valid"] is None
    assert body["hash"] == hex32(digest)
    assert body["anchored"] is False


def test_a_committed_document_with_a_wrong_signature_says_so(world: ServiceWorld) -> None:
    [(_, signed)] = anchored(world)
    forged = SignedCommitment(document=signed.document, signature=world.signed().signature)
    body = check(world, forged.to_json_obj())
    assert body["status"] == "matches"  # the document is the one committed ...
    assert body["signature_valid"] is False  # ... but this signature is not the applicant's


def test_an_altered_document_is_tampered_and_names_what_was_committed(
    world: ServiceWorld,
) -> None:
    [(digest, signed)] = anchored(world)
    channel = "online" if signed.document.channel == "counter" else "counter"
    # The claims kept, the channel changed after signing, the signature copied over.
    altered = SignedCommitment(
        document=signed.document.model_copy(update={"channel": channel}),
        signature=signed.signature,
    )
    before = world.store.status()
    response = world.client.post(
        "/v1/audit/documents",
        content=json.dumps(altered.to_json_obj()).encode(),
        headers=world.auth(HRSS, "verifier"),  # the department's own: it may see the hash
    )
    body = response.json()
    assert body == {
        "status": "tampered",
        "signature_valid": False,
        "hash": hex32(altered.hash()),
        "anchored": False,
        "audit_url": f"/v1/audit/commitments/{hex32(digest)}",
        "committed_hashes": [hex32(digest)],
    }
    for secret in personal_data(signed)[:2]:
        assert secret not in response.text
    assert world.store.get(altered.hash()) is None  # checking stores nothing
    assert world.store.status() == before


def test_without_the_right_token_an_altered_document_names_no_other_hash(
    world: ServiceWorld,
) -> None:
    [(digest, signed)] = anchored(world)
    # A bare document with a guessed code: sequential codes make this a cheap probe.
    guessed = signed.document.model_copy(update={"salt": "0x" + "11" * 32})
    body = guessed.to_json_obj()
    for headers in ({}, world.auth(MARKET, "verifier"), feed_token(world, "restricted")):
        answer = check(world, body, headers)
        assert answer["status"] == "unknown"
        assert (answer["audit_url"], answer["committed_hashes"]) == (None, [])
        assert hex32(digest) not in json.dumps(answer)
    for headers in (world.auth(HRSS, "registrar"), feed_token(world, "all")):
        answer = check(world, body, headers)
        assert answer["status"] == "tampered"
        assert answer["committed_hashes"] == [hex32(digest)]


def test_a_document_whose_code_is_not_known_is_unknown(world: ServiceWorld) -> None:
    anchored(world)
    never_submitted = world.signed()
    body = check(world, never_submitted.to_json_obj())
    assert body["status"] == "unknown"
    assert body["signature_valid"] is True
    assert (body["anchored"], body["audit_url"], body["committed_hashes"]) == (False, None, [])


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        (b"", 400, "malformed-json"),
        (b"{", 400, "malformed-json"),
        (b'{"a": 1, "a": 2}', 400, "malformed-json"),
        (b'{"schema_version": 1}', 422, "invalid-document"),
        (b'{"document": {}, "signature": {}}', 422, "invalid-document"),
        (b"42", 422, "invalid-document"),
    ],
)
def test_a_bad_document_is_a_problem(
    world: ServiceWorld, body: bytes, status: int, slug: str
) -> None:
    assert_problem(world.client.post("/v1/audit/documents", content=body), status, slug)


def test_a_checked_document_is_not_echoed_back(world: ServiceWorld) -> None:
    signed = world.signed()
    response = world.client.post("/v1/audit/documents", content=world.body(signed))
    for secret in personal_data(signed)[:2]:
        assert secret not in response.text


# ---------------------------------------------------------------------- who sees which state


def feed_token(world: ServiceWorld, scope: str) -> dict[str, str]:
    token = world.context.tokens.issue("BJ-CREDIT", "feed", scope=scope).token  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def keyed_world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    write_all_keys(tmp_path / "keys", embedded_deployment)
    opened = open_service(tmp_path, embedded_deployment)
    yield opened
    opened.context.close()


def decide(world: ServiceWorld, digest: Hash32, outcome: str) -> None:
    response = world.client.post(
        f"/v1/verifications/{hex32(digest)}/decision",
        json={"outcome": outcome, "note": "on-site check"},
        headers=world.auth(HRSS, "verifier"),
    )
    assert response.status_code == 200, response.text


def states(world: ServiceWorld, digest: Hash32, headers: dict[str, str]) -> tuple[object, ...]:
    response = world.client.get(f"/v1/audit/commitments/{hex32(digest)}", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["on_chain"]["anchored"], body["on_chain"]["status"], body["verification_state"]


def test_states_that_are_not_public_need_a_token_of_the_right_scope(
    keyed_world: ServiceWorld,
) -> None:
    world = keyed_world
    [(kept, _), (manual, _)] = anchored(world, 2)
    decide(world, kept, "kept")
    decide(world, manual, "needs_manual")
    public = ({}, world.auth(MARKET, "verifier"), feed_token(world, "public"))
    for digest in (kept, manual):
        for headers in public:
            assert states(world, digest, headers) == (True, None, None)
    assert states(world, kept, feed_token(world, "restricted"))[1] == "kept"
    assert states(world, manual, feed_token(world, "restricted"))[1] is None
    assert states(world, manual, feed_token(world, "all"))[1:] == ("needs_manual", "manual")
    assert states(world, kept, world.auth(HRSS, "registrar"))[1:] == ("kept", "kept")


def test_an_unknown_token_is_a_401_problem_not_the_public_answer(world: ServiceWorld) -> None:
    [(digest, _)] = anchored(world)
    response = world.client.get(
        f"/v1/audit/commitments/{hex32(digest)}",
        headers={"Authorization": "Bearer clt_" + "x" * 43},
    )
    assert_problem(response, 401, "unauthorized")

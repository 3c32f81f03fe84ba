"""Objections (异议申诉) and repair on application (信用修复), issue #14: filed by an officer
(or the applicant through `file_objection` / `apply_for_repair`), marked on the public
record while open, decided by the record's department only, with reasons kept sealed; the
chain, the list, the page and the public feed agree after each decision; the lifecycle job
flags those past their decision limit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from support.deployment import HRSS, HRSS_ID, MARKET, Deployment
from support.service_keys import write_all_keys
from support.service_world import DAY, ServiceWorld, assert_problem, open_service, snapshot

from api.service import ProblemError, run_lifecycles
from api.service.appeals import appeal_records, apply_for_repair, file_objection
from api.service.engines import department_actions
from ledger import Hash32, OutcomeEntry, SigningKey, Status, hex32
from verifier import BreachRecord, ClosingNote, default_catalog, earliest_repair
from verifier.feed import FeedFollower

GENERAL_MATTERS = {"BJ-HRSS-0001", "BJ-HRSS-0002"}  # general severity: 3 months before repair
REASON = "认定有误：被记录人并非承诺人本人（身份证号被冒用）"
REASONS = "经核查，承诺人身份被冒用，异议成立"


@pytest.fixture
def world(tmp_path: Path, deployment: Deployment) -> Iterator[ServiceWorld]:
    """A service on the embedded chain and on a real anvil node."""
    write_all_keys(tmp_path / "keys", deployment)
    opened = open_service(tmp_path, deployment, feed=False, anchoring=False)
    yield opened
    opened.context.close()


@pytest.fixture
def quick(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    """A service on the embedded chain only."""
    write_all_keys(tmp_path / "keys", embedded_deployment)
    opened = open_service(tmp_path, embedded_deployment, feed=False, anchoring=False)
    yield opened
    opened.context.close()


def published(world: ServiceWorld) -> tuple[Hash32, BreachRecord]:
    """An HRSS commitment of general severity, anchored, proposed (its notice sent) and
    decided false: its published record."""
    signed = world.signed()
    while signed.document.matter_code not in GENERAL_MATTERS:
        signed = world.signed()
    digest = world.submit(signed)
    world.anchor()
    on = world.context.today()
    with department_actions(world.context, HRSS) as actions:
        actions.schedule(on)
        notice = ClosingNote.of({"proposed": hex32(digest), "on": on.isoformat()})
        actions.outbox.enqueue(HRSS, [OutcomeEntry(digest, Status.PROPOSED, notice)])
        actions.flush()
        breach = actions.entry(digest, "false", on, "verifier", "the claim was false")
        actions.outbox.enqueue(HRSS, [breach])
        actions.flush()
    [record] = [
        r
        for r in world.context.records.search_breaches(world.context.today()).records
        if r.commitment_hash == hex32(digest)
    ]
    return digest, record


def on_chain(world: ServiceWorld, digest: Hash32) -> Status:
    return world.deployment.ledger.status_of(HRSS_ID, digest).status


def object_to(world: ServiceWorld, record_id: str, department: str = HRSS) -> Any:
    return world.client.post(
        f"/v1/breaches/{record_id}/objections",
        json={"reason": REASON, "evidence": ["公安机关出具的身份证明 2026-118"]},
        headers=world.auth(department, "registrar"),
    )


def decide(world: ServiceWorld, kind: str, appeal_id: str, outcome: str, **headers: str) -> Any:
    path = "objections" if kind == "objection" else "repair-applications"
    return world.client.post(
        f"/v1/{path}/{appeal_id}/decision",
        json={"outcome": outcome, "reasons": REASONS},
        headers=headers or world.auth(HRSS, "verifier"),
    )


def listed_ids(world: ServiceWorld) -> list[str]:
    return [r["id"] for r in world.client.get("/v1/breaches").json()["records"]]


def public_feed_kinds(world: ServiceWorld, digest: Hash32) -> list[str]:
    """The token-less feed's records of this commitment, once a follower caught up."""
    keys = {HRSS: SigningKey.generate("ed25519"), MARKET: SigningKey.generate("ed25519")}
    follower = FeedFollower(
        world.store, world.deployment.ledger, default_catalog(), world.vault, keys.get
    )
    try:
        follower.step()
    finally:
        follower.close()
    page = world.client.get("/v1/feed", params={"limit": 500}).json()
    wanted = hex32(digest)
    return [r["kind"] for r in page["records"] if r["evidence"]["commitment_hash"] == wanted]


# ---------------------------------------------------------------------- objections


def test_an_upheld_objection_corrects_the_record_and_withdraws_it_everywhere(
    world: ServiceWorld,
) -> None:
    """Mistaken identity: Corrected on chain, off /v1/breaches, its page and the public feed;
    the applicant readmitted."""
    digest, record = published(world)
    fingerprint = world.context.records.stored_breach(record.id)
    assert fingerprint is not None and world.store.is_excluded(fingerprint.fingerprint)
    filed = object_to(world, record.id)
    assert filed.status_code == 201, filed.text
    objection = filed.json()
    assert (objection["state"], objection["filed_by"]) == ("open", "officer")

    response = decide(world, "objection", objection["id"], "upheld")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "upheld"
    assert on_chain(world, digest) == Status.CORRECTED
    assert record.id not in listed_ids(world)
    assert_problem(world.client.get(f"/v1/breaches/{record.id}"), 404, "not-found")
    assert world.client.get(f"/records/{record.id}").status_code == 404
    assert not world.store.is_excluded(fingerprint.fingerprint)


def test_the_mark_shows_on_the_list_the_record_and_the_pages_while_open(
    quick: ServiceWorld,
) -> None:
    world = quick
    _, record = published(world)
    _, other = published(world)
    assert object_to(world, record.id).status_code == 201
    page = world.client.get("/v1/breaches").json()
    marks = {r["id"]: r.get("objection") for r in page["records"]}
    assert marks[other.id] is None
    mark = marks[record.id]
    assert mark["status"] == "under_objection"
    assert (mark["label_zh"], mark["label_en"]) == ("异议处理中", "Under objection")
    assert mark["filed_on"] == DAY.isoformat() and mark["decide_by"] > DAY.isoformat()
    assert world.client.get(f"/v1/breaches/{record.id}").json()["objection"] == mark
    assert "objection" not in world.client.get(f"/v1/breaches/{other.id}").json()
    for html in (world.client.get(f"/records/{record.id}").text, world.client.get("/").text):
        assert "异议处理中" in html and "Under objection" in html
    assert "异议处理中" not in world.client.get(f"/records/{other.id}").text
    # The reason is personal data: not on any public view.
    assert REASON not in world.client.get("/").text + str(page)


def test_a_rejected_objection_leaves_the_record_drops_the_mark_and_keeps_the_reasons(
    world: ServiceWorld,
) -> None:
    digest, record = published(world)
    objection = file_objection(world.context, record.id, by="applicant", reason=REASON)
    assert objection.filed_by == "applicant"
    response = decide(world, "objection", objection.id, "rejected")
    assert response.status_code == 200, response.text
    assert on_chain(world, digest) == Status.BREACHED
    assert record.id in listed_ids(world)
    assert "objection" not in world.client.get(f"/v1/breaches/{record.id}").json()
    assert "异议处理中" not in world.client.get(f"/records/{record.id}").text
    detail = world.client.get(
        f"/v1/objections/{objection.id}", headers=world.auth(HRSS, "registrar")
    ).json()
    assert (detail["state"], detail["text"], detail["reasons"]) == ("rejected", REASON, REASONS)
    assert detail["decided_by"].startswith(f"{HRSS} verifier")


def test_the_texts_are_sealed_in_the_store(quick: ServiceWorld) -> None:
    world = quick
    _, record = published(world)
    objection = object_to(world, record.id).json()
    assert decide(world, "objection", objection["id"], "rejected").status_code == 200
    stored = repr(snapshot(world))
    for text in (REASON, REASONS, "公安机关出具的身份证明"):
        assert text not in stored
        assert text.encode("utf-8") not in stored.encode("utf-8")


def test_one_open_objection_per_record_and_bounded_texts(quick: ServiceWorld) -> None:
    world = quick
    _, record = published(world)
    assert object_to(world, record.id).status_code == 201
    again = object_to(world, record.id)
    assert "already has an objection open" in assert_problem(again, 409, "action-refused")["detail"]
    before = snapshot(world)
    too_long = world.client.post(
        f"/v1/breaches/{record.id}/objections",
        json={"reason": "x" * 2001},
        headers=world.auth(HRSS, "registrar"),
    )
    assert too_long.status_code == 422
    with pytest.raises(ProblemError) as refused:
        file_objection(world.context, record.id, by="applicant", reason="  ")
    assert refused.value.kind.status == 422
    assert snapshot(world) == before  # a refused input stores nothing


def test_an_unpublished_or_unknown_record_cannot_be_objected_to(quick: ServiceWorld) -> None:
    world = quick
    assert_problem(object_to(world, "BR-0000000000000000"), 404, "not-found")
    _, record = published(world)
    objection = object_to(world, record.id).json()
    assert decide(world, "objection", objection["id"], "upheld").status_code == 200
    assert_problem(object_to(world, record.id), 409, "action-refused")
    assert_problem(decide(world, "objection", objection["id"], "rejected"), 409, "action-refused")


# ---------------------------------------------------------------------- repair


def test_repair_is_refused_before_the_minimum_period_then_granted(world: ServiceWorld) -> None:
    digest, record = published(world)
    fingerprint = world.context.records.stored_breach(record.id)
    assert fingerprint is not None
    earliest = earliest_repair(record)
    appeal_records(world.context)  # its tables made: a refusal then changes nothing at all
    before = snapshot(world)
    early = world.client.post(
        f"/v1/breaches/{record.id}/repair-applications",
        json={"evidence_text": "已补缴社会保险费并提交完税证明"},
        headers=world.auth(HRSS, "registrar"),
    )
    problem = assert_problem(early, 409, "action-refused")
    assert problem["earliest_repair"] == earliest.isoformat()
    assert earliest.isoformat() in problem["detail"]
    assert snapshot(world) == before

    world.context.today = lambda: earliest
    application = apply_for_repair(world.context, record.id, "已补缴社会保险费并提交完税证明")
    assert (application.state, application.filed_by) == ("open", "applicant")
    response = decide(world, "repair", application.id, "granted")
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "granted"
    assert on_chain(world, digest) == Status.REPAIRED
    assert record.id not in listed_ids(world)
    assert world.client.get(f"/records/{record.id}").status_code == 404
    assert not world.store.is_excluded(fingerprint.fingerprint)
    detail = world.client.get(
        f"/v1/repair-applications/{application.id}", headers=world.auth(HRSS, "verifier")
    ).json()
    assert (detail["state"], detail["reasons"]) == ("granted", REASONS)


def test_a_refused_repair_leaves_the_record_published(quick: ServiceWorld) -> None:
    world = quick
    digest, record = published(world)
    world.context.today = lambda: earliest_repair(record)
    filed = world.client.post(
        f"/v1/breaches/{record.id}/repair-applications",
        json={"evidence_text": "已纠正", "evidence": ["缴费凭证"]},
        headers=world.auth(HRSS, "registrar"),
    )
    assert filed.status_code == 201, filed.text
    assert decide(world, "repair", filed.json()["id"], "refused").status_code == 200
    assert on_chain(world, digest) == Status.BREACHED
    assert record.id in listed_ids(world)


# ---------------------------------------------------------------------- remit


def test_another_department_can_neither_see_nor_decide_nor_file(quick: ServiceWorld) -> None:
    world = quick
    digest, record = published(world)
    objection = object_to(world, record.id).json()
    world.context.today = lambda: earliest_repair(record)
    repair = apply_for_repair(world.context, record.id, "已纠正", by="applicant")
    market = world.auth(MARKET, "verifier")
    for path in (f"objections/{objection['id']}", f"repair-applications/{repair.id}"):
        assert_problem(world.client.get(f"/v1/{path}", headers=market), 403, "other-department")
    assert_problem(
        decide(world, "objection", objection["id"], "upheld", **market), 403, "other-department"
    )
    assert_problem(decide(world, "repair", repair.id, "granted", **market), 403, "other-department")
    for path in ("objections", "repair-applications"):
        assert world.client.get(f"/v1/{path}", headers=market).json() == {"appeals": []}
        own = world.client.get(f"/v1/{path}", headers=world.auth(HRSS, "registrar")).json()
        assert len(own["appeals"]) == 1
    assert_problem(object_to(world, record.id, MARKET), 403, "other-department")
    with pytest.raises(ProblemError) as refused:
        file_objection(world.context, record.id, by="officer", reason=REASON, department=MARKET)
    assert refused.value.kind.status == 409
    assert on_chain(world, digest) == Status.BREACHED
    # Deciding needs a verifier's token of the department.
    assert_problem(
        decide(world, "objection", objection["id"], "upheld", **world.auth(HRSS, "registrar")),
        403,
        "wrong-role",
    )


# ---------------------------------------------------------------------- lifecycle


def test_the_lifecycle_job_flags_appeals_past_their_limit_once(quick: ServiceWorld) -> None:
    world = quick
    _, record = published(world)
    objection = file_objection(world.context, record.id, by="applicant", reason=REASON)
    world.context.today = lambda: earliest_repair(record)
    repair = apply_for_repair(world.context, record.id, "已纠正")
    [summary] = run_lifecycles(world.context, repair.decide_by, [HRSS])
    assert (summary.objections_overdue, summary.repairs_overdue) == (1, 0)
    later = date.fromordinal(repair.decide_by.toordinal() + 1)
    [summary] = run_lifecycles(world.context, later, [HRSS])
    assert (summary.objections_overdue, summary.repairs_overdue) == (0, 1)
    assert summary.to_json_obj()["repairs_overdue"] == 1
    [again] = run_lifecycles(world.context, later, [HRSS])
    assert (again.objections_overdue, again.repairs_overdue) == (0, 0)
    listed = world.client.get("/v1/objections", headers=world.auth(HRSS, "registrar")).json()
    assert [(a["id"], a["overdue"]) for a in listed["appeals"]] == [(objection.id, True)]
    # Flagged, still open: the department can decide it.
    assert objection.decide_by < repair.decide_by

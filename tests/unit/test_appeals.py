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
from sqlalchemy import select
from support.appeals import published
from support.deployment import HRSS, HRSS_ID, MARKET, Deployment
from support.service_keys import write_all_keys
from support.service_world import DAY, ServiceWorld, assert_problem, open_service, snapshot

from api.service import ProblemError, run_lifecycles
from api.service.appeals import appeal_records, apply_for_repair, file_objection
from api.service.engines import department_actions
from ledger import Hash32, SigningKey, Status, hex32, outcome_outbox
from verifier import default_catalog, earliest_repair
from verifier.feed import FeedFollower

REASON = "认定有误：被记录人并非承诺人本人（身份证号被冒用）"
REASONS = "经核查，承诺人身份被冒用，异议成立"
MARK = '<p class="objection" role="status">'  # the mark on a page (its text says 异议处理中)


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
    assert public_feed_kinds(world, digest) == ["breach"]
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
    assert public_feed_kinds(world, digest) == ["correction"]
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
        assert MARK in html and "异议处理中：" in html and "Under objection:" in html
    unmarked = world.client.get(f"/records/{other.id}").text
    assert MARK not in unmarked and "异议处理中：" not in unmarked
    # Where to object, and from which day repair may be applied for.
    assert "/applicant" in unmarked and earliest_repair(other).isoformat() in unmarked
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
    assert MARK not in world.client.get(f"/records/{record.id}").text
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
    surrogate = world.client.post(
        f"/v1/breaches/{record.id}/objections",
        content=b'{"reason": "\\udbe8 not text"}',
        headers={**world.auth(HRSS, "registrar"), "Content-Type": "application/json"},
    )
    assert_problem(surrogate, 400, "malformed-json")
    # What is not text never reaches the vault (an argv's undecodable bytes, say).
    for reason in ("  ", "\udbe8 not text"):
        with pytest.raises(ProblemError) as refused:
            file_objection(world.context, record.id, by="applicant", reason=reason)
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
    assert public_feed_kinds(world, digest) == ["repair"]
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
        misspelt = world.client.get(f"/v1/{path}", params={"stat": "open"}, headers=market)
        assert_problem(misspelt, 422, "invalid-request")  # never the whole list instead
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


# ---------------------------------------------------------------------- a decision cut short


def test_a_decision_that_died_after_its_action_is_taken_again_without_a_second(
    quick: ServiceWorld,
) -> None:
    """The chain and the list move first, the appeal's decision last: taken again, the
    decision finds the correction or the repair done and records only itself."""
    world = quick
    corrected_digest, corrected = published(world)
    repaired_digest, repaired = published(world)
    objection = file_objection(world.context, corrected.id, by="applicant", reason=REASON)
    world.context.today = lambda: earliest_repair(repaired)
    application = apply_for_repair(world.context, repaired.id, "已纠正")
    on = world.context.today()
    with department_actions(world.context, HRSS) as actions:  # the attempt that died
        actions.annul(corrected.id, on, f"objection {objection.id} upheld")
        actions.repair(repaired.id, on, f"repair application {application.id} granted")
    sent = outbox_count(world)
    assert decide(world, "objection", objection.id, "upheld").json()["state"] == "upheld"
    assert decide(world, "repair", application.id, "granted").json()["state"] == "granted"
    assert outbox_count(world) == sent  # nothing sent twice
    assert on_chain(world, corrected_digest) == Status.CORRECTED
    assert on_chain(world, repaired_digest) == Status.REPAIRED


def outbox_count(world: ServiceWorld) -> int:
    with world.store.engine.connect() as connection:
        return len(connection.execute(select(outcome_outbox.c.id)).all())


def test_the_direct_repair_route_is_an_application_granted_at_once(quick: ServiceWorld) -> None:
    """`POST /v1/breaches/{id}/repair` keeps its answer and records the application and its
    decision, the decision's text as the reasons."""
    world = quick
    digest, record = published(world)
    world.context.today = lambda: earliest_repair(record)
    response = world.client.post(
        f"/v1/breaches/{record.id}/repair",
        json={"decision": "信用修复：当事人已纠正失信行为"},
        headers=world.auth(HRSS, "verifier"),
    )
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["on_chain_status"]) == (
        "repaired",
        "repaired",
    )
    assert on_chain(world, digest) == Status.REPAIRED
    headers = world.auth(HRSS, "verifier")
    [granted] = world.client.get("/v1/repair-applications", headers=headers).json()["appeals"]
    assert (granted["record_id"], granted["state"]) == (record.id, "granted")
    detail = world.client.get(f"/v1/repair-applications/{granted['id']}", headers=headers)
    assert detail.json()["reasons"] == "信用修复：当事人已纠正失信行为"


# ---------------------------------------------------------------------- one walk, all views


def views(world: ServiceWorld, digest: Hash32, record_id: str) -> dict[str, Any]:
    """What the chain, the API, the record's page and the token-less feed say now."""
    api = world.client.get(f"/v1/breaches/{record_id}")
    page = world.client.get(f"/records/{record_id}")
    return {
        "chain": on_chain(world, digest),
        "listed": record_id in listed_ids(world),
        "api": api.status_code,
        "api_marked": api.status_code == 200 and "objection" in api.json(),
        "page": page.status_code,
        "page_marked": MARK in page.text,
        "feed": public_feed_kinds(world, digest),
    }


def test_objection_rejected_then_repair_granted_every_view_agrees(world: ServiceWorld) -> None:
    """The issue's walk from publication on: objection filed → rejected → repair applied →
    repaired → withdrawn from the public feed; the chain, the list, the API, the page and
    the feed agree at every step."""
    digest, record = published(world)
    published_now = {
        "chain": Status.BREACHED, "listed": True, "api": 200, "api_marked": False,
        "page": 200, "page_marked": False, "feed": ["breach"],
    }  # fmt: skip
    assert views(world, digest, record.id) == published_now

    objection = file_objection(world.context, record.id, by="applicant", reason=REASON)
    marked = {**published_now, "api_marked": True, "page_marked": True}
    assert views(world, digest, record.id) == marked

    assert decide(world, "objection", objection.id, "rejected").status_code == 200
    assert views(world, digest, record.id) == published_now

    with pytest.raises(ProblemError):
        apply_for_repair(world.context, record.id, "已纠正")  # before the minimum period
    assert views(world, digest, record.id) == published_now
    world.context.today = lambda: earliest_repair(record)
    application = apply_for_repair(world.context, record.id, "已补缴并提交证明")
    assert views(world, digest, record.id) == published_now  # an application marks nothing

    assert decide(world, "repair", application.id, "granted").status_code == 200
    assert views(world, digest, record.id) == {
        "chain": Status.REPAIRED, "listed": False, "api": 404, "api_marked": False,
        "page": 404, "page_marked": False, "feed": ["repair"],
    }  # fmt: skip

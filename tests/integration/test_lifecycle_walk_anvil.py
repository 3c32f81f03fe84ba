"""Issue #14's walk on a real anvil node: ONE applicant goes mismatch → notice → rectification
missed → proposed breach → statement filed and rejected → published → objection filed →
rejected → repair applied → repaired → withdrawn from the public feed. At every step the
public page (HTML), the API (`/v1/breaches` and the applicant's own view), the feed's public
scope and the chain (`statusOf`) are asked, and must agree."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.deployment import HRSS, HRSS_ID, MARKET, deploy
from support.service_keys import write_all_keys
from support.service_world import DAY, ServiceWorld, open_service

from api.service import run_lifecycles, sign_challenge
from ledger import AnvilNode, Chain, Hash32, SigningKey, Status, hex32
from verifier import default_catalog, earliest_repair
from verifier.feed import FeedFollower

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("anvil_binary")]

GENERAL_MATTERS = {"BJ-HRSS-0001", "BJ-HRSS-0002"}  # general severity: 3 months before repair
MARK = '<p class="objection" role="status">'  # a record page's 异议处理中 mark


@pytest.fixture
def world(tmp_path: Path, anvil: AnvilNode) -> Iterator[ServiceWorld]:
    deployment = deploy(Chain.connect(anvil.url, kind="anvil"))
    write_all_keys(tmp_path / "keys", deployment)
    opened = open_service(
        tmp_path, deployment, today=DAY, rpc=anvil.url, feed=False, anchoring=False
    )
    yield opened
    opened.context.close()


def applicant_session(world: ServiceWorld, digest: Hash32) -> dict[str, str]:
    issued = world.client.post("/v1/applicant/challenge", json={"commitment": hex32(digest)})
    challenge = issued.json()["challenge"]
    answer = world.client.post(
        "/v1/applicant/session",
        json={
            "commitment": hex32(digest),
            "challenge": challenge,
            "signature": sign_challenge(world.applicant_key, challenge, digest),
        },
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def public_feed(world: ServiceWorld, digest: Hash32) -> list[str]:
    """The kinds of the token-less feed's records of this commitment, once caught up."""
    keys = {HRSS: SigningKey.generate("ed25519"), MARKET: SigningKey.generate("ed25519")}
    follower = FeedFollower(
        world.store, world.deployment.ledger, default_catalog(), world.vault, keys.get
    )
    try:
        follower.step()
    finally:
        follower.close()
    page = world.client.get("/v1/feed", params={"limit": 500})
    assert page.status_code == 200, page.text
    wanted = hex32(digest)
    return [r["kind"] for r in page.json()["records"] if r["evidence"]["commitment_hash"] == wanted]


class Walk:
    """The one applicant's commitment, and every view of it."""

    def __init__(self, world: ServiceWorld) -> None:
        self.world = world
        signed = world.signed()
        while signed.document.matter_code not in GENERAL_MATTERS:
            signed = world.signed()
        self.signed = signed
        self.digest = world.submit(signed)
        world.anchor()
        self.session = applicant_session(world, self.digest)

    def mine(self) -> dict[str, Any]:
        response = self.world.client.get("/v1/applicant/commitments", headers=self.session)
        assert response.status_code == 200, response.text
        [item] = response.json()["commitments"]
        assert item["hash"] == hex32(self.digest)
        return dict(item)

    def file(self, kind: str, text: str, breach_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text}
        if breach_id is not None:
            body["breach_id"] = breach_id
        response = self.world.client.post(
            f"/v1/applicant/commitments/{hex32(self.digest)}/{kind}",
            json=body,
            headers=self.session,
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def officer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.world.client.post(
            path, json=body, headers=self.world.auth(HRSS, "verifier")
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def views(self) -> dict[str, Any]:
        """What each view says now: the chain, the public list, the record's API and page,
        the public lookup page, the feed's public scope, and the applicant's own view."""
        world, mine = self.world, self.mine()
        records = [b["id"] for b in mine["breaches"]]
        listed = world.client.get("/v1/breaches", params={"limit": 100})
        assert listed.status_code == 200, listed.text
        public_ids = [
            r["id"] for r in listed.json()["records"] if r["commitment_hash"] == hex32(self.digest)
        ]
        api = {r: world.client.get(f"/v1/breaches/{r}") for r in records}
        pages = {r: world.client.get(f"/records/{r}") for r in records}
        lookup = world.client.get("/")
        assert lookup.status_code == 200
        return {
            "chain": world.deployment.ledger.status_of(HRSS_ID, self.digest).status,
            "listed": public_ids,
            "api": {r: a.status_code for r, a in api.items()},
            "api_marked": [r for r, a in api.items() if _marked(a)],
            "page": {r: p.status_code for r, p in pages.items()},
            "page_marked": [r for r, p in pages.items() if MARK in p.text],
            "lookup": [r for r in records if r in lookup.text],
            "feed": public_feed(world, self.digest),
            "mine": {
                "state": mine["verification_state"],
                "breaches": [(b["id"], b["status"]) for b in mine["breaches"]],
                "appeals": [
                    (a["kind"], a["state"]) for b in mine["breaches"] for a in b["appeals"]
                ],
                "notices": [(n["state"], len(n["statements"])) for n in mine["notices"]],
                "filings": sorted(f["kind"] for f in mine["filings"]),
            },
        }


def _marked(response: Any) -> bool:
    return response.status_code == 200 and "objection" in response.json()


def nothing_public(chain: Status, mine: dict[str, Any]) -> dict[str, Any]:
    return {
        "chain": chain, "listed": [], "api": {}, "api_marked": [], "page": {},
        "page_marked": [], "lookup": [], "feed": [], "mine": mine,
    }  # fmt: skip


def published_as(record_id: str, mine: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {
        "chain": Status.BREACHED, "listed": [record_id], "api": {record_id: 200},
        "api_marked": [], "page": {record_id: 200}, "page_marked": [],
        "lookup": [record_id], "feed": ["breach"], "mine": mine, **changes,
    }  # fmt: skip


def test_one_applicant_walks_the_whole_lifecycle_and_every_view_agrees(
    world: ServiceWorld,
) -> None:
    walk = Walk(world)
    assert walk.views() == nothing_public(
        Status.NONE,  # anchored in a batch: statusOf knows it from its first outcome
        {"state": None, "breaches": [], "appeals": [], "notices": [], "filings": []},
    )

    # A mismatch: the applicant is shown the comparison and the deadline to rectify.
    walk.officer(
        f"/v1/verifications/{hex32(walk.digest)}/decision",
        {"outcome": "mismatch", "note": "社保缴费月数与记录不一致"},
    )
    mine = walk.mine()
    [rectify_by] = [d["day"] for d in mine["deadlines"] if d["kind"] == "rectify_by"]
    mismatch = {
        "state": "mismatch", "breaches": [], "appeals": [], "notices": [],
        "filings": ["rectification"],
    }  # fmt: skip
    assert walk.views() == nothing_public(Status.MISMATCH, mismatch)

    # The rectification window passes with nothing supplied: the lifecycle job proposes a
    # breach and notifies the applicant (a signed notice; its defence period runs).
    world.context.today = lambda: date_after(rectify_by)
    [summary] = run_lifecycles(world.context, world.context.today(), [HRSS])
    assert summary.overdue == 1 and summary.published == ()
    refused = world.client.post(
        f"/v1/applicant/commitments/{hex32(walk.digest)}/rectification",
        json={"text": "迟到的材料"},
        headers=walk.session,
    )
    assert refused.status_code == 409, refused.text  # too late: nothing is stored
    assert "no mismatch open to rectification" in refused.json()["detail"]
    mine = walk.mine()
    [notice] = mine["notices"]
    assert notice["hash"] and notice["defence_ends"]
    assert any(d["kind"] == "defence_ends" for d in mine["deadlines"])
    proposed = {
        "state": "proposed", "breaches": [], "appeals": [],
        "notices": [("open", 0)], "filings": ["statement"],
    }  # fmt: skip
    assert walk.views() == nothing_public(Status.PROPOSED, proposed)
    [summary] = run_lifecycles(world.context, world.context.today(), [HRSS])  # again: nothing
    assert (summary.overdue, summary.published) == (0, ())
    assert walk.views() == nothing_public(Status.PROPOSED, proposed)

    # The applicant's statement: still proposed, nothing public, the notice holds it.
    walk.file("statement", "我已于整改期内补缴，但材料未及时提交")
    answered = {**proposed, "notices": [("open", 1)]}
    assert walk.views() == nothing_public(Status.PROPOSED, answered)

    # The officer rejects it with reasons: published now, on chain, list, page and feed.
    walk.officer(
        f"/v1/commitments/{hex32(walk.digest)}/defence-decision",
        {"accept": False, "reasons": "补缴凭证日期晚于整改期限"},
    )
    [record] = [b["id"] for b in walk.mine()["breaches"]]
    published = {
        "state": "breached", "breaches": [(record, "published")],
        "appeals": [], "notices": [("published", 1)], "filings": ["objection", "repair"],
    }  # fmt: skip
    assert walk.views() == published_as(record, published)

    # An objection by the applicant: the record shows 异议处理中 on the API and its page.
    objection = walk.file("objection", "记录所依据的缴费月数有误", breach_id=record)["appeal"]
    under_objection = {**published, "appeals": [("objection", "open")], "filings": ["repair"]}
    assert walk.views() == published_as(
        record, under_objection, api_marked=[record], page_marked=[record]
    )

    # Rejected: the mark goes, the record stays.
    walk.officer(
        f"/v1/objections/{objection['id']}/decision",
        {"outcome": "rejected", "reasons": "经复核，缴费记录无误"},
    )
    rejected = {**published, "appeals": [("objection", "rejected")]}
    assert walk.views() == published_as(record, rejected)

    # After the minimum period the applicant applies for repair: nothing changes yet.
    breach = world.context.records.breach(record)
    assert breach is not None
    world.context.today = lambda: earliest_repair(breach)
    application = walk.file("repair", "已补缴全部费用并提交证明", breach_id=record)["appeal"]
    applied = {
        **published, "appeals": [("objection", "rejected"), ("repair", "open")],
        "filings": ["objection"],
    }  # fmt: skip
    assert walk.views() == published_as(record, applied)

    # Granted: Repaired on chain, off the list and its page, withdrawn from the public feed
    # (a repair record follows; the breach's public body is withheld from then on).
    walk.officer(
        f"/v1/repair-applications/{application['id']}/decision",
        {"outcome": "granted", "reasons": "已纠正失信行为，同意修复"},
    )
    repaired = {
        **applied, "breaches": [(record, "repaired")],
        "appeals": [("objection", "rejected"), ("repair", "granted")], "filings": [],
    }  # fmt: skip
    assert walk.views() == {
        "chain": Status.REPAIRED, "listed": [], "api": {record: 404}, "api_marked": [],
        "page": {record: 404}, "page_marked": [], "lookup": [], "feed": ["repair"],
        "mine": repaired,
    }  # fmt: skip


def date_after(day: str) -> date:
    return date.fromisoformat(day) + timedelta(days=1)


def test_evidence_filed_in_the_window_and_accepted_keeps_it_off_every_view(
    world: ServiceWorld,
) -> None:
    """The other way out of a mismatch: the applicant files rectification evidence in the
    window, the department accepts it; KEPT on chain, never public anywhere."""
    walk = Walk(world)
    walk.officer(
        f"/v1/verifications/{hex32(walk.digest)}/decision",
        {"outcome": "mismatch", "note": "社保缴费月数与记录不一致"},
    )
    [rectify_by] = [d["day"] for d in walk.mine()["deadlines"] if d["kind"] == "rectify_by"]
    filed = walk.file("rectification", "已补缴2026年11月社保费，缴费凭证 JF-2026-1188")
    evidence = filed["rectification"]["id"]
    mismatch = {
        "state": "mismatch", "breaches": [], "appeals": [], "notices": [],
        "filings": ["rectification"],
    }  # fmt: skip
    assert walk.views() == nothing_public(Status.MISMATCH, mismatch)
    assert [r["state"] for r in walk.mine()["rectifications"]] == ["open"]

    decided = walk.officer(
        f"/v1/rectifications/{evidence}/decision", {"accepted": True, "note": "凭证核实无误"}
    )
    assert decided["state"] == "accepted"
    kept = {**mismatch, "state": "kept", "filings": []}
    assert walk.views() == nothing_public(Status.KEPT, kept)
    assert [r["state"] for r in walk.mine()["rectifications"]] == ["accepted"]
    world.context.today = lambda: date_after(rectify_by)
    [summary] = run_lifecycles(world.context, world.context.today(), [HRSS])
    assert summary.overdue == 0  # the window ended: nothing to propose
    assert walk.views() == nothing_public(Status.KEPT, kept)

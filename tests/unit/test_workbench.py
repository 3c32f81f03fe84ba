"""The workbench (issue 15): sessions kept in the store (a restart keeps them; idle,
absolute age, sign-out and a revoked token end them), the cookie's attributes, CSRF on
every form, sign-in failures throttled, the pages escaped and bilingual, the SVG charts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from support.deployment import HRSS, MARKET, Deployment
from support.service_world import (
    ServiceWorld,
    agreeing_food_licence,
    open_service,
    service_with_sources,
    snapshot,
)

from api.service import ServiceContext, create_app
from api.service.workbench import WorkbenchSessions, csrf_token
from ledger import Hash32, Store

SIGN_IN = "/workbench/sign-in"


@pytest.fixture
def world(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    # The real Beijing day: commitments are received at the wall clock's time.
    today = datetime.now(timezone(timedelta(hours=8))).date()
    opened = open_service(tmp_path, embedded_deployment, today=today)
    try:
        yield opened
    finally:
        opened.context.close()


def sign_in(world: ServiceWorld, department: str = HRSS, role: str = "registrar") -> str:
    """Sign the test client in; the CSRF token of today's page."""
    response = world.client.post(
        SIGN_IN, data={"token": world.tokens[department, role]}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/workbench/today"
    return csrf_of(world.client.get("/workbench/today").text)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------------- sessions


def test_a_session_outlives_a_restart_but_not_its_idle_time_or_age(world: ServiceWorld) -> None:
    clock = Clock()
    issued = world.context.tokens.issue(HRSS, "registrar", now=clock.now)
    from api.service.tokens import token_hash

    sessions = WorkbenchSessions(world.store, clock=clock)
    session_id = sessions.open(issued.principal, token_hash(issued.token))
    # Another instance on the same database (a restart) knows it.
    other = WorkbenchSessions(Store(world.settings.resolved_store_url), clock=clock)
    found = other.get(session_id)
    assert found is not None and found.principal.department == HRSS
    assert found.csrf_token == sessions.get(session_id).csrf_token  # type: ignore[union-attr]
    # Only the id's hash is stored.
    rows = snapshot(world)["workbench_sessions"]
    assert session_id.encode() not in repr(rows).encode()
    clock.now += 29 * 60
    assert sessions.get(session_id) is not None  # used: the idle clock starts again
    clock.now += 29 * 60
    assert sessions.get(session_id) is not None
    clock.now += 31 * 60
    assert sessions.get(session_id) is None  # idle too long
    again = sessions.open(issued.principal, token_hash(issued.token))
    opened = clock.now
    while clock.now + 29 * 60 < opened + 8 * 3600:  # busy all day: never idle
        clock.now += 29 * 60
        assert sessions.get(again) is not None
    clock.now = opened + 8 * 3600
    assert sessions.get(again) is None  # eight hours after sign-in, however busy


def test_revoking_the_token_ends_its_sessions(world: ServiceWorld) -> None:
    csrf = sign_in(world)
    assert world.client.get("/workbench/today").status_code == 200
    assert world.context.tokens.revoke(world.tokens[HRSS, "registrar"])
    gone = world.client.get("/workbench/today", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == SIGN_IN
    refused = world.client.post("/workbench/sign-out", data={"csrf": csrf})
    assert refused.status_code == 401


def test_the_csrf_token_is_an_hmac_of_the_session_id() -> None:
    secret = b"k" * 32
    assert csrf_token("a" * 43, secret) != csrf_token("b" * 43, secret)
    assert csrf_token("a" * 43, secret) != csrf_token("a" * 43, b"j" * 32)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", csrf_token("a" * 43, secret))


def test_malformed_session_ids_find_nothing(world: ServiceWorld) -> None:
    sessions = WorkbenchSessions(world.store)
    for text in (None, "", "x", "é" * 43, "a" * 44, "a" * 42 + "!"):
        assert sessions.get(text) is None
        assert not sessions.close(text)


# ---------------------------------------------------------------------- sign-in


def test_sign_in_sets_a_strict_http_only_cookie_for_the_workbench_only(
    world: ServiceWorld,
) -> None:
    response = world.client.post(
        SIGN_IN, data={"token": world.tokens[HRSS, "verifier"]}, follow_redirects=False
    )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/workbench" in cookie
    assert "Max-Age=28800" in cookie
    assert "Secure" not in cookie  # plain http on loopback: a Secure cookie would be dropped
    assert world.tokens[HRSS, "verifier"] not in cookie
    page = world.client.get("/workbench/today")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "BJ-HRSS" in page.text and 'lang="en"' in page.text and "<script" not in page.text


def test_the_cookie_is_secure_when_the_service_is_served_over_https(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    world = open_service(tmp_path, embedded_deployment, public_base_url="https://ledger.example")
    try:
        response = world.client.post(
            SIGN_IN, data={"token": world.tokens[HRSS, "registrar"]}, follow_redirects=False
        )
        assert "Secure" in response.headers["set-cookie"]
    finally:
        world.context.close()


def test_wrong_tokens_are_refused_and_throttled(world: ServiceWorld) -> None:
    statuses = []
    for _ in range(world.settings.auth_failure_limit + 2):
        response = world.client.post(SIGN_IN, data={"token": "clt_" + "x" * 43})
        statuses.append(response.status_code)
        assert "set-cookie" not in response.headers
    assert statuses[0] == 401 and statuses[-1] == 429
    # Even the right token waits while the address is throttled.
    late = world.client.post(SIGN_IN, data={"token": world.tokens[HRSS, "registrar"]})
    assert late.status_code == 429


def test_a_feed_or_operator_token_cannot_sign_in(world: ServiceWorld) -> None:
    for role, scope in (("feed", "public"), ("operator", None)):
        issued = world.context.tokens.issue("FEED" if scope else "OPERATOR", role, scope=scope)
        response = world.client.post(SIGN_IN, data={"token": issued.token})
        assert response.status_code == 401


def test_pages_send_a_signed_out_browser_to_the_sign_in_form(world: ServiceWorld) -> None:
    for path in ("/workbench", "/workbench/today", "/workbench/tasks"):
        response = world.client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == SIGN_IN


def test_sign_out_needs_the_csrf_token_and_ends_the_session(world: ServiceWorld) -> None:
    csrf = sign_in(world)
    before = snapshot(world)
    refused = world.client.post("/workbench/sign-out", data={"back": "/workbench/today"})
    assert refused.status_code == 403
    # Another first character: changing the last one could leave the token as it was (when
    # it already ends in the character written) or differ only in base64's unused bits.
    altered = ("B" if csrf[0] == "A" else "A") + csrf[1:]
    wrong = world.client.post("/workbench/sign-out", data={"csrf": altered})
    assert wrong.status_code == 403
    assert snapshot(world) == before  # nothing changed
    assert world.client.get("/workbench/today", follow_redirects=False).status_code == 200
    done = world.client.post("/workbench/sign-out", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    world.client.cookies.clear()
    assert WorkbenchSessions(world.store).count() == 0


def test_a_form_from_another_site_is_refused(world: ServiceWorld) -> None:
    response = world.client.post(
        SIGN_IN,
        data={"token": world.tokens[HRSS, "registrar"]},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 403 and "set-cookie" not in response.headers


def test_a_restarted_service_keeps_the_session(world: ServiceWorld) -> None:
    sign_in(world)
    cookie = world.client.cookies.get("commitledger_workbench")
    context = ServiceContext.open(world.settings, chain=world.deployment.chain, vault=world.vault)
    try:
        from fastapi.testclient import TestClient

        fresh = TestClient(create_app(world.settings, context=context))
        fresh.cookies.set("commitledger_workbench", str(cookie), path="/workbench")
        page = fresh.get("/workbench/today", follow_redirects=False)
        assert page.status_code == 200, page.text
    finally:
        context.close()


def test_the_market_department_sees_its_own_department(world: ServiceWorld) -> None:
    sign_in(world, MARKET, "verifier")
    page = world.client.get("/workbench/today").text
    assert "BJ-SAMR" in page


# ---------------------------------------------------------------------- work lists, decisions


def awaiting(world: ServiceWorld) -> str:
    page = world.client.get("/workbench/lists/awaiting-decision")
    assert page.status_code == 200, page.text
    return page.text


def test_deciding_from_the_list_takes_the_commitment_off_it(world: ServiceWorld) -> None:
    from ledger import hex32

    digest = world.submit(world.signed())
    other = world.submit(world.signed())
    csrf = sign_in(world)
    listed = awaiting(world)
    assert hex32(digest) in listed and hex32(other) in listed
    action = f"/workbench/commitments/{hex32(digest)}/decision"
    before = snapshot(world)
    missing = world.client.post(action, data={"result": "approved"})
    assert missing.status_code == 403
    assert snapshot(world) == before  # refused: nothing changed
    assert world.store.decision_of(digest) is None
    done = world.client.post(
        action,
        data={"result": "approved", "csrf": csrf, "back": "/workbench/lists/awaiting-decision"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/workbench/lists/awaiting-decision?done=decided"
    decision = world.store.decision_of(digest)
    assert decision is not None and decision.record.result == "approved"
    assert (
        decision.record.decided_by
        == world.context.tokens.lookup(world.tokens[HRSS, "registrar"]).token_id
    )  # type: ignore[union-attr]
    listed = awaiting(world)
    assert hex32(digest) not in listed and hex32(other) in listed
    again = world.client.post(action, data={"result": "refused", "csrf": csrf})
    assert again.status_code == 409  # decided once


def test_a_verifier_or_supervisor_cannot_decide_and_another_department_cannot(
    world: ServiceWorld,
) -> None:
    from ledger import hex32

    digest = world.submit(world.signed())
    action = f"/workbench/commitments/{hex32(digest)}/decision"
    csrf = sign_in(world, HRSS, "verifier")
    assert world.client.post(action, data={"result": "approved", "csrf": csrf}).status_code == 403
    world.client.cookies.clear()
    csrf = sign_in(world, MARKET, "registrar")
    assert world.client.post(action, data={"result": "approved", "csrf": csrf}).status_code == 403
    world.client.cookies.clear()
    supervisor = world.context.tokens.issue("SUPERVISOR", "supervisor")
    world.client.post(SIGN_IN, data={"token": supervisor.token})
    csrf = csrf_of(world.client.get("/workbench/today").text)
    assert world.client.post(action, data={"result": "approved", "csrf": csrf}).status_code == 403
    assert world.store.decision_of(digest) is None


def test_the_commitment_page_shows_its_file_to_its_department_only(world: ServiceWorld) -> None:
    from ledger import hex32

    digest = world.submit(world.signed())
    sign_in(world)
    page = world.client.get(f"/workbench/commitments/{hex32(digest)}")
    assert page.status_code == 200, page.text
    assert hex32(digest) in page.text and "Deadlines" in page.text
    assert "History" in page.text and "Received" in page.text
    world.client.cookies.clear()
    sign_in(world, MARKET, "registrar")
    assert world.client.get(f"/workbench/commitments/{hex32(digest)}").status_code == 403


def test_today_shows_new_commitments_and_the_decisions_due(world: ServiceWorld) -> None:
    digest = world.submit(world.signed())
    sign_in(world)
    page = world.client.get("/workbench/today").text
    from ledger import hex32

    assert hex32(digest)[:12] in page
    assert "Due today, still in time" in page and "Decisions already late" in page


# ---------------------------------------------------------------------- charts, comparison, tokens


def test_the_charts_draw_the_decisions_within_and_past_the_limit(world: ServiceWorld) -> None:
    from ledger import hex32

    digest = world.submit(world.signed())
    csrf = sign_in(world)
    world.client.post(
        f"/workbench/commitments/{hex32(digest)}/decision",
        data={"result": "refused", "csrf": csrf},
    )
    for period in ("day", "week", "month"):
        page = world.client.get("/workbench/charts", params={"period": period})
        assert page.status_code == 200, page.text
        assert page.text.count("<svg") >= 2 and "style=" not in page.text.split("<main>")[1]
        assert "half-day limit" in page.text
    table = page.text.split("Decisions within and past the half-day limit")[-1]
    assert re.search(r"<td[^>]*>1</td>", table)  # the one decision, counted
    assert world.client.get("/workbench/compare").status_code == 403  # a supervisor's page


def test_a_supervisor_compares_departments_and_reads_any_list(world: ServiceWorld) -> None:
    world.submit(world.signed())
    world.submit(world.signed(MARKET))
    supervisor = world.context.tokens.issue("SUPERVISOR", "supervisor")
    world.client.post(SIGN_IN, data={"token": supervisor.token})
    page = world.client.get("/workbench/compare")
    assert page.status_code == 200, page.text
    assert "BJ-HRSS" in page.text and "BJ-SAMR" in page.text and "<svg" in page.text
    listed = world.client.get("/workbench/lists/awaiting-decision", params={"department": MARKET})
    assert (
        listed.status_code == 200
        and '<form class="inline"' not in listed.text.split("<main>")[1].split("</table>")[0]
    )  # rows, and no form to act on them
    picker = world.client.get("/workbench/lists/awaiting-decision")
    assert "department=BJ-HRSS" in picker.text
    assert world.client.get("/workbench/charts", params={"department": ""}).status_code == 200
    assert world.client.get("/workbench/tokens").status_code == 403
    today = world.client.get("/workbench/today").text
    assert "Decisions by department" in today and "department=BJ-SAMR&amp;late=true" in today


def test_a_department_reads_no_other_departments_list(world: ServiceWorld) -> None:
    sign_in(world)
    page = world.client.get("/workbench/lists/manual", params={"department": MARKET})
    assert page.status_code == 403
    assert world.client.get("/workbench/lists/nonsense").status_code == 404


def test_the_tokens_page_revokes_and_rotates_the_departments_own(world: ServiceWorld) -> None:
    csrf = sign_in(world)
    page = world.client.get("/workbench/tokens").text
    verifier = world.context.tokens.lookup(world.tokens[HRSS, "verifier"])
    other = world.context.tokens.lookup(world.tokens[MARKET, "verifier"])
    assert verifier is not None and other is not None
    assert verifier.token_id in page and other.token_id not in page
    assert world.tokens[HRSS, "verifier"] not in page
    refused = world.client.post(f"/workbench/tokens/{other.token_id}/revoke", data={"csrf": csrf})
    assert refused.status_code == 409  # another department's: as if unknown
    assert world.context.tokens.lookup(world.tokens[MARKET, "verifier"]) is not None
    rotated = world.client.post(
        f"/workbench/tokens/{verifier.token_id}/rotate", data={"csrf": csrf}
    )
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    new = re.search(r'id="new-token">([^<]+)<', rotated.text)
    assert new is not None
    assert world.context.tokens.lookup(world.tokens[HRSS, "verifier"]) is None
    assert world.context.tokens.lookup(new.group(1)) is not None
    revoked = world.client.post(
        f"/workbench/tokens/{world.context.tokens.lookup(new.group(1)).token_id}/revoke",  # type: ignore[union-attr]
        data={"csrf": csrf},
        follow_redirects=False,
    )
    assert revoked.status_code == 303
    assert world.context.tokens.lookup(new.group(1)) is None


def test_charts_escape_their_labels_and_use_no_inline_style() -> None:
    from api.service.workbench.charts import Series, bar_chart, line_chart

    svg = line_chart("<t>", ["<p>", "2"], [Series("<s>", [0.5, None])])
    svg += bar_chart("<t>", ["<p>"], [Series("<s>", [3.0])])
    assert "<s>" not in svg and "<p>" not in svg and "&lt;s&gt;" in svg
    assert "style=" not in svg and "<script" not in svg


# ---------------------------------------------------------------------- defence and appeals


@pytest.fixture
def keyed(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    """A service holding the departments' keys: the verifier's actions go on chain."""
    from support.service_keys import write_all_keys

    write_all_keys(tmp_path / "keys", embedded_deployment)
    opened = open_service(tmp_path, embedded_deployment, feed=False, anchoring=False)
    try:
        yield opened
    finally:
        opened.context.close()


def proposed(world: ServiceWorld) -> Hash32:
    """An HRSS commitment anchored and decided false: a proposed breach in its defence."""
    from api.service.engines import department_actions

    digest = world.submit(world.signed())
    world.anchor()
    with department_actions(world.context, HRSS) as actions:
        actions.decide(digest, "false", world.context.today(), "verifier", "the claim was false")
    return digest


def test_a_verifier_confirms_or_dismisses_proposed_breaches_from_the_list(
    keyed: ServiceWorld,
) -> None:
    from ledger import hex32

    confirm, dismiss = proposed(keyed), proposed(keyed)
    csrf = sign_in(keyed, HRSS, "verifier")
    listed = keyed.client.get("/workbench/lists/defence").text
    assert hex32(confirm) in listed and hex32(dismiss) in listed
    path = "/workbench/commitments/{}/defence"
    no_reasons = keyed.client.post(
        path.format(hex32(confirm)), data={"act": "confirm", "csrf": csrf, "reasons": " "}
    )
    assert no_reasons.status_code == 422
    done = keyed.client.post(
        path.format(hex32(confirm)),
        data={"act": "confirm", "csrf": csrf, "reasons": "现场核查属实 / checked on site"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"].endswith("done=confirmed")
    done = keyed.client.post(
        path.format(hex32(dismiss)),
        data={"act": "dismiss", "csrf": csrf, "reasons": "申辩成立 / the defence holds"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    listed = keyed.client.get("/workbench/lists/defence").text
    assert hex32(confirm) not in listed and hex32(dismiss) not in listed
    on = keyed.context.today()
    published = [r.commitment_hash for r in keyed.context.records.search_breaches(on).records]
    assert hex32(confirm) in published and hex32(dismiss) not in published
    shown = keyed.client.get(f"/workbench/commitments/{hex32(confirm)}").text
    assert "Breach record" in shown and "Notice of a proposed breach" in shown
    again = keyed.client.post(
        path.format(hex32(confirm)), data={"act": "confirm", "csrf": csrf, "reasons": "again"}
    )
    assert again.status_code == 409  # decided already: a page saying why


def test_a_verifier_decides_an_objection_from_the_appeals_list(keyed: ServiceWorld) -> None:
    from support.appeals import published

    _, record = published(keyed)
    filed = keyed.client.post(
        f"/v1/breaches/{record.id}/objections",
        json={"reason": "不是本人 / not me"},
        headers=keyed.auth(HRSS, "registrar"),
    )
    assert filed.status_code == 201, filed.text
    appeal_id = filed.json()["id"]
    csrf = sign_in(keyed, HRSS, "verifier")
    assert appeal_id in keyed.client.get("/workbench/lists/appeals").text
    action = f"/workbench/appeals/{appeal_id}/decision"
    wrong = keyed.client.post(
        action, data={"outcome": "granted", "csrf": csrf, "reasons": "不符 / no"}
    )
    assert wrong.status_code == 422  # a repair's outcome for an objection
    done = keyed.client.post(
        action,
        data={"outcome": "rejected", "csrf": csrf, "reasons": "记录无误 / the record stands"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert appeal_id not in keyed.client.get("/workbench/lists/appeals").text


# ---------------------------------------------------------------------- every form, its token


def test_every_form_on_the_pages_carries_the_csrf_token(keyed: ServiceWorld) -> None:
    proposed(keyed)
    keyed.submit(keyed.signed())
    for role in ("registrar", "verifier"):
        keyed.client.cookies.clear()
        csrf = sign_in(keyed, HRSS, role)
        pages = ["/workbench/today", "/workbench/tokens", "/workbench/tasks", "/workbench/charts"]
        pages += [f"/workbench/lists/{name}" for name in ("awaiting-decision", "defence")]
        forms = 0
        for path in pages:
            text = keyed.client.get(path).text
            for form in re.findall(r'<form[^>]*method="post".*?</form>', text, flags=re.S):
                forms += 1
                assert f'name="csrf" value="{csrf}"' in form, (path, form)
        assert forms > 3


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/workbench/commitments/{h}/decision", {"result": "approved"}),
        ("/workbench/commitments/{h}/defence", {"act": "dismiss", "reasons": "r"}),
        ("/workbench/appeals/a1/decision", {"outcome": "rejected", "reasons": "r"}),
        ("/workbench/tasks/{h}/review", {"result": "passed", "note": "n"}),
        ("/workbench/tokens/{t}/revoke", {}),
        ("/workbench/tokens/{t}/rotate", {}),
        ("/workbench/sign-out", {}),
    ],
)
def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    world: ServiceWorld, path: str, fields: dict[str, str]
) -> None:
    from ledger import hex32

    digest = world.submit(world.signed())
    csrf = sign_in(world)
    token = world.context.tokens.lookup(world.tokens[HRSS, "verifier"])
    assert token is not None
    address = path.format(h=hex32(digest), t=token.token_id)
    before = snapshot(world)
    for sent in ({**fields, "back": "/workbench/today"}, {**fields, "csrf": csrf[::-1]}):
        response = world.client.post(address, data=sent, follow_redirects=False)
        assert response.status_code == 403, (address, response.text)
        assert "CSRF" in response.text
    assert snapshot(world) == before


def test_a_list_downloads_as_the_apis_csv(world: ServiceWorld) -> None:
    from ledger import hex32

    digest = world.submit(world.signed())
    sign_in(world)
    page = world.client.get("/workbench/lists/awaiting-decision")
    assert "format=csv" in page.text
    download = world.client.get("/workbench/lists/awaiting-decision", params={"format": "csv"})
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert download.content.startswith("\ufeff".encode())  # Excel reads it as UTF-8
    assert hex32(digest) in download.text and download.text.count("\r\n") == 2


def test_sessions_on_sqlite_and_postgresql(store_url: str) -> None:
    from api.service.tokens import TokenStore, token_hash

    store = Store(store_url)
    try:
        tokens = TokenStore(store)
        issued = tokens.issue(HRSS, "verifier")
        sessions = WorkbenchSessions(store)
        first = sessions.open(issued.principal, token_hash(issued.token))
        second = WorkbenchSessions(store).open(issued.principal, token_hash(issued.token))
        found = sessions.get(first)
        assert found is not None and found.principal.role == "verifier"
        assert sessions.close(first) and sessions.get(first) is None
        assert sessions.get(second) is not None
        tokens.revoke(issued.token)
        assert sessions.get(second) is None  # the token's sessions end with it
    finally:
        store.close()


def test_signing_in_again_replaces_the_session(world: ServiceWorld) -> None:
    sign_in(world)
    first = world.client.cookies.get("commitledger_workbench")
    world.client.post(SIGN_IN, data={"token": world.tokens[HRSS, "verifier"]})
    assert world.client.cookies.get("commitledger_workbench") != first
    assert WorkbenchSessions(world.store).get(first) is None
    assert WorkbenchSessions(world.store).count() == 1


def test_the_workbench_shows_exactly_the_late_decisions(world: ServiceWorld) -> None:
    from sqlalchemy import update

    from ledger import commitments, hex32

    hashes = [world.submit(world.signed()) for _ in range(4)]
    early = hashes[:2]
    with world.store.engine.begin() as connection:  # a month ago: late by now, holidays or not
        connection.execute(
            update(commitments)
            .where(commitments.c.hash.in_(early))
            .values(received_at=commitments.c.received_at - 30 * 86_400)
        )
    csrf = sign_in(world)
    for digest in (early[0], hashes[2]):
        response = world.client.post(
            f"/workbench/commitments/{hex32(digest)}/decision",
            data={"result": "approved", "csrf": csrf},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
    late_list = world.client.get("/workbench/lists/awaiting-decision", params={"late": "true"})
    shown = set(re.findall(r'href="/workbench/commitments/(0x[0-9a-f]{64})"', late_list.text))
    assert shown == {hex32(early[1])}  # the one still undecided and late
    today = world.client.get("/workbench/today").text.split('id="due"')[0]
    assert set(re.findall(r'href="/workbench/commitments/(0x[0-9a-f]{64})"', today)) == shown
    assert "Late" in world.client.get(f"/workbench/commitments/{hex32(early[0])}").text
    assert "In time" in world.client.get(f"/workbench/commitments/{hex32(hashes[2])}").text
    charts = world.client.get("/workbench/charts", params={"period": "month"}).text
    decisions = charts.split("Decisions within and past the half-day limit")[-1]
    decisions = decisions.split("<tbody>")[1].split("</tbody>")[0]
    cells = re.findall(r"<tr[^>]*>(.*?)</tr>", decisions)[-1]  # this month
    assert re.findall(r"<td[^>]*>([^<]*)</td>", cells)[1:4] == ["2", "1", "1"]


def test_due_today_means_due_on_todays_beijing_date_and_still_in_time(
    world: ServiceWorld,
) -> None:
    from sqlalchemy import update

    from api.service.workbench.today import decisions_due, work_lists
    from ledger import commitments

    beijing = timezone(timedelta(hours=8))
    day = datetime.now(beijing).date()
    morning = datetime(day.year, day.month, day.day, 9, 30, tzinfo=beijing).timestamp()
    today_, old, new = (world.submit(world.signed()) for _ in range(3))
    # `new` is received late in the day, so it falls due on a later day whatever the wall
    # clock says (received "now" it would be due today whenever now is early in the day).
    # All three came online: a sample document's channel follows its serial, which follows
    # how many tests ran before in this process, and one at the counter at 16:30 is due today.
    evening = datetime(day.year, day.month, day.day, 16, 30, tzinfo=beijing).timestamp()
    with world.store.engine.begin() as connection:
        for digest, when in ((today_, morning), (old, morning - 30 * 86_400), (new, evening)):
            connection.execute(
                update(commitments)
                .where(commitments.c.hash == digest)
                .values(received_at=when, channel="online")
            )
    lists = work_lists(world.store, world.context.hours)
    now = datetime(day.year, day.month, day.day, 10, 0, tzinfo=beijing)
    late, due, awaited = decisions_due(lists, HRSS, day, now)
    # On a working day the morning's is due today; on a day off, on the next working day.
    working = world.context.hours.between(now - timedelta(hours=1), now) > 0
    assert [i.commitment for i in late.items] == [old]
    assert [i.commitment for i in due.items] == ([today_] if working else [])
    assert awaited == 3 and new not in [i.commitment for i in due.items]


# ---------------------------------------------------------------------- a check's result


@pytest.fixture
def checking(tmp_path: Path, embedded_deployment: Deployment) -> Iterator[ServiceWorld]:
    """A service whose department data come from the sample service: a food licence's rules
    are reviewed by a person (a task on the manual list)."""
    with service_with_sources(tmp_path, embedded_deployment) as opened:
        yield opened


def test_a_verifier_records_a_check_from_the_manual_list(checking: ServiceWorld) -> None:
    from support.service_world import DAY

    from ledger import hex32

    digest = agreeing_food_licence(checking)
    ran = checking.client.post(
        "/v1/verifications/run",
        json={"on": DAY.isoformat()},
        headers=checking.auth(MARKET, "verifier"),
    )
    assert ran.status_code == 200, ran.text
    csrf = sign_in(checking, MARKET, "verifier")
    listed = checking.client.get("/workbench/lists/manual").text
    action = f"/workbench/tasks/{hex32(digest)}/food_safety_rules_review"
    assert f'action="{action}"' in listed
    assert checking.client.post(action, data={"result": "passed", "csrf": csrf}).status_code == 422
    done = checking.client.post(
        action,
        data={"result": "passed", "note": "规则齐全 / the rules are complete", "csrf": csrf},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"].endswith("done=checked")
    assert f'action="{action}"' not in checking.client.get("/workbench/lists/manual").text
    verification = checking.context.records.verification(digest)
    assert verification is not None and verification.state == "kept"


def test_a_malformed_hash_in_an_action_is_a_refusal_not_a_server_error(
    world: ServiceWorld,
) -> None:
    csrf = sign_in(world)
    before = snapshot(world)
    for action in (
        "/workbench/commitments/0xnothex/decision",
        "/workbench/commitments/12345/defence",
        "/workbench/tasks/0x" + "g" * 64 + "/check",
    ):
        response = world.client.post(action, data={"result": "approved", "csrf": csrf})
        assert response.status_code == 400, (action, response.status_code)
        assert "Not a commitment hash" in response.text
    assert snapshot(world) == before


def test_a_department_instance_refuses_another_departments_workbench_writes(
    tmp_path: Path, embedded_deployment: Deployment
) -> None:
    from ledger import hex32

    today = datetime.now(timezone(timedelta(hours=8))).date()
    world = open_service(tmp_path, embedded_deployment, today=today, department=MARKET)
    try:
        digest = world.submit(world.signed())  # an HRSS commitment, stored directly
        csrf = sign_in(world)  # HRSS's registrar: reading is anyone's
        before = snapshot(world)
        action = f"/workbench/commitments/{hex32(digest)}/decision"
        refused = world.client.post(action, data={"result": "approved", "csrf": csrf})
        assert refused.status_code == 403 and f"acts for {MARKET} only" in refused.text
        assert snapshot(world) == before and world.store.decision_of(digest) is None
    finally:
        world.context.close()

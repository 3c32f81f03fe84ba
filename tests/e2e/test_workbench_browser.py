"""The workbench in headless Chromium (issue 15): a clerk signs in with the department's
token, walks today's page, decides one case from the awaiting-decision list and sees it
leave the list, without JavaScript; a form posted without its CSRF token is refused and
changes nothing; screenshots at a desktop's and a phone's width.

The screenshots go to the test's tmp directory; with WORKBENCH_SCREENSHOTS=docs they are
also copied to docs/workbench-1280.png and docs/workbench-390.png, which the README shows.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import update
from support.browser import at_width, chromium, click_through, require_browser, shoot
from support.deployment import HRSS, deploy
from support.service_world import ServiceWorld, open_service

from api.demo import running
from ledger import Chain, Hash32, commitments, hex32

pytestmark = pytest.mark.e2e

WIDTHS = (1280, 390)
SCREENSHOTS_ENV = "WORKBENCH_SCREENSHOTS"
DOCS = Path(__file__).resolve().parents[2] / "docs"
LIST = "/workbench/lists/awaiting-decision"


@dataclass
class Site:
    url: str
    world: ServiceWorld
    fresh: list[Hash32]  # received now: decisions still in time
    late: list[Hash32]  # received a month ago: late


@pytest.fixture
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The service on a free loopback port with six of the department's commitments awaiting
    a decision, two of them received a month ago (late by now, holidays or not)."""
    require_browser()
    tmp_path = tmp_path_factory.mktemp("workbench")
    today = datetime.now(timezone(timedelta(hours=8))).date()
    world = open_service(tmp_path, deploy(Chain.embedded()), today=today)
    hashes = [world.submit(world.signed()) for _ in range(6)]
    late, fresh = hashes[:2], hashes[2:]
    with world.store.engine.begin() as connection:  # a month ago: late by now, holidays or not
        connection.execute(
            update(commitments)
            .where(commitments.c.hash.in_(late))
            .values(received_at=commitments.c.received_at - 30 * 86_400)
        )
    try:
        with running(world.client.app) as url:
            yield Site(url, world, fresh, late)
    finally:
        world.context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder


def _sign_in(browser: object, site: Site) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    browser.get(site.url + "/workbench")
    assert browser.current_url == site.url + "/workbench/sign-in"
    browser.find_element(By.NAME, "token").send_keys(site.world.tokens[HRSS, "registrar"])
    click_through(browser, browser.find_element(By.CSS_SELECTOR, "form button"), "#received-today")
    assert browser.current_url == site.url + "/workbench/today"


def _rows(browser: object) -> dict[str, str]:
    """The listed commitments' full hashes (from their links) and their rows' classes."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    found = {}
    for row in browser.find_elements(By.CSS_SELECTOR, "table.rows tbody tr"):
        link = row.find_element(By.CSS_SELECTOR, 'a[href^="/workbench/commitments/"]')
        href = link.get_attribute("href") or ""
        found[href.rsplit("/", 1)[1]] = row.get_attribute("class") or ""
    return found


def test_a_clerk_signs_in_walks_today_and_decides_a_case(site: Site, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    with chromium(javascript=False, flags=("--hide-scrollbars",)) as browser:
        at_width(browser, 1280)
        _sign_in(browser, site)
        assert browser.find_element(By.ID, "received-today").text == str(len(site.fresh))
        late_heading = browser.find_element(By.ID, "late").text
        assert "Decisions already late" in late_heading and late_heading.endswith("2")
        late_rows = browser.find_elements(By.CSS_SELECTOR, "tr.late")
        assert len(late_rows) == len(site.late)  # highlighted, and only those
        assert all("late by" in row.text for row in late_rows)
        assert "<script" not in browser.page_source
        shoot(browser, shots / "workbench-1280.png")

        browser.find_element(By.CSS_SELECTOR, f'nav.main a[href="{LIST}"]').click()
        listed = _rows(browser)
        assert set(listed) == {hex32(h) for h in site.fresh + site.late}
        assert {h for h, css in listed.items() if css == "late"} == {hex32(h) for h in site.late}
        chosen = hex32(site.fresh[0])
        row = browser.find_element(By.XPATH, f'//tr[.//a[@href="/workbench/commitments/{chosen}"]]')
        approve = row.find_element(By.XPATH, ".//button[contains(., 'Approve')]")
        click_through(browser, approve, 'p.message[role="status"]')
        assert browser.current_url == f"{site.url}{LIST}?done=decided"
        assert "Decided" in browser.find_element(By.CSS_SELECTOR, "p.message").text
        remaining = _rows(browser)
        assert chosen not in remaining and len(remaining) == len(listed) - 1
        decision = site.world.store.decision_of(site.fresh[0])
        assert decision is not None and decision.record.result == "approved"
        assert not decision.record.late
        shoot(browser, shots / "list-1280.png")

        browser.get(f"{site.url}/workbench/commitments/{chosen}")
        assert "In time" in browser.find_element(By.TAG_NAME, "main").text

        browser.find_element(By.CSS_SELECTOR, 'nav.main a[href="/workbench/charts"]').click()
        charts = browser.find_elements(By.CSS_SELECTOR, "figure svg")
        assert len(charts) >= 2 and all(chart.size["width"] > 400 for chart in charts)
        shoot(browser, shots / "charts-1280.png")

        at_width(browser, 390)
        browser.get(site.url + "/workbench/today")
        overflow = browser.find_element(By.TAG_NAME, "html").size["width"]
        assert overflow <= 390 + 1  # nothing runs off the side of a phone's screen
        shoot(browser, shots / "workbench-390.png")
        browser.get(site.url + LIST)
        shoot(browser, shots / "list-390.png")
        browser.get(site.url + "/workbench/charts")
        assert browser.find_element(By.TAG_NAME, "html").size["width"] <= 390 + 1
        shoot(browser, shots / "charts-390.png")

        # Signed out, the reform office's supervisor compares the departments.
        sign_out = browser.find_element(By.CSS_SELECTOR, "header form button")
        click_through(browser, sign_out, 'input[name="token"]')
        assert browser.current_url == site.url + "/workbench/sign-in"
        browser.get(site.url + "/workbench/today")
        assert browser.current_url == site.url + "/workbench/sign-in"  # the session is over
        at_width(browser, 1280)
        supervisor = site.world.context.tokens.issue("SUPERVISOR", "supervisor").token
        browser.find_element(By.NAME, "token").send_keys(supervisor)
        click_through(
            browser, browser.find_element(By.CSS_SELECTOR, "form button"), "#received-today"
        )
        assert "Decisions by department" in browser.find_element(By.TAG_NAME, "main").text
        browser.find_element(By.CSS_SELECTOR, 'nav.main a[href="/workbench/compare"]').click()
        assert HRSS in browser.find_element(By.TAG_NAME, "main").text
        assert not browser.find_elements(By.CSS_SELECTOR, 'main form[method="post"]')
        shoot(browser, shots / "compare-1280.png")

    if os.environ.get(SCREENSHOTS_ENV) == "docs":
        DOCS.mkdir(exist_ok=True)
        for width in WIDTHS:
            shutil.copyfile(shots / f"workbench-{width}.png", DOCS / f"workbench-{width}.png")
    print(f"workbench screenshots: {shots}")


def test_a_form_without_its_csrf_token_is_refused(site: Site) -> None:
    from selenium.webdriver.common.by import By

    with chromium(flags=("--hide-scrollbars",)) as browser:
        at_width(browser, 1280)
        _sign_in(browser, site)
        browser.get(site.url + LIST)
        chosen = hex32(site.late[0])
        action = f"/workbench/commitments/{chosen}/decision"
        form = browser.find_element(By.CSS_SELECTOR, f'form[action="{action}"]')
        browser.execute_script("arguments[0].querySelector('input[name=csrf]').remove()", form)
        click_through(browser, form.find_element(By.TAG_NAME, "button"), "p.error")
        text = browser.find_element(By.CSS_SELECTOR, "p.error").text
        assert "CSRF" in text
        assert browser.find_element(By.TAG_NAME, "h1").text.startswith("403")
        assert site.world.store.decision_of(site.late[0]) is None  # nothing changed
        browser.get(site.url + LIST)
        assert chosen in _rows(browser)

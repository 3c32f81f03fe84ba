"""The public pages as people see them, in headless Chromium at a desktop's and a phone's
width (screenshots kept for review), and the API docs rendered with nothing fetched from
anywhere but this machine."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
from support.browser import WAIT_S, chromium, require_browser
from support.verifier_world import DAY, open_world

from api.demo import running
from api.service import ServiceContext, Settings, create_app
from ledger import Chain
from verifier import BreachRecord

pytestmark = pytest.mark.e2e

WIDTHS = {"desktop": 1280, "phone": 390}
# Where the screenshots go: COMMITLEDGER_SCREENSHOTS (build/screenshots, say), else a tmp dir.
SCREENSHOTS_ENV = "COMMITLEDGER_SCREENSHOTS"


@dataclass
class Site:
    url: str
    breach: BreachRecord
    full_name: str
    full_id: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The service on a free loopback port, over a store holding one breach the engine found,
    with the vault that fingerprinted its applicant."""
    require_browser()
    tmp_path = tmp_path_factory.mktemp("screens")
    chain = Chain.embedded()
    with open_world(chain, tmp_path) as world:
        _, commitment = world.commit_kind("false")
        world.engine.run(DAY)
        [breach_id] = world.publish(DAY)  # an officer confirms the proposed breach
        breach = world.engine.records.breach(breach_id)
        assert breach is not None
        (tmp_path / "deployment.json").write_text(
            f'{{"rpc": "http://127.0.0.1:1", "chain_id": {chain.chain_id}, '
            f'"contract": "{world.ledger.address}"}}'
        )
        settings = Settings(
            data_dir=tmp_path,
            store_url=f"sqlite:///{world.db_path}",
            public_rpc_url="https://rpc.example/",
        )
        context = ServiceContext.open(settings, chain=chain, vault=world.vault, today=lambda: DAY)
        applicant = commitment.applicant
        try:
            with running(create_app(settings, context=context)) as url:
                yield Site(url, breach, applicant.name, applicant.id_number)
        finally:
            context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def browser() -> Iterator[object]:
    """A fresh headless Chromium (own profile) that keeps its console log."""
    with chromium(console_log=True, flags=("--hide-scrollbars",)) as driver:
        yield driver


def _at_width(browser: object, width: int) -> None:
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    browser.set_window_size(width, 900)
    # The viewport is what the page lays out in: the window has a frame around it.
    inner = browser.execute_script("return window.innerWidth")
    browser.set_window_size(width + (width - int(inner)), 900)
    assert browser.execute_script("return window.innerWidth") == width


def _shoot(browser: object, path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    body = browser.find_element(By.TAG_NAME, "body")
    assert body.screenshot(str(path)), path
    assert path.stat().st_size > 1000


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_the_pages_at_a_desktops_and_a_phones_width(
    site: Site, browser: object, shots: Path, screen: str
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    width = WIDTHS[screen]
    _at_width(browser, width)
    browser.get(site.url + "/")
    _shoot(browser, shots / f"lookup-{width}.png")

    query = urlencode({"name": site.full_name, "credit_code": site.full_id})
    browser.get(f"{site.url}/?{query}")
    article = browser.find_element(By.ID, site.breach.id)
    assert site.breach.party_name in article.text  # found, and shown as published (masked)
    shown = browser.find_element(By.TAG_NAME, "body").text
    assert site.full_id not in shown.split("查询 / Search", 1)[1]
    _shoot(browser, shots / f"search-{width}.png")

    article.find_element(By.CSS_SELECTOR, f'a[href="/records/{site.breach.id}"]').click()
    assert browser.current_url == f"{site.url}/records/{site.breach.id}"
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "What was recorded" in text and "Where anyone can check it" in text
    assert "https://rpc.example/" in text
    english = browser.find_elements(By.CSS_SELECTOR, '[lang="en"]')
    assert any(e.text == "What was recorded" for e in english)
    # Values keep most of the line: at a phone's width the labels are above them.
    values = browser.find_elements(By.TAG_NAME, "dd")
    assert values
    main = browser.find_element(By.TAG_NAME, "body").size["width"]
    narrowest = min(v.size["width"] for v in values if v.is_displayed())
    assert narrowest > main * (0.8 if screen == "phone" else 0.5), (narrowest, main)
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth > window.innerWidth"
    )
    assert not overflow  # nothing runs off the side of the screen
    _shoot(browser, shots / f"record-{width}.png")


@pytest.mark.parametrize(("path", "rendered"), [("/docs", ".swagger-ui .info"), ("/redoc", "h1")])
def test_the_api_docs_render_from_this_machine_alone(
    site: Site, browser: object, shots: Path, path: str, rendered: str
) -> None:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(browser, WebDriver)
    _at_width(browser, WIDTHS["desktop"])
    browser.get(site.url + path)

    def titled(driver: object) -> bool:
        # In the page, at once: the viewers re-render, so an element found may be gone later.
        assert isinstance(driver, WebDriver)
        return bool(
            driver.execute_script(
                "return Array.from(document.querySelectorAll(arguments[0]))"
                ".some(e => e.textContent.includes('Commitment Ledger'))",
                rendered,
            )
        )

    WebDriverWait(browser, WAIT_S).until(titled)
    fetched = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert any(url.endswith("/openapi.json") for url in fetched), fetched
    assert all(url.startswith(site.url + "/") for url in fetched), fetched
    blocked = [
        entry["message"]
        for entry in browser.get_log("browser")
        if "Content Security Policy" in entry["message"]
    ]
    assert blocked == []
    _shoot(browser, shots / f"{path.strip('/')}-1280.png")

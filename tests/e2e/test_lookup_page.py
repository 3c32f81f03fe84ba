"""The public lookup page in a real browser: Debian's headless Chromium driven by Selenium,
against the service on loopback (real uvicorn) over a store whose breach was found by the
verification engine and recorded on the (embedded) chain."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from support.browser import WAIT_S, chromium, require_browser
from support.verifier_world import DAY, open_world

from api.demo import running
from api.service import ServiceContext, Settings, create_app
from ledger import Chain
from verifier import BreachRecord

pytestmark = pytest.mark.e2e


@dataclass
class Site:
    url: str
    breach: BreachRecord


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The service on a free loopback port, over a store holding one breach with evidence."""
    require_browser()
    tmp_path = tmp_path_factory.mktemp("site")
    chain = Chain.embedded()
    with open_world(chain, tmp_path) as world:
        world.commit_kind("false")
        world.engine.run(DAY)
        [breach_id] = world.publish(DAY)  # an officer confirms the proposed breach
        breach = world.engine.records.breach(breach_id)
        assert breach is not None
        (tmp_path / "deployment.json").write_text(
            f'{{"rpc": "http://127.0.0.1:1", "chain_id": {chain.chain_id}, '
            f'"contract": "{world.ledger.address}"}}'
        )
        settings = Settings(data_dir=tmp_path, store_url=f"sqlite:///{world.db_path}")
        context = ServiceContext.open(settings, chain=chain, today=lambda: DAY)
        try:
            with running(create_app(settings, context=context)) as url:
                yield Site(url, breach)
        finally:
            context.close()


@pytest.fixture(params=["javascript", "no-javascript"])
def browser(request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh headless Chromium (own profile), with JavaScript on or off."""
    with chromium(javascript=request.param == "javascript") as driver:
        yield driver


def test_a_search_on_the_page_shows_the_breach_with_its_transaction(
    site: Site, browser: object
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(browser, WebDriver)
    browser.get(site.url + "/")
    assert browser.title == "失信记录查询 / Breach record lookup"
    form = browser.find_element(By.CSS_SELECTOR, "form[role=search]")
    labels = [label.text for label in form.find_elements(By.TAG_NAME, "label")]
    assert "名称 / Name" in labels
    assert "统一社会信用代码或证件号 / Credit code or ID" in labels
    assert browser.find_element(By.TAG_NAME, "button").text == "查询 / Search"

    typed = site.breach.party_name.rstrip("*")  # a person's masked name: the surname part
    form.find_element(By.NAME, "name").send_keys(typed)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, WAIT_S).until(lambda d: "name=" in d.current_url)  # type: ignore[union-attr]

    article = browser.find_element(By.ID, site.breach.id)
    article.find_element(By.TAG_NAME, "summary").click()  # the evidence, folded: opened
    shown = article.text
    assert site.breach.party_name in shown
    assert site.breach.evidence.transaction in shown
    assert site.breach.evidence.commitment_hash in shown
    assert "链上证据 / On-chain evidence" in shown
    assert "交易 / Transaction" in shown
    assert "如何独立核验 / How to check it yourself" in shown
    assert browser.find_element(By.NAME, "name").get_attribute("value") == typed
    assert browser.find_elements(By.TAG_NAME, "script") == []


def test_a_search_for_nobody_says_so_in_both_languages(site: Site, browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(browser, WebDriver)
    browser.get(site.url + "/")
    field = browser.find_element(By.NAME, "name")
    field.send_keys("不存在的公司名称")
    field.submit()
    WebDriverWait(browser, WAIT_S).until(lambda d: "name=" in d.current_url)  # type: ignore[union-attr]
    assert "未找到记录 / No records found" in browser.find_element(By.TAG_NAME, "body").text
    assert browser.find_elements(By.TAG_NAME, "article") == []

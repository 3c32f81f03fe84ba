"""The applicant's page in headless Chromium, without JavaScript: the commitment hash typed
in, the challenge signed by `commitledger applicant sign-challenge` and pasted, then the
applicant's own file with its deadline, an objection filed; screenshots at a desktop's and a
phone's width."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from support.browser import at_width, chromium, click_through, require_browser, shoot
from support.deployment import deploy
from support.privacy import cli, explain
from support.service_world import ServiceWorld, open_service

from api.demo import running
from ledger import Chain, Hash32, SignedCommitment, hex32
from verifier import BreachRecord
from verifier.records import Appeal

pytestmark = pytest.mark.e2e

WIDTHS = {"desktop": 1280, "phone": 390}
SCREENSHOTS_ENV = "COMMITLEDGER_SCREENSHOTS"  # as tests/e2e/test_screens.py


class _Due:
    day = date(2026, 12, 1)
    provisional = False


@dataclass
class Site:
    url: str
    world: ServiceWorld
    key_file: Path
    digest: Hash32
    signed: SignedCommitment
    breach: BreachRecord


@pytest.fixture
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The service on a free loopback port: one anchored commitment scheduled for
    verification, with a published breach record, and the applicant's key on disk."""
    require_browser()
    tmp_path = tmp_path_factory.mktemp("applicant")
    world = open_service(tmp_path, deploy(Chain.embedded()))
    signed = world.signed()
    digest = world.submit(signed)
    world.anchor()
    document = signed.document
    world.context.records.schedule(digest, document.matter_code, document.department, _Due())
    breach = world.add_breach(commitment=digest)
    key_file = tmp_path / "applicant.pem"
    key_file.write_bytes(world.applicant_key.to_pem())
    try:
        with running(world.client.app) as url:
            yield Site(url, world, key_file, digest, signed, breach)
    finally:
        world.context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _sign_in(browser: object, site: Site) -> None:
    """Type the hash, sign the challenge with the command, paste the signature."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    browser.get(site.url + "/applicant")
    browser.find_element(By.NAME, "commitment").send_keys(hex32(site.digest))
    button = browser.find_element(By.CSS_SELECTOR, 'form[action="/applicant/challenge"] button')
    click_through(browser, button, 'input[name="challenge"]')
    challenge = browser.find_element(By.NAME, "challenge").get_attribute("value")
    assert challenge is not None and len(challenge) == 64
    assert challenge in browser.find_element(By.ID, "command").text
    result = cli(
        "applicant", "sign-challenge", "--key", site.key_file,
        "--challenge", challenge, "--commitment", hex32(site.digest),
    )  # fmt: skip
    assert result.exit_code == 0, explain(result)
    browser.find_element(By.NAME, "signature").send_keys(result.stdout.strip())
    button = browser.find_element(By.CSS_SELECTOR, 'form[action="/applicant/session"] button')
    click_through(browser, button, "article.commitment")
    assert browser.current_url == site.url + "/applicant"


@pytest.mark.parametrize("screen", list(WIDTHS))
def test_the_applicant_signs_in_sees_their_file_and_files(
    site: Site, shots: Path, screen: str
) -> None:
    from selenium.webdriver.common.by import By

    with chromium(javascript=False, flags=("--hide-scrollbars",)) as browser:
        width = WIDTHS[screen]
        at_width(browser, width)
        _sign_in(browser, site)
        body = browser.find_element(By.TAG_NAME, "body").text
        assert hex32(site.digest) in body
        assert site.signed.document.applicant.name in body
        deadlines = {
            li.get_attribute("data-kind"): li.text
            for li in browser.find_elements(By.CSS_SELECTOR, "li.deadline")
        }
        assert "2026-12-01" in deadlines["verification_due"]
        assert "Verification due" in deadlines["verification_due"]
        assert site.breach.publication_end.isoformat() in deadlines["publication_until"]
        overflow = browser.find_element(By.TAG_NAME, "html").size["width"]
        assert overflow <= width + 1  # nothing runs off the side of the screen
        shoot(browser, shots / f"applicant-{width}.png")

        form = browser.find_element(By.CSS_SELECTOR, 'form[data-kind="objection"]')
        form.find_element(By.XPATH, "./ancestor::details/summary").click()
        form.find_element(By.NAME, "text").send_keys("这不是我的记录 / not my record")
        click_through(browser, form.find_element(By.CSS_SELECTOR, "button"), ".filed, #detail")
        assert browser.current_url == site.url + "/applicant?filed=objection"
        assert "Filed: Object to this record" in browser.find_element(By.CLASS_NAME, "filed").text
        [appeal] = _appeals(site)
        assert (appeal.kind, appeal.filed_by, appeal.state) == ("objection", "applicant", "open")
        shoot(browser, shots / f"applicant-filed-{width}.png")


def _appeals(site: Site) -> list[Appeal]:
    from api.service.appeals import appeal_records

    return appeal_records(site.world.context).for_record(site.breach.id)

"""Debian's headless Chromium for the browser tests: where it is, how it starts, and a
fresh driver with its own profile."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Without the background-networking flags Chromium tries hosts this machine cannot reach.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
WAIT_S = 30.0


def require_browser() -> None:
    """Fail under CI (make test installs the browser), skip elsewhere, when it is missing."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    reason = (
        f"the browser test needs {CHROMIUM} and {CHROMEDRIVER} (Debian's chromium and "
        "chromium-driver): `make test` installs them"
    )
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@contextmanager
def chromium(
    *, javascript: bool = True, console_log: bool = False, flags: tuple[str, ...] = ()
) -> Iterator[Any]:
    """A fresh headless Chromium with a profile of its own, quit and removed afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, *flags):
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options.add_argument(f"--user-data-dir={profile}")
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    if console_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def at_width(browser: object, width: int) -> None:
    """Size the window so the page's viewport is `width` pixels wide (where JavaScript can
    tell the frame's width; else the window itself)."""
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    browser.set_window_size(width, 900)
    inner = browser.execute_script("return window.innerWidth")
    if inner is None:  # no JavaScript: the window's frame is what Chromium's usually is
        return
    browser.set_window_size(width + (width - int(inner)), 900)


def shoot(browser: object, path: Path) -> None:
    """A screenshot of the page's body at `path`, not empty."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    assert browser.find_element(By.TAG_NAME, "body").screenshot(str(path)), path
    assert path.stat().st_size > 1000


def click_through(browser: object, button: object, arrived: str) -> None:
    """Click a button and wait (polling, up to WAIT_S) for the page that has `arrived`."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webelement import WebElement
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    assert isinstance(button, WebElement)
    button.click()
    WebDriverWait(browser, WAIT_S).until(ec.presence_of_element_located((By.CSS_SELECTOR, arrived)))

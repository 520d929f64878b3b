"""The confirmation page in a real browser: Debian's headless Chromium driven by selenium.

Chromium and its driver come from Debian's packages (`chromium`, `chromium-driver`), so no
browser is downloaded at run time. The screenshot is kept with the test's files; with
UPDATE_SCREENSHOTS=1 it also replaces docs/images/unsubscribe-page.png.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.support.feedback_service import FeedbackUnderTest

DOCS_SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "images" / "unsubscribe-page.png"


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        f"none of {names} is installed; run `apt-get install -y chromium chromium-driver`",
        pytrace=False,
    )


def wait_for_heading(browser: webdriver.Chrome, text: str) -> None:
    """Until the page's h1 reads `text`: a navigation (a form's POST, a link) replaces the
    document under the driver, which may report the old heading as stale or as a node of no
    document while it does; the wait polls through both and fails only on its timeout."""
    WebDriverWait(browser, 15, ignored_exceptions=(WebDriverException,)).until(
        expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "h1"), text)
    )


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium", "chromium-browser")
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=820,640",
        "--lang=en-GB",
    ):
        options.add_argument(argument)
    # An explicit driver path: selenium then never tries to download one.
    driver = webdriver.Chrome(service=Service(_binary("chromedriver")), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_page_unsubscribes_with_one_click_in_a_real_browser(
    feedback: FeedbackUnderTest,
    browser: webdriver.Chrome,
    tmp_path: Path,
) -> None:
    email = "maria@example.org"  # this module's database is its own: no other test has it
    sent = feedback.sent(email)

    browser.get(feedback.unsubscribe_url(sent.unsubscribe_token))

    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    heading = browser.find_element(By.TAG_NAME, "h1")
    assert heading.text == "Unsubscribe from marketing emails?"
    assert browser.find_elements(By.TAG_NAME, "script") == []
    assert "m••••@example.org" in browser.find_element(By.TAG_NAME, "p").text
    assert feedback.suppression(email) is None  # showing the page changes nothing
    shot = tmp_path / "unsubscribe-page.png"
    assert browser.save_screenshot(str(shot))
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)

    button = browser.find_element(By.CSS_SELECTOR, "form button[type=submit]")
    assert button.text == "Unsubscribe"
    button.click()

    wait_for_heading(browser, "You are unsubscribed")
    assert browser.current_url == feedback.unsubscribe_url(sent.unsubscribe_token)  # no redirect
    row = feedback.suppression(email)
    assert row is not None and row["reason"] == "unsubscribed"
    assert "via page" in row["source"] or "(page," in row["source"]


def test_the_page_speaks_the_browsers_language_and_switches_on_request(
    feedback: FeedbackUnderTest, address: Callable[[str], str], browser: webdriver.Chrome
) -> None:
    sent = feedback.sent(address("lang"))
    browser.get(feedback.unsubscribe_url(sent.unsubscribe_token) + "&lang=fr")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Se désabonner des e-mails marketing ?"
    browser.find_element(By.LINK_TEXT, "Deutsch").click()
    wait_for_heading(browser, "Marketing-E-Mails abbestellen?")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Marketing-E-Mails abbestellen?"
    assert browser.find_element(By.TAG_NAME, "button").text == "Abbestellen"

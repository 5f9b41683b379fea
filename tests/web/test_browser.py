"""A real browser against the app under real gunicorn: Chromium (headless) registers, logs in,
sees its top 5, receives an event produced to Kafka live, shows "reconnecting" when Kafka is
down, and frees its stream when it leaves. Screenshots go to artifacts/."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.web.conftest import ARTIFACTS, PASSWORD, TEST_CONFIG, Catalog, event_for, get_json, unused_port

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# Without these, Chromium on a machine without internet hangs on its own network calls.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1100",
)


@pytest.fixture
def start_server(run_server: Callable[[list[str], int], str]) -> Callable[..., str]:
    """The app with the test config (and ``overrides``) under gunicorn; returns its base URL."""

    def start(**overrides: Any) -> str:
        port = unused_port()
        config = {**TEST_CONFIG, "TESTING": False, "STREAM_HEARTBEAT_S": 0.5, **overrides}
        return run_server(["-m", "tests.web.gunicorn_main", str(port), json.dumps(config)], port)

    return start


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        if os.environ.get("CI"):
            pytest.fail("CI must have Debian's chromium and chromium-driver")
        pytest.skip("apt-get install chromium chromium-driver to run the browser test")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(20)
    driver.implicitly_wait(5)  # find_element waits for the next page after a submit
    yield driver
    driver.quit()


def fill_and_submit(driver: WebDriver, **fields: str) -> None:
    for name, value in fields.items():
        driver.find_element(By.NAME, name).send_keys(value)
    driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()


def register_and_log_in(driver: WebDriver, base: str, email: str, reviewer: str) -> None:
    """Through the real forms, ending on /result."""
    wait = WebDriverWait(driver, 15, poll_frequency=0.05)
    driver.get(f"{base}/auth/register")
    fill_and_submit(driver, email=email, password=PASSWORD, reviewerID=reviewer)
    wait.until(lambda d: d.current_url.endswith("/auth/login"))
    fill_and_submit(driver, email=email, password=PASSWORD)
    wait.until(lambda d: d.current_url.endswith("/result"))


def badge(driver: WebDriver) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, "#live [data-status]").text)


def card_titles(driver: WebDriver) -> list[str]:
    # One script call reads them all at once: the live script may replace the cards meanwhile.
    script = "return Array.from(document.querySelectorAll('#top5 .card .title'), e => e.textContent)"
    return list(driver.execute_script(script))


def test_browser_sees_top_5_and_live_events(start_server, browser: WebDriver, catalog: Catalog, publish) -> None:
    base = start_server()
    register_and_log_in(browser, base, "web@example.org", catalog.reviewer)
    wait = WebDriverWait(browser, 15, poll_frequency=0.02)

    assert card_titles(browser) == catalog.titles  # the script-like title is shown as text
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert  # noqa: B018 - accessing it is the check that no script ran
    wait.until(lambda d: badge(d) == "live")
    assert get_json(f"{base}/healthz")[1]["streams"]["open"] == 1
    browser.save_screenshot(str(ARTIFACTS / "web-result-before-event.png"))

    started = time.monotonic()
    publish(event_for(catalog.reviewer, title="Live pick"))
    wait.until(lambda d: card_titles(d)[:1] == ["Live pick 1"])
    latency_s = time.monotonic() - started
    (ARTIFACTS / "web-stream-latency.txt").write_text(f"produce -> shown in browser: {latency_s * 1000:.0f} ms\n")
    assert card_titles(browser) == [f"Live pick {i}" for i in range(1, 6)]
    assert "online list, model online-1" in browser.find_element(By.CSS_SELECTOR, "#live [data-log]").text
    browser.save_screenshot(str(ARTIFACTS / "web-result-after-event.png"))

    browser.get("about:blank")  # leave: the server must notice and close the stream's consumer
    deadline = time.monotonic() + 5
    while get_json(f"{base}/healthz")[1]["streams"]["open"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert get_json(f"{base}/healthz")[1]["streams"] == {"open": 0, "opened_total": 1}


def test_browser_shows_reconnecting_when_kafka_is_down(start_server, browser: WebDriver, catalog: Catalog) -> None:
    base = start_server(
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{unused_port()}", KAFKA_TIMEOUT_S=0.5, KAFKA_MESSAGE_TIMEOUT_MS=1000
    )
    register_and_log_in(browser, base, "down@example.org", catalog.reviewer)
    assert card_titles(browser) == catalog.titles  # served without Kafka
    WebDriverWait(browser, 15, poll_frequency=0.05).until(lambda d: badge(d) == "reconnecting…")
    browser.save_screenshot(str(ARTIFACTS / "web-kafka-down.png"))

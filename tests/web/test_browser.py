"""A real browser against the app under real gunicorn: Chromium (headless) registers, logs in,
sees its top 5, receives an event produced to Kafka live, shows "reconnecting" when Kafka is
down, and frees its stream when it leaves. Screenshots go to artifacts/."""

from __future__ import annotations

import time

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.web.browser import badge, card_titles, register_and_log_in
from tests.web.conftest import ARTIFACTS, Catalog, event_for, get_json, unused_port


def test_browser_sees_top_5_and_live_events(start_server, browser: WebDriver, catalog: Catalog, publish, db) -> None:
    base = start_server()
    register_and_log_in(browser, base, "web@example.org", (db, catalog.reviewer))
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


def test_browser_shows_reconnecting_when_kafka_is_down(start_server, browser: WebDriver, catalog: Catalog, db) -> None:
    base = start_server(
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{unused_port()}", KAFKA_TIMEOUT_S=0.5, KAFKA_MESSAGE_TIMEOUT_MS=1000
    )
    register_and_log_in(browser, base, "down@example.org", (db, catalog.reviewer))
    assert card_titles(browser) == catalog.titles  # served without Kafka
    WebDriverWait(browser, 15, poll_frequency=0.05).until(lambda d: badge(d) == "reconnecting…")
    browser.save_screenshot(str(ARTIFACTS / "web-kafka-down.png"))

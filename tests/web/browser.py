"""Chromium (headless) driving the app under real gunicorn: the fixtures and helpers the browser tests share.

Loaded as a plugin by tests/conftest.py, so the ``browser`` and ``start_server`` fixtures
serve the web, online and Dagster UI tests alike.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo.database import Database
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from recsys_core import mongo
from recsys_core.settings import PROJECT_ROOT
from recsys_web import accounts
from tests.web.conftest import ARTIFACTS, PASSWORD, TEST_CONFIG, get_json, unused_port

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


def register_and_log_in(
    driver: WebDriver, base: str, email: str, link: tuple[Database[mongo.Document], str] | None = None
) -> None:
    """Through the real forms, ending on /result. The account has its own reviewer identity, or,
    with ``link=(db, reviewerID)``, the operator links it to that reviewer from the data."""
    wait = WebDriverWait(driver, 15, poll_frequency=0.05)
    driver.get(f"{base}/auth/register")
    fill_and_submit(driver, email=email, password=PASSWORD)
    wait.until(lambda d: d.current_url.endswith("/auth/login"))
    if link is not None:
        accounts.link(link[0], email, link[1], operator="test")
    fill_and_submit(driver, email=email, password=PASSWORD)
    wait.until(lambda d: d.current_url.endswith("/result"))


def badge(driver: WebDriver) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, "#live [data-status]").text)


def card_titles(driver: WebDriver) -> list[str]:
    # One script call reads them all at once: the live script may replace the cards meanwhile.
    script = "return Array.from(document.querySelectorAll('#recommendations .card .title'), e => e.textContent)"
    return list(driver.execute_script(script))


@pytest.fixture
def run_server(
    db: Database[mongo.Document], request: pytest.FixtureRequest
) -> Iterator[Callable[[list[str], int], str]]:
    """Run ``python <args>`` serving on ``port`` (log in artifacts/); returns the base URL once
    /healthz answers. Stopped with SIGTERM at the end, as a process manager would."""
    ARTIFACTS.mkdir(exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []

    def run(args: list[str], port: int) -> str:
        log_path = ARTIFACTS / f"server-{request.node.name}-{len(procs)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"the server exited; see {log_path}"
            try:
                get_json(f"{base}/healthz")
                return base
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise AssertionError(f"the server did not answer within 30 s; see {log_path}")

    yield run
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

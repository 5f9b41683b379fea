"""The real-time loop end to end, as a shopper sees it: Chromium, the app under gunicorn, the real broker, and
the online updater. A new account rates three products and its open result page turns from the popular list
into a personal one, without a reload."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from recsys_core.contract import ALL_CATEGORIES, PopularItem
from tests.online.conftest import Online, item_asin, updater_thread
from tests.web.browser import badge, register_and_log_in
from tests.web.conftest import ARTIFACTS

RATED = [item_asin(3), item_asin(7), item_asin(11)]


def card_asins(driver: WebDriver) -> list[str]:
    script = "return Array.from(document.querySelectorAll('#recommendations .card'), e => e.dataset.asin)"
    return list(driver.execute_script(script))


def list_source(driver: WebDriver) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, '#list-meta [data-field="source"]').text)


def test_a_new_shopper_rates_three_products_and_their_open_page_turns_personal(
    online: Online, start_server, browser: WebDriver, tmp_path
) -> None:
    popular = [item_asin(i) for i in (0, 3, 7, 11, 20)]  # popular, and three of them about to be rated
    online.db[PopularItem.collection].insert_many(
        [
            PopularItem(category=ALL_CATEGORIES, rank=rank, asin=asin, title=f"Title of {asin}", image=None,
                        price=None, score=4.5, n_ratings=50, model_version="v1",
                        updated_at=datetime.now(UTC)).to_document()
            for rank, asin in enumerate(popular, start=1)
        ]
    )  # fmt: skip
    base = start_server(
        TOPIC_INTERACTIONS=online.settings.topic_interactions,
        TOPIC_RECOMMENDATIONS=online.settings.topic_recommendations,
    )
    wait = WebDriverWait(browser, 15, poll_frequency=0.02)
    with updater_thread(online.settings, tmp_path):
        register_and_log_in(browser, base, "shopper@example.org")
        assert card_asins(browser) == popular
        assert list_source(browser) == "popular"
        wait.until(lambda d: badge(d) == "live")
        result_page = browser.current_window_handle

        browser.switch_to.new_window("tab")
        for asin in RATED:
            browser.get(f"{base}/product/{asin}")
            browser.find_element(By.CSS_SELECTOR, "#rate button[value='5']").click()
            wait.until(lambda d: "is recorded" in d.find_element(By.CSS_SELECTOR, ".flash").text)
        rated_at = time.monotonic()

        browser.switch_to.window(result_page)
        wait.until(lambda d: list_source(d) == "online" and not set(card_asins(d)) & set(RATED))
        shown_ms = (time.monotonic() - rated_at) * 1000
        (ARTIFACTS / "realtime-browser.txt").write_text(
            f"third rating recorded -> personal list shown: {shown_ms:.0f} ms\n"
        )
        browser.save_screenshot(str(ARTIFACTS / "realtime-result-personal.png"))
    assert len(card_asins(browser)) == 5
    assert not browser.find_elements(By.ID, "popular-hint"), "the popular hint is gone"
    reasons = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#recommendations .because")]
    assert reasons
    assert all(r.startswith("because you rated Title of ") for r in reasons)
    links = [e.get_attribute("href") for e in browser.find_elements(By.CSS_SELECTOR, "#recommendations .product-link")]
    assert all(link and "via=rec" in link for link in links), "the live cards link as clicks"

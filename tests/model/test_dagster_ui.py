"""The data team's view, in a real browser: the Dagster UI on an instance holding the session's
real evaluation shows the asset graph, the evaluation's metrics table and chart, and its plot one click away."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from recsys_cli.pipeline import INSTANCE_YAML
from recsys_core.settings import Settings
from tests.model.conftest import Published
from tests.web.conftest import ARTIFACTS, unused_port

EVALUATION = "model_evaluation"


@pytest.fixture
def dagster_ui(
    published: Published, model_settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """``recsys ui`` (dagster dev: webserver and daemon), started as a user starts it, on an instance
    holding the session's evaluation: ``.venv/bin/recsys`` without the venv on PATH, from another folder."""
    settings = model_settings.model_copy(
        update={
            "state_dir": tmp_path / "state",
            "mongo_uri": model_settings.effective_mongo_uri,  # the session's services, only checked
            "kafka_bootstrap_servers": model_settings.effective_kafka_bootstrap,
        }
    )
    home = settings.state_dir / "dagster"
    home.mkdir(parents=True)
    (settings.state_dir / "jars").symlink_to(model_settings.state_dir / "jars")  # resolved once per session
    (home / "dagster.yaml").write_text(INSTANCE_YAML)
    with DagsterInstance.from_config(str(home)) as instance:
        for event in published.result.get_asset_materialization_events():
            materialisation = event.step_materialization_data.materialization
            if materialisation.asset_key.to_user_string() == EVALUATION:
                instance.report_runless_asset_event(materialisation)
    port = unused_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"recsys-ui-{request.node.name}.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(Path(sys.executable).with_name("recsys")), "ui", "--port", str(port)],
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin", "HOME": os.environ["HOME"], **settings.environment()},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # dagster dev's webserver, daemon and code servers stop with it
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # dagster dev starts a code server, the webserver and the daemon
        while True:
            assert server.poll() is None, f"recsys ui exited; see {log_path}"
            assert time.monotonic() < deadline, f"recsys ui did not answer; see {log_path}"
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=5):  # noqa: S310  # our own server
                    break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _text(driver: WebDriver) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


def test_the_ui_shows_the_asset_graph_and_the_evaluation_metrics_table(
    dagster_ui: str,
    browser: WebDriver,  # tests/web/browser.py, loaded as a plugin
    published: Published,
) -> None:
    wait = WebDriverWait(browser, 90, poll_frequency=0.5)
    browser.set_page_load_timeout(90)

    browser.get(f"{dagster_ui}/locations/recsys/asset-groups/model/lineage")
    nodes = ["review_sample", "training_ratings", "als_model", EVALUATION]
    wait.until(lambda d: all(name in _text(d) for name in nodes))
    browser.save_screenshot(str(ARTIFACTS / "dagster-model-graph.png"))

    browser.get(f"{dagster_ui}/assets/{EVALUATION}")
    metrics = published.metadata(EVALUATION)["metrics"]
    header = ["metric", "model", "global_mean", "user_item_bias", "popularity"]

    def metrics_table(d: WebDriver) -> list[str] | None:
        for table in d.find_elements(By.TAG_NAME, "table"):
            rows = [row.text for row in table.find_elements(By.TAG_NAME, "tr")]
            if rows and rows[0].split() == header:
                return rows
        return None

    rows = wait.until(metrics_table)
    assert rows is not None
    for skip in browser.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):  # the community prompt
        skip.click()
    assert [row.split()[0] for row in rows[1:]] == [m["metric"] for m in metrics]
    ndcg = next(row.split() for row in rows if row.startswith("ndcg@10 "))
    assert float(ndcg[1]) == pytest.approx(published.metadata(EVALUATION)["model/ndcg@10"], abs=5e-5)
    browser.save_screenshot(str(ARTIFACTS / "dagster-model-evaluation.png"))

    # The chart is in place, no click needed; the full plot (too long to show in place) opens in a dialog.
    chart = next(e.text for e in browser.find_elements(By.TAG_NAME, "code") if "ndcg@10 (higher" in e.text)
    ndcg_bars = chart.split("ndcg@10 (higher is better)")[1].splitlines()
    model_bar = next(line.split() for line in ndcg_bars if line.split()[:1] == ["model"])
    assert float(model_bar[-1]) == pytest.approx(published.metadata(EVALUATION)["model/ndcg@10"], rel=1e-3)
    browser.find_element(By.XPATH, "//tr[td[normalize-space()='plot']]//a[normalize-space()='[Show Markdown]']").click()
    plot = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "img[src^='data:image/png;base64,']"))
    assert plot[0].size["width"] > 300
    browser.save_screenshot(str(ARTIFACTS / "dagster-model-evaluation-plot.png"))

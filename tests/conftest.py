"""Test session set-up: real MongoDB and Kafka (started here if not configured), real Spark.

The test services live in their own state folder and ports, apart from the demo's, so a
test run never touches demo data. Set RECSYS_MONGO_URI / RECSYS_KAFKA_BOOTSTRAP_SERVERS to
test against your own servers instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from pymongo.database import Database
from pyspark.sql import SparkSession

from recsys_assets.spark import spark_session
from recsys_core import mongo, services
from recsys_core.connections import project_database
from recsys_core.settings import PROJECT_ROOT, Settings, get_settings


def _load_test_environment() -> None:
    """Apply tests/services.env before anything reads settings; the real environment wins."""
    for line in (Path(__file__).parent / "services.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, value = line.split("=", 1)
            os.environ.setdefault(key, value)
    state_dir = Path(os.environ["RECSYS_STATE_DIR"])
    if not state_dir.is_absolute():
        os.environ["RECSYS_STATE_DIR"] = str(PROJECT_ROOT / state_dir)


# Settings are read lazily (get_settings), so this still runs before any test reads them.
_load_test_environment()

pytest_plugins = ["tests.web.browser"]  # Chromium and the app under gunicorn, for every browser test

# Hypothesis: no deadline (a Spark job's time varies with the machine's load); CI replays the same
# examples on every run (derandomize), so a red CI is reproducible and never a chance failure.
hypothesis_settings.register_profile("dev", deadline=None)
hypothesis_settings.register_profile("ci", deadline=None, derandomize=True, database=None, print_blob=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))

REAL_DATA_DIR = PROJECT_ROOT.parent / "shared" / "data" / "amazon2018"


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def running_services(settings: Settings) -> Iterator[Settings]:
    """Start mongod and Kafka for the session (or check the configured ones); stop what we started."""
    already_up = all(s.reachable for s in services.status(settings))
    services.up(settings)
    yield settings
    if not already_up and not os.environ.get("RECSYS_KEEP_SERVICES"):
        services.down(settings)


@pytest.fixture
def db(running_services: Settings) -> Iterator[Database[mongo.Document]]:
    """A clean test database for one test."""
    database = project_database(running_services)
    database.client.drop_database(database.name)
    yield database
    database.client.close()


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The Amazon 2018 files; absent only in a user's own clone (CI checks they are there)."""
    if not REAL_DATA_DIR.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the real data in {REAL_DATA_DIR}")
        pytest.skip(f"real Amazon 2018 files not found at {REAL_DATA_DIR} (a clone without ../shared)")
    return REAL_DATA_DIR


@pytest.fixture(scope="session")
def spark(running_services: Settings) -> Iterator[SparkSession]:
    """One local Spark session for the whole test run, configured as the assets configure theirs."""
    session = spark_session(running_services)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()

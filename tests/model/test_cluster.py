"""The model job on a real Spark standalone cluster (a master and two workers, other JVMs) publishes
exactly what the same job publishes on ``local[*]``."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance, RunsFilter
from pymongo.database import Database

from recsys_core import mongo
from recsys_core.connections import project_database
from recsys_core.contract import Recommendations
from recsys_core.services.spark import SparkClusterService
from recsys_core.settings import Settings
from tests.model.conftest import CATEGORIES, Published, recsys_run
from tests.web.conftest import unused_port


@pytest.fixture
def cluster(tmp_path: Path, running_services: Settings) -> Iterator[SparkClusterService]:
    settings = Settings(
        state_dir=tmp_path / "cluster",
        spark_cluster_port=unused_port(),
        spark_cluster_webui_port=unused_port(),
        spark_worker_memory="1g",
    )
    service = SparkClusterService(settings)
    status = service.up()
    assert status.reachable, status.line()
    yield service
    service.down()


def _completed_apps(service: SparkClusterService) -> list[dict[str, object]]:
    address = f"http://127.0.0.1:{service.settings.spark_cluster_webui_port}/json/"
    with urllib.request.urlopen(address, timeout=5) as response:
        apps: list[dict[str, object]] = json.load(response).get("completedapps", [])
    return apps


def _published(db: Database[mongo.Document]) -> dict[str, Recommendations]:
    return {d["_id"]: Recommendations.from_document(d) for d in db[Recommendations.collection].find()}


def test_the_model_job_on_a_cluster_publishes_what_local_publishes(
    published: Published, cluster: SparkClusterService, model_settings: Settings, real_data_dir: Path, tmp_path: Path
) -> None:
    # A name of this run's own: the state folder's Dagster instance keeps the runs of earlier sessions.
    database = f"{model_settings.mongo_db}_cluster_{uuid.uuid4().hex[:8]}"
    store = (tmp_path / "store").as_uri()
    categories = [arg for category in CATEGORIES for arg in ("--category", category)]
    db = project_database(model_settings.model_copy(update={"mongo_db": database}))
    db.client.drop_database(database)
    try:
        recsys_run(  # the session's published run searched with this budget too: the same search, on the cluster
            *categories,
            "--tuning-budget",
            "86400",
            database=database,
            data_dir=real_data_dir,
            store=store,
            env={"RECSYS_SPARK_MASTER": cluster.url},
        )
        assert any(app.get("name") == "recsys" for app in _completed_apps(cluster)), (
            "the job did not run on the cluster"
        )
        on_cluster = _published(db)
        with DagsterInstance.from_config(str(model_settings.state_dir / "dagster")) as instance:
            runs = instance.get_runs(RunsFilter(tags={"recsys/mongo_db": database}))
        assert sorted(r.job_name for r in runs) == ["ingest_job", "ingest_job", "recsys_model_job"]
        for tags in (r.tags for r in runs):  # the UI shows who launched a run and what it ran on
            assert tags["recsys/launched_by"] == "recsys run"
            assert tags["recsys/data_dir"] == str(real_data_dir)
            assert tags["recsys/model_store"] == store
    finally:
        db.client.drop_database(database)
        db.client.close()
    local = _published(published.pipeline.db)
    assert on_cluster.keys() == local.keys()
    for reviewer, recommendations in local.items():
        assert [i.asin for i in on_cluster[reviewer].items] == [i.asin for i in recommendations.items], reviewer

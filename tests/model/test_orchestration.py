"""The job, schedule and sensor, through the real code location and a real Dagster instance."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from dagster import AssetKey, DagsterInstance, FreshnessPolicy, build_sensor_context, materialize

from recsys_assets.catalog import OWNERS, STAGE_TAG, Stage
from recsys_assets.definitions import definitions, defs
from recsys_assets.ingest import defs as ingest
from recsys_assets.model import defs as model
from recsys_assets.model.orchestration import retrain_on_raw_reviews
from recsys_core.settings import get_settings
from tests.model.conftest import Pipeline


def test_the_code_location_loads_the_model_job_schedule_and_sensor() -> None:
    job = defs.resolve_job_def("recsys_model_job")
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == {
        a.key.to_user_string() for a in model.ASSETS
    }
    assert job.executor_def.name == "in_process"
    schedule = defs.resolve_schedule_def("recsys_daily_retrain")
    assert schedule.cron_schedule == "0 3 * * *"
    assert schedule.job_name == "recsys_model_job"
    assert defs.resolve_sensor_def("retrain_on_raw_reviews").job_name == "recsys_model_job"


def test_the_code_location_takes_its_resources_from_the_settings_it_is_built_with(tmp_path: Path) -> None:
    settings = get_settings().model_copy(update={"data_dir": tmp_path / "data", "mongo_db": "elsewhere"})
    resources = definitions(settings).resources
    assert resources is not None
    assert resources["raw_data"].data_dir == str(tmp_path / "data")
    assert resources["mongo"].database == "elsewhere"
    assert defs.resources is not None
    assert defs.resources["mongo"].database == get_settings().mongo_db != "elsewhere"


def test_every_asset_has_an_owner_a_stage_a_code_version_and_lineage_from_the_files() -> None:
    graph = defs.resolve_asset_graph()
    executable = [graph.get(key) for key in graph.executable_asset_keys]
    assert executable
    for node in executable:
        name = node.key.to_user_string()
        assert node.owners == OWNERS, name
        assert node.tags.get(STAGE_TAG) in set(Stage), name
        assert node.code_version, name
    files = graph.get(AssetKey("category_files"))
    assert not files.is_executable  # written outside Dagster
    assert files.owners == OWNERS
    for raw in ingest.ASSETS:
        assert graph.get(raw.key).parent_keys == {files.key}
    publishers = [node for node in executable if node.tags[STAGE_TAG] == Stage.PUBLISH]
    assert publishers
    for node in publishers:
        assert node.freshness_policy == FreshnessPolicy.time_window(timedelta(hours=26), timedelta(hours=25))
    assert all(d.description for d in [*(defs.schedules or []), *(defs.sensors or [])])


def test_re_ingesting_a_category_requests_one_retrain(ingested: Pipeline) -> None:
    instance: DagsterInstance = ingested.instance
    first = retrain_on_raw_reviews.evaluate_tick(build_sensor_context(instance=instance, definitions=defs))
    assert len(first.run_requests or []) == 1  # the session's ingestion

    quiet = retrain_on_raw_reviews.evaluate_tick(
        build_sensor_context(instance=instance, definitions=defs, cursor=first.cursor)
    )
    assert not quiet.run_requests

    result = materialize(ingest.ASSETS, partition_key="Gift_Cards", instance=instance, resources=ingested.resources)
    assert result.success
    after = retrain_on_raw_reviews.evaluate_tick(
        build_sensor_context(instance=instance, definitions=defs, cursor=first.cursor)
    )
    requests = after.run_requests or []
    assert len(requests) == 1
    assert requests[0].tags["recsys/trigger"] == "raw_reviews:Gift_Cards"

"""One real run of ingestion + the model graph on the Amazon 2018 files, shared by the module's tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetSelection, DagsterInstance, ExecuteInProcessResult, materialize
from pymongo.database import Database

from recsys_assets import ingest, model
from recsys_assets.resources import RawDataResource, build_resources
from recsys_core import mongo
from recsys_core.settings import Settings

CATEGORIES = ["All_Beauty", "Gift_Cards"]
MODEL_ASSETS = [a.key.to_user_string() for a in model.ASSETS]


def model_run_config(state_dir: Path, assets: list[str], **overrides: dict[str, Any]) -> dict[str, Any]:
    """Run config giving the selected model assets the same state folder, plus per-asset overrides."""
    return {"ops": {name: {"config": {"state_dir": str(state_dir), **overrides.get(name, {})}} for name in assets}}


@dataclass
class Pipeline:
    """A Dagster instance with the real files ingested, and helpers to run the model graph on it."""

    instance: DagsterInstance
    resources: dict[str, Any]
    db: Database[mongo.Document]

    def run(
        self, state_dir: Path, selection: list[str] | None = None, **overrides: dict[str, Any]
    ) -> ExecuteInProcessResult:
        assets = selection or MODEL_ASSETS
        return materialize(
            [*ingest.ASSETS, *model.ASSETS, *model.CHECKS],
            selection=AssetSelection.assets(*assets),
            instance=self.instance,
            resources=self.resources,
            run_config=model_run_config(state_dir, assets, **overrides),
            raise_on_error=False,
        )


@pytest.fixture(scope="session")
def ingested(running_services: Settings, spark: Any, real_data_dir: Path) -> Iterator[Pipeline]:
    """A fresh database with All_Beauty_5, Gift_Cards_5 and meta_Gift_Cards ingested by the real assets."""
    client = mongo.connect(running_services)
    client.drop_database(running_services.mongo_db)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ingest.CATEGORY, CATEGORIES)
    resources = {**build_resources(running_services), "raw_data": RawDataResource(data_dir=str(real_data_dir))}
    for category in CATEGORIES:
        result = materialize(ingest.ASSETS, partition_key=category, instance=instance, resources=resources)
        assert result.success
    yield Pipeline(instance, resources, mongo.database(client, running_services))
    client.close()


@dataclass
class Published:
    pipeline: Pipeline
    result: ExecuteInProcessResult
    state_dir: Path

    def metadata(self, asset: str) -> dict[str, Any]:
        events = [
            e.step_materialization_data.materialization
            for e in self.result.get_asset_materialization_events()
            if e.step_materialization_data.materialization.asset_key.to_user_string() == asset
        ]
        assert len(events) == 1, f"{asset} materialised {len(events)} times"
        return {k: v.value for k, v in events[0].metadata.items()}


@pytest.fixture(scope="session")
def published(ingested: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Published:
    """The whole model graph with its default configuration, run once on the ingested files."""
    state_dir = tmp_path_factory.mktemp("model_state")
    result = ingested.run(state_dir)
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    return Published(ingested, result, state_dir)

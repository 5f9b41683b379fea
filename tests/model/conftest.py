"""One real run of ingestion + the model graph on the Amazon 2018 files, shared by the module's tests.

The model tests have a database of their own (``<test db>_model``), so the web and ingest
tests, which drop theirs, never touch it. A test that publishes another model works on an
``isolated()`` copy: a fresh database holding the ingested reviews and products, and a fresh
Dagster instance that knows the session's handles, so no test sees what another one did.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from dagster import AssetMaterialization, AssetSelection, DagsterInstance, ExecuteInProcessResult, materialize
from pymongo.database import Database

from recsys_assets.definitions import build_resources
from recsys_assets.ingest import defs as ingest
from recsys_assets.model import defs as model
from recsys_assets.model.handles import HANDLE, Handle
from recsys_assets.model.store import ModelStore
from recsys_assets.resources import MongoResource, RawDataResource
from recsys_assets.runs import materialisation_metadata
from recsys_core import mongo
from recsys_core.connections import project_database
from recsys_core.settings import PROJECT_ROOT, Settings

CATEGORIES = ["All_Beauty", "Gift_Cards"]
MODEL_ASSETS = [a.key.to_user_string() for a in model.ASSETS]
PUBLISHERS = ["user_recommendations", "popular_products", "item_factors", "similar_products"]
UNTUNED = {"tuning": {"budget_s": 0}}
"""``als_model`` config for tests about something else than the search: AlsParams' values, at once."""
H = TypeVar("H", bound=Handle)


@dataclass
class Pipeline:
    """A database with the real files ingested, a Dagster instance, and the model graph to run on them."""

    instance: DagsterInstance
    resources: dict[str, Any]
    db: Database[mongo.Document]
    store: Path
    handles: dict[str, Any] = field(default_factory=dict)

    @property
    def mongo(self) -> MongoResource:
        resource: MongoResource = self.resources["mongo"]
        return resource

    def model_store(self, store: Path | None = None) -> ModelStore:
        return ModelStore(base_uri=str(store or self.store), mongo=self.mongo)

    def run(
        self, selection: list[str] | None = None, store: Path | None = None, **config: dict[str, Any]
    ) -> ExecuteInProcessResult:
        """Materialise ``selection`` (default: the whole model graph), with per-asset config."""
        return materialize(
            [*ingest.ASSETS, *model.ASSETS, *model.CHECKS],
            selection=AssetSelection.assets(*(selection or MODEL_ASSETS)),
            instance=self.instance,
            resources={**self.resources, "model_store": self.model_store(store)},
            run_config={"ops": {name: {"config": values} for name, values in config.items()}},
            raise_on_error=False,
        )

    def isolated(self, store: Path) -> Pipeline:
        """A copy with its own database (reviews and products cloned) and an instance seeded with the handles."""
        name = f"{self.db.name[:40]}_{uuid.uuid4().hex[:8]}"
        for collection in (mongo.REVIEWS, mongo.PRODUCTS):
            self.db[collection].aggregate([{"$out": {"db": name, "coll": collection}}])
        instance = DagsterInstance.ephemeral()
        for asset, handle in self.handles.items():
            instance.report_runless_asset_event(AssetMaterialization(asset, metadata={HANDLE: handle}))
        mongo_resource = MongoResource(uri=self.mongo.uri, database=name, timeout_ms=self.mongo.timeout_ms)
        return replace(
            self,
            instance=instance,
            resources={**self.resources, "mongo": mongo_resource},
            db=self.db.client[name],
            store=store,
        )


def recsys_run(
    *arguments: str, database: str, data_dir: Path, store: str, env: dict[str, str] | None = None, exit_code: int = 0
) -> subprocess.CompletedProcess[str]:
    """``recsys run`` as a user runs it, in a process of its own, on a database, data folder and model store.

    Fails the test, with the tail of the output, if it exits with another code than ``exit_code``.
    """
    run = subprocess.run(
        [sys.executable, "-m", "recsys_cli", "run", *arguments],
        env={
            **os.environ,
            "RECSYS_MONGO_DB": database,
            "RECSYS_DATA_DIR": str(data_dir),
            "RECSYS_MODEL_STORE_URI": store,
            **(env or {}),
        },
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=2400,
        check=False,
    )
    assert run.returncode == exit_code, run.stdout[-3000:] + run.stderr[-3000:]
    return run


@pytest.fixture(scope="session")
def model_settings(running_services: Settings) -> Settings:
    return running_services.model_copy(update={"mongo_db": f"{running_services.mongo_db}_model"})


@pytest.fixture(scope="session")
def ingested(
    model_settings: Settings, spark: Any, real_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    """A fresh database with All_Beauty_5, Gift_Cards_5 and meta_Gift_Cards ingested by the real assets."""
    db = project_database(model_settings)
    db.client.drop_database(db.name)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ingest.CATEGORY, CATEGORIES)
    resources = {**build_resources(model_settings), "raw_data": RawDataResource(data_dir=str(real_data_dir))}
    for category in CATEGORIES:
        result = materialize(ingest.ASSETS, partition_key=category, instance=instance, resources=resources)
        assert result.success
    yield Pipeline(instance, resources, db, tmp_path_factory.mktemp("model_store"))
    db.client.close()


@dataclass
class Published:
    pipeline: Pipeline
    result: ExecuteInProcessResult

    def metadata(self, asset: str) -> dict[str, Any]:
        materialised = materialisation_metadata(self.result)
        assert asset in materialised, f"{asset} was not materialised"
        return materialised[asset]


def handle(result: ExecuteInProcessResult, asset: str, handle_type: type[H]) -> H:
    """The handle ``asset`` passed on in ``result``."""
    return handle_type.model_validate(materialisation_metadata(result)[asset][HANDLE])


@pytest.fixture(scope="session")
def published(ingested: Pipeline) -> Published:
    """The whole model graph with its default configuration, run once on the ingested files.

    Only the search's time budget is raised, so that a slow machine still runs every rung.
    """
    result = ingested.run(als_model={"tuning": {"budget_s": 86_400}})
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    ingested.handles = {
        asset: metadata[HANDLE] for asset, metadata in materialisation_metadata(result).items() if HANDLE in metadata
    }
    return Published(ingested, result)


@pytest.fixture
def isolated(published: Published, tmp_path: Path) -> Iterator[Pipeline]:
    """The published session in a database and Dagster instance of this test's own (dropped afterwards)."""
    pipeline = published.pipeline.isolated(tmp_path / "model_store")
    yield pipeline
    pipeline.db.client.drop_database(pipeline.db.name)

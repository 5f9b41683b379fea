"""Fixtures to materialise the ingestion assets for real: Dagster, Spark, MongoDB."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, materialize
from pymongo.database import Database

from recsys_assets.definitions import build_resources
from recsys_assets.ingest.assets import CATEGORY, raw_products, raw_reviews
from recsys_assets.resources import RawDataResource
from recsys_assets.runs import materialisation_metadata
from recsys_core import mongo
from recsys_core.settings import Settings

Materialise = Callable[[Path, str], dict[str, dict[str, Any]]]


@pytest.fixture
def instance() -> DagsterInstance:
    """The test's Dagster instance, where ``materialise`` records its runs."""
    return DagsterInstance.ephemeral()


@pytest.fixture
def materialise(
    running_services: Settings, spark: Any, db: Database[mongo.Document], instance: DagsterInstance
) -> Materialise:
    """Materialise raw_reviews and raw_products for one category of a data folder; returns metadata by asset."""

    def run(data_dir: Path, category: str) -> dict[str, dict[str, Any]]:
        if category not in instance.get_dynamic_partitions(CATEGORY):
            instance.add_dynamic_partitions(CATEGORY, [category])
        resources = {**build_resources(running_services), "raw_data": RawDataResource(data_dir=str(data_dir))}
        result = materialize(
            [raw_reviews, raw_products], partition_key=category, instance=instance, resources=resources
        )
        assert result.success
        for check in result.get_asset_check_evaluations():
            assert check.passed, f"check {check.check_name} failed: {check.metadata}"
        return materialisation_metadata(result)

    return run

"""Fixtures to materialise the ingestion assets for real: Dagster, Spark, MongoDB."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, materialize
from pymongo.database import Database

from recsys_assets.ingest import CATEGORY, raw_products, raw_reviews
from recsys_assets.resources import RawDataResource, build_resources
from recsys_core import mongo
from recsys_core.settings import Settings

Materialise = Callable[[Path, str], dict[str, dict[str, Any]]]


@pytest.fixture
def materialise(running_services: Settings, spark: Any, db: Database[mongo.Document]) -> Materialise:
    """Materialise raw_reviews and raw_products for one category of a data folder; returns metadata by asset."""
    instance = DagsterInstance.ephemeral()

    def run(data_dir: Path, category: str) -> dict[str, dict[str, Any]]:
        if category not in instance.get_dynamic_partitions(CATEGORY):
            instance.add_dynamic_partitions(CATEGORY, [category])
        resources = {**build_resources(running_services), "raw_data": RawDataResource(data_dir=str(data_dir))}
        result = materialize(
            [raw_reviews, raw_products], partition_key=category, instance=instance, resources=resources
        )
        assert result.success
        out: dict[str, dict[str, Any]] = {}
        for event in result.get_asset_materialization_events():
            mat = event.event_specific_data.materialization
            out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
        for check in result.get_asset_check_evaluations():
            assert check.passed, f"check {check.check_name} failed: {check.metadata}"
        return out

    return run


def write_lines(path: Path, lines: Iterable[str | dict[str, Any]]) -> Path:
    """Write JSON lines (dicts are encoded, strings written as they are, to craft bad lines)."""
    text = "".join((json.dumps(line) if isinstance(line, dict) else line) + "\n" for line in lines)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def review(reviewer: str, asin: str, overall: float = 5.0, t: int = 1_500_000_000, **extra: Any) -> dict[str, Any]:
    return {
        "overall": overall,
        "verified": True,
        "reviewTime": "07 14, 2017",
        "reviewerID": reviewer,
        "asin": asin,
        "reviewerName": "R",
        "reviewText": "fine",
        "summary": "ok",
        "unixReviewTime": t,
        **extra,
    }

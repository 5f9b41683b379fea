"""Same seed and data, same sample and same metrics; another seed, another sample."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dagster import ExecuteInProcessResult
from pyspark.sql import SparkSession

from recsys_assets.model.store import ModelStore
from recsys_assets.runs import materialisation_metadata
from tests.model.conftest import Pipeline

UP_TO_EVALUATION = ["review_sample", "training_ratings", "als_model", "model_evaluation"]


def _evaluation(result: ExecuteInProcessResult) -> dict[str, Any]:
    """The evaluation's metric values (keys like "model/rmse")."""
    metadata = materialisation_metadata(result)["model_evaluation"]
    return {k: v for k, v in metadata.items() if "/" in k}


def test_same_seed_and_data_give_the_same_sample_and_metrics(
    ingested: Pipeline, spark: SparkSession, tmp_path: Path
) -> None:
    runs = []
    for name in ("first", "second"):
        result = ingested.run(tmp_path / name, UP_TO_EVALUATION, review_sample={"fraction": 0.5, "seed": 7})
        assert result.success
        assert all(c.passed for c in result.get_asset_check_evaluations())
        sample = spark.read.parquet(str(ModelStore(tmp_path / name).sample_path))
        runs.append((result, {r[0] for r in sample.select("_id").collect()}))
    (first, first_ids), (second, second_ids) = runs
    total = ingested.db["reviews"].count_documents({})
    assert first_ids == second_ids
    assert abs(len(first_ids) - total / 2) <= 10  # rounding per stratum only
    first_metrics, second_metrics = _evaluation(first), _evaluation(second)
    assert first_metrics["model/rmse"] > 0
    assert first_metrics == second_metrics

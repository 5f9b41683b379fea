"""Same seed and data, same sample and same metrics; another seed, another sample."""

from __future__ import annotations

from typing import Any

import pytest
from dagster import ExecuteInProcessResult
from pyspark.sql import SparkSession

from recsys_assets.model.handles import SampleHandle
from recsys_assets.runs import materialisation_metadata
from tests.model.conftest import UNTUNED, Pipeline, handle

UP_TO_EVALUATION = ["review_sample", "training_ratings", "als_model", "model_evaluation"]


def _evaluation(result: ExecuteInProcessResult) -> dict[str, Any]:
    """The evaluation's metric values (keys like "model/rmse")."""
    metadata = materialisation_metadata(result)["model_evaluation"]
    return {k: v for k, v in metadata.items() if "/" in k}


def _sample_ids(spark: SparkSession, result: ExecuteInProcessResult) -> set[str]:
    sample = spark.read.parquet(handle(result, "review_sample", SampleHandle).uri)
    return {r[0] for r in sample.select("_id").collect()}


def test_same_seed_and_data_give_the_same_sample_and_metrics(isolated: Pipeline, spark: SparkSession) -> None:
    first, second = (
        isolated.run(UP_TO_EVALUATION, review_sample={"fraction": 0.5, "seed": 7}, als_model=UNTUNED) for _ in range(2)
    )
    for result in (first, second):
        assert result.success
        assert all(c.passed for c in result.get_asset_check_evaluations())
    first_ids, second_ids = _sample_ids(spark, first), _sample_ids(spark, second)
    total = isolated.db["reviews"].count_documents({})
    assert first_ids == second_ids
    assert abs(len(first_ids) - total / 2) <= 10  # rounding per stratum only
    first_metrics, second_metrics = _evaluation(first), _evaluation(second)
    assert first_metrics["model/rmse"] > 0
    # Spark adds an average's partial sums in the order its tasks finish: the last bits may differ.
    assert first_metrics == pytest.approx(second_metrics, rel=1e-12, abs=1e-15)

    other = isolated.run(["review_sample"], review_sample={"fraction": 0.5, "seed": 8})
    assert _sample_ids(spark, other) != first_ids

"""Same seed and data, same sample and same metrics; another seed, another sample."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import SparkSession

from recsys_assets.model.store import ModelStore
from tests.model.conftest import Pipeline

UP_TO_EVALUATION = ["review_sample", "training_ratings", "als_model", "model_evaluation"]


def _evaluation(result) -> dict[str, object]:
    (event,) = [
        e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == "model_evaluation"
    ]
    metadata = event.step_materialization_data.materialization.metadata
    return {k: v.value for k, v in metadata.items() if "/" in k}


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

"""The gate stops a worse model, and a crashed publish leaves what is served untouched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql.types import StringType, StructField, StructType

from recsys_assets.model.evaluation import BIAS, MODEL, POPULARITY, judge
from recsys_assets.model.publishing import atomic_publish
from recsys_assets.model.store import ModelStore
from recsys_assets.runs import materialisation_metadata
from recsys_core import mongo
from tests.model.conftest import Pipeline, Published

SERVED = (mongo.RECOMMENDATIONS, mongo.POPULAR, mongo.ITEM_FACTORS)
PUBLISHERS = ["top5_recommendations", "popular_products", "item_factors"]


def _snapshot(pipeline: Pipeline) -> dict[str, list[mongo.Document]]:
    return {name: list(pipeline.db[name].find().sort("_id")) for name in SERVED}


def _reuse_ratings(published: Published, state_dir: Path) -> None:
    """Start from the published run's persisted sample and ratings, so only the model differs."""
    source, target = ModelStore(published.state_dir), ModelStore(state_dir)
    shutil.copytree(source.sample_path, target.sample_path)
    shutil.copytree(source.ratings_path, target.ratings_path)


def test_a_worse_model_is_stopped_by_the_gate_and_nothing_is_swapped(published: Published, tmp_path: Path) -> None:
    pipeline = published.pipeline
    before = _snapshot(pipeline)
    assert all(before.values())
    _reuse_ratings(published, tmp_path)

    result = pipeline.run(
        tmp_path,
        ["als_model", "model_evaluation", *PUBLISHERS],
        als_model={"max_iter": 1, "rank": 1},
    )

    gate = next(c for c in result.get_asset_check_evaluations() if c.check_name == "model_beats_baselines")
    assert not gate.passed
    assert gate.severity.value == "ERROR"
    materialised = materialisation_metadata(result)
    assert set(materialised) == {"als_model", "model_evaluation"}
    evaluation = materialised["model_evaluation"]
    assert evaluation["gate_status"] == "fail"
    assert evaluation["model/rmse"] > evaluation["user_item_bias/rmse"]
    assert _snapshot(pipeline) == before

    # Run on their own, the publishers still refuse the failed candidate.
    alone = pipeline.run(tmp_path, PUBLISHERS)
    assert not alone.success
    assert not alone.get_asset_materialization_events()
    assert _snapshot(pipeline) == before


def test_a_crashed_publish_leaves_the_served_collection_intact(published: Published, spark: SparkSession) -> None:
    db = published.pipeline.db
    before = list(db[mongo.POPULAR].find().sort("_id"))
    assert before
    schema = StructType([StructField("_id", StringType()), StructField("payload", StringType())])
    rows = [(f"doc-{i}", "small") for i in range(200)]
    rows.append(("too-big", "x" * (17 * 1024 * 1024)))  # over MongoDB's 16 MB document limit
    documents = spark.createDataFrame(rows, schema).repartition(4)

    with pytest.raises(Exception, match="BsonMaximumSizeExceededException"):
        atomic_publish(db, mongo.POPULAR, "crash-test", documents)

    assert list(db[mongo.POPULAR].find().sort("_id")) == before
    assert not [name for name in db.list_collection_names() if "__staging_" in name]


def _metrics(
    model_rmse: float, bias_rmse: float, model_ndcg: float, pop_ndcg: float
) -> dict[str, dict[str, float | None]]:
    return {
        MODEL: {"rmse": model_rmse, "ndcg@10": model_ndcg},
        BIAS: {"rmse": bias_rmse, "ndcg@10": 0.0},
        POPULARITY: {"rmse": None, "ndcg@10": pop_ndcg},
    }


@pytest.mark.parametrize(
    ("metrics", "status"),
    [
        (_metrics(0.30, 0.40, 0.70, 0.50), "pass"),
        (_metrics(0.45, 0.40, 0.70, 0.50), "fail"),  # loses on RMSE
        (_metrics(0.30, 0.40, 0.50, 0.50), "fail"),  # ties popularity: not a win
    ],
)
def test_gate_needs_both_wins(metrics: dict[str, dict[str, float | None]], status: str) -> None:
    verdict = judge(metrics, rating_rows=1000, ranking_users=1000, min_rating_rows=500, min_ranking_users=200)
    assert verdict.status == status
    assert verdict.publishable == (status == "pass")


def test_gate_warns_instead_of_judging_too_little_data() -> None:
    verdict = judge(
        _metrics(0.9, 0.4, 0.1, 0.5), rating_rows=120, ranking_users=80, min_rating_rows=500, min_ranking_users=200
    )
    assert verdict.status == "too_small"
    assert verdict.publishable
    assert "120 ratings" in verdict.reasons[0]


def test_too_little_data_to_judge_publishes_with_a_warning(published: Published, tmp_path: Path) -> None:
    pipeline = published.pipeline
    _reuse_ratings(published, tmp_path)
    result = pipeline.run(
        tmp_path,
        ["als_model", "model_evaluation", *PUBLISHERS],
        als_model={"max_iter": 1, "rank": 1},
        model_evaluation={"min_heldout_ratings": 1_000_000},
    )
    assert result.success
    gate = next(c for c in result.get_asset_check_evaluations() if c.check_name == "model_beats_baselines")
    assert not gate.passed
    assert gate.severity.value == "WARN"
    assert "too little held-out data" in (gate.description or "")
    version = ModelStore(tmp_path).candidate_version()
    for name in SERVED:
        assert set(pipeline.db[name].distinct("model_version")) == {version}

    # Serve the session's model again for the other tests; republishing it is a plain swap.
    restored = pipeline.run(published.state_dir, PUBLISHERS)
    assert restored.success
    original = ModelStore(published.state_dir).candidate_version()
    for name in SERVED:
        assert set(pipeline.db[name].distinct("model_version")) == {original}


def test_a_failing_sample_check_blocks_training(ingested: Pipeline, tmp_path: Path) -> None:
    """The sample check is blocking: with a threshold no p-value can reach, nothing downstream runs."""
    result = ingested.run(
        tmp_path, ["review_sample", "training_ratings"], review_sample={"fraction": 0.5, "min_p_value": 1.01}
    )
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "sample_matches_population")
    assert not check.passed
    assert "rating_chi2_p_value" in (check.description or "")
    assert set(materialisation_metadata(result)) == {"review_sample"}
    assert not ModelStore(tmp_path).ratings_path.exists()

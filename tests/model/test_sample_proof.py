"""The default sample is a real sample on big data, and its proof says something: it passes an unbiased
sample of the real files and rejects a biased one."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from recsys_assets.model.assets.sample import MAX_REVIEWS, ReviewSampleConfig
from recsys_assets.model.sampling import (
    USER_ACTIVITY,
    prove,
    resolve_fraction,
    stratified_sample,
    with_population_activity,
)
from recsys_assets.model.sources import read_reviews
from recsys_assets.runs import materialisation_metadata
from recsys_cli.main import DEMO_SAMPLE_FRACTION, _model_ops, build_parser
from recsys_core import mongo
from tests.model.conftest import Pipeline


def test_the_default_caps_big_data_and_keeps_small_data_whole() -> None:
    default = ReviewSampleConfig()
    assert resolve_fraction(4 * MAX_REVIEWS, default.fraction, default.max_reviews) == 0.25
    assert resolve_fraction(MAX_REVIEWS // 2, default.fraction, default.max_reviews) == 1.0
    # A fraction smaller than the cap's is kept, not overridden by the cap.
    assert resolve_fraction(10_000, 0.1, 5_000) == 0.1
    assert resolve_fraction(10_000, 0.9, 5_000) == 0.5


def test_the_demo_draws_a_real_sample() -> None:
    assert DEMO_SAMPLE_FRACTION < 1.0
    assert _model_ops(build_parser().parse_args(["demo"])) == {"review_sample": {"config": {"fraction": 0.8}}}
    assert _model_ops(build_parser().parse_args(["run", "--max-reviews", "0"])) == {
        "review_sample": {"config": {"max_reviews": None}}  # 0: no cap
    }


def test_a_capped_sample_of_the_real_files_is_a_real_sample_and_passes_its_proof(
    ingested: Pipeline, tmp_path: Path
) -> None:
    population = ingested.db[mongo.REVIEWS].count_documents({})
    cap = population // 2
    result = ingested.run(["review_sample"], store=tmp_path / "store", review_sample={"max_reviews": cap})
    assert result.success
    meta = materialisation_metadata(result)["review_sample"]
    assert meta["fraction"] == pytest.approx(cap / population)
    assert meta["population_rows"] == population
    assert abs(meta["dagster/row_count"] - cap) <= 10  # rounding: at most half a review in each of 10 strata
    # The proof compares two different sets of reviews (about half of every stratum), and finds no divergence.
    for row in (*meta["rating_counts"], *meta["category_counts"]):
        assert 0 < row["sample"] < row["population"], row
    assert sum(row["sample"] for row in meta["rating_counts"]) == meta["dagster/row_count"]
    for name in ("rating_chi2", "category_chi2", "user_activity_ks", "item_popularity_ks"):
        assert meta[f"{name}_p_value"] > meta["p_value_threshold"], name
    (check,) = result.get_asset_check_evaluations()
    assert check.passed, check.description
    assert Path(urlparse(meta["plot_uri"]).path).stat().st_size > 1000


def test_the_proof_rejects_a_biased_sample_of_the_real_files(ingested: Pipeline, spark: SparkSession) -> None:
    population = with_population_activity(read_reviews(spark, ingested.mongo)).cache()
    fair = prove(population, stratified_sample(population, 0.5, seed=3))
    assert fair.min_p_value > 0.01
    # Samples that favour the less active half of the reviewers (5-core files have none below 5), or good ratings.
    (median_activity,) = population.approxQuantile(USER_ACTIVITY, [0.5], 0.0)
    light_users = prove(population, population.where(F.col(USER_ACTIVITY) < median_activity))
    assert light_users.sample_rows > 0
    assert light_users.user_activity_ks.p_value < 1e-6
    happy = prove(population, population.where(F.col("overall") >= 4))
    assert happy.ratings_chi2.p_value < 1e-6
    population.unpersist()

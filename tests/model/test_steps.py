"""Each step on small crafted data with real Spark: the cases the real files do not pin down."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from scipy import stats

from recsys_assets.model.evaluation import ranking_metrics
from recsys_assets.model.features import SplitMethod, clean_ratings, split_ratings
from recsys_assets.model.sampling import Distribution, ks_from_counts, resolve_fraction, stratified_sample
from recsys_assets.model.training import AlsParams, als_blocks

REVIEW_COLUMNS = "_id string, category string, reviewerID string, asin string, overall double, unixReviewTime long"


def _reviews(spark: SparkSession, rows: list[tuple[object, ...]]) -> DataFrame:
    return spark.createDataFrame(rows, REVIEW_COLUMNS)


def _synthetic(spark: SparkSession, users: int = 60, items: int = 25, seed: int = 3) -> DataFrame:
    rng = np.random.default_rng(seed)
    rows: list[tuple[object, ...]] = []
    for u in range(users):
        for i in rng.choice(items, size=int(rng.integers(4, 9)), replace=False):
            rating = float(rng.choice([1, 2, 3, 4, 5], p=[0.05, 0.05, 0.1, 0.2, 0.6]))
            rows.append(
                (f"r{u}-{i}", "Cat" if i % 2 else "Dog", f"u{u}", f"i{i}", rating, int(1_500_000_000 + u * 100 + i))
            )
    return _reviews(spark, rows)


def test_cleaning_keeps_the_latest_rating_of_a_pair_and_counts_what_it_drops(spark: SparkSession) -> None:
    reviews = _reviews(
        spark,
        [
            ("a", "C", "u1", "i1", 2.0, 100),
            ("b", "C", "u1", "i1", 5.0, 200),  # later: kept
            ("c", "C", "u1", "i2", 4.0, 100),
            ("d", "C", None, "i2", 4.0, 100),
            ("e", "C", "u2", " ", 4.0, 100),
            ("f", "C", "u2", "i2", None, 100),
            ("g", "C", "u2", "i3", 9.0, 100),
        ],
    )
    ratings, report = clean_ratings(reviews)
    kept = {(r["reviewerID"], r["asin"]): r["overall"] for r in ratings.collect()}
    assert kept == {("u1", "i1"): 5.0, ("u1", "i2"): 4.0}
    assert (report.input_rows, report.missing_id, report.missing_rating, report.out_of_range_rating) == (7, 2, 1, 1)
    assert (report.duplicate_pairs, report.output_rows) == (1, 2)


def test_leave_k_out_holds_out_k_per_reviewer_and_keeps_one_to_learn_from(spark: SparkSession) -> None:
    ratings, _ = clean_ratings(_synthetic(spark))
    split = split_ratings(ratings, SplitMethod.LEAVE_K_OUT, seed=1, test_fraction=0.2, holdout_k=2)
    per_user = split.groupBy("reviewerID").agg(
        F.count(F.lit(1)).alias("n"), F.sum((F.col("split") == "test").cast("int")).alias("held_out")
    )
    assert per_user.where("held_out != 2 OR n - held_out < 1").count() == 0
    again = split_ratings(ratings, SplitMethod.LEAVE_K_OUT, seed=1, test_fraction=0.2, holdout_k=2)
    assert sorted(split.collect()) == sorted(again.collect())


def test_time_split_holds_out_the_latest_ratings(spark: SparkSession) -> None:
    ratings, _ = clean_ratings(_synthetic(spark))
    split = split_ratings(ratings, SplitMethod.TIME, seed=1, test_fraction=0.25, holdout_k=1)
    bounds = {
        r["split"]: (r["first"], r["last"])
        for r in split.groupBy("split")
        .agg(F.min("unixReviewTime").alias("first"), F.max("unixReviewTime").alias("last"))
        .collect()
    }
    assert bounds["train"][1] < bounds["test"][0]
    assert split.where("split = 'test'").count() / split.count() == pytest.approx(0.25, abs=0.05)


def test_random_split_is_seeded(spark: SparkSession) -> None:
    ratings, _ = clean_ratings(_synthetic(spark))
    held_out = [
        {(r[0], r[1]) for r in split_ratings(ratings, SplitMethod.RANDOM, s, 0.3, 1).where("split = 'test'").collect()}
        for s in (5, 5, 6)
    ]
    assert held_out[0] == held_out[1] != held_out[2]
    assert len(held_out[0]) / ratings.count() == pytest.approx(0.3, abs=0.08)


def test_stratified_sample_keeps_every_stratum_share_and_depends_only_on_the_seed(spark: SparkSession) -> None:
    reviews = _synthetic(spark).cache()
    strata = {(r[0], r[1]): r[2] for r in reviews.groupBy("category", "overall").count().collect()}
    first = stratified_sample(reviews, 0.4, seed=11)
    sampled = {(r[0], r[1]): r[2] for r in first.groupBy("category", "overall").count().collect()}
    assert sampled == {key: math.floor(n * 0.4 + 0.5) for key, n in strata.items() if math.floor(n * 0.4 + 0.5)}
    ids = {r[0] for r in first.select("_id").collect()}
    assert ids == {r[0] for r in stratified_sample(reviews.repartition(7), 0.4, seed=11).select("_id").collect()}
    assert ids != {r[0] for r in stratified_sample(reviews, 0.4, seed=12).select("_id").collect()}
    assert stratified_sample(reviews, 1.0, seed=11).count() == reviews.count()


def test_sample_size_can_be_a_count() -> None:
    assert resolve_fraction(1000, 1.0, 250) == 0.25
    assert resolve_fraction(1000, 0.1, None) == 0.1
    assert resolve_fraction(100, 1.0, 5000) == 1.0
    with pytest.raises(ValueError, match="fraction"):
        resolve_fraction(100, 0.0, None)


def test_ks_from_counts_matches_scipy_on_the_expanded_samples() -> None:
    rng = np.random.default_rng(0)
    population = rng.poisson(4, size=3000) + 1
    sample = rng.poisson(4.4, size=900) + 1
    values = sorted(set(population) | set(sample))
    dist = Distribution(
        [str(v) for v in values],
        [int((population == v).sum()) for v in values],
        [int((sample == v).sum()) for v in values],
    )
    expected = stats.ks_2samp(population, sample, method="asymp")
    result = ks_from_counts(dist)
    assert result.statistic == pytest.approx(expected.statistic)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-6)


def test_ranking_metrics_match_a_hand_computation(spark: SparkSession) -> None:
    # u1: relevant {a, c}; list a, b, c.  u2: relevant {z}; list x, y, w (no hit).  u3: no relevant item: not evaluated.
    top = spark.createDataFrame(
        [("u1", "a", 1), ("u1", "b", 2), ("u1", "c", 3), ("u2", "x", 1), ("u2", "y", 2), ("u2", "w", 3)],
        "reviewerID string, asin string, rank int",
    )
    relevant = spark.createDataFrame([("u1", "a"), ("u1", "c"), ("u2", "z")], "reviewerID string, asin string")
    reviewers = spark.createDataFrame([("u1",), ("u2",), ("u3",)], "reviewerID string")
    m = ranking_metrics(top, relevant, reviewers, (2, 3))
    log2 = math.log2
    assert m["precision@2"] == pytest.approx((1 / 2 + 0) / 2)
    assert m["recall@3"] == pytest.approx((2 / 2 + 0) / 2)
    ndcg_u1 = (1 + 1 / log2(4)) / (1 + 1 / log2(3))
    assert m["ndcg@3"] == pytest.approx(ndcg_u1 / 2)
    assert m["ndcg@2"] == pytest.approx((1 / (1 + 1 / log2(3))) / 2)
    assert m["map@3"] == pytest.approx(((1 / 1 + 2 / 3) / 2) / 2)


def test_als_blocks_follow_the_cores_and_the_training_size_unless_set() -> None:
    assert als_blocks(AlsParams(), 50_000, parallelism=2) == 2  # one per core for small data
    assert als_blocks(AlsParams(), 50_000, parallelism=64) == 64
    assert als_blocks(AlsParams(), 25_000_000, parallelism=2) == 13  # one block per 2M ratings beyond that
    assert als_blocks(AlsParams(blocks=4), 25_000_000, parallelism=2) == 4

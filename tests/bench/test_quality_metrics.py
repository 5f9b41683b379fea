"""The quality benchmark's numpy metrics: by hand, and against the Spark evaluation on the same split."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from benchmarks.bench_quality import (
    DampedBiases,
    Split,
    compare,
    global_scorer,
    ndcg_at_k,
    ranking_ndcg,
    rating_metrics,
    top_k,
)
from recsys_assets.model.biases import BASELINE, Damping, fit_biases, with_baseline
from recsys_assets.model.evaluation import ranking_metrics
from recsys_assets.model.ranking import global_top_k


def test_top_k_breaks_ties_by_asin_skips_rated_and_pads() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 2.0], [5.0, 5.0, 5.0, 5.0]])
    best = top_k(scores, [np.array([1]), np.array([0, 1, 2])], 3)
    assert best.tolist() == [[2, 3, 0], [3, -1, -1]]


def test_ndcg_by_hand() -> None:
    top = np.array([[4, 7, 2], [1, 2, 3], [5, 6, -1]])
    # reviewer 0: hits at ranks 2 and 3 of 3 relevant; reviewer 1: no hit; reviewer 2: hit at rank 1, 2 relevant
    ndcg = ndcg_at_k(top, [np.array([7, 2, 9]), np.array([8]), np.array([5])], np.array([3, 1, 2]), 3)
    ideal3 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    expected = [(1 / math.log2(3) + 1 / math.log2(4)) / ideal3, 0.0, 1 / (1 + 1 / math.log2(3))]
    assert ndcg == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("ours", "best", "interval", "lower_is_better", "verdict"),
    [
        (0.30, 0.31, (-0.05, 0.02), True, "level"),  # a better estimate within noise is level, not ahead
        (0.30, 0.35, (-0.08, -0.01), True, "ahead"),
        (0.40, 0.35, (0.01, 0.09), True, "behind"),
        (0.95, 0.96, (-0.02, -0.003), False, "behind"),
        (0.99, 0.96, (0.01, 0.05), False, "ahead"),
        (0.96, 0.96, (0.0, 0.0), False, "level"),
    ],
)
def test_compare_calls_a_difference_within_its_interval_level(
    ours: float, best: float, interval: tuple[float, float], lower_is_better: bool, verdict: str
) -> None:
    assert compare(ours, best, interval, lower_is_better) == verdict


def _ratings(seed: int) -> pd.DataFrame:
    """Reviewers and items with many popularity ties, and held-out items and reviewers unknown to train."""
    rng = np.random.default_rng(seed)
    rows = 600
    frame = pd.DataFrame(
        {
            "reviewerID": [f"u{x:03d}" for x in rng.integers(0, 80, rows)],
            "asin": [f"a{x:03d}" for x in rng.integers(0, 40, rows)],
            "overall": rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], rows, p=[0.1, 0.1, 0.1, 0.2, 0.5]),
        }
    ).drop_duplicates(["reviewerID", "asin"])
    frame["split"] = np.where(rng.random(len(frame)) < 0.25, "test", "train")
    frame.loc[frame["asin"] == "a039", "split"] = "test"  # an item only held out: cold, and never a hit
    frame.loc[frame["reviewerID"] == "u079", "split"] = "test"  # a reviewer only held out
    return frame


def test_numpy_metrics_reproduce_the_spark_evaluation(spark: SparkSession) -> None:
    frame = _ratings(7)
    split = Split.from_frames(frame[frame["split"] == "train"], frame[frame["split"] == "test"])
    ratings = spark.createDataFrame(frame)
    train, test = ratings.where(F.col("split") == "train"), ratings.where(F.col("split") == "test")

    popularity = np.bincount(split.train_item, minlength=len(split.items)).astype(np.float64)
    ours = float(np.mean(ranking_ndcg(split, global_scorer(split, popularity))))
    relevant = test.where(F.col("overall") >= 4).select("reviewerID", "asin")
    reviewers = train.select("reviewerID").distinct().join(relevant.select("reviewerID").distinct(), "reviewerID")
    scores = train.groupBy("asin").agg(F.count(F.lit(1)).cast("double").alias("score"))
    top = global_top_k(reviewers, train.select("reviewerID", "asin"), scores, 10)
    spark_ndcg = ranking_metrics(top, relevant, reviewers, (10,))["ndcg@10"]
    assert spark_ndcg is not None
    assert len(split.relevant()[0]) == reviewers.count()
    assert ours == pytest.approx(spark_ndcg, abs=1e-12)

    biases = fit_biases(train, Damping(user=5.0, item=2.0))
    predicted = with_baseline(test, biases).toPandas()
    keyed = split.test_keys.merge(predicted, on=["reviewerID", "asin"])
    spark_rmse = rating_metrics(keyed["overall"].to_numpy(), keyed[BASELINE].to_numpy())["rmse"]
    numpy_rmse = rating_metrics(split.test_rating, DampedBiases.fit(split, 5.0, 2.0).predict(split))["rmse"]
    assert split.cold.sum() > 0
    assert numpy_rmse == pytest.approx(spark_rmse, abs=1e-12)

"""Damped user and item biases: the classic rating baseline, and the part of our model ALS does not learn.

Spark's ALS has no bias terms, so on ratings that are mostly five stars it spends its
factors on the offsets. We fit ``mu + b_u + b_i`` first (Koren's damped means) and let ALS
learn the residual. The same function is the "user+item bias" baseline in the evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

BASELINE = "baseline"


@dataclass(frozen=True)
class Biases:
    global_mean: float
    damping: float
    users: DataFrame  # reviewerID, user_bias
    items: DataFrame  # asin, item_bias


def fit_biases(train: DataFrame, damping: float) -> Biases:
    """``b_i = sum(r - mu) / (n_i + damping)``, then ``b_u = sum(r - mu - b_i) / (n_u + damping)``."""
    if damping < 0:
        raise ValueError(f"damping must be non-negative, got {damping}")
    mean = train.agg(F.avg("overall")).first()
    if mean is None or mean[0] is None:
        raise ValueError("cannot fit biases on an empty training set")
    mu = float(mean[0])
    count = F.count(F.lit(1)) + F.lit(damping)
    items = train.groupBy("asin").agg((F.sum(F.col("overall") - mu) / count).alias("item_bias"))
    users = (
        train.join(items, "asin")
        .groupBy("reviewerID")
        .agg((F.sum(F.col("overall") - mu - F.col("item_bias")) / count).alias("user_bias"))
    )
    return Biases(mu, damping, users, items)


def with_baseline(ratings: DataFrame, biases: Biases) -> DataFrame:
    """Add ``baseline = mu + b_u + b_i``; an unknown user or item contributes no bias."""
    return (
        ratings.join(biases.users, "reviewerID", "left")
        .join(biases.items, "asin", "left")
        .withColumn(
            BASELINE,
            F.lit(biases.global_mean) + F.coalesce("user_bias", F.lit(0.0)) + F.coalesce("item_bias", F.lit(0.0)),
        )
        .drop("user_bias", "item_bias")
    )

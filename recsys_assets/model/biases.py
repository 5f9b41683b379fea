"""Damped user and item biases: the classic rating baseline, and the part of our model ALS does not learn.

Spark's ALS has no bias terms, so on ratings that are mostly five stars it spends its
factors on the offsets. We fit ``mu + b_u + b_i`` first (Koren's damped means) and let ALS
learn the residual. The same function is the "user+item bias" baseline in the evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

BASELINE = "baseline"


@dataclass(frozen=True)
class Biases:
    global_mean: float
    damping: float
    users: DataFrame  # reviewerID, user_bias
    items: DataFrame  # asin, item_bias
    scale: tuple[float, float]
    """The lowest and highest training rating: no rating falls outside them, so no prediction should."""

    def clipped(self, prediction: Column) -> Column:
        """``prediction`` held to the rating scale: a 5.4 for a 1-5 scale is a worse guess than 5."""
        return F.least(F.greatest(prediction, F.lit(self.scale[0])), F.lit(self.scale[1]))

    def cache(self) -> Biases:
        return replace(self, users=self.users.cache(), items=self.items.cache())


def fit_biases(train: DataFrame, damping: float) -> Biases:
    """``b_i = sum(r - mu) / (n_i + damping)``, then ``b_u = sum(r - mu - b_i) / (n_u + damping)``."""
    if damping < 0:
        raise ValueError(f"damping must be non-negative, got {damping}")
    summary = train.agg(F.avg("overall"), F.min("overall"), F.max("overall")).first()
    if summary is None or summary[0] is None:
        raise ValueError("cannot fit biases on an empty training set")
    mu = float(summary[0])
    count = F.count(F.lit(1)) + F.lit(damping)
    items = train.groupBy("asin").agg((F.sum(F.col("overall") - mu) / count).alias("item_bias"))
    users = (
        train.join(items, "asin")
        .groupBy("reviewerID")
        .agg((F.sum(F.col("overall") - mu - F.col("item_bias")) / count).alias("user_bias"))
    )
    return Biases(mu, damping, users, items, (float(summary[1]), float(summary[2])))


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

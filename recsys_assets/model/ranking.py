"""Turning scores into per-reviewer top-k lists, shared by the evaluation and the publishing."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F


def dot(left: str, right: str) -> Column:
    """Dot product of two array<float> columns of equal length."""
    products = F.zip_with(F.col(left), F.col(right), lambda x, y: x.cast("double") * y.cast("double"))
    return F.aggregate(products, F.lit(0.0), lambda acc, x: acc + x)


def cosine(left: str, right: str) -> Column:
    norms = F.sqrt(dot(left, left)) * F.sqrt(dot(right, right))
    return F.when(norms > 0, dot(left, right) / norms).otherwise(F.lit(0.0))


def top_k(scores: DataFrame, exclude: DataFrame, k: int) -> DataFrame:
    """The ``k`` best-scored items per reviewer among those not in ``exclude``, with a 1-based ``rank``.

    Ties are broken by asin so that a list never depends on Spark's partitioning.
    """
    best_first = Window.partitionBy("reviewerID").orderBy(F.col("score").desc(), F.col("asin"))
    return (
        scores.join(exclude.select("reviewerID", "asin"), ["reviewerID", "asin"], "left_anti")
        .withColumn("rank", F.row_number().over(best_first))
        .where(F.col("rank") <= k)
    )


def item_score_lists(users: DataFrame, item_scores: DataFrame) -> DataFrame:
    """Score every (reviewer, item) pair by an item-only score, as the non-personal baselines do."""
    return users.select("reviewerID").distinct().crossJoin(item_scores.select("asin", "score"))

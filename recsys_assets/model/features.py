"""From sampled reviews to the ratings the model learns from: cleaned, deduplicated, split.

Ids stay strings here; the StringIndexers are fitted inside the model pipeline (training.py),
once, so every index maps back to a real reviewerID and asin.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F


class SplitMethod(StrEnum):
    RANDOM = "random"
    LEAVE_K_OUT = "leave_k_out"
    TIME = "time"


TRAIN, TEST = "train", "test"
RATING_COLUMNS = ["reviewerID", "asin", "overall", "unixReviewTime", "category"]
_HASH_BUCKETS = 1_000_000


@dataclass(frozen=True)
class CleaningReport:
    input_rows: int
    missing_id: int
    missing_rating: int
    out_of_range_rating: int
    duplicate_pairs: int
    output_rows: int


def clean_ratings(
    reviews: DataFrame, min_rating: float = 1.0, max_rating: float = 5.0
) -> tuple[DataFrame, CleaningReport]:
    """Drop rows without ids or a usable rating, then keep each reviewer's latest rating of an item."""
    blank_id = (
        F.col("reviewerID").isNull()
        | (F.trim(F.col("reviewerID")) == "")
        | F.col("asin").isNull()
        | (F.trim(F.col("asin")) == "")
    )
    flagged = reviews.select(*RATING_COLUMNS, "_id").withColumn(
        "_problem",
        F.when(blank_id, "missing_id")
        .when(F.col("overall").isNull() | F.isnan("overall"), "missing_rating")
        .when(~F.col("overall").between(min_rating, max_rating), "out_of_range_rating"),
    )
    problems: dict[str | None, int] = {row[0]: int(row[1]) for row in flagged.groupBy("_problem").count().collect()}
    valid = flagged.where(F.col("_problem").isNull()).drop("_problem")
    latest = Window.partitionBy("reviewerID", "asin").orderBy(
        F.col("unixReviewTime").desc_nulls_last(), F.col("_id").desc()
    )
    deduplicated = valid.withColumn("_rank", F.row_number().over(latest)).where("_rank = 1").select(*RATING_COLUMNS)
    valid_rows = problems.get(None, 0)
    output_rows = deduplicated.count()
    report = CleaningReport(
        input_rows=sum(problems.values()),
        missing_id=problems.get("missing_id", 0),
        missing_rating=problems.get("missing_rating", 0),
        out_of_range_rating=problems.get("out_of_range_rating", 0),
        duplicate_pairs=valid_rows - output_rows,
        output_rows=output_rows,
    )
    return deduplicated, report


def _seeded_uniform(seed: int, *columns: str) -> Column:
    """A value in [0, 1) fixed by the row's ids and the seed: unlike rand(), the same on every evaluation."""
    return (F.pmod(F.xxhash64(*[F.col(c) for c in columns], F.lit(seed)), F.lit(_HASH_BUCKETS)) / _HASH_BUCKETS).cast(
        "double"
    )


def split_ratings(
    ratings: DataFrame, method: SplitMethod, seed: int, test_fraction: float, holdout_k: int
) -> DataFrame:
    """Label every rating ``train`` or ``test``.

    - ``random``: each rating is held out with probability ``test_fraction``.
    - ``leave_k_out``: each reviewer with more than ``k`` ratings has ``k`` random ones held
      out, so every such reviewer is evaluated and keeps at least one rating to learn from.
    - ``time``: the latest ``test_fraction`` of ratings (by review time) are held out: the
      model is judged on the future, as in production.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if method == SplitMethod.RANDOM:
        held_out = _seeded_uniform(seed, "reviewerID", "asin") < test_fraction
    elif method == SplitMethod.LEAVE_K_OUT:
        if holdout_k < 1:
            raise ValueError(f"holdout_k must be at least 1, got {holdout_k}")
        per_user = Window.partitionBy("reviewerID")
        ordered = per_user.orderBy(_seeded_uniform(seed, "reviewerID", "asin"), F.col("asin"))
        ratings = ratings.withColumn("_n", F.count(F.lit(1)).over(per_user)).withColumn(
            "_position", F.row_number().over(ordered)
        )
        held_out = (F.col("_n") > holdout_k) & (F.col("_position") <= holdout_k)
    elif method == SplitMethod.TIME:
        cutoff = ratings.approxQuantile("unixReviewTime", [1.0 - test_fraction], 0.0)
        if not cutoff:
            return ratings.withColumn("split", F.lit(TRAIN))
        held_out = F.coalesce(F.col("unixReviewTime") > F.lit(cutoff[0]), F.lit(False))
    else:
        raise ValueError(f"unknown split method {method!r}")
    return ratings.withColumn("split", F.when(held_out, TEST).otherwise(TRAIN)).drop("_n", "_position")


def fingerprint(ratings: DataFrame) -> str:
    """An order-independent digest of the ratings and their split labels."""
    row = ratings.agg(
        F.count(F.lit(1)), F.bit_xor(F.xxhash64("reviewerID", "asin", "overall", "unixReviewTime", "split"))
    ).first()
    if row is None:
        raise ValueError("cannot fingerprint ratings")
    return f"{row[0]}:{row[1]}"

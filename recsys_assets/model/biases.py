"""User and item biases: the classic rating baseline, and the part of our model ALS does not learn.

Spark's ALS has no bias terms, so on ratings that are mostly five stars it spends its
factors on the offsets. We fit ``mu + b_u + b_i`` first and let ALS learn the residual; the
rating head then refits them on what its factors leave (``refit_biases``, in
``training.fit_rating_head``). The biases of the ratings alone are the "user+item bias"
baseline in the evaluation.

The biases are the ridge solution of ``r - mu ~ b_u + b_i`` (Koren's baseline predictors),
reached by alternating the two damped means: item biases on what the user biases leave,
then user biases on what the item biases leave. One sweep is Koren's damped means; on the
shared categories a second sweep took most of what ten more give (Gift_Cards validation RMSE
0.378 -> 0.368 -> 0.3676), so ``SWEEPS`` is 2: four aggregations of the ratings, whatever
their size. The dampings matter more than the sweeps (0.373 undamped against 0.406 at 5 on
Gift_Cards), so the validation search chooses them (``tuning.search``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

BASELINE = "baseline"
USER_BIAS, ITEM_BIAS = "user_bias", "item_bias"
SWEEPS = 2
_OFFSET = "offset"
_OTHER_KEY = {"asin": "reviewerID", "reviewerID": "asin"}


class Damping(BaseModel):
    """The weight of the prior (no bias) in each damped mean: a reviewer with n ratings has n + ``user``."""

    model_config = ConfigDict(frozen=True)

    user: float = Field(ge=0.0)
    item: float = Field(ge=0.0)


@dataclass(frozen=True)
class Biases:
    global_mean: float
    damping: Damping
    users: DataFrame  # reviewerID, user_bias
    items: DataFrame  # asin, item_bias
    scale: tuple[float, float]
    """The lowest and highest training rating: no rating falls outside them, so no prediction should."""

    def clipped(self, prediction: Column) -> Column:
        """``prediction`` held to the rating scale: a 5.4 for a 1-5 scale is a worse guess than 5."""
        return _clipped(prediction, self.scale)

    def unpersist(self) -> None:
        self.users.unpersist()
        self.items.unpersist()


@dataclass(frozen=True)
class BiasCandidates:
    """The biases of several dampings fitted side by side, candidate ``g`` in column ``b{g}`` of each table.

    Fitting them in the same aggregations costs the ratings' shuffles once, not once per candidate.
    """

    global_mean: float
    dampings: tuple[Damping, ...]
    users: DataFrame  # reviewerID, b0, b1, ... (cached)
    items: DataFrame  # asin, b0, b1, ... (cached)
    scale: tuple[float, float]

    @property
    def columns(self) -> list[str]:
        return [f"b{g}" for g in range(len(self.dampings))]

    def predictions(self, ratings: DataFrame) -> DataFrame:
        """``ratings`` with candidate ``g``'s baseline, on the scale, in column ``b{g}``."""
        users = self.users.select("reviewerID", *(F.col(c).alias(f"u{c}") for c in self.columns))
        items = self.items.select("asin", *(F.col(c).alias(f"i{c}") for c in self.columns))
        joined = ratings.join(users, "reviewerID", "left").join(items, "asin", "left")
        baseline = {
            c: F.lit(self.global_mean) + F.coalesce(f"u{c}", F.lit(0.0)) + F.coalesce(f"i{c}", F.lit(0.0))
            for c in self.columns
        }
        return joined.select(
            *ratings.columns, *(_clipped(prediction, self.scale).alias(c) for c, prediction in baseline.items())
        )

    def pick(self, g: int) -> Biases:
        """Candidate ``g`` alone, as biases: read from these tables, so valid until they are released."""
        column = self.columns[g]
        users = self.users.select("reviewerID", F.col(column).alias(USER_BIAS))
        items = self.items.select("asin", F.col(column).alias(ITEM_BIAS))
        return Biases(self.global_mean, self.dampings[g], users, items, self.scale)

    def unpersist(self) -> None:
        self.users.unpersist()
        self.items.unpersist()


def _clipped(prediction: Column, scale: tuple[float, float]) -> Column:
    return F.least(F.greatest(prediction, F.lit(scale[0])), F.lit(scale[1]))


def fit_bias_candidates(train: DataFrame, dampings: Sequence[Damping]) -> BiasCandidates:
    """Every damping's biases on ``train``, side by side, cached."""
    columns = [f"b{g}" for g in range(len(dampings))]
    mu, scale = _mean_and_scale(train)
    users, items = _alternate(train, mu, dampings, columns, columns)
    return BiasCandidates(mu, tuple(dampings), users, items, scale)


def fit_biases(train: DataFrame, damping: Damping) -> Biases:
    """The biases of one damping, cached."""
    mu, scale = _mean_and_scale(train)
    users, items = _alternate(train, mu, [damping], [USER_BIAS], [ITEM_BIAS])
    return Biases(mu, damping, users, items, scale)


def refit_biases(ratings: DataFrame, biases: Biases, explained: str) -> Biases:
    """``biases`` fitted again, cached, on what something else (the rating head's factors) leaves of each rating.

    ``explained`` names a column of ``ratings`` holding what that predictor gives each rating: the
    new biases are the ridge fit of ``r - mu - explained``, with the same ``mu``, scale and
    damping, so they and that predictor add up.
    """
    users, items = _alternate(ratings, biases.global_mean, [biases.damping], [USER_BIAS], [ITEM_BIAS], explained)
    return Biases(biases.global_mean, biases.damping, users, items, biases.scale)


def _mean_and_scale(train: DataFrame) -> tuple[float, tuple[float, float]]:
    """The mean rating, and the lowest and highest, in one aggregation."""
    summary = train.agg(F.avg("overall"), F.min("overall"), F.max("overall")).first()
    if summary is None or summary[0] is None:
        raise ValueError("cannot fit biases on an empty training set")
    return float(summary[0]), (float(summary[1]), float(summary[2]))


def _alternate(
    train: DataFrame,
    mu: float,
    dampings: Sequence[Damping],
    user_columns: list[str],
    item_columns: list[str],
    explained: str | None = None,
) -> tuple[DataFrame, DataFrame]:
    """``SWEEPS`` alternations of the damped means of ``r - mu`` (less ``explained``), one output column per
    damping; the user and item tables come back cached.

    Each half-sweep reads only the one before it, so the whole chain is one Spark job whose
    stages each run once; only the ratings' offsets, read by every half-sweep, are cached.
    """
    if not dampings:
        raise ValueError("at least one damping is needed")
    offset = F.col("overall") - mu - (F.lit(0.0) if explained is None else F.col(explained))
    offsets = train.select("reviewerID", "asin", offset.alias(_OFFSET)).cache()
    item_dampings, user_dampings = [d.item for d in dampings], [d.user for d in dampings]
    items = _damped_means(offsets, None, [], "asin", item_columns, item_dampings)
    users = _damped_means(offsets, items, item_columns, "reviewerID", user_columns, user_dampings)
    for _ in range(SWEEPS - 1):
        items = _damped_means(offsets, users, user_columns, "asin", item_columns, item_dampings)
        users = _damped_means(offsets, items, item_columns, "reviewerID", user_columns, user_dampings)
    items, users = items.cache(), users.cache()
    users.count()  # computes the chain, and with it the cached items it reads
    offsets.unpersist()
    return users, items


def _damped_means(
    offsets: DataFrame,
    other: DataFrame | None,
    other_columns: list[str],
    key: str,
    columns: list[str],
    dampings: list[float],
) -> DataFrame:
    """Per ``key``, ``sum(offset - other's bias) / (n + damping)`` into each of ``columns`` (``other`` None: the
    first half-sweep, before any other bias is known)."""
    count = F.count(F.lit(1))
    if other is None:
        left = [F.col(_OFFSET)] * len(columns)
        joined = offsets
    else:
        left = [F.col(_OFFSET) - F.col(c) for c in other_columns]
        joined = offsets.join(other, _OTHER_KEY[key])
    return joined.groupBy(key).agg(
        *((F.sum(offset) / (count + F.lit(d))).alias(c) for offset, c, d in zip(left, columns, dampings, strict=True))
    )


def with_baseline(ratings: DataFrame, biases: Biases, column: str = BASELINE) -> DataFrame:
    """Add ``column = mu + b_u + b_i``; an unknown user or item contributes no bias."""
    return (
        ratings.join(biases.users, "reviewerID", "left")
        .join(biases.items, "asin", "left")
        .withColumn(
            column,
            F.lit(biases.global_mean) + F.coalesce(USER_BIAS, F.lit(0.0)) + F.coalesce(ITEM_BIAS, F.lit(0.0)),
        )
        .drop(USER_BIAS, ITEM_BIAS)
    )

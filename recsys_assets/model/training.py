"""The model: damped biases, dense id indices and two ALS heads, saved in the model store.

The pipeline has a *rating head*, an explicit ALS on the residual ``r - (mu + b_u + b_i)``,
which predicts ratings (its biases and factors fitted alternately: ``fit_rating_head``),
and, when ``implicit_prefs`` is on, a *ranking head*, an implicit ALS on the positive
interactions (confidence ``1 + alpha * s``, with ``s`` the rating, or 0 for a dislike:
``IMPLICIT_STRENGTH``), which orders the top-k lists by ``x_u . y_i`` plus a popularity prior,
``popularity_weight * log(1 + n_i)`` with ``n_i`` the item's positive signals in training. On
Amazon ratings (about 90% five stars) no single explicit ALS is good at both: squared error
rewards predicting the offsets, ranking rewards knowing what people pick at all. With
``implicit_prefs`` off, the rating head ranks too (by ``b_i + x_u . y_i``).

Either way a ranking score is ``x_u . y_i`` plus a per-item ``score_offset``, which
``item_factors`` publishes, so the online scorer adds the same.

Each head has its own hyperparameters (``Heads``), chosen by the validation search in
``tuning.py`` or taken from ``AlsParams``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dagster import Config
from pydantic import BaseModel, ConfigDict, Field
from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_assets.model.biases import BASELINE, ITEM_BIAS, Biases, Damping, fit_biases, refit_biases, with_baseline
from recsys_assets.model.ranking import ItemFactorTable, model_top_k
from recsys_assets.model.store import ModelStore
from recsys_core.contract import DISLIKED_MAX_RATING

USER_INDEX, ITEM_INDEX = "user_index", "item_index"
RESIDUAL, RESIDUAL_PREDICTION = "residual", "residual_prediction"
PREFERENCE, PREDICTION = "preference", "prediction"
IMPLICIT_STRENGTH = "implicit_strength"
POSITIVES = "positives"
"""An item's positive signals in training (ratings above ``DISLIKED_MAX_RATING``): the popularity prior's n_i."""
SCORE_OFFSET = "score_offset"
COLD = "cold"
_MODEL_BASELINE = "model_baseline"
MODEL_JSON = "model.json"
BASELINE_PREFIX = "baseline_"
"""The bias baseline's tables in the model folder: ``baseline_user_bias``, ``baseline_item_bias``."""


class TuningConfig(Config):
    """The search that picks each head's hyperparameters on a validation split carved out of the train split.

    Successive halving: the first rung's candidates are fitted with its iterations, the best
    ``1/halving`` go on to the next rung, and so on. The rating head's first rung sweeps one axis
    of its grid at a time from ``AlsParams``' own values (every rank, then every regularisation
    at the best rank so far); the ranking head's is ``candidates`` seeded draws from its grid
    (plus ``AlsParams``' own values). The rating head is judged by validation RMSE, the ranking
    head by validation NDCG@10. The test split is never seen: it is touched once, by
    ``model_evaluation``.
    """

    budget_s: float = Field(
        default=600.0, ge=0.0, description="Wall-clock budget of the search; 0 turns tuning off (AlsParams' values)."
    )
    max_train_ratings: int = Field(
        default=2_000_000,
        ge=0,
        description="Above this many training ratings the search is not affordable and AlsParams' values are used.",
    )
    ranks: list[int] = Field(default=[8, 16, 32, 64], min_length=1, description="The ranking head's.")
    rating_ranks: list[int] = Field(
        default=[2, 3, 4, 6, 8, 16, 32, 64],
        min_length=1,
        description="The rating head's; dense below 8: a sparse category's reviewers rate too few items to pin "
        "down more factors.",
    )
    reg_params: list[float] = Field(
        default=[0.01, 0.03, 0.1, 0.3, 1.0], min_length=1, description="The ranking head's."
    )
    rating_reg_params: list[float] = Field(
        default=[0.01, 0.03, 0.1, 0.3, 1.0, 3.0],
        min_length=1,
        description="The rating head's. At 3 the factors add next to nothing to the biases: the simplest candidate, "
        "which the one-standard-error rule keeps where the data cannot tell the others from it.",
    )
    alphas: list[float] = Field(default=[1.0, 5.0, 20.0, 50.0], min_length=1, description="The implicit head's.")
    popularity_weights: list[float] = Field(
        default=[0.0, 0.03, 0.1, 0.3, 1.0],
        min_length=1,
        description="The implicit head's popularity priors tried, on the chosen head's one fit, after the halving.",
    )
    dampings: list[float] = Field(
        default=[0.5, 1.0, 2.0, 5.0, 10.0, 25.0],
        min_length=1,
        description="The biases' dampings tried, every user damping with every item damping, in one pass.",
    )
    rungs: list[int] = Field(default=[5, 10, 20], min_length=1, description="The ranking head's iterations per rung.")
    rating_rungs: list[int] = Field(
        default=[10, 20],
        min_length=1,
        description="The rating head's iterations per rung. A low rank needs about 10 to settle, so a first rung "
        "of fewer judges it unfinished.",
    )
    candidates: int = Field(default=9, ge=1, description="Grid points drawn for the ranking head's first rung.")
    halving: int = Field(default=3, ge=2, description="Each rung keeps the best 1/halving of the one before.")
    max_validation_users: int = Field(default=5_000, ge=1, description="Reviewers ranked per NDCG@10 trial.")


class AlsParams(Config):
    """Every hyperparameter of the model: the ``als_model`` asset's config, and what ``model.json`` records.

    ``rank``, ``reg_param``, ``max_iter`` and ``alpha`` are both heads' values when the search
    does not run, and where the search's sweep starts when it does.
    """

    rank: int = Field(default=10, ge=1)
    reg_param: float = Field(default=0.1, ge=0.0)
    max_iter: int = Field(default=10, ge=1)
    checkpoint_interval: int = Field(
        default=10,
        ge=1,
        description="ALS checkpoints its factors every this many iterations (into the run's checkpoint folder), "
        "so a long lineage never overflows the JVM's stack.",
    )
    implicit_prefs: bool = Field(default=True, description="Rank with an implicit-feedback ALS head.")
    alpha: float = Field(default=10.0, ge=0.0, description="Confidence scale of the implicit head.")
    popularity_weight: float = Field(
        default=0.0,
        ge=0.0,
        description="The implicit head ranks by x_u . y_i + popularity_weight * log(1 + the item's positive "
        "training signals).",
    )
    seed: int = 42
    nonnegative: bool = False
    user_damping: float = Field(default=5.0, ge=0.0, description="Damping of the user biases' means.")
    item_damping: float = Field(default=5.0, ge=0.0, description="Damping of the item biases' means.")
    bias_rounds: int = Field(
        default=2,
        ge=1,
        description="Fits of the rating head: before each after the first, the biases are refitted on what its "
        "factors leave (r - x_u . y_i). 1: the biases are fitted once, on the ratings alone.",
    )
    tuning: TuningConfig = Field(default=TuningConfig(), description="The validation search for each head.")
    blocks: int | None = Field(
        default=None,
        ge=1,
        description="ALS user and item blocks; unset = chosen by the cores and the training size (als_blocks).",
    )

    @property
    def head(self) -> HeadParams:
        """These parameters as one head's, for both heads when nothing is tuned."""
        return HeadParams(
            rank=self.rank,
            reg_param=self.reg_param,
            max_iter=self.max_iter,
            alpha=self.alpha,
            popularity_weight=self.popularity_weight,
        )

    @property
    def damping(self) -> Damping:
        """The biases' dampings when nothing is tuned."""
        return Damping(user=self.user_damping, item=self.item_damping)


class HeadParams(BaseModel):
    """One ALS head's hyperparameters: ``AlsParams``' values, or what the search chose for that head."""

    model_config = ConfigDict(frozen=True)

    rank: int
    reg_param: float
    max_iter: int
    alpha: float  # the implicit head's confidence scale; the rating head has none
    popularity_weight: float = 0.0  # the implicit head's popularity prior; the rating head ranks by its biases

    def with_iterations(self, max_iter: int) -> HeadParams:
        return self.model_copy(update={"max_iter": max_iter})

    def with_popularity_weight(self, popularity_weight: float) -> HeadParams:
        return self.model_copy(update={"popularity_weight": popularity_weight})


@dataclass(frozen=True)
class Heads:
    """What each head is fitted with. Without an implicit head the rating head also ranks: ``ranking`` is unused."""

    rating: HeadParams
    ranking: HeadParams

    @classmethod
    def untuned(cls, params: AlsParams) -> Heads:
        return cls(params.head, params.head)


RATINGS_PER_ALS_BLOCK = 2_000_000


def als_blocks(params: AlsParams, train_ratings: int, parallelism: int) -> int:
    """``params.blocks``, else one block per core (``parallelism``), or one per 2M training ratings when that is more.

    Each block is one task of every ALS iteration, so fewer blocks than cores leave cores idle,
    and more cost a task each per iteration for nothing: on small data Spark's fixed 10 blocks
    made a fit on 2 cores three times slower than 2 blocks. Each block's ratings and factors are
    one task's working set, so more data gets more blocks instead of bigger tasks.
    """
    return params.blocks or max(parallelism, math.ceil(train_ratings / RATINGS_PER_ALS_BLOCK))


def _als(params: AlsParams, head: HeadParams, blocks: int, prediction_col: str, **kwargs: Any) -> ALS:
    als = ALS(
        numUserBlocks=blocks,
        numItemBlocks=blocks,
        userCol=USER_INDEX,
        itemCol=ITEM_INDEX,
        rank=head.rank,
        regParam=head.reg_param,
        maxIter=head.max_iter,
        seed=params.seed,
        nonnegative=params.nonnegative,
        checkpointInterval=params.checkpoint_interval,
        coldStartStrategy="drop",
        **kwargs,
    )
    return als.setPredictionCol(prediction_col)


def rating_head(params: AlsParams, head: HeadParams, blocks: int) -> ALS:
    """The explicit ALS on the residuals, which predicts ratings."""
    return _als(params, head, blocks, RESIDUAL_PREDICTION, ratingCol=RESIDUAL)


def ranking_head(params: AlsParams, head: HeadParams, blocks: int) -> ALS:
    """The implicit ALS on the positive signals (``IMPLICIT_STRENGTH``), which orders the lists."""
    return _als(params, head, blocks, PREFERENCE, ratingCol=IMPLICIT_STRENGTH, implicitPrefs=True, alpha=head.alpha)


@dataclass(frozen=True)
class Ids:
    """Dense ALS indices for the string ids, as tables: never a reviewers- or items-sized list in the driver.

    Indices are given in id order (a sorted ``zipWithIndex``), so they depend only on the ids.
    """

    users: DataFrame  # reviewerID, user_index
    items: DataFrame  # asin, item_index

    @classmethod
    def of(cls, ratings: DataFrame) -> Ids:
        return cls(_dense_index(ratings, "reviewerID", USER_INDEX), _dense_index(ratings, "asin", ITEM_INDEX))

    def attach(self, ratings: DataFrame) -> DataFrame:
        """``ratings`` with both indices; a row of a reviewer or item without one is dropped."""
        return ratings.join(self.users, "reviewerID").join(self.items, "asin")

    def cache(self) -> Ids:
        return Ids(self.users.cache(), self.items.cache())


def _dense_index(ratings: DataFrame, id_column: str, index_column: str) -> DataFrame:
    ordered = ratings.select(id_column).distinct().orderBy(id_column).rdd
    return (
        ordered.zipWithIndex().map(lambda pair: (pair[0][0], pair[1])).toDF(f"{id_column} string, {index_column} int")
    )


def learning_columns(train: DataFrame, biases: Biases) -> DataFrame:
    """``train`` with what the heads learn from: the residual of the baseline, and the implicit strength."""
    # recsys_core.scoring.implicit_strength, as a column
    strength = F.when(F.col("overall") > DISLIKED_MAX_RATING, F.col("overall")).otherwise(F.lit(0.0))
    return _with_residual(train, biases).withColumn(IMPLICIT_STRENGTH, strength)


def item_positives(learn: DataFrame) -> DataFrame:
    """``asin, positives``: each item's positive signals in ``learn`` (``learning_columns``); none, no row."""
    return learn.where(F.col(IMPLICIT_STRENGTH) > 0).groupBy("asin").agg(F.count(F.lit(1)).alias(POSITIVES))


def popularity_prior(positives: DataFrame, weight: float) -> DataFrame:
    """``asin, score_offset``: ``weight * log(1 + n_i)`` per item of ``positives``."""
    return positives.select("asin", (F.lit(weight) * F.log1p(POSITIVES)).alias(SCORE_OFFSET))


def _with_residual(ratings: DataFrame, biases: Biases) -> DataFrame:
    return with_baseline(ratings, biases).withColumn(RESIDUAL, F.col("overall") - F.col(BASELINE))


def fit_rating_head(
    params: AlsParams, head: HeadParams, blocks: int, learn: DataFrame, baseline: Biases
) -> tuple[ALSModel, Biases]:
    """The rating head, and the biases its factors add to: ``bias_rounds`` fits, alternating with bias refits.

    ALS has no bias terms, so the biases are fitted first and held fixed while it learns their
    residual; but what the factors then explain was partly credited to the biases. Each later
    round refits the biases on ``r - x_u . y_i`` (the same ridge fit and dampings) and ALS on
    their residual, which moves the pair towards the joint fit of biased MF. ``learn`` is the
    indexed training ratings with ``baseline``'s residual (``learning_columns``). Refitted
    biases come back cached, for the caller to release; ``baseline`` is never released here.
    """
    rating = rating_head(params, head, blocks).fit(learn)
    biases = baseline
    for _ in range(params.bias_rounds - 1):
        # Checkpointed: the refit's plans over the ALS transform otherwise exhausted the driver's heap in the search.
        explained = rating.transform(learn).select("reviewerID", "asin", "overall", RESIDUAL_PREDICTION)
        refit = refit_biases(explained.localCheckpoint(), baseline, RESIDUAL_PREDICTION)
        if biases is not baseline:
            biases.unpersist()
        biases = refit
        data = _with_residual(learn, biases).cache()
        rating = rating_head(params, head, blocks).fit(data)
        data.unpersist()
    return rating, biases


@dataclass(frozen=True)
class Ranker:
    """One head's factors keyed by the original ids, and the per-item offset its scores add: what the top-k
    lists are scored with."""

    ids: Ids
    head: ALSModel
    biases: Biases
    offsets: DataFrame  # asin, score_offset: b_i for the rating head, the popularity prior for the implicit head

    def user_factors(self) -> DataFrame:
        """``reviewerID, vector``."""
        factors = self.head.userFactors.withColumnRenamed("id", USER_INDEX)
        return self.ids.users.join(factors, USER_INDEX).select("reviewerID", F.col("features").alias("vector"))

    def item_factors(self) -> DataFrame:
        """``asin, vector, item_bias, score_offset``: the item's damped bias, and what its scores add (0 if none)."""
        factors = self.head.itemFactors.withColumnRenamed("id", ITEM_INDEX)
        named = self.ids.items.join(factors, ITEM_INDEX).select("asin", F.col("features").alias("vector"))
        with_bias = named.join(self.biases.items, "asin", "left")
        return with_bias.join(self.offsets, "asin", "left").fillna(0.0, [ITEM_BIAS, SCORE_OFFSET])

    def recommend(self, reviewers: DataFrame, exclude: DataFrame, k: int) -> DataFrame:
        """``reviewerID, asin, score, rank``: the ``k`` best items for each known reviewer, none in ``exclude``."""
        users = self.user_factors().join(reviewers.select("reviewerID").distinct(), "reviewerID")
        return model_top_k(users, exclude, ItemFactorTable.collect(self.item_factors()), k)


@dataclass(frozen=True)
class TrainedModel:
    version: str
    params: AlsParams
    biases: Biases  # what the rating head's factors add to: ``baseline`` refitted ``bias_rounds - 1`` times
    baseline: Biases  # the ridge fit of the ratings alone: the bias baseline, and the prediction of a cold pair
    heads: Heads
    ids: Ids
    rating: ALSModel
    ranking: ALSModel | None  # None: the rating head ranks (implicit_prefs off)
    positives: DataFrame  # asin, positives: the popularity prior's counts (item_positives of the training ratings)

    @property
    def ranker(self) -> Ranker:
        if self.ranking is None:
            offsets = self.biases.items.select("asin", F.col(ITEM_BIAS).alias(SCORE_OFFSET))
            return Ranker(self.ids, self.rating, self.biases, offsets)
        prior = popularity_prior(self.positives, self.heads.ranking.popularity_weight)
        return Ranker(self.ids, self.ranking, self.biases, prior)

    @property
    def rank(self) -> int:
        return int(self.ranker.head.rank)

    @property
    def ranking_params(self) -> HeadParams:
        """What the ranking head was fitted with: the online fold-in solves with the same."""
        return self.heads.rating if self.ranking is None else self.heads.ranking

    def predict_ratings(self, ratings: DataFrame) -> DataFrame:
        """Every row of ``ratings`` with ``prediction = mu + b_u + b_i + x_u . y_i`` on the scale, ``cold``, and
        ``baseline``, the bias baseline's unclipped prediction.

        A *cold* pair, whose reviewer or item the factors do not know, is predicted by the bias
        baseline alone (the biases it has, else the global mean): no row is ever dropped.
        """
        keys = ["reviewerID", "asin"]
        residuals = self.rating.transform(self.ids.attach(ratings.select(*keys))).select(*keys, RESIDUAL_PREDICTION)
        warm = F.col(_MODEL_BASELINE) + F.col(RESIDUAL_PREDICTION)
        return (
            with_baseline(with_baseline(ratings, self.baseline), self.biases, _MODEL_BASELINE)
            .join(residuals, keys, "left")
            .withColumn(COLD, F.col(RESIDUAL_PREDICTION).isNull())
            .withColumn(PREDICTION, self.biases.clipped(F.when(F.col(COLD), F.col(BASELINE)).otherwise(warm)))
            .drop(_MODEL_BASELINE)
        )


def fit_model(
    train: DataFrame, params: AlsParams, heads: Heads, damping: Damping, version: str, blocks: int
) -> TrainedModel:
    """Fit the biases, the ids' indices and the heads on ``train``; the biases, indices and the items' positive
    counts stay cached, as the heads' training data, the saved model and every later use read them."""
    baseline = fit_biases(train, damping)
    ids = Ids.of(train).cache()
    data = ids.attach(learning_columns(train, baseline)).cache()
    positives = item_positives(data).cache()
    rating, biases = fit_rating_head(params, heads.rating, blocks, data, baseline)
    ranking = ranking_head(params, heads.ranking, blocks).fit(data) if params.implicit_prefs else None
    data.unpersist()
    return TrainedModel(version, params, biases, baseline, heads, ids, rating, ranking, positives)


def save_model(model: TrainedModel, store: ModelStore, spark: SparkSession, uri: str, ratings_uri: str) -> None:
    """The heads, the ids' indices, the biases, the items' positive signals and ``model.json`` (parameters, and the
    ratings it was fitted on)."""
    model.rating.write().overwrite().save(f"{uri}/rating_head")
    if model.ranking is not None:
        model.ranking.write().overwrite().save(f"{uri}/ranking_head")
    model.ids.users.write.mode("overwrite").parquet(f"{uri}/user_index")
    model.ids.items.write.mode("overwrite").parquet(f"{uri}/item_index")
    model.positives.write.mode("overwrite").parquet(f"{uri}/{POSITIVES}")
    for prefix, biases in (("", model.biases), (BASELINE_PREFIX, model.baseline)):
        biases.users.write.mode("overwrite").parquet(f"{uri}/{prefix}user_bias")
        biases.items.write.mode("overwrite").parquet(f"{uri}/{prefix}item_bias")
    store.write_json(
        spark,
        f"{uri}/{MODEL_JSON}",
        {
            "version": model.version,
            "params": model.params.model_dump(),
            "global_mean": model.biases.global_mean,
            "bias_damping": model.biases.damping.model_dump(),
            "rating_scale": list(model.biases.scale),
            "heads": {"rating": model.heads.rating.model_dump(), "ranking": model.heads.ranking.model_dump()},
            "ratings_uri": ratings_uri,
        },
    )


def load_model(store: ModelStore, spark: SparkSession, uri: str) -> TrainedModel:
    meta = store.read_json(spark, f"{uri}/{MODEL_JSON}")
    biases, baseline = (
        Biases(
            global_mean=float(meta["global_mean"]),
            damping=Damping.model_validate(meta["bias_damping"]),
            users=spark.read.parquet(f"{uri}/{prefix}user_bias"),
            items=spark.read.parquet(f"{uri}/{prefix}item_bias"),
            scale=(float(meta["rating_scale"][0]), float(meta["rating_scale"][1])),
        )
        for prefix in ("", BASELINE_PREFIX)
    )
    params = AlsParams.model_validate(meta["params"])
    heads = Heads(**{name: HeadParams.model_validate(head) for name, head in meta["heads"].items()})
    ids = Ids(spark.read.parquet(f"{uri}/user_index"), spark.read.parquet(f"{uri}/item_index"))
    ranking = ALSModel.load(f"{uri}/ranking_head") if params.implicit_prefs else None
    rating = ALSModel.load(f"{uri}/rating_head")
    positives = spark.read.parquet(f"{uri}/{POSITIVES}")
    return TrainedModel(str(meta["version"]), params, biases, baseline, heads, ids, rating, ranking, positives)

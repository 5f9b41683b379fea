"""The model: damped biases plus a Spark ML Pipeline (two StringIndexers and ALS), saved in the model store.

The pipeline has a *rating head*, an explicit ALS on the residual ``r - (mu + b_u + b_i)``,
which predicts ratings, and, when ``implicit_prefs`` is on, a *ranking head*, an implicit
ALS on the same interactions (confidence ``1 + alpha * r``), which orders the top-k lists.
On Amazon ratings (about 90% five stars) no single explicit ALS is good at both: squared
error rewards predicting the offsets, ranking rewards knowing what people pick at all.
With ``implicit_prefs`` off, the rating head ranks too (by ``b_i + x_u . y_i``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

from dagster import Config
from pydantic import Field
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.evaluation import RegressionEvaluator
from pyspark.ml.feature import IndexToString, StringIndexer, StringIndexerModel
from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.ml.tuning import ParamGridBuilder, TrainValidationSplit
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_assets.model.biases import BASELINE, Biases, fit_biases, with_baseline
from recsys_assets.model.ranking import ItemFactorTable, model_top_k
from recsys_assets.model.store import ModelStore

USER_INDEX, ITEM_INDEX = "user_index", "item_index"
RESIDUAL, RESIDUAL_PREDICTION = "residual", "residual_prediction"
PREFERENCE, PREDICTION = "preference", "prediction"
MODEL_JSON = "model.json"


class TuningGrid(Config):
    """Candidates for the rating head's rank and regParam, judged by RMSE on a validation split of train."""

    ranks: list[int] = [5, 10, 20]
    reg_params: list[float] = [0.05, 0.1, 0.3]
    train_ratio: float = Field(default=0.8, gt=0.0, lt=1.0)


class AlsParams(Config):
    """Every hyperparameter of the model: the ``als_model`` asset's config, and what ``model.json`` records."""

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
    seed: int = 42
    nonnegative: bool = False
    bias_damping: float = Field(default=5.0, ge=0.0, description="Damping of the user and item bias means.")
    tuning: TuningGrid | None = Field(default=None, description="Tune the rating head on a validation split.")
    blocks: int | None = Field(
        default=None, ge=1, description="ALS user and item blocks; unset = chosen by the training size (als_blocks)."
    )


DEFAULT_ALS_BLOCKS = 10  # Spark's own default
RATINGS_PER_ALS_BLOCK = 2_000_000


def als_blocks(params: AlsParams, train_ratings: int) -> int:
    """``params.blocks``, else Spark's 10, or one block per 2M training ratings when that is more.

    Each block's ratings and factors are one task's working set, so more data gets more blocks
    instead of bigger tasks.
    """
    return params.blocks or max(DEFAULT_ALS_BLOCKS, math.ceil(train_ratings / RATINGS_PER_ALS_BLOCK))


def _als(params: AlsParams, blocks: int, prediction_col: str, **kwargs: Any) -> ALS:
    als = ALS(
        numUserBlocks=blocks,
        numItemBlocks=blocks,
        userCol=USER_INDEX,
        itemCol=ITEM_INDEX,
        rank=params.rank,
        regParam=params.reg_param,
        maxIter=params.max_iter,
        seed=params.seed,
        nonnegative=params.nonnegative,
        checkpointInterval=params.checkpoint_interval,
        coldStartStrategy="drop",
        **kwargs,
    )
    return als.setPredictionCol(prediction_col)


def build_pipeline(params: AlsParams, blocks: int) -> tuple[Pipeline, ALS]:
    """The unfitted pipeline and its rating-head ALS (the stage a tuning grid varies)."""
    rating_head = _als(params, blocks, RESIDUAL_PREDICTION, ratingCol=RESIDUAL)
    stages: list[Any] = [
        # "skip": held-out rows of reviewers or items the model never saw are dropped, as coldStartStrategy does.
        StringIndexer(inputCol="reviewerID", outputCol=USER_INDEX, handleInvalid="skip"),
        StringIndexer(inputCol="asin", outputCol=ITEM_INDEX, handleInvalid="skip"),
        rating_head,
    ]
    if params.implicit_prefs:
        stages.append(_als(params, blocks, PREFERENCE, ratingCol="overall", implicitPrefs=True, alpha=params.alpha))
    return Pipeline(stages=stages), rating_head


@dataclass(frozen=True)
class TrainedModel:
    version: str
    params: AlsParams
    pipeline: PipelineModel
    biases: Biases
    ranking_reg_param: float  # the regParam the ranking head was fitted with; online fold-in needs it

    @property
    def user_indexer(self) -> StringIndexerModel:
        return cast(StringIndexerModel, self.pipeline.stages[0])

    @property
    def item_indexer(self) -> StringIndexerModel:
        return cast(StringIndexerModel, self.pipeline.stages[1])

    @property
    def ranking_head(self) -> ALSModel:
        """The implicit head when there is one, else the rating head."""
        return cast(ALSModel, self.pipeline.stages[-1])

    @property
    def rank(self) -> int:
        return int(self.ranking_head.rank)

    @property
    def ranking_adds_item_bias(self) -> bool:
        return not self.params.implicit_prefs

    def predict_ratings(self, ratings: DataFrame) -> DataFrame:
        """Add ``prediction = mu + b_u + b_i + x_u . y_i``; rows of unknown reviewers or items are dropped."""
        return self.pipeline.transform(with_baseline(ratings, self.biases)).withColumn(
            PREDICTION, F.col(BASELINE) + F.col(RESIDUAL_PREDICTION)
        )

    def user_factors(self) -> DataFrame:
        """``reviewerID, vector`` of the ranking head."""
        return _labelled(self.ranking_head.userFactors, self.user_indexer.labels, "reviewerID")

    def item_factors(self) -> DataFrame:
        """``asin, vector, item_bias`` of the ranking head, with the item's damped bias."""
        factors = _labelled(self.ranking_head.itemFactors, self.item_indexer.labels, "asin")
        return factors.join(self.biases.items, "asin", "left").fillna(0.0, ["item_bias"])

    def recommend(self, reviewers: DataFrame, exclude: DataFrame, k: int) -> DataFrame:
        """``reviewerID, asin, score, rank``: the ``k`` best items for each known reviewer, none in ``exclude``."""
        users = self.user_factors().join(reviewers.select("reviewerID").distinct(), "reviewerID")
        items = ItemFactorTable.collect(self.item_factors())
        return model_top_k(users, exclude, items, k, self.ranking_adds_item_bias)


def _labelled(factors: DataFrame, labels: list[str], id_column: str) -> DataFrame:
    """ALS factors keyed by the original string id instead of the indexer's number."""
    indexed = factors.withColumn("_index", F.col("id").cast("double"))
    named = IndexToString(inputCol="_index", outputCol=id_column, labels=labels).transform(indexed)
    return named.select(id_column, F.col("features").alias("vector"))


def fit_model(
    train: DataFrame, params: AlsParams, version: str, blocks: int
) -> tuple[TrainedModel, list[dict[str, float]]]:
    """Fit biases then the pipeline on ``train``; with a grid, pick the rating head by validation RMSE."""
    biases = fit_biases(train, params.bias_damping)
    data = with_baseline(train, biases).withColumn(RESIDUAL, F.col("overall") - F.col(BASELINE)).cache()
    pipeline, rating_head = build_pipeline(params, blocks)
    grid = params.tuning
    if grid is None:
        fitted = pipeline.fit(data)
        trials: list[dict[str, float]] = []
    else:
        param_maps = (
            ParamGridBuilder()
            .addGrid(rating_head.rank, grid.ranks)
            .addGrid(rating_head.regParam, grid.reg_params)
            .build()
        )
        search = TrainValidationSplit(
            estimator=pipeline,
            estimatorParamMaps=param_maps,
            evaluator=RegressionEvaluator(metricName="rmse", labelCol=RESIDUAL, predictionCol=RESIDUAL_PREDICTION),
            trainRatio=grid.train_ratio,
            seed=params.seed,
        )
        tuned = search.fit(data)
        fitted = cast(PipelineModel, tuned.bestModel)
        trials = [
            {"rank": float(pm[rating_head.rank]), "reg_param": float(pm[rating_head.regParam]), "validation_rmse": m}
            for pm, m in zip(param_maps, tuned.validationMetrics, strict=True)
        ]
    data.unpersist()
    ranking_reg_param = params.reg_param
    if trials and not params.implicit_prefs:  # the tuned rating head is also the ranking head
        ranking_reg_param = min(trials, key=lambda trial: trial["validation_rmse"])["reg_param"]
    return TrainedModel(version, params, fitted, biases, ranking_reg_param), trials


def save_model(model: TrainedModel, store: ModelStore, spark: SparkSession, uri: str, ratings_uri: str) -> None:
    """The pipeline, the biases and ``model.json`` (parameters, and the ratings it was fitted on) under ``uri``."""
    model.pipeline.write().overwrite().save(f"{uri}/pipeline")
    model.biases.users.write.mode("overwrite").parquet(f"{uri}/user_bias")
    model.biases.items.write.mode("overwrite").parquet(f"{uri}/item_bias")
    store.write_json(
        spark,
        f"{uri}/{MODEL_JSON}",
        {
            "version": model.version,
            "params": model.params.model_dump(),
            "global_mean": model.biases.global_mean,
            "bias_damping": model.biases.damping,
            "ranking_reg_param": model.ranking_reg_param,
            "ratings_uri": ratings_uri,
        },
    )


def load_model(store: ModelStore, spark: SparkSession, uri: str) -> TrainedModel:
    meta = store.read_json(spark, f"{uri}/{MODEL_JSON}")
    biases = Biases(
        global_mean=float(meta["global_mean"]),
        damping=float(meta["bias_damping"]),
        users=spark.read.parquet(f"{uri}/user_bias"),
        items=spark.read.parquet(f"{uri}/item_bias"),
    )
    pipeline = PipelineModel.load(f"{uri}/pipeline")
    params = AlsParams.model_validate(meta["params"])
    return TrainedModel(str(meta["version"]), params, pipeline, biases, float(meta["ranking_reg_param"]))

"""The model graph as Dagster assets: sample -> ratings -> model -> evaluation -> published collections.

Assets hand each other data through files under the stage's state folder (see store.py)
and MongoDB, never through Dagster's I/O manager: a Spark DataFrame is a plan, not data.
(No ``from __future__ import annotations`` here: Dagster reads the Config annotations at runtime.)
"""

import time
from datetime import UTC, datetime
from typing import Any

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from dagster_pyspark import PySparkResource
from pydantic import Field
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_assets.model import evaluation as ev
from recsys_assets.model.features import TRAIN, SplitMethod, clean_ratings, split_ratings
from recsys_assets.model.plots import figure_metadata
from recsys_assets.model.publishing import (
    atomic_publish,
    batch_events,
    item_factor_documents,
    popular_documents,
    recommendation_documents,
)
from recsys_assets.model.sampling import (
    proof_figure,
    prove,
    resolve_fraction,
    stratified_sample,
    with_population_activity,
)
from recsys_assets.model.sources import read_products, read_reviews
from recsys_assets.model.store import ModelStore, read_json, resolve_root, write_json
from recsys_assets.model.training import (
    AlsParams,
    TrainedModel,
    TuningGrid,
    data_fingerprint,
    fit_model,
    load_model,
    model_version,
    save_model,
)
from recsys_assets.resources import KafkaResource, MongoResource
from recsys_core import mongo as mongo_contract

GROUP = "model"
PUBLISH_GROUP = "publish"
RAW_DEPS = ["raw_reviews", "raw_products"]


class StageConfig(Config):
    state_dir: str = Field(
        default="", description="Folder for the sample, ratings and models; empty = <RECSYS_STATE_DIR>/model."
    )

    @property
    def store(self) -> ModelStore:
        return ModelStore(resolve_root(self.state_dir))


class ReviewSampleConfig(StageConfig):
    fraction: float = Field(default=1.0, description="Share of each (category, rating) stratum to keep; 1.0 = all.")
    max_reviews: int | None = Field(default=None, description="Target sample size; overrides fraction when set.")
    seed: int = 42
    min_p_value: float = Field(default=0.01, description="The sample check fails below this p-value.")


class TrainingRatingsConfig(StageConfig):
    split: SplitMethod = SplitMethod.LEAVE_K_OUT
    test_fraction: float = Field(default=0.2, description="Held-out share for the random and time splits.")
    holdout_k: int = Field(default=1, description="Ratings held out per reviewer for leave_k_out.")
    seed: int = 42


class AlsModelConfig(StageConfig):
    rank: int = 10
    reg_param: float = 0.1
    max_iter: int = 10
    implicit_prefs: bool = Field(default=True, description="Rank with an implicit-feedback ALS head.")
    alpha: float = Field(default=10.0, description="Confidence scale of the implicit head.")
    seed: int = 42
    nonnegative: bool = False
    bias_damping: float = Field(default=5.0, description="Damping of the user and item bias means.")
    tune: bool = Field(default=False, description="Pick the rating head's rank and regParam on a validation split.")
    tune_ranks: list[int] = [5, 10, 20]
    tune_reg_params: list[float] = [0.05, 0.1, 0.3]
    tune_train_ratio: float = 0.8


class EvaluationConfig(StageConfig):
    relevant_min_rating: float = Field(default=4.0, description="A held-out rating this high is a hit.")
    min_heldout_ratings: int = Field(default=500, description="Below this the gate warns instead of judging.")
    min_ranking_users: int = Field(default=200, description="Below this the gate warns instead of judging.")


class RecommendationsConfig(StageConfig):
    k: int = Field(default=5, ge=1, description="Recommendations per reviewer.")


class PopularConfig(StageConfig):
    top_n: int = Field(default=10, ge=5, description="Products per category.")
    damping: float = Field(default=10.0, ge=0.0, description="Weight of the category mean in the damped average.")
    min_ratings: int = Field(default=5, ge=1, description="Fewer ratings than this never make the list.")


def _seconds_since(started: float) -> float:
    return round(time.perf_counter() - started, 2)


def _split_counts(ratings: DataFrame) -> dict[str, Any]:
    rows = ratings.groupBy("split").agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct("reviewerID").alias("reviewers"),
        F.countDistinct("asin").alias("items"),
    )
    return {
        f"{row['split']}_{name}": int(row[name]) for row in rows.collect() for name in ("rows", "reviewers", "items")
    }


@asset(deps=RAW_DEPS, group_name=GROUP, kinds={"spark", "parquet"})
def review_sample(
    context: AssetExecutionContext, config: ReviewSampleConfig, pyspark: PySparkResource
) -> MaterializeResult:  # type: ignore[type-arg]
    """A seeded sample stratified by (category, rating), persisted once and proved faithful to the population."""
    started = time.perf_counter()
    spark = pyspark.spark_session
    store = config.store
    population = with_population_activity(read_reviews(spark)).cache()
    population_rows = population.count()
    if population_rows == 0:
        raise ValueError(f"no reviews in {mongo_contract.REVIEWS}: materialise raw_reviews first")
    fraction = resolve_fraction(population_rows, config.fraction, config.max_reviews)
    stratified_sample(population, fraction, config.seed).write.mode("overwrite").parquet(str(store.sample_path))
    sample = spark.read.parquet(str(store.sample_path))
    proof = prove(population, sample)
    population.unpersist()
    context.log.info(
        f"sample of {proof.sample_rows} / {proof.population_rows} reviews, min p-value {proof.min_p_value:.3g}"
    )
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(store.sample_path)),
            "population_rows": proof.population_rows,
            "sample_rows": proof.sample_rows,
            "dagster/row_count": proof.sample_rows,
            "fraction": fraction,
            "seed": config.seed,
            "rating_chi2": proof.ratings_chi2.statistic,
            "rating_chi2_p_value": proof.ratings_chi2.p_value,
            "category_chi2_p_value": proof.categories_chi2.p_value,
            "user_activity_ks": proof.user_activity_ks.statistic,
            "user_activity_ks_p_value": proof.user_activity_ks.p_value,
            "item_popularity_ks": proof.item_popularity_ks.statistic,
            "item_popularity_ks_p_value": proof.item_popularity_ks.p_value,
            "min_p_value": proof.min_p_value,
            "p_value_threshold": config.min_p_value,
            "rating_counts": MetadataValue.json(
                {
                    "ratings": proof.ratings.values,
                    "population": proof.ratings.population,
                    "sample": proof.ratings.sample,
                }
            ),
            "category_counts": MetadataValue.json(
                {
                    "categories": proof.categories.values,
                    "population": proof.categories.population,
                    "sample": proof.categories.sample,
                }
            ),
            **figure_metadata(proof_figure(proof), store.root / "review_sample_proof.png", "sample vs population"),
            "seconds": _seconds_since(started),
        }
    )


@asset(deps=[review_sample], group_name=GROUP, kinds={"spark", "parquet"})
def training_ratings(
    context: AssetExecutionContext, config: TrainingRatingsConfig, pyspark: PySparkResource
) -> MaterializeResult:  # type: ignore[type-arg]
    """The sample as clean ratings: one per reviewer and item (the latest), each labelled train or test."""
    started = time.perf_counter()
    spark = pyspark.spark_session
    store = config.store
    cleaned, report = clean_ratings(spark.read.parquet(str(store.sample_path)))
    split = split_ratings(cleaned, config.split, config.seed, config.test_fraction, config.holdout_k)
    split.write.mode("overwrite").parquet(str(store.ratings_path))
    counts = _split_counts(spark.read.parquet(str(store.ratings_path)))
    context.log.info(f"cleaning: {report}; split: {counts}")
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(store.ratings_path)),
            "dagster/row_count": report.output_rows,
            "input_rows": report.input_rows,
            "dropped_missing_id": report.missing_id,
            "dropped_missing_rating": report.missing_rating,
            "dropped_out_of_range_rating": report.out_of_range_rating,
            "dropped_older_duplicate_pairs": report.duplicate_pairs,
            "split_method": config.split.value,
            **counts,
            "seconds": _seconds_since(started),
        }
    )


@asset(deps=[training_ratings], group_name=GROUP, kinds={"spark"})
def als_model(context: AssetExecutionContext, config: AlsModelConfig, pyspark: PySparkResource) -> MaterializeResult:  # type: ignore[type-arg]
    """Biases + StringIndexers + ALS, fitted on the train split and saved under a new version."""
    started = time.perf_counter()
    spark = pyspark.spark_session
    store = config.store
    ratings = spark.read.parquet(str(store.ratings_path))
    params = AlsParams(
        rank=config.rank,
        reg_param=config.reg_param,
        max_iter=config.max_iter,
        implicit_prefs=config.implicit_prefs,
        alpha=config.alpha,
        seed=config.seed,
        nonnegative=config.nonnegative,
        bias_damping=config.bias_damping,
    )
    grid = TuningGrid(config.tune_ranks, config.tune_reg_params, config.tune_train_ratio) if config.tune else None
    version = model_version(params, grid, data_fingerprint(ratings), datetime.now(UTC))
    model, trials = fit_model(ratings.where(F.col("split") == TRAIN), params, version, grid)
    directory = store.model_dir(version)
    save_model(model, directory)
    store.write_candidate(version)
    context.log.info(f"model {version} saved to {directory}")
    metadata: dict[str, Any] = {
        "model_version": version,
        "path": MetadataValue.path(str(directory)),
        "params": MetadataValue.json(config.model_dump(exclude={"state_dir"})),
        "reviewers": len(model.user_indexer.labels),
        "items": len(model.item_indexer.labels),
        "global_mean": model.biases.global_mean,
        "ranking_reg_param": model.ranking_reg_param,
        "seconds": _seconds_since(started),
    }
    if trials:
        metadata["tuning"] = MetadataValue.md(
            "| rank | regParam | validation RMSE |\n|---:|---:|---:|\n"
            + "\n".join(f"| {t['rank']:.0f} | {t['reg_param']:g} | {t['validation_rmse']:.4f} |" for t in trials)
        )
    return MaterializeResult(metadata=metadata)


@asset(deps=[als_model, training_ratings], group_name=GROUP, kinds={"spark"})
def model_evaluation(
    context: AssetExecutionContext, config: EvaluationConfig, pyspark: PySparkResource
) -> MaterializeResult:  # type: ignore[type-arg]
    """The candidate model and three baselines on the held-out ratings, and the publishing verdict."""
    started = time.perf_counter()
    spark = pyspark.spark_session
    store = config.store
    version = store.candidate_version()
    model = load_model(spark, store.model_dir(version))
    result = ev.evaluate(model, spark.read.parquet(str(store.ratings_path)), config.relevant_min_rating)
    verdict = ev.judge(
        result.metrics, result.rating_rows, result.ranking_users, config.min_heldout_ratings, config.min_ranking_users
    )
    write_json(
        store.evaluation_path(version),
        {
            "model_version": version,
            "metrics": result.metrics,
            "gate_status": verdict.status,
            "gate_reasons": verdict.reasons,
            "heldout_ratings": result.rating_rows,
            "ranking_users": result.ranking_users,
        },
    )
    context.log.info(f"{version}: gate {verdict.status} {verdict.reasons}\n{ev.metrics_markdown(result.metrics)}")
    figure = ev.evaluation_figure(result.metrics, f"model {version} vs baselines")
    flat = {
        f"{method}/{name}": value
        for method, values in result.metrics.items()
        for name, value in values.items()
        if value is not None
    }
    return MaterializeResult(
        metadata={
            "model_version": version,
            "gate_status": verdict.status,
            "gate_reasons": MetadataValue.json(verdict.reasons),
            "metrics": MetadataValue.md(ev.metrics_markdown(result.metrics)),
            **flat,
            "heldout_ratings": result.rating_rows,
            "heldout_ratings_unscorable": result.unscorable_rating_rows,
            "ranking_users": result.ranking_users,
            "catalogue_size": result.catalogue_size,
            "relevant_min_rating": config.relevant_min_rating,
            "path": MetadataValue.path(str(store.evaluation_path(version))),
            **figure_metadata(figure, store.model_dir(version) / "evaluation.png", "evaluation"),
            "seconds": _seconds_since(started),
        }
    )


def _publishable_model(store: ModelStore, spark: SparkSession) -> TrainedModel:
    """The candidate model, only if its evaluation let it through the gate (whatever ran before)."""
    version = store.candidate_version()
    evaluation_path = store.evaluation_path(version)
    if not evaluation_path.exists():
        raise RuntimeError(f"model {version} has not been evaluated; refusing to publish it")
    status = read_json(evaluation_path)["gate_status"]
    if status == "fail":
        raise RuntimeError(f"model {version} failed the gate; refusing to publish it")
    return load_model(spark, store.model_dir(version))


def _publish(
    mongo_resource: MongoResource, target: str, version: str, documents: DataFrame, started: float
) -> MaterializeResult:  # type: ignore[type-arg]
    with mongo_resource.db() as db:
        published = atomic_publish(db, target, version, documents)
    return MaterializeResult(
        metadata={
            "collection": f"{mongo_resource.database}.{target}",
            "documents": published,
            "dagster/row_count": published,
            "model_version": version,
            "seconds": _seconds_since(started),
        }
    )


PUBLISH_DEPS = [model_evaluation, als_model, training_ratings]


@asset(deps=PUBLISH_DEPS, group_name=PUBLISH_GROUP, kinds={"spark", "mongodb", "kafka"})
def top5_recommendations(
    context: AssetExecutionContext,
    config: RecommendationsConfig,
    pyspark: PySparkResource,
    mongo: MongoResource,
    kafka: KafkaResource,
) -> MaterializeResult:  # type: ignore[type-arg]
    """Each training reviewer's top k unrated products, with a reason, swapped into `recommendations`.

    Once swapped in, every list is also announced on the `recommendations` topic (source
    "batch"), so a reviewer watching the web app sees the new model's list arrive live.
    """
    started = time.perf_counter()
    spark = pyspark.spark_session
    model = _publishable_model(config.store, spark)
    ratings = spark.read.parquet(str(config.store.ratings_path))
    documents = recommendation_documents(model, ratings, read_products(spark), config.k, datetime.now(UTC)).cache()
    published = _publish(mongo, mongo_contract.RECOMMENDATIONS, model.version, documents, started)
    report = kafka.announce(batch_events(documents))
    documents.unpersist()
    if report.failed:
        context.log.warning(f"{report.failed} of the published lists were not confirmed by Kafka")
    return MaterializeResult(
        metadata={
            **(published.metadata or {}),
            "announced": report.delivered,
            "announce_failed": report.failed,
            "topic": kafka.topic_recommendations,
        }
    )


@asset(deps=PUBLISH_DEPS, group_name=PUBLISH_GROUP, kinds={"spark", "mongodb"})
def popular_products(config: PopularConfig, pyspark: PySparkResource, mongo: MongoResource) -> MaterializeResult:  # type: ignore[type-arg]
    """The best products by damped average rating, overall and per category: the cold-start fallback."""
    started = time.perf_counter()
    spark = pyspark.spark_session
    model = _publishable_model(config.store, spark)
    ratings = spark.read.parquet(str(config.store.ratings_path))
    documents = popular_documents(
        ratings,
        read_products(spark),
        config.top_n,
        config.damping,
        config.min_ratings,
        model.version,
        datetime.now(UTC),
    ).cache()
    result = _publish(mongo, mongo_contract.POPULAR, model.version, documents, started)
    documents.unpersist()
    return result


@asset(deps=PUBLISH_DEPS, group_name=PUBLISH_GROUP, kinds={"spark", "mongodb"})
def item_factors(config: StageConfig, pyspark: PySparkResource, mongo: MongoResource) -> MaterializeResult:  # type: ignore[type-arg]
    """Item vectors, biases and regParam, so the online updater can fold a reviewer in without Spark."""
    started = time.perf_counter()
    model = _publishable_model(config.store, pyspark.spark_session)
    documents = item_factor_documents(model, datetime.now(UTC)).cache()
    result = _publish(mongo, mongo_contract.ITEM_FACTORS, model.version, documents, started)
    documents.unpersist()
    return result

"""Stage 5: the evaluated model's outputs, swapped into the collections the web app and updater read.

Each publisher takes the evaluation's handle, so it publishes exactly the model that was
judged, and refuses it when the gate failed, when its training ratings changed since, or
when a newer model is already served.
"""

from datetime import UTC, datetime

from dagster import AssetExecutionContext, Config, MaterializeResult, asset
from dagster_pyspark import PySparkResource
from pydantic import Field
from pyspark.sql import DataFrame, SparkSession

from recsys_assets.catalog import OWNERS, PUBLISHED_FRESHNESS, Stage, stage_tags
from recsys_assets.model.assets.stage import PUBLISH_GROUP, Timer, read_ratings
from recsys_assets.model.handles import EvaluationHandle
from recsys_assets.model.publishing import (
    atomic_publish,
    batch_events,
    item_factor_documents,
    popular_documents,
    recommendation_documents,
    similar_documents,
)
from recsys_assets.model.sources import read_products
from recsys_assets.model.store import ModelStore
from recsys_assets.model.training import TrainedModel, load_model
from recsys_assets.resources import KafkaResource, MongoResource
from recsys_assets.spark_steps import spark_step
from recsys_core.contract import TOP_K, ItemFactor, MongoDocument, PopularItem, Recommendations, SimilarProducts


class PopularConfig(Config):
    top_n: int = Field(default=10, ge=TOP_K, description="Products per category.")
    damping: float = Field(default=10.0, ge=0.0, description="Weight of the category mean in the damped average.")
    min_ratings: int = Field(default=5, ge=1, description="Fewer ratings than this never make the list.")


def _refuse_unless_publishable(evaluation: EvaluationHandle) -> None:
    if not evaluation.publishable:
        raise RuntimeError(
            f"model {evaluation.model.version} failed the gate ({'; '.join(evaluation.gate_reasons)}); "
            "refusing to publish it"
        )


def _publishable(evaluation: EvaluationHandle, store: ModelStore, spark: SparkSession) -> TrainedModel:
    """The evaluated model, only if the gate let it through."""
    _refuse_unless_publishable(evaluation)
    return load_model(store, spark, evaluation.model.uri)


def _publish(
    mongo: MongoResource, document: type[MongoDocument], version: str, documents: DataFrame, timer: Timer
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster's generic result, with no value
    published = atomic_publish(mongo, document, version, documents)
    return MaterializeResult(
        metadata={
            "collection": f"{mongo.database}.{document.collection}",
            "dagster/row_count": published,
            "model_version": version,
            "duration_s": timer.seconds,
        }
    )


@asset(
    group_name=PUBLISH_GROUP,
    kinds={"spark", "mongodb", "kafka"},
    owners=OWNERS,
    tags=stage_tags(Stage.PUBLISH),
    code_version="1",
    freshness_policy=PUBLISHED_FRESHNESS,
)
@spark_step
def top5_recommendations(
    context: AssetExecutionContext,
    pyspark: PySparkResource,
    model_store: ModelStore,
    mongo: MongoResource,
    kafka: KafkaResource,
    model_evaluation: EvaluationHandle,
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster's generic result, with no value
    """Each training reviewer's top 5 unrated products, with a reason, swapped into `recommendations`.

    Once swapped in, every list is also announced on the `recommendations` topic (source
    "batch"), so a reviewer watching the web app sees the new model's list arrive live.
    """
    timer = Timer()
    spark = pyspark.spark_session
    model = _publishable(model_evaluation, model_store, spark)
    ratings = read_ratings(spark, model_evaluation.model.ratings)
    documents = recommendation_documents(model, ratings, read_products(spark, mongo), TOP_K, datetime.now(UTC)).cache()
    published = _publish(mongo, Recommendations, model.version, documents, timer)
    documents.unpersist()
    with mongo.db() as db:
        report = kafka.announce(batch_events(db, model.version))
    if report.failed:
        context.log.warning(f"{report.failed} of the published lists were not confirmed by Kafka")
    return MaterializeResult(
        metadata={
            **(published.metadata or {}),
            "announced": report.delivered,
            "announce_failed": report.failed,
            "topic": kafka.topic_recommendations,
            "duration_s": timer.seconds,
        }
    )


@asset(
    group_name=PUBLISH_GROUP,
    kinds={"spark", "mongodb"},
    owners=OWNERS,
    tags=stage_tags(Stage.PUBLISH),
    code_version="1",
    freshness_policy=PUBLISHED_FRESHNESS,
)
@spark_step
def popular_products(
    config: PopularConfig, pyspark: PySparkResource, mongo: MongoResource, model_evaluation: EvaluationHandle
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster's generic result, with no value
    """The best products by damped average rating, overall and per category: the cold-start fallback.

    It needs the ratings and the model's version, not the model, which is therefore not loaded.
    """
    timer = Timer()
    spark = pyspark.spark_session
    _refuse_unless_publishable(model_evaluation)
    version = model_evaluation.model.version
    documents = popular_documents(
        read_ratings(spark, model_evaluation.model.ratings),
        read_products(spark, mongo),
        config.top_n,
        config.damping,
        config.min_ratings,
        version,
        datetime.now(UTC),
    ).cache()
    result = _publish(mongo, PopularItem, version, documents, timer)
    documents.unpersist()
    return result


@asset(
    group_name=PUBLISH_GROUP,
    kinds={"spark", "mongodb"},
    owners=OWNERS,
    tags=stage_tags(Stage.PUBLISH),
    code_version="1",
    freshness_policy=PUBLISHED_FRESHNESS,
)
@spark_step
def item_factors(
    pyspark: PySparkResource, model_store: ModelStore, mongo: MongoResource, model_evaluation: EvaluationHandle
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster's generic result, with no value
    """Item vectors, biases and regParam, so the online updater can fold a reviewer in without Spark."""
    timer = Timer()
    spark = pyspark.spark_session
    model = _publishable(model_evaluation, model_store, spark)
    documents = item_factor_documents(model, datetime.now(UTC)).cache()
    result = _publish(mongo, ItemFactor, model.version, documents, timer)
    documents.unpersist()
    return result


@asset(
    group_name=PUBLISH_GROUP,
    kinds={"spark", "mongodb"},
    owners=OWNERS,
    tags=stage_tags(Stage.PUBLISH),
    code_version="1",
    freshness_policy=PUBLISHED_FRESHNESS,
)
@spark_step
def similar_products(
    pyspark: PySparkResource, model_store: ModelStore, mongo: MongoResource, model_evaluation: EvaluationHandle
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster's generic result, with no value
    """Each product's 5 nearest products in the model's factor space, for the product page's "similar products"."""
    timer = Timer()
    spark = pyspark.spark_session
    model = _publishable(model_evaluation, model_store, spark)
    documents = similar_documents(model, read_products(spark, mongo), TOP_K, datetime.now(UTC)).cache()
    result = _publish(mongo, SimilarProducts, model.version, documents, timer)
    documents.unpersist()
    return result

"""Stage 5: the evaluated model's outputs, swapped into the collections the web app and updater read.

Each publisher takes the evaluation's handle, so it publishes exactly the run that was
judged, and refuses it when a newer model is already served. The gate decides what serves,
never whether something is served: the reviewers' lists come from the model when it passed
and from the best baseline when it failed; the popular lists do not depend on the model and
have checks of their own; the model's item factors and similar products are only published
for a model that passed, so a failed one leaves the last good model's in place.
"""

from datetime import UTC, datetime
from typing import Any

from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from dagster_pyspark import PySparkResource
from pydantic import Field
from pyspark.sql import DataFrame

from recsys_assets.catalog import OWNERS, PUBLISHED_FRESHNESS, Stage, stage_tags
from recsys_assets.model.assets.stage import PUBLISH_GROUP, Timer, read_ratings
from recsys_assets.model.handles import EvaluationHandle
from recsys_assets.model.publishing import (
    announce,
    atomic_publish,
    item_factor_documents,
    popular_documents,
    recommendation_documents,
    served_version,
    similar_documents,
)
from recsys_assets.model.sources import read_products
from recsys_assets.model.store import ModelStore
from recsys_assets.model.training import load_model
from recsys_assets.resources import KafkaResource, MongoResource
from recsys_assets.spark_steps import spark_step
from recsys_core.contract import (
    TOP_K,
    ItemFactor,
    MongoDocument,
    PopularItem,
    Recommendations,
    SimilarProducts,
    stored_time,
)


class PopularConfig(Config):
    top_n: int = Field(default=10, ge=TOP_K, description="Products per category.")
    damping: float = Field(default=10.0, ge=0.0, description="Weight of the category mean in the damped average.")
    min_ratings: int = Field(default=5, ge=1, description="Fewer ratings than this never make the list.")


def _held_back(
    context: AssetExecutionContext, mongo: MongoResource, document: type[MongoDocument], evaluation: EvaluationHandle
) -> MaterializeResult | None:  # type: ignore[type-arg]  # Dagster's generic result, with no value
    """For a model the gate failed: the record that ``document`` keeps serving what it serves; else None.

    Not an error: the run goes on and the reviewers' lists come from the best baseline.
    """
    if evaluation.publishable:
        return None
    with mongo.db() as db:
        served = served_version(db, document.collection)
    context.log.warning(f"{document.collection} keeps {served or 'nothing'}: {evaluation.decision}")
    return MaterializeResult(
        metadata={
            "collection": f"{mongo.database}.{document.collection}",
            "published": False,
            "model_version": evaluation.model.version,
            "served_version": served or "nothing",
            "gate_decision": evaluation.decision,
        }
    )


def _publish(
    mongo: MongoResource,
    document: type[MongoDocument],
    version: str,
    documents: DataFrame,
    timer: Timer,
    announce_on: KafkaResource | None = None,
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster's generic result, with no value
    """Swap ``documents`` in, then announce them on ``announce_on``'s topic if given; they are cached
    meanwhile, as the publish counts them, writes them and the announcement reads them again."""
    announced: dict[str, Any] = {}
    documents.cache()
    try:
        published = atomic_publish(mongo, document, version, documents)
        if announce_on is not None:
            report = announce(documents, announce_on)
            topic = announce_on.topic_recommendations
            announced = {"announced": report.delivered, "announce_failed": report.failed, "topic": topic}
    finally:
        documents.unpersist()
    return MaterializeResult(
        metadata={
            "collection": f"{mongo.database}.{document.collection}",
            "dagster/row_count": published,
            "model_version": version,
            **announced,
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
def user_recommendations(
    context: AssetExecutionContext,
    pyspark: PySparkResource,
    model_store: ModelStore,
    mongo: MongoResource,
    kafka: KafkaResource,
    model_evaluation: EvaluationHandle,
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster's generic result, with no value
    """Each training reviewer's top 5 unrated products, swapped into `recommendations`.

    They come from the model (source "batch", each item with a reason) when it passed the
    gate, else from the best baseline the evaluation measured (source: its name), so a run
    on any data serves something sensible. Once swapped in, every list is also announced on
    the `recommendations` topic, so a reviewer watching the web app sees it arrive live.
    """
    timer = Timer()
    spark = pyspark.spark_session
    model = load_model(model_store, spark, model_evaluation.model.uri)
    ratings = read_ratings(spark, model_evaluation.model.ratings)
    documents = recommendation_documents(
        model,
        ratings,
        read_products(spark, mongo),
        TOP_K,
        stored_time(datetime.now(UTC)),  # as MongoDB keeps it, so the announced time is the stored one
        model_evaluation.serves,
        model_evaluation.decision,
    )
    published = _publish(mongo, Recommendations, model.version, documents, timer, announce_on=kafka)
    metadata = dict(published.metadata or {})
    if metadata["announce_failed"]:
        context.log.warning(f"{metadata['announce_failed']} of the published lists were not confirmed by Kafka")
    return MaterializeResult(
        metadata={
            **metadata,
            "lists_from": model_evaluation.serves,
            "gate_decision": model_evaluation.decision,
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

    It needs the ratings and the run's version, not the model, which is therefore not loaded,
    nor judged: the gate never holds it back; its own checks (``checks.py``) do.
    """
    timer = Timer()
    spark = pyspark.spark_session
    version = model_evaluation.model.version
    ratings = read_ratings(spark, model_evaluation.model.ratings)
    rated = sorted(row["category"] for row in ratings.select("category").distinct().collect())
    documents = popular_documents(
        ratings,
        read_products(spark, mongo),
        config.top_n,
        config.damping,
        config.min_ratings,
        version,
        datetime.now(UTC),
    )
    result = _publish(mongo, PopularItem, version, documents, timer)
    # What the checks hold the served lists to: one per category these ratings have.
    return MaterializeResult(metadata={**(result.metadata or {}), "rated_categories": MetadataValue.json(rated)})


@asset(
    group_name=PUBLISH_GROUP,
    kinds={"spark", "mongodb"},
    owners=OWNERS,
    tags=stage_tags(Stage.PUBLISH),
    code_version="2",  # 2: bias_rounds, which the explicit fold-in alternates as often
    freshness_policy=PUBLISHED_FRESHNESS,
)
@spark_step
def item_factors(
    context: AssetExecutionContext,
    pyspark: PySparkResource,
    model_store: ModelStore,
    mongo: MongoResource,
    model_evaluation: EvaluationHandle,
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster's generic result, with no value
    """Item vectors, biases and regParam, so the online updater can fold a reviewer in without Spark.

    Only a model that passed the gate is published; the online updater keeps folding in with the last one that did.
    """
    if (kept := _held_back(context, mongo, ItemFactor, model_evaluation)) is not None:
        return kept
    timer = Timer()
    spark = pyspark.spark_session
    model = load_model(model_store, spark, model_evaluation.model.uri)
    return _publish(mongo, ItemFactor, model.version, item_factor_documents(model, datetime.now(UTC)), timer)


@asset(
    group_name=PUBLISH_GROUP,
    kinds={"spark", "mongodb"},
    owners=OWNERS,
    tags=stage_tags(Stage.PUBLISH),
    code_version="2",  # 2: items without a direction (zero vector) have no list and are in none
    freshness_policy=PUBLISHED_FRESHNESS,
)
@spark_step
def similar_products(
    context: AssetExecutionContext,
    pyspark: PySparkResource,
    model_store: ModelStore,
    mongo: MongoResource,
    model_evaluation: EvaluationHandle,
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster's generic result, with no value
    """Each product's 5 nearest products in the model's factor space, for the product page's "similar products".

    Only a model that passed the gate is published: a failed model's neighbours are no better than its lists.
    """
    if (kept := _held_back(context, mongo, SimilarProducts, model_evaluation)) is not None:
        return kept
    timer = Timer()
    spark = pyspark.spark_session
    model = load_model(model_store, spark, model_evaluation.model.uri)
    documents = similar_documents(model, read_products(spark, mongo), TOP_K, datetime.now(UTC))
    return _publish(mongo, SimilarProducts, model.version, documents, timer)

"""What the web app and the online updater read: recommendations, popular products, item factors.

Documents are built with Spark and shaped by the contract (``recsys_assets.documents``).
Every collection is published atomically: documents go to a staging collection, which is
counted, checked against the contract and then renamed over the served one (``dropTarget``),
so a reader sees either the old table or the new one, never a half-written mix. Each
document carries the model version, and a version older than the one served is refused, so
a run that finishes late never replaces a newer model. A publisher that dies mid-write (a
killed driver runs no ``except``) leaves its staging copy; the next publish drops it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import datetime

from pymongo.database import Database
from pyspark.sql import DataFrame, Row, Window
from pyspark.sql import functions as F

from recsys_assets.documents import conform, contract_struct, event_json
from recsys_assets.model.evaluation import MODEL, baseline_scores
from recsys_assets.model.features import TRAIN
from recsys_assets.model.ranking import ItemFactorTable, cosine, dot, global_top_k, model_top_k
from recsys_assets.model.training import TrainedModel
from recsys_assets.resources import KafkaResource, MongoResource
from recsys_core import mongo
from recsys_core.connections import DeliveryReport, deliver
from recsys_core.contract import (
    ALL_CATEGORIES,
    BECAUSE_PREFIX,
    LIKED_RATING,
    ItemFactor,
    MongoDocument,
    PopularItem,
    RecommendationEvent,
    Recommendations,
    RecommendedItem,
    SimilarProducts,
)

log = logging.getLogger(__name__)

PUBLISHED: tuple[type[MongoDocument], ...] = (Recommendations, PopularItem, ItemFactor, SimilarProducts)
CONTRACT_CHECKED = 1000
"""Staging documents read back through the contract before a swap; the schema makes the rest alike."""


class StalePublish(RuntimeError):
    """The model being published is older than the one already served."""


def staging_name(target: str, version: str) -> str:
    return f"{target}__staging_{version}"


def drop_leftover_staging(db: Database[mongo.Document], target: str, version: str) -> list[str]:
    """Drop the staging copies of ``target`` of versions up to ``version``; returns their names.

    Such a copy is this publish's own from an earlier attempt, or one that a killed publisher
    left (models are published one run at a time, and a newer run would refuse this one). A
    newer version's copy may belong to a run still writing, so it stays.
    """
    prefix = staging_name(target, "")
    names = db.list_collection_names(filter={"name": {"$regex": f"^{re.escape(prefix)}"}})
    dropped = sorted(name for name in names if name[len(prefix) :] <= version)
    for name in dropped:
        db.drop_collection(name)
    return dropped


def served_version(db: Database[mongo.Document], target: str) -> str | None:
    """The model version a served collection holds (every document of a publish carries the same one)."""
    doc = db[target].find_one({}, {"model_version": 1})
    return None if doc is None else str(doc["model_version"])


def served_versions(db: Database[mongo.Document]) -> set[str]:
    return {v for document in PUBLISHED if (v := served_version(db, document.collection)) is not None}


def atomic_publish(database: MongoResource, document: type[MongoDocument], version: str, documents: DataFrame) -> int:
    """Write ``documents`` to a staging collection and swap it in; on any failure drop the staging copy.

    Returns the number of documents published. The served collection is untouched unless the
    staging copy is complete, matches the contract, and is not older than what is served.
    """
    with database.db() as db:
        return _write_and_swap(database, db, document, version, documents)


def _write_and_swap(
    database: MongoResource,
    db: Database[mongo.Document],
    document: type[MongoDocument],
    version: str,
    documents: DataFrame,
) -> int:
    target = document.collection
    refuse_if_older(db, target, version)
    staging = staging_name(target, version)
    if left := [name for name in drop_leftover_staging(db, target, version) if name != staging]:
        log.warning("dropped staging copies left by publishes that died before their swap: %s", left)
    try:
        expected = documents.count()
        (
            documents.write.format("mongodb")
            .mode("append")
            .options(**database.spark_options())
            .option("collection", staging)
            .option("operationType", "replace")
            .save()
        )
        written = db[staging].count_documents({})
        if written != expected:
            raise RuntimeError(f"staging collection {staging} holds {written} documents, expected {expected}")
        for stored in db[staging].find().limit(CONTRACT_CHECKED):
            document.from_document(stored)
        if mongo.INDEXES.get(target):
            db[staging].create_indexes(mongo.INDEXES[target])
        refuse_if_older(db, target, version)  # a publisher may have finished while this one was writing
        db[staging].rename(target, dropTarget=True)
    except BaseException:
        db.drop_collection(staging)
        raise
    return written


def refuse_if_older(db: Database[mongo.Document], target: str, version: str) -> None:
    served = served_version(db, target)
    if served is not None and served > version:
        raise StalePublish(
            f"refusing to publish model {version} to {target}: it already serves {served}, which is newer. "
            "Train a new model to replace it."
        )


def announcements(lists: DataFrame) -> DataFrame:
    """``key`` (the reviewerID) and ``value`` (the ``RecommendationEvent``'s JSON) of each published list."""
    return lists.select(
        F.col("reviewerID").alias("key"), event_json(RecommendationEvent, {"ts": "updated_at"}).alias("value")
    )


def announce(lists: DataFrame, kafka: KafkaResource) -> DeliveryReport:
    """Each of the published ``lists`` as a ``RecommendationEvent`` on the recommendations topic.

    The executors encode (``event_json``: the event's ``ts`` is the list's ``updated_at``) and
    produce them, a producer per partition, so no list passes through the driver or a Python
    object; consumers validate each event as they decode it. Call it after the swap, so a
    reviewer who reads their list on the event gets the new one.
    """
    bootstrap, topic, timeout_s = kafka.bootstrap_servers, kafka.topic_recommendations, kafka.delivery_timeout_s

    def produce(rows: Iterable[Row]) -> list[DeliveryReport]:
        return [deliver(((row["key"].encode(), row["value"].encode()) for row in rows), bootstrap, topic, timeout_s)]

    reports = announcements(lists).rdd.mapPartitions(produce).collect()
    return DeliveryReport(sum(r.delivered for r in reports), sum(r.failed for r in reports))


def recommendation_documents(
    model: TrainedModel, ratings: DataFrame, products: DataFrame, k: int, updated_at: datetime, serves: str, gate: str
) -> DataFrame:
    """One document per training reviewer: the top ``k`` unrated items of what ``serves``.

    ``serves`` is the model (source "batch"), whose items each carry a reason, or a baseline
    named as the evaluation names it (the source), whose one global order has no reason; such
    a list also carries ``gate``, the gate's decision that put the baseline there.
    """
    rated = ratings.select("reviewerID", "asin")
    train = ratings.where(F.col("split") == TRAIN)
    reviewers = train.select("reviewerID").distinct()
    if serves == MODEL:
        items = _explained(model, model.ranker.recommend(reviewers, rated, k), train)
        source, decision = F.lit("batch"), F.lit(None).cast("string")
    else:
        top = global_top_k(reviewers, rated, baseline_scores(model, train)[serves], k)
        items = top.withColumn("because_asin", F.lit(None).cast("string"))
        source, decision = F.lit(serves), F.lit(gate)
    titles = products.select(F.col("asin").alias("because_asin"), F.col("title").alias("because_title"))
    shown = (
        items.join(products, "asin", "left")
        .join(titles, "because_asin", "left")
        .withColumn(  # null, like because_asin, when nothing the reviewer liked explains it
            "because", F.concat(F.lit(BECAUSE_PREFIX), F.coalesce("because_title", "because_asin"))
        )
    )
    return conform(
        _lists(shown, "reviewerID").select(
            "reviewerID",
            "items",
            F.lit(model.version).alias("model_version"),
            source.alias("source"),
            F.lit(updated_at).alias("updated_at"),
            decision.alias("gate_decision"),
        ),
        Recommendations,
    )


def _explained(model: TrainedModel, top: DataFrame, train: DataFrame) -> DataFrame:
    """``top`` with ``because_asin``: the training item the reviewer liked that contributes most to each item.

    Liked means rated at least ``LIKED_RATING``; the contribution is its rating times its cosine
    similarity to the recommended item in the ranking head's factor space, as the online
    updater explains its lists (``recsys_core.scoring.reasons``). Null when nothing liked explains it.
    """
    liked = train.where(F.col("overall") >= LIKED_RATING).select(
        "reviewerID", F.col("asin").alias("because_asin"), F.col("overall").alias("weight")
    )
    factors = model.ranker.item_factors().select("asin", "vector")
    strongest = Window.partitionBy("reviewerID", "asin").orderBy(F.col("contribution").desc(), "because_asin")
    because = (
        top.select("reviewerID", "asin")
        .join(liked, "reviewerID")
        .join(factors.withColumnRenamed("vector", "item_vector"), "asin")
        .join(
            factors.withColumnRenamed("asin", "because_asin").withColumnRenamed("vector", "rated_vector"),
            "because_asin",
        )
        .withColumn("contribution", F.col("weight") * cosine("item_vector", "rated_vector"))
        .withColumn("_strongest", F.row_number().over(strongest))
        .where("_strongest = 1")
        .select("reviewerID", "asin", "because_asin")
    )
    return top.join(because, ["reviewerID", "asin"], "left")


def _lists(items: DataFrame, key: str) -> DataFrame:
    """``key, items``: the ``RecommendedItem`` rows of each key as one list, in ``rank`` order."""
    ranked = F.struct(F.col("rank"), contract_struct(RecommendedItem).alias("item"))
    lists = items.groupBy(key).agg(F.sort_array(F.collect_list(ranked)).alias("_ranked"))
    return lists.select(key, F.transform("_ranked", lambda entry: entry["item"]).alias("items"))


def similar_documents(model: TrainedModel, products: DataFrame, k: int, updated_at: datetime) -> DataFrame:
    """Each known item's ``k`` nearest items by cosine similarity of the ranking head's factors.

    The blocked top-k of the reviewers' lists, with unit item vectors on both sides and each
    item left out of its own list: items x items x rank flops, never items x items rows. An item
    with a zero vector (nobody liked it: the implicit head learnt nothing of it) has no direction,
    so it neither has a list nor appears in one.
    """
    norm = F.sqrt(dot("vector", "vector"))
    unit = (
        model.ranker.item_factors()
        .where(norm > 0)
        .select("asin", F.transform("vector", lambda x: x / norm).alias("vector"), F.lit(0.0).alias("score_offset"))
    )
    nearest = model_top_k(
        unit.select(F.col("asin").alias("reviewerID"), "vector"),
        unit.select(F.col("asin").alias("reviewerID"), "asin"),
        ItemFactorTable.collect(unit),
        k,
    ).withColumnRenamed("reviewerID", "of_asin")
    items = nearest.join(products, "asin", "left").select(
        "of_asin", "rank", "asin", "score", "title", "image", "price",
        F.lit(None).cast("string").alias("because"), F.lit(None).cast("string").alias("because_asin"),
    )  # fmt: skip
    return conform(
        _lists(items, "of_asin").select(
            F.col("of_asin").alias("asin"),
            "items",
            F.lit(model.version).alias("model_version"),
            F.lit(updated_at).alias("updated_at"),
        ),
        SimilarProducts,
    )


def damped_scores(ratings: DataFrame, group: str, damping: float, min_ratings: int) -> DataFrame:
    """Bayesian average per (group, asin): ``(damping * group_mean + sum) / (damping + n)``, n >= min_ratings."""
    group_means = ratings.groupBy(group).agg(F.avg("overall").alias("prior"))
    return (
        ratings.groupBy(group, "asin")
        .agg(F.count(F.lit(1)).alias("n_ratings"), F.sum("overall").alias("total"))
        .join(group_means, group)
        .where(F.col("n_ratings") >= min_ratings)
        .withColumn("score", (F.lit(damping) * F.col("prior") + F.col("total")) / (F.lit(damping) + F.col("n_ratings")))
        .select(F.col(group).alias("category"), "asin", "score", "n_ratings")
    )


def popular_documents(
    ratings: DataFrame,
    products: DataFrame,
    top_n: int,
    damping: float,
    min_ratings: int,
    model_version: str,
    updated_at: datetime,
) -> DataFrame:
    """The ``top_n`` items per category and over all categories (``ALL_CATEGORIES``) by damped average."""
    everything = ratings.withColumn("_all", F.lit(ALL_CATEGORIES))
    scored = damped_scores(ratings, "category", damping, min_ratings).unionByName(
        damped_scores(everything, "_all", damping, min_ratings)
    )
    best_first = Window.partitionBy("category").orderBy(F.col("score").desc(), F.col("n_ratings").desc(), "asin")
    return conform(
        scored.withColumn("rank", F.row_number().over(best_first))
        .where(F.col("rank") <= top_n)
        .join(products, "asin", "left")
        .withColumn("model_version", F.lit(model_version))
        .withColumn("updated_at", F.lit(updated_at)),
        PopularItem,
    )


def item_factor_documents(model: TrainedModel, updated_at: datetime) -> DataFrame:
    """Everything a fold-in needs per item (see recsys_core.scoring), keyed by asin."""
    return conform(
        model.ranker.item_factors().select(
            "asin",
            "vector",
            "item_bias",
            "score_offset",
            F.lit(model.version).alias("model_version"),
            F.lit(model.ranking_params.reg_param).alias("reg_param"),
            F.lit(model.rank).alias("rank"),
            F.lit(model.params.implicit_prefs).alias("implicit_prefs"),
            F.lit(model.ranking_params.alpha).alias("alpha"),
            F.lit(model.biases.global_mean).alias("global_mean"),
            F.lit(model.biases.damping.user).alias("user_bias_damping"),
            F.lit(model.params.bias_rounds).alias("bias_rounds"),
            F.lit(updated_at).alias("updated_at"),
        ),
        ItemFactor,
    )

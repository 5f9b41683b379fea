"""What the web app and the online updater read: recommendations, popular products, item factors.

Every collection is published atomically: documents go to a staging collection, which is
checked and then renamed over the served one (``dropTarget``), so a reader sees either the
old table or the new one, never a half-written mix. Each document carries the model version.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from pymongo.database import Database
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys_assets.model.features import TRAIN
from recsys_assets.model.ranking import cosine, top_k
from recsys_assets.model.training import TrainedModel
from recsys_core import mongo
from recsys_core.messages import RecommendationEvent, RecommendedItem

ALL_CATEGORIES = "__all__"


def staging_name(target: str, version: str) -> str:
    return f"{target}__staging_{version}"


def atomic_publish(db: Database[mongo.Document], target: str, version: str, documents: DataFrame) -> int:
    """Write ``documents`` to a staging collection and swap it in; on any failure drop the staging copy.

    Returns the number of documents published. The served collection is untouched unless the
    staging copy is complete.
    """
    staging = staging_name(target, version)
    db.drop_collection(staging)
    try:
        expected = documents.count()
        (
            documents.write.format("mongodb")
            .mode("append")
            .option("collection", staging)
            .option("operationType", "replace")
            .save()
        )
        written = db[staging].count_documents({})
        if written != expected:
            raise RuntimeError(f"staging collection {staging} holds {written} documents, expected {expected}")
        if mongo.INDEXES.get(target):
            db[staging].create_indexes(mongo.INDEXES[target])
        db[staging].rename(target, dropTarget=True)
    except BaseException:
        db.drop_collection(staging)
        raise
    return written


def batch_events(documents: DataFrame) -> Iterator[tuple[bytes, bytes]]:
    """The ``recommendations`` topic's (key, value) for each published recommendation document."""
    for row in documents.toLocalIterator():
        event = RecommendationEvent(
            reviewerID=row["reviewerID"],
            items=tuple(
                RecommendedItem(
                    asin=item["asin"],
                    score=float(item["score"]),
                    title=item["title"],
                    image=item["image"],
                    price=item["price"],
                    because=item["because"],
                )
                for item in row["items"]
            ),
            model_version=row["model_version"],
            source="batch",
            # PySpark hands timestamps back as naive local time; the message carries UTC.
            ts=datetime.fromtimestamp(row["updated_at"].timestamp(), UTC),
        )
        yield event.key(), event.encode()


def recommendation_documents(
    model: TrainedModel, ratings: DataFrame, products: DataFrame, k: int, updated_at: datetime
) -> DataFrame:
    """One document per training reviewer: the top ``k`` unrated items, each with a reason.

    The reason is the reviewer's rated item whose ranking-head factors are closest (cosine)
    to the recommended item's.
    """
    rated = ratings.select("reviewerID", "asin")
    reviewers = ratings.where(F.col("split") == TRAIN).select("reviewerID").distinct()
    top = top_k(model.ranking_scores(reviewers), rated, k)
    factors = model.item_factors().select("asin", "vector")
    closest_first = Window.partitionBy("reviewerID", "asin").orderBy(F.col("similarity").desc(), "because_asin")
    because = (
        top.select("reviewerID", "asin")
        .join(rated.withColumnRenamed("asin", "because_asin"), "reviewerID")
        .join(factors.withColumnRenamed("vector", "item_vector"), "asin")
        .join(
            factors.withColumnRenamed("asin", "because_asin").withColumnRenamed("vector", "rated_vector"),
            "because_asin",
        )
        .withColumn("similarity", cosine("item_vector", "rated_vector"))
        .withColumn("_closest", F.row_number().over(closest_first))
        .where("_closest = 1")
        .select("reviewerID", "asin", "because_asin")
    )
    titles = products.select(F.col("asin").alias("because_asin"), F.col("title").alias("because_title"))
    items = (
        top.join(because, ["reviewerID", "asin"], "left")
        .join(products, "asin", "left")
        .join(titles, "because_asin", "left")
        .withColumn("because", F.concat(F.lit("because you rated "), F.coalesce("because_title", "because_asin")))
    )
    item = F.struct("rank", "asin", "score", "title", "image", "price", "because", "because_asin")
    return (
        items.groupBy("reviewerID")
        .agg(F.sort_array(F.collect_list(item)).alias("_ranked"))
        .select(
            F.col("reviewerID").alias("_id"),
            "reviewerID",
            F.transform("_ranked", lambda x: x.dropFields("rank")).alias("items"),
            F.lit(model.version).alias("model_version"),
            F.lit(updated_at).alias("updated_at"),
        )
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
    """The ``top_n`` items per category and over all categories (``__all__``) by damped average."""
    everything = ratings.withColumn("_all", F.lit(ALL_CATEGORIES))
    scored = damped_scores(ratings, "category", damping, min_ratings).unionByName(
        damped_scores(everything, "_all", damping, min_ratings)
    )
    best_first = Window.partitionBy("category").orderBy(F.col("score").desc(), F.col("n_ratings").desc(), "asin")
    return (
        scored.withColumn("rank", F.row_number().over(best_first))
        .where(F.col("rank") <= top_n)
        .join(products, "asin", "left")
        .select(
            F.concat_ws(":", "category", "asin").alias("_id"),
            "rank",
            "category",
            "asin",
            "title",
            "image",
            "price",
            "score",
            "n_ratings",
            F.lit(model_version).alias("model_version"),
            F.lit(updated_at).alias("updated_at"),
        )
    )


def item_factor_documents(model: TrainedModel, updated_at: datetime) -> DataFrame:
    """Everything a fold-in needs per item (see recsys_core.scoring), keyed by asin."""
    return model.item_factors().select(
        F.col("asin").alias("_id"),
        "asin",
        F.col("vector").cast("array<double>").alias("vector"),
        "item_bias",
        F.lit(model.version).alias("model_version"),
        F.lit(model.ranking_reg_param).alias("reg_param"),
        F.lit(model.rank).alias("rank"),
        F.lit(model.params.implicit_prefs).alias("implicit_prefs"),
        F.lit(model.params.alpha).alias("alpha"),
        F.lit(model.biases.global_mean).alias("global_mean"),
        F.lit(model.biases.damping).alias("bias_damping"),
        F.lit(updated_at).alias("updated_at"),
    )

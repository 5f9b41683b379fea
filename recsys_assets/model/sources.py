"""Reading the ingested collections through Spark, with explicit schemas.

An explicit schema reads only the fields the model uses, never depends on schema inference
over a sample of documents, and gives a typed empty frame when a collection is empty.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType, TimestampType

from recsys_assets.documents import http_url_or_null
from recsys_assets.resources import MongoResource
from recsys_core import mongo

REVIEW_SCHEMA = StructType(
    [
        StructField("_id", StringType()),
        StructField("category", StringType()),
        StructField("reviewerID", StringType()),
        StructField("asin", StringType()),
        StructField("overall", DoubleType()),
        StructField("unixReviewTime", LongType()),
    ]
)

PRODUCT_SCHEMA = StructType(
    [
        StructField("asin", StringType()),
        StructField("title", StringType()),
        StructField("image", StringType()),
        StructField("price", DoubleType()),
    ]
)


INTERACTION_SCHEMA = StructType(
    [
        StructField("_id", StringType()),
        StructField("reviewerID", StringType()),
        StructField("asin", StringType()),
        StructField("kind", StringType()),
        StructField("rating", DoubleType()),
        StructField("ts", TimestampType()),
    ]
)

SITE_CATEGORY = "site"
"""The category of a site rating of an item that no review names (one known only from its metadata)."""


def read_collection(spark: SparkSession, database: MongoResource, collection: str, schema: StructType) -> DataFrame:
    """The collection as a frame of ``schema``; an empty one is read without the connector.

    The connector's default partitioner samples the collection to size its partitions and
    fails on one that exists but is empty (``$bucketAuto`` with 0 buckets), as ``interactions``
    is until the first shopper acts.
    """
    with database.db() as db:
        if db[collection].find_one({}, {"_id": 1}) is None:
            return spark.createDataFrame([], schema)
    return (
        spark.read.format("mongodb")
        .options(**database.spark_options())
        .option("collection", collection)
        .schema(schema)
        .load()
    )


def read_reviews(spark: SparkSession, database: MongoResource) -> DataFrame:
    return read_collection(spark, database, mongo.REVIEWS, REVIEW_SCHEMA)


def read_products(spark: SparkSession, database: MongoResource) -> DataFrame:
    """One row per asin, with the image only if it is an http(s) URL, as the contract requires."""
    products = read_collection(spark, database, mongo.PRODUCTS, PRODUCT_SCHEMA).dropDuplicates(["asin"])
    return products.withColumn("image", http_url_or_null("image"))


def read_site_ratings(spark: SparkSession, database: MongoResource) -> DataFrame:
    """The ratings shoppers gave on the site (stored ``interactions`` of kind rate), shaped like reviews.

    Each takes the category its item's reviews were loaded under; the event id is its ``_id``,
    so the latest-rating rule treats a site rating and a review of the same pair alike.
    """
    categories = read_reviews(spark, database).select("asin", "category").dropDuplicates(["asin"])
    return (
        read_collection(spark, database, mongo.INTERACTIONS, INTERACTION_SCHEMA)
        .where(F.col("kind") == "rate")
        .join(categories, "asin", "left")
        .select(
            "_id",
            F.coalesce(F.col("category"), F.lit(SITE_CATEGORY)).alias("category"),
            "reviewerID",
            "asin",
            F.col("rating").alias("overall"),
            F.unix_timestamp("ts").alias("unixReviewTime"),
        )
    )

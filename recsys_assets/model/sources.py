"""Reading the ingested collections through Spark, with explicit schemas.

An explicit schema reads only the fields the model uses, never depends on schema inference
over a sample of documents, and gives a typed empty frame when a collection is empty.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

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


def read_collection(spark: SparkSession, collection: str, schema: StructType) -> DataFrame:
    """``collection`` of the configured database (``spark.mongodb.read.database``)."""
    return spark.read.format("mongodb").schema(schema).option("collection", collection).load()


def read_reviews(spark: SparkSession) -> DataFrame:
    return read_collection(spark, mongo.REVIEWS, REVIEW_SCHEMA)


def read_products(spark: SparkSession) -> DataFrame:
    return read_collection(spark, mongo.PRODUCTS, PRODUCT_SCHEMA).dropDuplicates(["asin"])

"""Stage 2: the sample and the site's ratings as clean ratings, one per reviewer and item, labelled train or test."""

from typing import Any

from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset
from dagster_pyspark import PySparkResource
from pydantic import Field
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_assets.catalog import OWNERS, Stage, stage_tags
from recsys_assets.model.assets.stage import HANDLES, MODEL_GROUP, Timer
from recsys_assets.model.features import (
    TEST,
    InvalidTestPairs,
    SplitMethod,
    clean_ratings,
    fingerprint,
    read_test_pairs,
    split_ratings,
)
from recsys_assets.model.handles import RatingsHandle, SampleHandle
from recsys_assets.model.sources import read_site_ratings
from recsys_assets.model.store import ModelStore
from recsys_assets.resources import MongoResource
from recsys_assets.spark_steps import spark_step


class TrainingRatingsConfig(Config):
    split: SplitMethod = SplitMethod.LEAVE_K_OUT
    test_fraction: float = Field(default=0.2, description="Held-out share for the random and time splits.")
    holdout_k: int = Field(default=1, description="Ratings held out per reviewer for leave_k_out.")
    seed: int = 42
    test_pairs: str | None = Field(
        default=None,
        description="For the fixed split: a file of (reviewerID, asin) test pairs, JSON lines or TSV "
        "(features.read_test_pairs). Needs the whole data: review_sample with fraction 1 and no max_reviews.",
    )


def _test_pairs(spark: SparkSession, config: TrainingRatingsConfig, sample: SampleHandle) -> DataFrame | None:
    """The fixed split's pairs as a frame; refused when the config or the sample cannot honour them."""
    if config.split != SplitMethod.FIXED:
        if config.test_pairs is not None:
            raise InvalidTestPairs(f"test_pairs is only for the fixed split, not {config.split.value}")
        return None
    if config.test_pairs is None:
        raise InvalidTestPairs("the fixed split needs test_pairs: a file of (reviewerID, asin) pairs")
    if sample.fraction != 1.0:
        raise InvalidTestPairs(
            f"the fixed split evaluates on given pairs, which a sample would drop, but review_sample "
            f"{sample.version} kept a fraction of {sample.fraction}: materialise review_sample with fraction 1 "
            "and max_reviews null (recsys run --split fixed does)"
        )
    return spark.createDataFrame(read_test_pairs(config.test_pairs), "reviewerID string, asin string")


def _split_counts(ratings: DataFrame) -> dict[str, int]:
    rows = ratings.groupBy("split").agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct("reviewerID").alias("reviewers"),
        F.countDistinct("asin").alias("items"),
    )
    return {
        f"{row['split']}_{name}": int(row[name]) for row in rows.collect() for name in ("rows", "reviewers", "items")
    }


def _fixed_split_counts(config: TrainingRatingsConfig, given: int, found: int, rows: int) -> dict[str, Any]:
    """How many of the given pairs the ratings hold; refuses a split with nothing to test or nothing to train."""
    if found == 0:
        raise InvalidTestPairs(
            f"none of the {given} test pairs in {config.test_pairs} is a rating of the ingested data: "
            "check that the file's reviewerIDs and asins are those of the data folder"
        )
    if found == rows:
        raise InvalidTestPairs(
            f"every rating is one of the test pairs in {config.test_pairs}: nothing is left to train"
        )
    return {
        "test_pairs_file": str(config.test_pairs),
        "test_pairs_given": given,
        "test_pairs_found": found,
        "test_pairs_not_found": given - found,
    }


@asset(
    group_name=MODEL_GROUP,
    kinds={"spark", "parquet"},
    io_manager_key=HANDLES,
    owners=OWNERS,
    tags=stage_tags(Stage.FEATURES),
    code_version="3",  # 2: site ratings join the sample; 3: the fixed split
)
@spark_step
def training_ratings(
    context: AssetExecutionContext,
    config: TrainingRatingsConfig,
    pyspark: PySparkResource,
    model_store: ModelStore,
    mongo: MongoResource,
    review_sample: SampleHandle,
) -> Output[RatingsHandle]:
    """Add the ratings shoppers gave on the site, drop unusable rows, keep each reviewer's latest rating of an
    item, split, and fingerprint the result.

    Every site rating is kept (they are not sampled): they are few, and they are what makes the
    next model agree with the lists the online updater already serves.
    """
    timer = Timer()
    spark = pyspark.spark_session
    version = model_store.run_version
    uri = model_store.uri(version, "ratings")
    test_pairs = _test_pairs(spark, config, review_sample)
    site_ratings = read_site_ratings(spark, mongo).cache()  # cleaning reads its input several times
    sample = spark.read.parquet(review_sample.uri).select(*site_ratings.columns)
    cleaned, report = clean_ratings(sample.unionByName(site_ratings))
    split = split_ratings(cleaned, config.split, config.seed, config.test_fraction, config.holdout_k, test_pairs)
    split.write.mode("overwrite").parquet(uri)
    site_rows = site_ratings.count()
    site_ratings.unpersist()
    written = spark.read.parquet(uri)
    counts = _split_counts(written)
    fixed: dict[str, Any] = {}
    if test_pairs is not None:
        fixed = _fixed_split_counts(config, test_pairs.count(), counts.get(f"{TEST}_rows", 0), report.output_rows)
    handle = RatingsHandle(version=version, uri=uri, rows=report.output_rows, fingerprint=fingerprint(written))
    context.log.info(f"cleaning: {report}; split: {counts}")
    metadata: dict[str, Any] = {
        "uri": MetadataValue.url(uri),
        "version": version,
        "sample_version": review_sample.version,
        "fingerprint": handle.fingerprint,
        "dagster/row_count": report.output_rows,
        "input_rows": report.input_rows,
        "site_ratings": site_rows,
        "dropped_missing_id": report.missing_id,
        "dropped_missing_rating": report.missing_rating,
        "dropped_out_of_range_rating": report.out_of_range_rating,
        "dropped_older_duplicate_pairs": report.duplicate_pairs,
        "split_method": config.split.value,
        **counts,
        **fixed,
        "duration_s": timer.seconds,
    }
    return Output(handle, metadata=metadata)

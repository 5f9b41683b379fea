"""Stage 2: the sample and the site's ratings as clean ratings, one per reviewer and item, labelled train or test."""

from typing import Any

from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset
from dagster_pyspark import PySparkResource
from pydantic import Field
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_assets.catalog import OWNERS, Stage, stage_tags
from recsys_assets.model.assets.stage import HANDLES, MODEL_GROUP, Timer
from recsys_assets.model.features import SplitMethod, clean_ratings, fingerprint, split_ratings
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


def _split_counts(ratings: DataFrame) -> dict[str, int]:
    rows = ratings.groupBy("split").agg(
        F.count(F.lit(1)).alias("rows"),
        F.countDistinct("reviewerID").alias("reviewers"),
        F.countDistinct("asin").alias("items"),
    )
    return {
        f"{row['split']}_{name}": int(row[name]) for row in rows.collect() for name in ("rows", "reviewers", "items")
    }


@asset(
    group_name=MODEL_GROUP,
    kinds={"spark", "parquet"},
    io_manager_key=HANDLES,
    owners=OWNERS,
    tags=stage_tags(Stage.FEATURES),
    code_version="2",  # 2: site ratings join the sample
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
    site_ratings = read_site_ratings(spark, mongo).cache()  # cleaning reads its input several times
    sample = spark.read.parquet(review_sample.uri).select(*site_ratings.columns)
    cleaned, report = clean_ratings(sample.unionByName(site_ratings))
    split_ratings(cleaned, config.split, config.seed, config.test_fraction, config.holdout_k).write.mode(
        "overwrite"
    ).parquet(uri)
    site_rows = site_ratings.count()
    site_ratings.unpersist()
    written = spark.read.parquet(uri)
    counts = _split_counts(written)
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
        "duration_s": timer.seconds,
    }
    return Output(handle, metadata=metadata)

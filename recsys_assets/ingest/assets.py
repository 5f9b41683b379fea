"""Raw ingestion assets: Amazon review and metadata files into MongoDB, one category per partition."""

import json
import time
from collections.abc import Callable
from pathlib import Path

from dagster import (
    AddDynamicPartitionsRequest,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetSelection,
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    asset,
    define_asset_job,
    in_process_executor,
    sensor,
)
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame

from recsys_assets.ingest.lines import numbered_lines
from recsys_assets.ingest.loading import LoadCounts, Target, load_partition
from recsys_assets.ingest.products import parse_products
from recsys_assets.ingest.reviews import parse_reviews
from recsys_assets.resources import MongoResource, RawDataResource
from recsys_assets.spark_steps import spark_step
from recsys_core import mongo as mongo_contract

CATEGORY = "category"
CATEGORY_PARTITIONS = DynamicPartitionsDefinition(name=CATEGORY)
INGEST_GROUP = "ingest"


def _load(
    context: AssetExecutionContext,
    pyspark: PySparkResource,
    mongo: MongoResource,
    files: list[Path],
    parse: Callable[[DataFrame, str], DataFrame],
    target: Target,
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster's generic result, with no value
    """Parse and load one category's files into ``target``; the counts are metadata and a check."""
    started = time.monotonic()
    category = context.partition_key
    asset_name = context.asset_key.to_user_string()
    context.log.info(f"{asset_name}[{category}]: loading {[f.name for f in files]} into {target.collection}")
    with mongo.db() as db:
        if files:
            counts = load_partition(
                parse(numbered_lines(pyspark.spark_session, files), category), target, db, mongo.uri
            )
        else:
            counts = LoadCounts(read=0, loaded=0, duplicate=0, quarantined=0, reasons={}, stale_removed=0)
        in_collection = db[target.collection].count_documents(target.scope)
    context.log.info(f"{asset_name}[{category}]: {counts}")
    return MaterializeResult(
        metadata={
            "lines_read": counts.read,
            "loaded": counts.loaded,
            "duplicate": counts.duplicate,
            "quarantined": counts.quarantined,
            "quarantine_reasons": MetadataValue.json(counts.reasons),
            "stale_removed": counts.stale_removed,
            "documents_in_partition": in_collection,
            "dagster/row_count": in_collection,
            "collection": f"{mongo.database}.{target.collection}",
            "files": MetadataValue.json([f.name for f in files]),
            "duration_s": round(time.monotonic() - started, 2),
        },
        check_results=[
            AssetCheckResult(
                asset_key=asset_name,
                check_name="counts_add_up",
                passed=counts.add_up() and in_collection == counts.loaded,
                severity=AssetCheckSeverity.ERROR,
                metadata={
                    "read": counts.read,
                    "loaded + duplicate + quarantined": counts.loaded + counts.duplicate + counts.quarantined,
                    "documents_in_partition": in_collection,
                },
            )
        ],
    )


def _counts_check(asset_name: str) -> AssetCheckSpec:
    return AssetCheckSpec(
        "counts_add_up",
        asset=asset_name,
        blocking=True,
        description="Every line read is loaded, a duplicate, or quarantined; MongoDB holds exactly the loaded ones.",
    )


@asset(
    partitions_def=CATEGORY_PARTITIONS,
    group_name=INGEST_GROUP,
    kinds={"spark", "mongodb"},
    check_specs=[_counts_check("raw_reviews")],
    description="Amazon review lines of one category, parsed, deduplicated and upserted into `reviews` "
    "(hashed asin index); bad lines go to `quarantine` with their reason.",
)
@spark_step
def raw_reviews(
    context: AssetExecutionContext, pyspark: PySparkResource, mongo: MongoResource, raw_data: RawDataResource
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster reads this annotation
    category = context.partition_key
    target = Target(collection=mongo_contract.REVIEWS, scope={"category": category}, kind="review")
    return _load(context, pyspark, mongo, raw_data.files_of(category).review_files, parse_reviews, target)


@asset(
    partitions_def=CATEGORY_PARTITIONS,
    group_name=INGEST_GROUP,
    kinds={"spark", "mongodb"},
    check_specs=[_counts_check("raw_products")],
    description="Product metadata (`meta_<Category>`) of one category: titles without HTML, prices as "
    "numbers or null, the first image URL; upserted into `products` by asin.",
)
@spark_step
def raw_products(
    context: AssetExecutionContext, pyspark: PySparkResource, mongo: MongoResource, raw_data: RawDataResource
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster reads this annotation
    category = context.partition_key
    files = raw_data.files_of(category).meta_files
    if not files:
        context.log.warning(f"{category} has no meta_{category} file; no products are loaded for it.")
    # A product (_id = asin) may also be listed in another category's metadata.
    target = Target(
        collection=mongo_contract.PRODUCTS,
        scope={"source_category": category},
        kind="product",
        ids_unique_to_scope=False,
    )
    return _load(context, pyspark, mongo, files, parse_products, target)


ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.groups(INGEST_GROUP),
    executor_def=in_process_executor,
    description="Load one category's review and metadata files into MongoDB.",
)


@sensor(
    job=ingest_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Adds a partition for each new category in the data folder and loads any category whose files changed.",
)
def category_files_sensor(context: SensorEvaluationContext, raw_data: RawDataResource) -> SensorResult:
    """Add a partition for each new category in the data folder, and load any category whose files changed."""
    seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    current = {name: files.fingerprint() for name, files in raw_data.categories().items()}
    known = set(context.instance.get_dynamic_partitions(CATEGORY))
    new = sorted(set(current) - known)
    changed = sorted(name for name, fp in current.items() if seen.get(name) != fp)
    return SensorResult(
        run_requests=[RunRequest(run_key=f"{name}:{current[name]}", partition_key=name) for name in changed],
        dynamic_partitions_requests=[AddDynamicPartitionsRequest(CATEGORY, new)] if new else [],
        cursor=json.dumps(current, sort_keys=True),
    )

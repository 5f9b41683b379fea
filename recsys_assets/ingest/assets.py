"""Raw ingestion assets: Amazon review and metadata files into MongoDB, one category per partition."""

import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagster import (
    AddDynamicPartitionsRequest,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    AssetSpec,
    DagsterInstance,
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    TableMetadataValue,
    asset,
    define_asset_job,
    in_process_executor,
    sensor,
)
from dagster_pyspark import PySparkResource
from pyspark.sql import DataFrame

from recsys_assets.catalog import OWNERS, Stage, stage_tags
from recsys_assets.ingest.lines import numbered_lines
from recsys_assets.ingest.loading import LoadCounts, Target, load_partition
from recsys_assets.ingest.products import parse_products
from recsys_assets.ingest.reviews import parse_reviews
from recsys_assets.metadata import table
from recsys_assets.resources import MongoResource, RawDataResource
from recsys_assets.spark_steps import spark_step
from recsys_core import mongo as mongo_contract

CATEGORY = "category"
CATEGORY_PARTITIONS = DynamicPartitionsDefinition(name=CATEGORY)
INGEST_GROUP = "ingest"

category_files = AssetSpec(
    "category_files",
    partitions_def=CATEGORY_PARTITIONS,
    group_name=INGEST_GROUP,
    kinds={"json"},
    owners=OWNERS,
    tags=stage_tags(Stage.INGEST),
    description="The Amazon review and meta files of one category in the data folder (`<Category>.json[.gz]`, "
    "`<Category>_5.json[.gz]`, `meta_<Category>.json[.gz]`): written outside Dagster, where lineage begins. "
    "`category_files_sensor` watches them.",
)


FINGERPRINT = "files_fingerprint"
"""Metadata key of a raw materialisation: the fingerprint of the category's files it loaded (see the sensor)."""


def _reviews_target(category: str) -> Target:
    return Target(collection=mongo_contract.REVIEWS, scope={"category": category}, kind="review")


def _products_target(category: str) -> Target:
    # A product (_id = asin) may also be listed in another category's metadata.
    return Target(
        collection=mongo_contract.PRODUCTS,
        scope={"source_category": category},
        kind="product",
        ids_unique_to_scope=False,
        listings=mongo_contract.PRODUCT_LISTINGS,
    )


def _files_table(files: list[Path]) -> TableMetadataValue:
    stats = [(f.name, f.stat()) for f in files]
    return table(
        {"file": "string", "bytes": "int", "modified": "string"},
        (
            (name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC).isoformat(timespec="seconds"))
            for name, st in stats
        ),
    )


def _load(
    context: AssetExecutionContext,
    pyspark: PySparkResource,
    mongo: MongoResource,
    raw_data: RawDataResource,
    files: list[Path],
    parse: Callable[[DataFrame, str], DataFrame],
    target: Target,
    counted: Mapping[str, dict[str, Any]] | None = None,
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster's generic result, with no value
    """Parse and load one category's files into ``target``; the counts are metadata and a check.

    ``counted`` names MongoDB filters whose matches among the partition's documents are
    counted after the load, as metadata (e.g. products without a title).
    """
    started = time.monotonic()
    category = context.partition_key
    fingerprint = raw_data.files_of(category).fingerprint()  # before reading: a file changed meanwhile is reloaded
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
        extra = {
            name: db[target.collection].count_documents({**where, **target.scope})
            for name, where in (counted or {}).items()
        }
    context.log.info(f"{asset_name}[{category}]: {counts}")
    return MaterializeResult(
        metadata={
            "lines_read": counts.read,
            "loaded": counts.loaded,
            "duplicate": counts.duplicate,
            "quarantined": counts.quarantined,
            "quarantine_reasons": table({"reason": "string", "lines": "int"}, sorted(counts.reasons.items())),
            "stale_removed": counts.stale_removed,
            "documents_in_partition": in_collection,
            "dagster/row_count": in_collection,
            "collection": f"{mongo.database}.{target.collection}",
            "data_dir": MetadataValue.path(raw_data.data_dir),
            "files": _files_table(files),
            FINGERPRINT: fingerprint,
            "duration_s": round(time.monotonic() - started, 2),
            **extra,
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
    deps=[category_files],
    owners=OWNERS,
    tags=stage_tags(Stage.INGEST),
    code_version="1",
    check_specs=[_counts_check("raw_reviews")],
    description="Amazon review lines of one category, parsed, deduplicated and upserted into `reviews` "
    "(hashed asin index); bad lines go to `quarantine` with their reason.",
)
@spark_step
def raw_reviews(
    context: AssetExecutionContext, pyspark: PySparkResource, mongo: MongoResource, raw_data: RawDataResource
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster reads this annotation
    category = context.partition_key
    files = raw_data.files_of(category).review_files
    return _load(context, pyspark, mongo, raw_data, files, parse_reviews, _reviews_target(category))


@asset(
    partitions_def=CATEGORY_PARTITIONS,
    group_name=INGEST_GROUP,
    kinds={"spark", "mongodb"},
    deps=[category_files],
    owners=OWNERS,
    tags=stage_tags(Stage.INGEST),
    code_version="1",
    check_specs=[_counts_check("raw_products")],
    description="Product metadata (`meta_<Category>`, 2014, 2018 or 2023) of one category: texts without HTML "
    "or entities, prices as numbers or null, the first image URL; upserted into `products` by asin. "
    "`titles_missing` counts the products left without a title.",
)
@spark_step
def raw_products(
    context: AssetExecutionContext, pyspark: PySparkResource, mongo: MongoResource, raw_data: RawDataResource
) -> MaterializeResult:  # type: ignore[type-arg]  # Dagster reads this annotation
    category = context.partition_key
    files = raw_data.files_of(category).meta_files
    if not files:
        context.log.warning(f"{category} has no meta_{category} file; no products are loaded for it.")
    return _load(
        context,
        pyspark,
        mongo,
        raw_data,
        files,
        parse_products,
        _products_target(category),
        counted={"titles_missing": {"title": None}},
    )


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
    description="Adds a partition for each new category in the data folder and loads any category whose files changed "
    "since they were last loaded (on a fresh daemon: since the load MongoDB still holds).",
)
def category_files_sensor(
    context: SensorEvaluationContext, raw_data: RawDataResource, mongo: MongoResource
) -> SensorResult:
    """Add a partition for each new category in the data folder, and load any category whose files changed.

    The cursor holds each category's file fingerprint as last requested. Without one (a fresh
    daemon, a reset sensor) it starts from what was loaded, so files already in MongoDB are not
    ingested again.
    """
    known = set(context.instance.get_dynamic_partitions(CATEGORY))
    seen: dict[str, str] = (
        json.loads(context.cursor) if context.cursor else _loaded_fingerprints(context.instance, mongo, known)
    )
    current = {name: files.fingerprint() for name, files in raw_data.categories().items()}
    new = sorted(set(current) - known)
    changed = sorted(name for name, fp in current.items() if seen.get(name) != fp)
    return SensorResult(
        run_requests=[RunRequest(run_key=f"{name}:{current[name]}", partition_key=name) for name in changed],
        dynamic_partitions_requests=[AddDynamicPartitionsRequest(CATEGORY, new)] if new else [],
        cursor=json.dumps(current, sort_keys=True),
    )


_TARGETS: dict[str, Callable[[str], Target]] = {"raw_reviews": _reviews_target, "raw_products": _products_target}


def _loaded_fingerprints(instance: DagsterInstance, mongo: MongoResource, categories: set[str]) -> dict[str, str]:
    """Per category, the files fingerprint both raw assets last loaded, if MongoDB still holds what they wrote."""
    loaded: dict[str, str] = {}
    with mongo.db() as db:
        for category in sorted(categories):
            fingerprints = set()
            for asset_name, target_of in _TARGETS.items():
                records = instance.fetch_materializations(
                    AssetRecordsFilter(asset_key=AssetKey(asset_name), asset_partitions=[category]), limit=1
                ).records
                materialisation = records[0].asset_materialization if records else None
                metadata = {k: v.value for k, v in materialisation.metadata.items()} if materialisation else {}
                target = target_of(category)
                held = metadata.get("collection") == f"{mongo.database}.{target.collection}" and metadata.get(
                    "dagster/row_count"
                ) == db[target.collection].count_documents(target.scope)
                fingerprints.add(metadata.get(FINGERPRINT) if held else None)
            if len(fingerprints) == 1 and (fingerprint := fingerprints.pop()) is not None:
                loaded[category] = str(fingerprint)
    return loaded

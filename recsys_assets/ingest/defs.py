"""The ingest stage's Dagster definitions: raw Amazon review and metadata files into MongoDB, one partition per
category."""

from recsys_assets.ingest.assets import (
    CATEGORY,
    CATEGORY_PARTITIONS,
    category_files,
    category_files_sensor,
    ingest_job,
    raw_products,
    raw_reviews,
)

ASSETS = [raw_reviews, raw_products]
EXTERNAL = [category_files]
"""Assets Dagster does not write: the input files, where lineage begins."""
JOBS = [ingest_job]
SENSORS = [category_files_sensor]

__all__ = ["ASSETS", "CATEGORY", "CATEGORY_PARTITIONS", "EXTERNAL", "JOBS", "SENSORS"]

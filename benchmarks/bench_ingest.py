"""Ingestion throughput and memory, against the naive load as the anchor, in one run.

The naive load is what the published project did: ``spark.read.json`` with an inferred
schema written straight to MongoDB, with no line numbers, no type checks, no quarantine and
no dedup. Ours does all of that; the ratio says what the guarantees cost.

    python benchmarks/bench_ingest.py --reviews 200000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pyspark.sql import SparkSession

from recsys_assets.ingest.lines import numbered_lines
from recsys_assets.ingest.loading import Target, load_partition
from recsys_assets.ingest.reviews import parse_reviews
from recsys_assets.spark import spark_config
from recsys_core import mongo, services
from recsys_core.connections import project_database
from recsys_core.settings import get_settings
from recsys_datagen import generate


def _jvm_peak_rss_mib(spark: SparkSession) -> float:
    pid = spark.sparkContext._jvm.ProcessHandle.current().pid()  # type: ignore[union-attr]  # _jvm is None only under Spark Connect
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reviews", type=int, default=200_000)
    args = parser.parse_args()

    settings = get_settings()
    services.up(settings)
    builder = SparkSession.builder
    for key, value in spark_config(settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    db = project_database(settings).client["recsys_bench"]
    uri = settings.effective_mongo_uri

    with tempfile.TemporaryDirectory() as tmp:
        report = generate(Path(tmp), args.reviews, categories=("Bench",), seed=7)
        files = list(report.review_files)
        spark.read.text([str(f) for f in files]).count()  # warm the JVM and the file cache

        db.drop_collection("naive")
        started = time.perf_counter()
        naive = spark.read.json([str(f) for f in files])
        naive.write.format("mongodb").mode("append").option("connection.uri", uri).option("database", db.name).option(
            "collection", "naive"
        ).save()
        naive_s = time.perf_counter() - started

        db.drop_collection(mongo.REVIEWS)
        started = time.perf_counter()
        counts = load_partition(
            parse_reviews(numbered_lines(spark, files), "Bench"),
            Target(mongo.REVIEWS, {"category": "Bench"}, "review"),
            db,
            uri,
        )
        ours_s = time.perf_counter() - started

    db.client.drop_database(db.name)
    print(f"lines: {counts.read:,} (loaded {counts.loaded:,}, duplicate {counts.duplicate:,}, "
          f"quarantined {counts.quarantined:,})")  # fmt: skip
    print(f"recsys ingest: {ours_s:6.1f} s  {counts.read / ours_s:9,.0f} lines/s")
    print(f"naive load   : {naive_s:6.1f} s  {counts.read / naive_s:9,.0f} lines/s  (anchor)")
    print(f"ratio        : {ours_s / naive_s:.2f}x the naive load's time")
    print(f"Spark driver JVM peak RSS: {_jvm_peak_rss_mib(spark):,.0f} MiB "
          f"(spark.driver.memory={settings.spark_driver_memory})")  # fmt: skip
    spark.stop()


if __name__ == "__main__":
    main()

"""Ingestion throughput against the physical bound, bare ``insert_many``, measured in one run.

    python -m benchmarks.bench_ingest --reviews 1000000

``--reviews`` generated reviews (one category) are loaded as the ``raw_reviews`` asset loads
them (``load_partition``: line numbers, parsing, type checks, quarantine, dedup by
deterministic ``_id``), in docs/s. The anchor is the fastest any loader could store the same
documents in the same mongod: the loaded documents, read back into Python first (not timed),
inserted with bare pymongo ``insert_many`` (unordered, batches of 1000) into a collection with
the same indexes. Goal: at least 0.7x the anchor's docs/s.

A second line keeps the earlier anchor, the naive load the published project did
(``spark.read.json`` with an inferred schema straight into MongoDB, with none of the
guarantees), so the cost of the guarantees stays visible too.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from pyspark.sql import SparkSession

from benchmarks.report import RESULTS, Figure, provenance, write_section
from recsys_assets.ingest.lines import numbered_lines
from recsys_assets.ingest.loading import Target, load_partition
from recsys_assets.ingest.reviews import parse_reviews
from recsys_assets.spark import spark_session
from recsys_core import mongo, services
from recsys_core.connections import project_database
from recsys_core.settings import get_settings
from recsys_datagen import generate

BATCH = 1000
GOAL = 0.7


def _jvm_peak_rss_mib(spark: SparkSession) -> float:
    pid = spark.sparkContext._jvm.ProcessHandle.current().pid()  # type: ignore[union-attr]  # _jvm is None only under Spark Connect
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=1_000_000)
    args = parser.parse_args()

    settings = get_settings()
    services.up(settings)
    spark = spark_session(settings)
    spark.sparkContext.setLogLevel("ERROR")
    db = project_database(settings).client[f"{settings.mongo_db}_bench_ingest"]
    db.client.drop_database(db.name)
    uri = settings.effective_mongo_uri

    with tempfile.TemporaryDirectory() as tmp:
        report = generate(Path(tmp), args.reviews, categories=("Bench",), seed=7)
        files = list(report.review_files)
        spark.read.text([str(f) for f in files]).count()  # warm the JVM and the file cache

        started = time.perf_counter()
        naive = spark.read.json([str(f) for f in files])
        naive.write.format("mongodb").mode("append").option("connection.uri", uri).option("database", db.name).option(
            "collection", "naive"
        ).save()
        naive_s = time.perf_counter() - started

        started = time.perf_counter()
        counts = load_partition(
            parse_reviews(numbered_lines(spark, files), "Bench"),
            Target(mongo.REVIEWS, {"category": "Bench"}, "review"),
            db,
            uri,
        )
        ours_s = time.perf_counter() - started

    # The anchor: the very documents the load stored, already in memory, into a collection with the same indexes.
    documents = list(db[mongo.REVIEWS].find())
    for name, index in db[mongo.REVIEWS].index_information().items():
        if name != "_id_":
            db["bare"].create_index(index["key"], name=name)
    started = time.perf_counter()
    for start in range(0, len(documents), BATCH):
        db["bare"].insert_many(documents[start : start + BATCH], ordered=False)
    bare_s = time.perf_counter() - started
    stored = db["bare"].count_documents({})
    if stored != counts.loaded:
        raise SystemExit(f"the anchor stored {stored:,} documents, the load {counts.loaded:,}")
    peak_jvm = _jvm_peak_rss_mib(spark)
    db.client.drop_database(db.name)
    spark.stop()

    ours, bare, naive_rate = counts.loaded / ours_s, counts.loaded / bare_s, counts.read / naive_s
    figures = [
        Figure(
            f"`raw_reviews` load: {ours:,.0f} docs/s ({counts.loaded:,} docs in {ours_s:.1f} s)",
            f"bare `insert_many` of the same documents: {bare:,.0f} docs/s ({bare_s:.1f} s)",
            f"{ours / bare:.2f}x",
            f"≥ {GOAL}x",
            ours / bare >= GOAL,
        ),
        Figure(
            f"`raw_reviews` load: {counts.read / ours_s:,.0f} lines/s",
            f"naive Spark load (`spark.read.json` -> connector): {naive_rate:,.0f} lines/s ({naive_s:.1f} s)",
            f"{counts.read / ours_s / naive_rate:.2f}x",
            "reported",
            None,
        ),
    ]
    print(f"lines: {counts.read:,} (loaded {counts.loaded:,}, duplicate {counts.duplicate:,}, "
          f"quarantined {counts.quarantined:,}); Spark driver JVM peak RSS {peak_jvm:,.0f} MiB "
          f"(spark.driver.memory={settings.spark_driver_memory})")  # fmt: skip
    for figure in figures:
        print(figure.line())
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ingest.json").write_text(
        json.dumps(
            {
                "reviews": args.reviews,
                "lines": counts.read,
                "loaded": counts.loaded,
                "ours_s": round(ours_s, 2),
                "bare_insert_many_s": round(bare_s, 2),
                "naive_s": round(naive_s, 2),
                "peak_driver_jvm_mib": round(peak_jvm),
            },
            indent=2,
        )
    )
    lines = [
        provenance(f"{args.reviews:,} generated reviews, one category, `recsys run`'s Spark settings"),
        "",
        "| figure | anchor (same run) | ratio | goal |",
        "|---|---|---:|---|",
        *(f"| {f.figure} | {f.anchor} | {f.ratio} | {f.goal} |" for f in figures),
    ]
    write_section("ingest", lines, "## Ingestion (`benchmarks/bench_ingest.py`)")


if __name__ == "__main__":
    main()

"""Load one category partition into MongoDB: idempotently, with nothing silently dropped.

Every line read ends up in exactly one bucket: loaded (a document in the target
collection), duplicate (same record as an earlier line, collapsed by its deterministic
``_id``), or quarantined (a document in ``quarantine`` with its reason, file and line).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pymongo.database import Database
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys_core import mongo

_RAW_LINE_LIMIT = 10_000
_DELETE_BATCH = 10_000


@dataclass(frozen=True)
class LoadCounts:
    read: int
    loaded: int
    duplicate: int
    quarantined: int
    reasons: dict[str, int]
    stale_removed: int

    def add_up(self) -> bool:
        return self.read == self.loaded + self.duplicate + self.quarantined


@dataclass(frozen=True)
class Target:
    """Where a partition's documents go and which documents belong to that partition."""

    collection: str
    scope: dict[str, Any]
    kind: str
    # True when a document id can only ever belong to this scope (the review id hashes the
    # category in); then a first load may insert instead of upsert, which is about twice as fast.
    ids_unique_to_scope: bool = True


def load_partition(parsed: DataFrame, target: Target, db: Database[mongo.Document], uri: str) -> LoadCounts:
    """Write the good records of ``parsed`` to ``target`` and its bad lines to quarantine.

    ``parsed`` has ``_id``, ``source_file``, ``line_number``, ``reason`` (null when good),
    ``value`` (the raw line) and the document fields.
    """
    parsed = parsed.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        by_reason = {row["reason"]: row["n"] for row in parsed.groupBy("reason").agg(F.count("*").alias("n")).collect()}
        good_lines = by_reason.pop(None, 0)
        first = Window.partitionBy("_id").orderBy("source_file", "line_number")
        documents = (
            parsed.filter(F.col("reason").isNull())
            .withColumn("_occurrence", F.row_number().over(first))
            .filter(F.col("_occurrence") == 1)
            .drop("_occurrence", "reason", "value")
        ).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            loaded = documents.count()
            stale = replace_scope(
                documents, target.collection, target.scope, db, uri, loaded, target.ids_unique_to_scope
            )
        finally:
            documents.unpersist()
        quarantined = quarantine_documents(parsed.filter(F.col("reason").isNotNull()), target)
        replace_scope(
            quarantined,
            mongo.QUARANTINE,
            {"kind": target.kind, **target.scope},
            db,
            uri,
            sum(by_reason.values()),
            ids_unique_to_scope=True,
        )
    finally:
        parsed.unpersist()
    return LoadCounts(
        read=good_lines + sum(by_reason.values()),
        loaded=loaded,
        duplicate=good_lines - loaded,
        quarantined=sum(by_reason.values()),
        reasons=dict(sorted(by_reason.items())),
        stale_removed=stale,
    )


def quarantine_documents(bad: DataFrame, target: Target) -> DataFrame:
    """One quarantine document per bad line, keyed by its kind, file and line number."""
    scope = [F.lit(v).alias(k) for k, v in target.scope.items()]
    key = F.concat_ws("\u001f", F.lit(target.kind), *[F.lit(str(v)) for v in target.scope.values()],
                      F.col("source_file"), F.col("line_number").cast("string"))  # fmt: skip
    return bad.select(
        F.substring(F.sha2(key, 256), 1, 32).alias("_id"),
        F.lit(target.kind).alias("kind"),
        *scope,
        "source_file",
        "line_number",
        "reason",
        F.substring("value", 1, _RAW_LINE_LIMIT).alias("raw"),
    )


def replace_scope(
    documents: DataFrame,
    collection: str,
    scope: dict[str, Any],
    db: Database[mongo.Document],
    uri: str,
    expected: int,
    ids_unique_to_scope: bool,
) -> int:
    """Make the documents of ``scope`` in ``collection`` exactly ``documents``.

    Upserts by ``_id`` (so a second load changes nothing), then deletes the documents of the
    scope that the new load no longer has. Returns how many were deleted. Into an empty scope
    whose ids no other scope can hold, plain inserts do the same work faster.
    """
    mongo.ensure_collection(db, collection)
    fresh = ids_unique_to_scope and db[collection].find_one(scope, {"_id": 1}) is None
    (
        documents.write.format("mongodb")
        .mode("append")
        .option("connection.uri", uri)
        .option("database", db.name)
        .option("collection", collection)
        .option("operationType", "insert" if fresh else "replace")
        .option("upsertDocument", "true")
        .save()
    )
    if db[collection].count_documents(scope) == expected:
        return 0
    existing = (
        documents.sparkSession.read.format("mongodb")
        .option("connection.uri", uri)
        .option("database", db.name)
        .option("collection", collection)
        .option("aggregation.pipeline", json.dumps([{"$match": scope}, {"$project": {"_id": 1}}]))
        .load()
        .select("_id")
    )
    stale_ids = [row["_id"] for row in existing.join(documents.select("_id"), "_id", "left_anti").collect()]
    for start in range(0, len(stale_ids), _DELETE_BATCH):
        db[collection].delete_many({"_id": {"$in": stale_ids[start : start + _DELETE_BATCH]}, **scope})
    return len(stale_ids)

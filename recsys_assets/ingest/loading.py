"""Load one category partition into MongoDB: idempotently, with nothing silently dropped.

Every line read ends up in exactly one bucket: loaded (a document in the target
collection), duplicate (same record as an earlier line, collapsed by its deterministic
``_id``), or quarantined (a document in ``quarantine`` with its reason, file and line).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from pymongo.database import Database
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys_core import mongo
from recsys_core.contract import KEY_SEPARATOR

log = logging.getLogger(__name__)

DUPLICATE_KEY = "E11000"  # MongoDB's duplicate key error, as the connector's exception quotes it
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
    # For documents that several scopes may list (a product in two categories' files): the
    # collection recording which scopes list each id, so that stale-removal in one scope
    # keeps, and hands over, a document another scope still lists.
    listings: str | None = None


def load_partition(parsed: DataFrame, target: Target, db: Database[mongo.Document], uri: str) -> LoadCounts:
    """Write the good records of ``parsed`` to ``target`` and its bad lines to quarantine.

    ``parsed`` has ``_id``, ``source_file``, ``line_number``, ``reason`` (null when good),
    ``value`` (the raw line) and the document fields.
    """
    # Disk, not memory: the parsed lines are a whole category (and a worker's heap is the
    # driver's under local[*]); building them as in-memory column batches ran 5M reviews out of
    # a 2g heap. They are read three times (the counts, the documents, the quarantine).
    parsed = parsed.persist(StorageLevel.DISK_ONLY)
    try:
        by_reason = {row["reason"]: row["n"] for row in parsed.groupBy("reason").agg(F.count("*").alias("n")).collect()}
        good_lines = by_reason.pop(None, 0)
        first = Window.partitionBy("_id").orderBy("source_file", "line_number")
        documents = (
            parsed.filter(F.col("reason").isNull())
            .withColumn("_occurrence", F.row_number().over(first))
            .filter(F.col("_occurrence") == 1)
            .drop("_occurrence", "reason", "value")
        ).persist(StorageLevel.DISK_ONLY)
        try:
            loaded = documents.count()
            if target.listings is not None:  # first, so that stale-removal below sees this load's listings
                replace_scope(listings_of(documents, target), target.listings, target.scope, db, uri, loaded, True)
            stale = replace_scope(
                documents,
                target.collection,
                target.scope,
                db,
                uri,
                loaded,
                target.ids_unique_to_scope,
                target.listings,
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


def listings_of(documents: DataFrame, target: Target) -> DataFrame:
    """One listing per document of the scope: ``{_id: "<scope>:<id>", **scope, listed: id}``."""
    scope = [F.lit(v).alias(k) for k, v in target.scope.items()]
    key = F.concat_ws(KEY_SEPARATOR, *[F.lit(str(v)) for v in target.scope.values()], F.col("_id"))
    return documents.select(key.alias("_id"), *scope, F.col("_id").alias("listed"))


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
    listings: str | None = None,
) -> int:
    """Make the documents of ``scope`` in ``collection`` exactly ``documents``.

    Upserts by ``_id`` (so a second load changes nothing), then deletes the documents of the
    scope that the new load no longer has, except those another scope still lists in
    ``listings``: they move to that scope. Returns how many were deleted. Into an empty scope
    whose ids no other scope can hold, plain inserts do the same work faster; if a retried
    Spark task meets the documents its failed attempt inserted, the write is redone as upserts.
    """
    mongo.ensure_collection(db, collection)
    fresh = ids_unique_to_scope and db[collection].find_one(scope, {"_id": 1}) is None
    try:
        write_documents(documents, collection, db, uri, "insert" if fresh else "replace")
    except Exception as exc:
        if not (fresh and DUPLICATE_KEY in str(exc)):
            raise
        log.warning("insert into %s met documents of a failed task attempt; writing again as upserts", collection)
        write_documents(documents, collection, db, uri, "replace")
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
    deleted = 0
    for start in range(0, len(stale_ids), _DELETE_BATCH):
        batch = stale_ids[start : start + _DELETE_BATCH]
        if listings is not None:
            elsewhere = db[listings].find({"listed": {"$in": batch}, "$nor": [scope]})
            for listing in elsewhere:  # still listed by another scope: it becomes that scope's
                db[collection].update_one({"_id": listing["listed"], **scope}, {"$set": {k: listing[k] for k in scope}})
        deleted += db[collection].delete_many({"_id": {"$in": batch}, **scope}).deleted_count
    return deleted


def write_documents(documents: DataFrame, collection: str, db: Database[mongo.Document], uri: str, how: str) -> None:
    """Append ``documents`` through the connector: ``insert``, or ``replace`` by ``_id`` with upsert."""
    (
        documents.write.format("mongodb")
        .mode("append")
        .option("connection.uri", uri)
        .option("database", db.name)
        .option("collection", collection)
        .option("operationType", how)
        .option("upsertDocument", "true")
        .save()
    )

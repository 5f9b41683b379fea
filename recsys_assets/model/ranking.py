"""Per-reviewer top-k lists without ever forming users x items rows.

The model's lists: reviewers are scored in blocks against the item factors, which are
broadcast to the executors (the one table the driver collects, and it has a limit), and each
block keeps only its ``k`` best unrated items (``recsys_core.scoring.best_k``). Memory is
O(block x items) per task and O(reviewers x k) in the result, and the cost grows with
reviewers x items x rank flops, never with rows to shuffle.

The non-personal baselines rank every item the same way for everyone, so their order is
computed once and each reviewer takes the first ``k`` items of it they have not rated.

Ties are broken by asin everywhere, so a list never depends on Spark's partitioning.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from recsys_core.scoring import best_k

METHOD = "method"
TOP_K_SCHEMA = "reviewerID string, asin string, score double, rank int"
TOPS_SCHEMA = f"{METHOD} string, {TOP_K_SCHEMA}"
_ARROW_SCHEMA = pa.schema(
    [("reviewerID", pa.string()), ("asin", pa.string()), ("score", pa.float64()), ("rank", pa.int32())]
)
_TOPS_ARROW_SCHEMA = pa.schema([(METHOD, pa.string()), *((f.name, f.type) for f in _ARROW_SCHEMA)])
SCORE_BLOCK_BYTES = 16 * 1024 * 1024
"""Memory for one block of scores (reviewers x items doubles) in a Python worker."""
MAX_BROADCAST_ITEMS = 5_000_000
"""More items than this would not fit a worker's memory as broadcast factors (5M x rank 10 doubles = 400 MB)."""


def dot(left: str, right: str) -> Column:
    """Dot product of two array<float> columns of equal length."""
    products = F.zip_with(F.col(left), F.col(right), lambda x, y: x.cast("double") * y.cast("double"))
    return F.aggregate(products, F.lit(0.0), lambda acc, x: acc + x)


def cosine(left: str, right: str) -> Column:
    norms = F.sqrt(dot(left, left)) * F.sqrt(dot(right, right))
    return F.when(norms > 0, dot(left, right) / norms).otherwise(F.lit(0.0))


@dataclass(frozen=True)
class ItemFactorTable:
    """Item factors and score offsets in the driver, in asin order, so that a lower index is a smaller asin."""

    asins: list[str]
    vectors: NDArray[np.float64]  # (items, rank)
    offset: NDArray[np.float64]  # (items,): what every score of the item adds to user . item

    @classmethod
    def collect(cls, items: DataFrame) -> ItemFactorTable:
        """From ``asin, vector, score_offset``; refuses a catalogue too large to broadcast."""
        count = items.count()
        if count > MAX_BROADCAST_ITEMS:
            raise ValueError(
                f"{count:,} items are more than the {MAX_BROADCAST_ITEMS:,} whose factors can be broadcast to "
                "every executor; score in item blocks or raise MAX_BROADCAST_ITEMS with the executors' memory"
            )
        rows = items.select("asin", "vector", "score_offset").orderBy("asin").collect()
        rank = len(rows[0]["vector"]) if rows else 0
        return cls(
            asins=[row["asin"] for row in rows],
            vectors=np.asarray([row["vector"] for row in rows], dtype=np.float64).reshape(len(rows), rank),
            offset=np.asarray([row["score_offset"] for row in rows], dtype=np.float64),
        )


def _with_rated(users: DataFrame, exclude: DataFrame) -> DataFrame:
    """Each user with the asins they must not be recommended (empty when none)."""
    rated = exclude.groupBy("reviewerID").agg(F.collect_list("asin").alias("rated"))
    return users.join(rated, "reviewerID", "left").withColumn(
        "rated", F.coalesce(F.col("rated"), F.array().cast("array<string>"))
    )


def _batch(reviewers: list[str], asins: list[str], scores: list[float], ranks: list[int]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [pa.array(reviewers, pa.string()), pa.array(asins, pa.string()), pa.array(scores), pa.array(ranks, pa.int32())],
        schema=_ARROW_SCHEMA,
    )


def model_top_k(users: DataFrame, exclude: DataFrame, items: ItemFactorTable, k: int) -> DataFrame:
    """``reviewerID, asin, score, rank`` (1..k): each user's ``k`` best items not in ``exclude``.

    ``users`` holds ``reviewerID, vector``; a score is ``user · item + the item's offset``, the
    same as ``recsys_core.scoring.scores``.
    """
    broadcast = users.sparkSession.sparkContext.broadcast((items.asins, items.vectors, items.offset))
    block = max(1, SCORE_BLOCK_BYTES // (8 * max(1, len(items.asins))))

    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        asins, vectors, offset = broadcast.value
        position = {asin: i for i, asin in enumerate(asins)}
        for batch in batches:
            reviewers = batch.column("reviewerID").to_pylist()
            user_vectors = np.asarray(batch.column("vector").flatten(), dtype=np.float64)
            user_vectors = user_vectors.reshape(len(reviewers), vectors.shape[1])
            rated = batch.column("rated").to_pylist()
            out: tuple[list[str], list[str], list[float], list[int]] = ([], [], [], [])
            for start in range(0, len(reviewers), block):
                scores = user_vectors[start : start + block] @ vectors.T + offset
                for row, seen in enumerate(rated[start : start + block]):
                    scores[row, [position[a] for a in seen if a in position]] = -np.inf
                best, values = best_k(scores, k)
                for row in range(len(best)):
                    for place, (column, value) in enumerate(zip(best[row], values[row], strict=True), start=1):
                        if value > -np.inf:
                            out[0].append(reviewers[start + row])
                            out[1].append(asins[column])
                            out[2].append(float(value))
                            out[3].append(place)
            yield _batch(*out)

    return _with_rated(users.select("reviewerID", "vector"), exclude).mapInArrow(score, TOP_K_SCHEMA)


def global_top_k(users: DataFrame, exclude: DataFrame, item_scores: DataFrame, k: int) -> DataFrame:
    """``reviewerID, asin, score, rank``: the first ``k`` items of one global order, skipping each user's own."""
    return global_tops(users, exclude, {"": item_scores}, k).drop(METHOD)


def global_tops(users: DataFrame, exclude: DataFrame, orders: dict[str, DataFrame], k: int) -> DataFrame:
    """``method, reviewerID, asin, score, rank``: ``global_top_k`` of each named order, in one pass over the users.

    Each order (``asin, score``) is by score, ties by asin. Only its first ``k`` + (most items
    any user excludes) entries reach the driver, all orders' in one query; no user is scored
    against the catalogue. Each user's excluded items are gathered once, and one Python job
    walks every order for them.
    """
    most_excluded = exclude.groupBy("reviewerID").count().agg(F.max("count")).first()
    prefix = k + int(most_excluded[0] or 0) if most_excluded else k  # every user's k unrated lie within it
    best_first = Window.partitionBy(METHOD).orderBy(F.col("score").desc(), "asin")
    heads = (
        functools.reduce(
            DataFrame.unionByName,
            [s.select(F.lit(name).alias(METHOD), "asin", F.col("score").cast("double")) for name, s in orders.items()],
        )
        .withColumn("place", F.row_number().over(best_first))
        .where(F.col("place") <= prefix)
        .collect()
    )
    ordered: dict[str, tuple[list[str], list[float]]] = {name: ([], []) for name in orders}
    for row in sorted(heads, key=lambda r: (r[METHOD], r["place"])):
        ordered[row[METHOD]][0].append(row["asin"])
        ordered[row[METHOD]][1].append(float(row["score"]))
    broadcast = users.sparkSession.sparkContext.broadcast(ordered)

    def take(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            rows: list[tuple[str, str, str, float, int]] = []
            for reviewer, seen in zip(
                batch.column("reviewerID").to_pylist(), batch.column("rated").to_pylist(), strict=True
            ):
                skip = set(seen)
                for name, (order, scores) in broadcast.value.items():
                    place = 0
                    for i in range(min(len(order), k + len(skip))):  # k unrated items lie within this prefix
                        if order[i] in skip:
                            continue
                        place += 1
                        rows.append((name, reviewer, order[i], scores[i], place))
                        if place == k:
                            break
            columns = list(zip(*rows, strict=True)) if rows else [() for _ in _TOPS_ARROW_SCHEMA]
            yield pa.RecordBatch.from_arrays(
                [pa.array(column, f.type) for column, f in zip(columns, _TOPS_ARROW_SCHEMA, strict=True)],
                schema=_TOPS_ARROW_SCHEMA,
            )

    return _with_rated(users.select("reviewerID").distinct(), exclude).mapInArrow(take, TOPS_SCHEMA)

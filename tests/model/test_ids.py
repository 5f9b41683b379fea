"""The ALS indices of the string ids: each id's place in id order, dense, whatever the partitioning."""

from __future__ import annotations

import random

import pytest
from pyspark.sql import SparkSession

from recsys_assets.model.training import ITEM_INDEX, USER_INDEX, Ids


@pytest.mark.parametrize("partitions", [1, 7])
def test_each_id_gets_its_place_in_id_order(spark: SparkSession, partitions: int) -> None:
    rng = random.Random(partitions)
    reviewers = [f"A{rng.randrange(10**9):09d}" for _ in range(300)]
    asins = [f"B{rng.randrange(10**6):06d}" for _ in range(120)]
    pairs = [(rng.choice(reviewers), rng.choice(asins)) for _ in range(2_000)]
    ratings = spark.createDataFrame(pairs, "reviewerID string, asin string").repartition(partitions)

    ids = Ids.of(ratings)

    for frame, id_column, index_column, values in (
        (ids.users, "reviewerID", USER_INDEX, {r for r, _ in pairs}),
        (ids.items, "asin", ITEM_INDEX, {a for _, a in pairs}),
    ):
        rows = frame.collect()
        got = {row[id_column]: row[index_column] for row in rows}
        assert len(rows) == len(got)
        assert got == {value: place for place, value in enumerate(sorted(values))}
    assert ids.attach(ratings).count() == len(pairs)


def test_no_ratings_no_indices(spark: SparkSession) -> None:
    ids = Ids.of(spark.createDataFrame([], "reviewerID string, asin string"))

    assert ids.users.count() == ids.items.count() == 0

"""Blocked top-k equals the exact top-k of a brute-force numpy reference, ties and exclusions included."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import SparkSession

from recsys_assets.model import ranking
from recsys_assets.model.ranking import METHOD, ItemFactorTable, global_top_k, global_tops, model_top_k
from recsys_core.scoring import best_k

USERS, ITEMS, RANK, K = 40, 30, 3, 5


def _reference(scores: np.ndarray, asins: list[str], excluded: list[set[str]], k: int) -> list[list[tuple[str, float]]]:
    """Every item scored, excluded ones dropped, sorted by (-score, asin), cut at k."""
    lists = []
    for row, skip in zip(scores, excluded, strict=True):
        ranked = sorted((-s, a) for s, a in zip(row, asins, strict=True) if a not in skip)
        lists.append([(a, -s) for s, a in ranked[:k]])
    return lists


def _problem(seed: int):
    rng = np.random.default_rng(seed)
    # Small integers make many exact ties, also at the k-th place.
    users = rng.integers(-2, 3, size=(USERS, RANK)).astype(np.float64)
    items = rng.integers(-2, 3, size=(ITEMS, RANK)).astype(np.float64)
    bias = rng.integers(0, 3, size=ITEMS).astype(np.float64)
    asins = [f"B{i:03d}" for i in range(ITEMS)]
    reviewers = [f"U{u:03d}" for u in range(USERS)]
    excluded = [{asins[i] for i in np.flatnonzero(rng.random(ITEMS) < 0.3)} for _ in range(USERS)]
    excluded[0] = set(asins[2:])  # fewer unrated items than k
    return users, items, bias, asins, reviewers, excluded


def _frames(spark: SparkSession, reviewers, users, excluded):
    user_frame = spark.createDataFrame(
        [(r, [float(x) for x in v]) for r, v in zip(reviewers, users, strict=True)],
        "reviewerID string, vector array<float>",
    ).repartition(3)
    pairs = [(r, a) for r, skip in zip(reviewers, excluded, strict=True) for a in sorted(skip)]
    return user_frame, spark.createDataFrame(pairs, "reviewerID string, asin string")


def _lists(top) -> dict[str, list[tuple[str, float]]]:
    rows = sorted(top.collect(), key=lambda r: (r["reviewerID"], r["rank"]))
    out: dict[str, list[tuple[str, float]]] = {}
    for row in rows:
        out.setdefault(row["reviewerID"], []).append((row["asin"], row["score"]))
        assert row["rank"] == len(out[row["reviewerID"]])
    return out


@pytest.mark.parametrize("with_offsets", [False, True])
def test_blocked_model_top_k_is_the_exact_top_k(
    spark: SparkSession, monkeypatch: pytest.MonkeyPatch, with_offsets: bool
) -> None:
    users, items, bias, asins, reviewers, excluded = _problem(seed=1)
    offset = bias if with_offsets else np.zeros(ITEMS)
    # Blocks of 4 users, so blocks, batches and partitions all cut the users differently.
    monkeypatch.setattr(ranking, "SCORE_BLOCK_BYTES", 8 * ITEMS * 4)
    user_frame, exclude = _frames(spark, reviewers, users, excluded)
    order = np.argsort(asins)[::-1]  # the table must not depend on the order items arrive in
    items_frame = spark.createDataFrame(
        [(asins[i], [float(x) for x in items[i]], float(offset[i])) for i in order],
        "asin string, vector array<float>, score_offset double",
    )
    table = ItemFactorTable.collect(items_frame)
    assert table.asins == sorted(asins)

    got = _lists(model_top_k(user_frame, exclude, table, K))

    scores = users @ items.T + offset
    expected = _reference(scores, asins, excluded, K)
    assert got == {r: e for r, e in zip(reviewers, expected, strict=True) if e}
    assert len(got[reviewers[0]]) == 2  # only two unrated items were left to it


def test_baselines_take_the_first_unrated_items_of_one_global_order(spark: SparkSession) -> None:
    _, _, bias, asins, reviewers, excluded = _problem(seed=2)
    user_frame, exclude = _frames(spark, reviewers, np.zeros((USERS, RANK)), excluded)
    item_scores = spark.createDataFrame(
        [(a, float(b)) for a, b in zip(asins, bias, strict=True)], "asin string, score double"
    )

    got = _lists(global_top_k(user_frame, exclude, item_scores, K))

    expected = _reference(np.tile(bias, (USERS, 1)), asins, excluded, K)
    assert got == {r: e for r, e in zip(reviewers, expected, strict=True) if e}


def test_several_global_orders_in_one_pass_are_each_its_own_top_k(spark: SparkSession) -> None:
    _, _, bias, asins, reviewers, excluded = _problem(seed=4)
    user_frame, exclude = _frames(spark, reviewers, np.zeros((USERS, RANK)), excluded)
    orders = {"by_bias": bias, "reversed": -bias, "tied": np.zeros(ITEMS)}
    frames = {
        name: spark.createDataFrame(
            [(a, float(s)) for a, s in zip(asins, scores, strict=True)], "asin string, score double"
        )
        for name, scores in orders.items()
    }

    together = global_tops(user_frame, exclude, frames, K).cache()

    assert {row[METHOD] for row in together.select(METHOD).distinct().collect()} == set(orders)
    for name, scores in orders.items():
        got = _lists(together.where(together[METHOD] == name).drop(METHOD))
        expected = _reference(np.tile(scores, (USERS, 1)), asins, excluded, K)
        assert got == {r: e for r, e in zip(reviewers, expected, strict=True) if e}
    together.unpersist()


def test_best_k_matches_a_full_sort_on_random_rows_with_ties_and_exclusions() -> None:
    rng = np.random.default_rng(3)
    for _ in range(500):
        rows, columns, k = int(rng.integers(1, 12)), int(rng.integers(1, 60)), int(rng.integers(0, 35))
        scores = rng.integers(0, 4, size=(rows, columns)).astype(np.float64)
        scores[rng.random((rows, columns)) < 0.25] = -np.inf
        chosen, values = best_k(scores, k, probe_columns=int(rng.integers(1, 12)))  # probes of every density
        for row in range(rows):
            reference = sorted(range(columns), key=lambda c: (-scores[row, c], c))[:k]
            assert list(chosen[row]) == reference
            assert list(values[row]) == [scores[row, c] for c in reference]

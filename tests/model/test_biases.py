"""The biases: the ridge fit by alternating damped means, and its candidates fitted side by side, with real Spark."""

from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_assets.model.biases import BASELINE, Damping, fit_bias_candidates, fit_biases, refit_biases, with_baseline


def _additive(spark: SparkSession) -> tuple[DataFrame, dict[str, float], dict[str, float], float]:
    """Every reviewer rates every item ``mu + a_u + c_i`` exactly, the offsets centred."""
    rng = np.random.default_rng(11)
    users = rng.normal(0, 0.6, 12)
    items = rng.normal(0, 0.4, 7)
    users -= users.mean()
    items -= items.mean()
    mu = 3.5
    rows = [(f"u{u}", f"i{i}", float(mu + a + c)) for u, a in enumerate(users) for i, c in enumerate(items)]
    frame = spark.createDataFrame(rows, "reviewerID string, asin string, overall double")
    return frame, {f"u{u}": a for u, a in enumerate(users)}, {f"i{i}": c for i, c in enumerate(items)}, mu


def test_undamped_biases_recover_exactly_additive_ratings(spark: SparkSession) -> None:
    ratings, user_offsets, item_offsets, mu = _additive(spark)
    biases = fit_biases(ratings, Damping(user=0.0, item=0.0))
    assert biases.global_mean == pytest.approx(mu)
    assert dict(biases.users.collect()) == pytest.approx(user_offsets)
    assert dict(biases.items.collect()) == pytest.approx(item_offsets)
    residual = with_baseline(ratings, biases).agg(F.max(F.abs(F.col("overall") - F.col(BASELINE)))).first()
    assert residual is not None
    assert residual[0] == pytest.approx(0.0, abs=1e-9)


def test_damping_shrinks_the_biases_towards_none(spark: SparkSession) -> None:
    ratings, user_offsets, item_offsets, _ = _additive(spark)
    damped = fit_biases(ratings, Damping(user=50.0, item=50.0))
    users: dict[str, float] = dict(damped.users.collect())
    assert all(abs(users[u]) < abs(a) for u, a in user_offsets.items())
    items: dict[str, float] = dict(damped.items.collect())
    assert all(abs(items[i]) < abs(c) for i, c in item_offsets.items())


def test_candidates_fitted_side_by_side_are_each_the_fit_of_their_damping(spark: SparkSession) -> None:
    rng = np.random.default_rng(5)
    stars = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], 300, p=[0.1, 0.1, 0.1, 0.3, 0.4])
    rows = [(f"u{rng.integers(30)}", f"i{rng.integers(12)}", float(star)) for star in stars]
    ratings = spark.createDataFrame(rows, "reviewerID string, asin string, overall double").dropDuplicates(
        ["reviewerID", "asin"]
    )
    held = spark.createDataFrame(
        [("u1", "i1", 5.0), ("u2", "new-item", 1.0), ("new-user", "i3", 4.0)],
        "reviewerID string, asin string, overall double",
    )
    dampings = [Damping(user=0.5, item=10.0), Damping(user=25.0, item=1.0)]
    candidates = fit_bias_candidates(ratings, dampings)
    together = {(r["reviewerID"], r["asin"]): r for r in candidates.predictions(held).collect()}
    for g, damping in enumerate(dampings):
        alone = fit_biases(ratings, damping)
        assert dict(candidates.pick(g).users.collect()) == pytest.approx(dict(alone.users.collect()))
        assert dict(candidates.pick(g).items.collect()) == pytest.approx(dict(alone.items.collect()))
        for row in with_baseline(held, alone).collect():
            expected = min(max(row[BASELINE], alone.scale[0]), alone.scale[1])
            assert together[(row["reviewerID"], row["asin"])][f"b{g}"] == pytest.approx(expected)
    candidates.unpersist()


def test_a_refit_removes_what_the_other_predictor_explains_and_keeps_the_mean_scale_and_damping(
    spark: SparkSession,
) -> None:
    ratings, user_offsets, item_offsets, _ = _additive(spark)
    baseline = fit_biases(ratings, Damping(user=0.0, item=0.0))
    # Another predictor that explains each item's offset entirely: the refitted biases keep only the reviewers'.
    explained = spark.createDataFrame([(i, float(c)) for i, c in item_offsets.items()], "asin string, explained double")
    refit = refit_biases(ratings.join(explained, "asin"), baseline, "explained")
    assert (refit.global_mean, refit.scale, refit.damping) == (baseline.global_mean, baseline.scale, baseline.damping)
    assert dict(refit.users.collect()) == pytest.approx(user_offsets)
    assert dict(refit.items.collect()) == pytest.approx(dict.fromkeys(item_offsets, 0.0), abs=1e-9)

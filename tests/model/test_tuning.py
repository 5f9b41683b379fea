"""The validation search and the honest rating metrics, on small crafted data with real Spark."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from recsys_assets.model.biases import BASELINE, fit_biases
from recsys_assets.model.evaluation import rating_metrics_of
from recsys_assets.model.features import clean_ratings
from recsys_assets.model.training import (
    COLD,
    PREDICTION,
    RESIDUAL_PREDICTION,
    AlsParams,
    HeadParams,
    Heads,
    Ids,
    TuningConfig,
    fit_model,
    learning_columns,
    rating_head,
)
from recsys_assets.model.tuning import (
    RANKING,
    RATING,
    Judge,
    Trial,
    best,
    best_damping,
    candidates,
    chosen,
    coordinate_sweep,
    ranked,
    rating_axes,
    search,
    standard_errors_behind,
    successive_halving,
    tune_head,
)

SMALL = TuningConfig(
    ranks=[2, 4],
    reg_params=[0.05, 0.5],
    rating_reg_params=[0.05, 0.5],
    alphas=[1.0, 20.0],
    dampings=[0.5, 10.0],
    rating_ranks=[2, 4],
    rungs=[2, 4],
    rating_rungs=[2, 4],
    candidates=4,
    popularity_weights=[0.0, 0.3, 3.0],
    budget_s=86_400,
)
"""A grid small enough to check by hand, and a budget no machine spends: the time limit has its own test."""


@pytest.fixture
def spark(spark: SparkSession, tmp_path: Path) -> SparkSession:
    """The session's Spark, checkpointing into this test's folder.

    ALS checkpoints into the SparkContext's one checkpoint folder, which the last ``als_model``
    set to its run folder of the model store (and deleted after). A fit here would otherwise
    recreate that folder inside another test's store.
    """
    spark.sparkContext.setCheckpointDir(str(tmp_path / "checkpoints"))
    return spark


def _ratings(spark: SparkSession, users: int = 60, items: int = 25, seed: int = 3) -> DataFrame:
    rng = np.random.default_rng(seed)
    rows = [
        (f"r{u}-{i}", "Cat", f"u{u}", f"i{i}", float(rng.choice([1, 2, 3, 4, 5], p=[0.05, 0.05, 0.1, 0.2, 0.6])), u)
        for u in range(users)
        for i in rng.choice(items, size=int(rng.integers(4, 9)), replace=False)
    ]
    reviews = spark.createDataFrame(
        rows, "_id string, category string, reviewerID string, asin string, overall double, unixReviewTime long"
    )
    return clean_ratings(reviews)[0].cache()


def _judge_by(values: Mapping[tuple[int, float], float | list[float]], rungs: list[int], metric: str = "rmse") -> Judge:
    """A judge with known answers, to see which candidates go on; the rung is the index of the iterations. An RMSE
    is given as its value (the same error on each of two ratings: the lowest wins) or as its squared errors."""

    def judge(candidate: HeadParams) -> Trial:
        rung = rungs.index(candidate.max_iter)
        given = values[(candidate.rank, candidate.reg_param)]
        if isinstance(given, list):
            errors = np.array(given)
        else:
            if metric != "rmse":
                return Trial(RATING, rung, candidate, metric, given, 0.0)
            errors = np.full(2, given**2)
        return Trial(RATING, rung, candidate, metric, math.sqrt(errors.mean()), 0.0, errors)

    return judge


def test_successive_halving_promotes_the_best_share_of_each_rung() -> None:
    config = SMALL.model_copy(update={"rungs": [1, 2, 4], "halving": 2})
    judge = _judge_by({(2, 0.05): 1.3, (2, 0.5): 1.1, (4, 0.05): 1.0, (4, 0.5): 1.2}, config.rungs)
    first = [judge(HeadParams(rank=r, reg_param=g, max_iter=1, alpha=1.0)) for r in (2, 4) for g in (0.05, 0.5)]
    trials, exhausted = successive_halving(config, RANKING, first, judge, math.inf)
    assert not exhausted
    per_rung = [[(t.params.rank, t.params.reg_param) for t in trials if t.rung == rung] for rung in range(3)]
    assert per_rung == [[(2, 0.05), (2, 0.5), (4, 0.05), (4, 0.5)], [(4, 0.05), (2, 0.5)], [(4, 0.05)]]  # best first
    assert [t.params.max_iter for t in trials] == [1, 1, 1, 1, 2, 2, 4]
    chosen = best(trials)
    assert (chosen.params.rank, chosen.params.reg_param, chosen.params.max_iter) == (4, 0.05, 4)


def test_the_rating_head_s_first_rung_sweeps_each_axis_at_the_best_point_so_far() -> None:
    params = AlsParams(rank=4, reg_param=0.5, tuning=SMALL)
    # Rank 2 is better at the configured regularisation, and the regularisation is then swept at rank 2.
    values = {(4, 0.5): 1.2, (2, 0.5): 1.0, (2, 0.05): 1.1, (4, 0.05): 0.5}
    judge = _judge_by(values, SMALL.rating_rungs)
    trials, exhausted = coordinate_sweep(params, rating_axes(SMALL, 100), judge, math.inf)
    assert not exhausted
    assert [(t.params.rank, t.params.reg_param) for t in trials] == [(4, 0.5), (2, 0.5), (2, 0.05)]
    assert {(t.rung, t.params.max_iter) for t in trials} == {(0, 2)}
    assert best(trials).params.rank == 2
    assert coordinate_sweep(params, rating_axes(SMALL, 100), judge, -math.inf) == ([], True)  # no budget, no trial


def test_an_rmse_within_one_standard_error_of_the_lowest_goes_to_the_simplest_model() -> None:
    params = AlsParams(rank=4, reg_param=0.05, tuning=SMALL)
    # Squared errors on two validation ratings. Rank 4 with regParam 0.05 is lowest (mean 0.8); the differences from
    # it are 0.05 +- 0.35 (rank 2), 0.1 +- 0.2 (regParam 0.5): within one standard error; and 0.7 +- 0.1.
    errors: dict[tuple[int, float], float | list[float]] = {
        (4, 0.05): [0.6, 1.0],
        (2, 0.05): [1.0, 0.7],
        (4, 0.5): [0.5, 1.3],
        (2, 0.5): [1.4, 1.6],
    }
    noisy = _judge_by(errors, SMALL.rating_rungs)
    every = [noisy(HeadParams(rank=r, reg_param=g, max_iter=2, alpha=1.0)) for r, g in errors]
    assert [standard_errors_behind(t, every[0]) for t in every] == pytest.approx([0, 1 / 7, 1 / 2, 7])
    assert [(t.params.rank, t.params.reg_param) for t in ranked(every)] == [
        (4, 0.5),  # the simplest within one standard error: the strongest regularisation, then the smallest rank
        (2, 0.05),
        (4, 0.05),
        (2, 0.5),  # beyond it: by value
    ]
    trials, _ = tune_head(SMALL, params, RATING, 100, noisy, math.inf)
    assert [(t.rung, t.params.rank, t.params.reg_param) for t in trials] == [
        (0, 4, 0.05),
        (0, 2, 0.05),  # the sweep moves to rank 2 though rank 4 scored lower...
        (0, 2, 0.5),  # ...and sweeps regParam there
        (1, 2, 0.05),  # the best third goes on: the simplest within one standard error
    ]
    assert (best(trials).params.rank, best(trials).params.reg_param) == (2, 0.05)
    # The same means, each the same on every rating: the differences are certain, and the lowest wins.
    exact = _judge_by({key: math.sqrt(np.mean(e)) for key, e in errors.items()}, SMALL.rating_rungs)
    assert best(tune_head(SMALL, params, RATING, 100, exact, math.inf)[0]).params.rank == 4
    # An NDCG is ordered by value alone.
    ndcg = [Trial(RANKING, 0, t.params, "ndcg@10", t.value, 0.0) for t in every]
    assert [(t.params.rank, t.params.reg_param) for t in ranked(ndcg)] == [(2, 0.5), (4, 0.5), (2, 0.05), (4, 0.05)]
    with pytest.raises(ValueError, match="different validation ratings"):
        standard_errors_behind(every[0], Trial(RATING, 0, every[0].params, "rmse", 0.9, 0.0, np.zeros(3)))


def test_a_spent_budget_stops_the_search_and_ndcg_is_maximised() -> None:
    params = AlsParams(
        rank=2, reg_param=0.1, tuning=SMALL.model_copy(update={"reg_params": [0.1], "rating_reg_params": [0.1]})
    )
    values = {(2, 0.1): 0.1, (4, 0.1): 0.3}
    for head in (RATING, RANKING):
        assert tune_head(params.tuning, params, head, 100, _judge_by(values, SMALL.rungs), -math.inf) == ([], True)
    judge = _judge_by(values, SMALL.rating_rungs, "ndcg@10")
    trials, exhausted = tune_head(params.tuning, params, RATING, 100, judge, math.inf)
    assert not exhausted
    assert [(t.rung, t.params.rank) for t in trials] == [(0, 2), (0, 4), (1, 4)]
    assert best(trials).params.rank == 4  # the higher NDCG wins; for RMSE the lower would


def test_a_cut_short_search_keeps_its_finding_but_not_its_few_iterations() -> None:
    params = AlsParams(rank=3, reg_param=0.2, max_iter=10, tuning=SMALL)
    early = [Trial(RATING, 0, HeadParams(rank=4, reg_param=0.05, max_iter=2, alpha=1.0), "rmse", 0.9, 0.0)]
    assert chosen(early, params) == HeadParams(rank=4, reg_param=0.05, max_iter=10, alpha=1.0)
    late = [Trial(RATING, 2, HeadParams(rank=4, reg_param=0.05, max_iter=20, alpha=1.0), "rmse", 0.9, 0.0)]
    assert chosen(late, params).max_iter == 20
    assert chosen([], params) == params.head  # nothing ran: the configured values


def test_the_ranking_head_s_candidates_start_with_the_configured_values_and_draw_from_its_grid() -> None:
    params = AlsParams(rank=4, reg_param=0.5, alpha=1.0, tuning=SMALL)
    ranking = candidates(SMALL, params, largest_rank=100)
    assert ranking[0] == HeadParams(rank=4, reg_param=0.5, max_iter=2, alpha=1.0)
    assert len(ranking) == len(set(ranking)) == 4
    assert {c.alpha for c in ranking} <= {1.0, 20.0}
    assert candidates(SMALL, params, largest_rank=100) == ranking  # seeded
    assert {c.rank for c in candidates(SMALL, params, largest_rank=3)[1:]} == {2}  # grid ranks capped


def test_the_rating_head_s_ranks_are_capped_by_the_data() -> None:
    assert rating_axes(SMALL, largest_rank=100) == {"rank": [2, 4], "reg_param": [0.05, 0.5]}
    assert rating_axes(SMALL.model_copy(update={"rating_reg_params": [3.0]}), 100)["reg_param"] == [3.0]  # its own
    assert rating_axes(SMALL, largest_rank=3)["rank"] == [2]
    assert rating_axes(SMALL, largest_rank=1)["rank"] == [2]  # below the grid: its smallest rank


def test_search_tunes_each_head_on_validation_and_the_model_is_fitted_with_its_choice(spark: SparkSession) -> None:
    train = _ratings(spark)
    params = AlsParams(rank=2, reg_param=0.5, max_iter=2, alpha=1.0, seed=5, tuning=SMALL)
    found = search(train, params, blocks=2, train_ratings=train.count())
    assert found.skipped is None
    assert not found.budget_exhausted
    # The rating head's sweep: the configured values, the other rank, the other regularisation; then the best third.
    # The ranking head's 4 candidates, the best third, then the popularity rung.
    for head, metric, rungs in ((RATING, "rmse", [0, 0, 0, 1]), (RANKING, "ndcg@10", [0, 0, 0, 0, 1, 1, 2, 2, 2])):
        trials = [t for t in found.trials if t.head == head]
        assert [t.rung for t in trials] == rungs
        assert {t.metric for t in trials} == {metric}
        assert all(math.isfinite(t.value) for t in trials)
        assert best(trials).params == getattr(found.heads, head)
    assert found.heads.rating.max_iter == found.heads.ranking.max_iter == 4
    # The popularity rung: the halving's winner, fitted once, judged with each prior.
    halved = best([t for t in found.trials if t.head == RANKING and t.rung < 2]).params
    priors = [t for t in found.trials if t.rung == 2]
    assert [t.params for t in priors] == [halved.with_popularity_weight(w) for w in SMALL.popularity_weights]
    assert found.heads.ranking.popularity_weight in SMALL.popularity_weights
    assert found.heads.rating.popularity_weight == params.popularity_weight

    grid = {(u, i) for u in SMALL.dampings for i in SMALL.dampings}
    assert {(t.damping.user, t.damping.item) for t in found.damping_trials} == grid | {(5.0, 5.0)}
    assert found.damping_trials[0].damping == params.damping  # the configured dampings are a candidate
    assert all(math.isfinite(t.rmse) for t in found.damping_trials)
    assert found.damping == best_damping(found.damping_trials)

    model = fit_model(train, params, found.heads, found.damping, "v", blocks=2)
    assert model.rank == found.heads.ranking.rank
    assert model.ranking_params == found.heads.ranking
    assert model.biases.damping == found.damping


def test_search_is_skipped_when_off_or_too_large_and_the_configured_values_serve(spark: SparkSession) -> None:
    train = _ratings(spark)
    params = AlsParams(rank=3, tuning=SMALL.model_copy(update={"max_train_ratings": 10}))
    too_large = search(train, params, blocks=2, train_ratings=train.count())
    assert too_large.heads == Heads.untuned(params)
    assert too_large.damping == params.damping
    assert not too_large.trials
    assert not too_large.damping_trials
    assert "max_train_ratings" in str(too_large.skipped)
    off = search(train, params.model_copy(update={"tuning": SMALL.model_copy(update={"budget_s": 0})}), 2, 1)
    assert off.heads == Heads.untuned(params)
    assert "off" in str(off.skipped)


def test_every_held_out_rating_is_predicted_and_cold_pairs_get_the_baseline(spark: SparkSession) -> None:
    train = _ratings(spark)
    params = AlsParams(rank=2, max_iter=3)
    model = fit_model(train, params, Heads.untuned(params), params.damping, "v", blocks=2)
    held = spark.createDataFrame(
        [("u1", "i1", 5.0), ("new-user", "i1", 4.0), ("u1", "new-item", 3.0), ("new-user", "new-item", 1.0)],
        "reviewerID string, asin string, overall double",
    )
    predicted = {(r["reviewerID"], r["asin"]): r for r in model.predict_ratings(held).collect()}
    assert len(predicted) == 4
    assert {key for key, row in predicted.items() if not row[COLD]} == {("u1", "i1")}
    for row in predicted.values():
        if row[COLD]:
            assert row[PREDICTION] == pytest.approx(row[BASELINE])
    assert predicted[("new-user", "new-item")][PREDICTION] == pytest.approx(model.biases.global_mean)
    item_bias = model.baseline.items.where(F.col("asin") == "i1").first()  # the bias baseline's
    assert item_bias is not None
    assert predicted[("new-user", "i1")][PREDICTION] == pytest.approx(model.biases.global_mean + item_bias[1])
    assert predicted[("u1", "i1")][PREDICTION] != pytest.approx(predicted[("u1", "i1")][BASELINE])


def test_predictions_are_held_to_the_training_rating_scale(spark: SparkSession) -> None:
    train = _ratings(spark)
    # Barely regularised, so it overshoots; one bias round, so the baseline column is what the factors add to.
    params = AlsParams(rank=8, max_iter=10, reg_param=0.001, bias_rounds=1)
    model = fit_model(train, params, Heads.untuned(params), params.damping, "v", blocks=2)
    assert model.biases.scale == (1.0, 5.0)
    rows = model.predict_ratings(train).select(BASELINE, RESIDUAL_PREDICTION, PREDICTION).collect()
    raw = np.asarray([r[BASELINE] + r[RESIDUAL_PREDICTION] for r in rows])
    assert raw.max() > 5.0  # what the model alone would say: off the scale
    assert [r[PREDICTION] for r in rows] == pytest.approx(np.clip(raw, 1.0, 5.0).tolist())


def _biases(table: DataFrame) -> dict[str, float]:
    return {row[0]: row[1] for row in table.collect()}


def _collected(frame: DataFrame, value: str) -> dict[tuple[str, str], float]:
    return {(r["reviewerID"], r["asin"]): r[value] for r in frame.collect()}


def test_one_bias_round_is_an_als_fit_on_the_residual_of_the_biases_alone(spark: SparkSession) -> None:
    train = _ratings(spark)
    params = AlsParams(rank=3, max_iter=5, implicit_prefs=False, bias_rounds=1)
    model = fit_model(train, params, Heads.untuned(params), params.damping, "v", blocks=2)
    assert model.biases is model.baseline
    biases = fit_biases(train, params.damping)
    ids = Ids.of(train)
    rating = rating_head(params, params.head, 2).fit(ids.attach(learning_columns(train, biases)))
    by_hand = rating.transform(ids.attach(learning_columns(train, biases)))
    expected = by_hand.select("reviewerID", "asin", (F.col(BASELINE) + F.col(RESIDUAL_PREDICTION)).alias("p"))
    predicted = _collected(model.predict_ratings(train), PREDICTION)
    assert predicted == pytest.approx({key: min(max(p, 1.0), 5.0) for key, p in _collected(expected, "p").items()})


def test_refitting_the_biases_on_the_factors_residual_fits_the_training_ratings_closer(spark: SparkSession) -> None:
    train = _ratings(spark)
    rmse: dict[int, float | None] = {}
    for rounds in (1, 3):
        params = AlsParams(rank=3, reg_param=0.1, max_iter=10, implicit_prefs=False, bias_rounds=rounds)
        model = fit_model(train, params, Heads.untuned(params), params.damping, "v", blocks=2)
        rmse[rounds] = rating_metrics_of(model.predict_ratings(train), {"model": F.col(PREDICTION)})["model"]["rmse"]
        if rounds > 1:
            assert model.biases is not model.baseline
            alone = _biases(model.baseline.users)
            assert _biases(model.biases.users) != pytest.approx(alone)
            # The bias baseline is still the ridge fit of the ratings alone, and it predicts the cold pairs.
            assert alone == pytest.approx(_biases(fit_biases(train, params.damping).users))
            held = spark.createDataFrame([("new-user", "i1", 4.0)], "reviewerID string, asin string, overall double")
            (row,) = model.predict_ratings(held).collect()
            assert row[COLD]
            assert row[PREDICTION] == pytest.approx(row[BASELINE])
            assert row[BASELINE] == pytest.approx(model.baseline.global_mean + _biases(model.baseline.items)["i1"])
    assert rmse[1] is not None
    assert rmse[3] is not None
    assert rmse[3] < rmse[1] - 0.005

"""The validation search that picks each head's hyperparameters, without ever seeing the test split.

The train split is split again (leave one out per reviewer, seeded): the search fits on the
rest and judges on that validation rating, so nothing it learns comes from the test split,
which ``model_evaluation`` touches once. The biases are refitted on the search's own train
part, so the validation ratings never leak into them either; so are the rating head's bias
refits (``bias_rounds``), inside each of its trials.

The biases' dampings are chosen first, by validation RMSE: every user damping of the grid
with every item damping, all fitted in the same aggregations (``fit_bias_candidates``) and
judged in one pass. The heads are then searched on the residuals of the chosen biases.

Successive halving (Jamieson and Talwalkar, 2016) spends the budget where it matters: every
candidate of the first rung gets a few iterations, and only the best of each rung get more. A
wall-clock budget stops the search early; the best candidate of the highest rung reached wins.

The two heads' first rungs differ, each as measured on the shared categories and generated
data. The rating head's is a coordinate sweep from ``AlsParams``' own values: every rank of
its grid, then every regularisation at the best rank so far, so each axis is covered whatever
the grid's size. Seeded draws from its whole grid had never tried the rank that mattered on
generated-5core, whose ratings come from a rank-3 taste (validation RMSE 0.963 against
0.99-1.00 for every other rank). The ranking head keeps seeded draws from a coarser grid:
judged by NDCG@10 on one held-out item per reviewer, a sweep through every rank and alpha
chose on noise in the small categories (test NDCG@10 0.93 -> 0.83 on All_Beauty, 0.33 -> 0.14
on Appliances, each at rank 2 or 3).

The rating head's trials are ordered by the one-standard-error rule (``ranked``), the standard
error of each trial's paired difference from the lowest: a few dozen validation ratings cannot
tell apart most candidates, and the lowest of them had been a noise winner on Appliances (test
RMSE 0.593 against the bias baseline's 0.551). Its strongest regularisation leaves the factors
next to nothing to add to the biases, so the simplest candidate is, in effect, the biases alone.

The ranking head's popularity prior needs no fit of its own: when the halving finished within
the budget, the chosen head is fitted once more and its lists judged at each
``popularity_weights``, a last rung (``popularity_rung``) whose best becomes the choice. The
cold pairs of the validation split get the same baseline prediction from every candidate, so
judging on the warm pairs only orders the candidates the same way.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from recsys_assets.model.biases import BiasCandidates, Biases, Damping, fit_bias_candidates
from recsys_assets.model.evaluation import ranking_metrics, rating_metrics_of, squared_errors
from recsys_assets.model.features import TEST, TRAIN, SplitMethod, split_ratings
from recsys_assets.model.training import (
    COLD,
    PREDICTION,
    AlsParams,
    HeadParams,
    Heads,
    Ids,
    Ranker,
    TrainedModel,
    TuningConfig,
    fit_rating_head,
    item_positives,
    learning_columns,
    popularity_prior,
    ranking_head,
)
from recsys_core.contract import LIKED_RATING

RATING, RANKING = "rating", "ranking"
HEADS = (RATING, RANKING)
NDCG_CUTOFF = 10
RANK_SHARE = 5
"""A rank above 1/5 of the smaller side (reviewers or items) only memorises: such grid ranks are not tried."""


@dataclass(frozen=True)
class Trial:
    """One fit of one candidate at one rung, and how it did on the validation split."""

    head: str
    rung: int
    params: HeadParams
    metric: str
    value: float
    seconds: float
    squared_errors: np.ndarray | None = field(default=None, compare=False, repr=False)
    """An RMSE's, rating by rating, in the validation split's order; an NDCG's trials are ordered by value alone."""


@dataclass(frozen=True)
class DampingTrial:
    """One candidate of the biases' dampings, and its validation RMSE."""

    damping: Damping
    rmse: float


@dataclass(frozen=True)
class Search:
    heads: Heads
    damping: Damping
    trials: list[Trial]
    damping_trials: list[DampingTrial]
    skipped: str | None  # why the search did not run, when it did not
    budget_exhausted: bool

    @classmethod
    def untuned(cls, params: AlsParams, why: str) -> Search:
        return cls(Heads.untuned(params), params.damping, [], [], why, False)


def damping_search(candidates: BiasCandidates, held: DataFrame) -> list[DampingTrial]:
    """Each candidate's RMSE on ``held``, in one pass."""
    columns = candidates.columns
    metrics = rating_metrics_of(candidates.predictions(held), {c: F.col(c) for c in columns})
    rmse = [metrics[c]["rmse"] for c in columns]
    return [DampingTrial(d, math.inf if r is None else r) for d, r in zip(candidates.dampings, rmse, strict=True)]


def damping_grid(config: TuningConfig, own: Damping) -> list[Damping]:
    """``own``, then every (user, item) pair of the grid."""
    return [own, *(d for u in config.dampings for i in config.dampings if (d := Damping(user=u, item=i)) != own)]


def best_damping(trials: list[DampingTrial]) -> Damping:
    """The lowest validation RMSE; a tie goes to the stronger damping (the simpler biases)."""
    return min(trials, key=lambda t: (t.rmse, -(t.damping.user + t.damping.item))).damping


Judge = Callable[[HeadParams], Trial]


def rungs_of(config: TuningConfig, head: str) -> list[int]:
    """The iterations of each rung of ``head``'s search."""
    return config.rating_rungs if head == RATING else config.rungs


def rating_axes(config: TuningConfig, largest_rank: int) -> dict[str, Sequence[float]]:
    """The values each axis of the rating head's grid takes, in the order its sweep visits them."""
    return {"rank": _capped(config.rating_ranks, largest_rank), "reg_param": config.rating_reg_params}


def _capped(ranks: list[int], largest_rank: int) -> list[int]:
    """The ranks the data can support; the smallest when it supports none."""
    return [rank for rank in ranks if rank <= largest_rank] or [min(ranks)]


def candidates(config: TuningConfig, params: AlsParams, largest_rank: int) -> list[HeadParams]:
    """The ranking head's first rung: ``AlsParams``' own values, then seeded draws from the grid, without repeats,
    ranks capped by the data."""
    grid = [
        HeadParams(rank=rank, reg_param=reg, max_iter=config.rungs[0], alpha=alpha)
        for rank, reg, alpha in itertools.product(_capped(config.ranks, largest_rank), config.reg_params, config.alphas)
    ]
    own = params.head.with_iterations(config.rungs[0])
    rng = np.random.default_rng([params.seed, HEADS.index(RANKING)])
    drawn = [grid[i] for i in rng.choice(len(grid), size=min(len(grid), config.candidates), replace=False)]
    return [own, *(candidate for candidate in drawn if candidate != own)][: config.candidates]


def tune_head(
    config: TuningConfig, params: AlsParams, head: str, largest_rank: int, judge: Judge, deadline: float
) -> tuple[list[Trial], bool]:
    """Every trial of one head's search (its first rung, then ``successive_halving``), and whether the budget ran
    out before the last rung was done."""
    if head == RATING:
        first, exhausted = coordinate_sweep(params, rating_axes(config, largest_rank), judge, deadline)
    else:
        first, exhausted = _judge_each(candidates(config, params, largest_rank), judge, deadline)
    if exhausted:
        return first, True
    return successive_halving(config, head, first, judge, deadline)


def _judge_each(start: list[HeadParams], judge: Judge, deadline: float) -> tuple[list[Trial], bool]:
    """``start``'s trials in order, until the deadline; and whether it passed first."""
    trials: list[Trial] = []
    for candidate in start:
        if time.monotonic() > deadline:
            return trials, True
        trials.append(judge(candidate))
    return trials, False


def coordinate_sweep(
    params: AlsParams, swept: dict[str, Sequence[float]], judge: Judge, deadline: float
) -> tuple[list[Trial], bool]:
    """The rating head's first rung: ``AlsParams``' own values, then each axis of ``swept`` in turn, every value of
    it tried at the best point found so far. Every trial, and whether the budget ran out first."""
    trials: list[Trial] = []
    centre = params.head.with_iterations(params.tuning.rating_rungs[0])
    for axis, values in swept.items():
        for candidate in (centre, *(centre.model_copy(update={axis: value}) for value in values)):
            if any(trial.params == candidate for trial in trials):
                continue
            if time.monotonic() > deadline:
                return trials, True
            trials.append(judge(candidate))
        centre = ranked(trials)[0].params
    return trials, False


def successive_halving(
    config: TuningConfig, head: str, first: list[Trial], judge: Judge, deadline: float
) -> tuple[list[Trial], bool]:
    """``first`` (the first rung's trials) and every later rung's of ``head``: the best ``1/halving`` of each rung are
    fitted again with the next rung's iterations. Also whether the budget ran out before the last rung was done."""
    trials, done = list(first), first
    for iterations in rungs_of(config, head)[1:]:
        survivors = [trial.params for trial in ranked(done)[: max(1, math.ceil(len(done) / config.halving))]]
        done, exhausted = _judge_each([survivor.with_iterations(iterations) for survivor in survivors], judge, deadline)
        trials += done
        if exhausted:
            return trials, True
    return trials, False


def ranked(trials: list[Trial]) -> list[Trial]:
    """Best first. Among RMSEs, the one-standard-error rule: every trial within one standard error of the lowest
    comes first, the simplest first, as a smaller difference is validation noise (Hastie, Tibshirani and Friedman,
    The Elements of Statistical Learning, 2009, section 7.10)."""
    by_value = sorted(trials, key=_by_value)
    if not by_value or by_value[0].squared_errors is None:
        return by_value
    close = [standard_errors_behind(trial, by_value[0]) <= 1 for trial in by_value]
    return sorted((t for t, c in zip(by_value, close, strict=True) if c), key=_cost) + [
        t for t, c in zip(by_value, close, strict=True) if not c
    ]


def standard_errors_behind(trial: Trial, lowest: Trial) -> float:
    """How far ``trial``'s mean squared error is above ``lowest``'s, in standard errors of that difference.

    Paired, rating by rating, on the same validation ratings: most of each rating's error is the
    rating's own, shared by every candidate, so the difference is known far more precisely than
    either RMSE. Fewer than two ratings are no evidence either way: 0.
    """
    if trial.squared_errors is None or lowest.squared_errors is None:
        raise ValueError("standard errors need both trials' squared errors")
    if trial.squared_errors.shape != lowest.squared_errors.shape:
        raise ValueError("the trials were judged on different validation ratings")
    difference = trial.squared_errors - lowest.squared_errors
    if len(difference) < 2 or difference.mean() <= 0:
        return 0.0
    standard_error = difference.std(ddof=1) / math.sqrt(len(difference))
    return math.inf if standard_error == 0 else float(difference.mean() / standard_error)


def _by_value(trial: Trial) -> tuple[float, float, int, float]:
    """Best value first; a tie goes to the simpler model."""
    return (trial.value if trial.metric == "rmse" else -trial.value), *_cost(trial)


def _cost(trial: Trial) -> tuple[float, int, float]:
    """How complex a trial's model is: the weakness of its regularisation, then its rank, then its popularity
    prior's weight. Regularisation first: a strongly regularised rank 4 adds next to nothing to the biases, a weakly
    regularised rank 2 does (on Gift_Cards, test RMSE 0.359 against 0.408, each within one standard error)."""
    return -trial.params.reg_param, trial.params.rank, trial.params.popularity_weight


def best(trials: list[Trial]) -> Trial:
    """The best trial of the highest rung any trial reached."""
    top = max(trial.rung for trial in trials)
    return ranked([trial for trial in trials if trial.rung == top])[0]


def chosen(trials: list[Trial], params: AlsParams) -> HeadParams:
    """What the head is fitted with: the best trial's values, never fewer iterations than configured.

    A budget spent early leaves the winner of a low rung, judged at a few iterations; its rank and
    regularisation are the search's finding, its iteration count only the rung's. A budget spent
    before any trial leaves ``AlsParams``' own values.
    """
    if not trials:
        return params.head
    winner = best(trials).params
    return winner.with_iterations(max(winner.max_iter, params.max_iter))


@dataclass(frozen=True)
class _Validation:
    """The search's own split of the train split, with what each judge needs, cached once."""

    learn: DataFrame  # learning_columns of the search's train part, with the indices
    positives: DataFrame  # item_positives of ``learn``: the popularity prior's counts
    biases: Biases  # the best damping's, as the heads' trials learn from them
    candidates: BiasCandidates  # every damping's biases, fitted on the search's train part only
    damping_trials: list[DampingTrial]
    ids: Ids
    held: DataFrame  # one validation rating per reviewer with more than one
    reviewers: DataFrame  # reviewers ranked by the ranking judge
    relevant: DataFrame  # their liked validation items
    exclude: DataFrame  # what they rated in the search's train part

    def release(self) -> None:
        frames = (self.learn, self.positives, self.held, self.reviewers, self.relevant, self.ids.users, self.ids.items)
        for frame in frames:
            frame.unpersist()
        self.candidates.unpersist()


def _validation(train: DataFrame, params: AlsParams) -> _Validation:
    labelled = split_ratings(train, SplitMethod.LEAVE_K_OUT, params.seed + 1, 0.5, 1)
    part = labelled.where(F.col("split") == TRAIN).drop("split")
    held = labelled.where(F.col("split") == TEST).drop("split").cache()
    relevant = held.where(F.col("overall") >= LIKED_RATING).select("reviewerID", "asin").cache()
    reviewers = (
        relevant.select("reviewerID")
        .distinct()
        .orderBy(F.xxhash64("reviewerID", F.lit(params.seed)), "reviewerID")
        .limit(params.tuning.max_validation_users)
        .cache()
    )
    candidates = fit_bias_candidates(part, damping_grid(params.tuning, params.damping))
    damping_trials = damping_search(candidates, held)
    biases = candidates.pick(candidates.dampings.index(best_damping(damping_trials)))
    ids = Ids.of(part).cache()
    learn = ids.attach(learning_columns(part, biases)).cache()
    return _Validation(
        learn,
        item_positives(learn).cache(),
        biases,
        candidates,
        damping_trials,
        ids,
        held,
        reviewers,
        relevant,
        part.select("reviewerID", "asin"),
    )


def search(train: DataFrame, params: AlsParams, blocks: int, train_ratings: int) -> Search:
    """Each head's parameters: from the search when it is on and affordable, else ``AlsParams``' own."""
    config = params.tuning
    if config.budget_s == 0:
        return Search.untuned(params, "tuning is off (budget_s = 0)")
    if train_ratings > config.max_train_ratings:
        reason = f"{train_ratings:,} training ratings is more than max_train_ratings ({config.max_train_ratings:,})"
        return Search.untuned(params, reason)
    started = time.monotonic()
    validation = _validation(train, params)
    try:
        sizes = validation.learn.agg(F.countDistinct("reviewerID"), F.countDistinct("asin")).first()
        largest_rank = max(1, min(int(sizes[0]), int(sizes[1])) // RANK_SHARE) if sizes else 1
        # The rating head gets a third of the budget; the ranking head's trials (a top-k each) the rest.
        rating_share = config.budget_s / 3 if params.implicit_prefs else config.budget_s
        trials, exhausted = tune_head(
            config,
            params,
            RATING,
            largest_rank,
            _judge(RATING, params, lambda candidate: _validation_rmse(validation, params, blocks, candidate)),
            started + rating_share,
        )
        rating = ranking = chosen(trials, params)
        if params.implicit_prefs:
            ranking_trials, ranking_exhausted = tune_head(
                config,
                params,
                RANKING,
                largest_rank,
                _judge(RANKING, params, lambda candidate: _validation_ndcg(validation, params, blocks, candidate)),
                started + config.budget_s,
            )
            if not ranking_exhausted:
                ranking_trials += popularity_rung(validation, params, blocks, chosen(ranking_trials, params))
            trials += ranking_trials
            exhausted = exhausted or ranking_exhausted
            ranking = chosen(ranking_trials, params)
    finally:
        validation.release()
    return Search(Heads(rating, ranking), validation.biases.damping, trials, validation.damping_trials, None, exhausted)


Score = tuple[str, float, np.ndarray | None]
"""A validation metric's name, its value, and where it is an RMSE the squared errors it comes from."""


def _judge(head: str, params: AlsParams, score: Callable[[HeadParams], Score]) -> Judge:
    """A judge that times ``score`` and files its result under the candidate's rung."""

    def judge(candidate: HeadParams) -> Trial:
        started = time.monotonic()
        metric, value, errors = score(candidate)
        rung = rungs_of(params.tuning, head).index(candidate.max_iter)
        return Trial(head, rung, candidate, metric, value, time.monotonic() - started, errors)

    return judge


def _validation_rmse(validation: _Validation, params: AlsParams, blocks: int, candidate: HeadParams) -> Score:
    explicit = params.model_copy(update={"implicit_prefs": False})
    baseline = validation.biases
    rating, biases = fit_rating_head(params, candidate, blocks, validation.learn, baseline)
    heads = Heads(candidate, candidate)
    model = TrainedModel(
        "validation", explicit, biases, baseline, heads, validation.ids, rating, None, validation.positives
    )
    errors = squared_errors(model.predict_ratings(validation.held).where(~F.col(COLD)), F.col(PREDICTION))
    if biases is not baseline:
        biases.unpersist()
    return "rmse", math.sqrt(errors.mean()) if len(errors) else math.inf, errors


def _validation_ndcg(validation: _Validation, params: AlsParams, blocks: int, candidate: HeadParams) -> Score:
    head = ranking_head(params, candidate, blocks).fit(validation.learn)
    return _ndcg_of(validation, head, candidate.popularity_weight)


def _ndcg_of(validation: _Validation, head: ALSModel, popularity_weight: float) -> Score:
    """The validation NDCG of the lists a fitted ranking head makes with this popularity prior."""
    prior = popularity_prior(validation.positives, popularity_weight)
    top = Ranker(validation.ids, head, validation.biases, prior).recommend(
        validation.reviewers, validation.exclude, NDCG_CUTOFF
    )
    metric = f"ndcg@{NDCG_CUTOFF}"
    ndcg = ranking_metrics(top, validation.relevant, validation.reviewers, (NDCG_CUTOFF,)).get(metric)
    return metric, 0.0 if ndcg is None else ndcg, None


def popularity_rung(validation: _Validation, params: AlsParams, blocks: int, head: HeadParams) -> list[Trial]:
    """The ranking head ``head``, fitted once and judged with each of the grid's popularity priors: the search's
    last rung (numbered after the halving's), so its best trial is the ranking head's choice."""
    started = time.monotonic()
    fitted = ranking_head(params, head, blocks).fit(validation.learn)
    trials = []
    for weight in params.tuning.popularity_weights:
        metric, value, _ = _ndcg_of(validation, fitted, weight)
        seconds, started = time.monotonic() - started, time.monotonic()  # the first trial's time has the fit
        trials.append(
            Trial(RANKING, len(params.tuning.rungs), head.with_popularity_weight(weight), metric, value, seconds)
        )
    return trials


def table_rows(trials: list[Trial]) -> Iterator[list[object]]:
    """The search's table, one row per trial, in the order they ran; an RMSE's with its standard errors behind the
    lowest of its head's rung."""
    for trial in trials:
        p = trial.params
        behind = None
        if trial.squared_errors is not None:
            rung = [t for t in trials if (t.head, t.rung) == (trial.head, trial.rung)]
            behind = standard_errors_behind(trial, min(rung, key=_by_value))
        yield [
            trial.head,
            trial.rung,
            p.rank,
            p.reg_param,
            p.alpha,
            p.popularity_weight,
            p.max_iter,
            trial.metric,
            trial.value,
            behind,
            trial.seconds,
        ]

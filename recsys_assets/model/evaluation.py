"""Held-out evaluation of the model against three baselines, and the gate that decides publishing.

Definitions, so the numbers can be checked by hand:

- Rating metrics (RMSE, MAE) use every held-out rating, and every predictor is scored on
  exactly those rows. A *cold* pair, whose reviewer or item the model's factors do not know,
  gets the bias baseline's prediction from the model; their number is reported beside.
- A held-out item is *relevant* when its rating is >= ``relevant_min_rating``. A reviewer is
  evaluated for ranking when they are known to the model and have at least one relevant
  held-out item. Each method ranks every catalogue item (items seen in training) that the
  reviewer did not rate in training; ties are broken by asin.
- precision@k = hits/k; recall@k = hits/|relevant|; NDCG@k with binary gains,
  DCG = sum 1/log2(rank+1) and the ideal DCG over min(|relevant|, k) hits;
  MAP@k = mean over reviewers of sum_{hits at rank i} (hits in top i / i) / min(|relevant|, k).
- coverage@k = distinct items in anyone's top k / catalogue size.

Baselines: the global mean (a constant: its ranking is the arbitrary asin order), damped
user+item biases (ranking by item bias), and popularity (ranking by training count; it
predicts no ratings). When the model fails the gate, the servable baseline with the best
NDCG@10 (``best_baseline``) serves the reviewers' lists instead.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from dagster import MarkdownMetadataValue
from matplotlib.figure import Figure
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from recsys_assets.model.biases import BASELINE
from recsys_assets.model.features import TEST, TRAIN
from recsys_assets.model.plots import bar_chart, figure
from recsys_assets.model.ranking import METHOD, global_tops
from recsys_assets.model.training import COLD, PREDICTION, TrainedModel

MODEL, GLOBAL_MEAN, BIAS, POPULARITY = "model", "global_mean", "user_item_bias", "popularity"
METHODS = (MODEL, GLOBAL_MEAN, BIAS, POPULARITY)
SERVABLE_BASELINES = (POPULARITY, BIAS)
"""Baselines whose ranking is a recommendation; the global mean's is the asin order. Popularity wins ties."""
CUTOFFS = (5, 10)
RANKING_METRICS = ("precision", "recall", "ndcg", "map")

Metrics = dict[str, float | None]


def rating_metrics_of(predictions: DataFrame, predictors: dict[str, Column]) -> dict[str, Metrics]:
    """RMSE and MAE of each named predictor against ``overall``, all in one pass over ``predictions``."""
    aggregates: list[Column] = []
    for name, prediction in predictors.items():
        error = prediction - F.col("overall")
        aggregates += [F.sqrt(F.avg(error * error)).alias(f"{name}/rmse"), F.avg(F.abs(error)).alias(f"{name}/mae")]
    row = predictions.agg(*aggregates).first()
    values = {} if row is None else row.asDict()
    return {
        name: {m: None if values.get(f"{name}/{m}") is None else float(values[f"{name}/{m}"]) for m in ("rmse", "mae")}
        for name in predictors
    }


def squared_errors(predictions: DataFrame, prediction: Column) -> np.ndarray:
    """Each rating's squared error against ``overall``, ordered by (reviewerID, asin): two predictors' errors on the
    same ratings line up pair by pair."""
    error = prediction - F.col("overall")
    rows = predictions.select((error * error).alias("squared"), "reviewerID", "asin").orderBy("reviewerID", "asin")
    return np.array([row[0] for row in rows.select("squared").collect()], dtype=float)


def _ideal_dcg(relevant: Column, k: int) -> Column:
    """Ideal DCG for min(relevant, k) hits, looked up from a k-long table of prefix sums."""
    prefix = np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))
    return F.element_at(F.array(*[F.lit(float(v)) for v in prefix]), F.least(relevant, F.lit(k)).cast("int"))


def ranking_metrics(top: DataFrame, relevant: DataFrame, reviewers: DataFrame, cutoffs: tuple[int, ...]) -> Metrics:
    """Precision, recall, NDCG and MAP at each cutoff, averaged over ``reviewers``.

    ``top`` holds (reviewerID, asin, rank) with rank 1..max(cutoffs); ``relevant`` holds the
    (reviewerID, asin) pairs that count as hits; ``reviewers`` are those evaluated.
    """
    return ranking_metrics_of({"": top}, relevant, reviewers, cutoffs)[""]


def ranking_metrics_of(
    tops: dict[str, DataFrame], relevant: DataFrame, reviewers: DataFrame, cutoffs: tuple[int, ...]
) -> dict[str, Metrics]:
    """``ranking_metrics`` of each named method's top lists, in one query grouped by method."""
    per_user_relevant = relevant.groupBy("reviewerID").agg(F.count(F.lit(1)).alias("n_relevant"))
    evaluated = (
        reviewers.select("reviewerID")
        .distinct()
        .join(per_user_relevant, "reviewerID")
        .withColumn(METHOD, F.explode(F.array(*[F.lit(name) for name in tops])))  # each reviewer once per method
    )
    listed = [top.select(F.lit(name).alias(METHOD), "reviewerID", "asin", "rank") for name, top in tops.items()]
    hits = (
        functools.reduce(DataFrame.unionByName, listed)
        .join(relevant.select("reviewerID", "asin").withColumn("hit", F.lit(1)), ["reviewerID", "asin"], "left")
        .fillna(0, ["hit"])
        .withColumn("hits_so_far", F.sum("hit").over(Window.partitionBy(METHOD, "reviewerID").orderBy("rank")))
    )
    aggregates: list[Column] = []
    for k in cutoffs:
        at_k = F.col("rank") <= k
        aggregates += [
            F.sum(F.when(at_k, F.col("hit")).otherwise(0)).alias(f"hits_{k}"),
            F.sum(F.when(at_k, F.col("hit") / F.log2(F.col("rank") + 1)).otherwise(0.0)).alias(f"dcg_{k}"),
            F.sum(F.when(at_k, F.col("hit") * F.col("hits_so_far") / F.col("rank")).otherwise(0.0)).alias(f"ap_{k}"),
        ]
    per_user = hits.groupBy(METHOD, "reviewerID").agg(*aggregates)
    scored = evaluated.join(per_user, [METHOD, "reviewerID"], "left").fillna(0)
    averages: list[Column] = []
    for k in cutoffs:
        n_rel = F.col("n_relevant")
        averages += [
            F.avg(F.col(f"hits_{k}") / k).alias(f"precision@{k}"),
            F.avg(F.col(f"hits_{k}") / n_rel).alias(f"recall@{k}"),
            F.avg(F.col(f"dcg_{k}") / _ideal_dcg(n_rel, k)).alias(f"ndcg@{k}"),
            F.avg(F.col(f"ap_{k}") / F.least(n_rel, F.lit(k))).alias(f"map@{k}"),
        ]
    rows = {row[METHOD]: row.asDict() for row in scored.groupBy(METHOD).agg(*averages).collect()}
    names = [f"{metric}@{k}" for k in cutoffs for metric in RANKING_METRICS]
    # No evaluated reviewer: no row for any method, and every average is undefined.
    return {
        name: {m: None if rows.get(name, {}).get(m) is None else float(rows[name][m]) for m in names} for name in tops
    }


def coverage_of(tops: dict[str, DataFrame], catalogue_size: int, k: int) -> dict[str, float]:
    """Each method's coverage@k: the distinct items in anyone's top ``k``, over the catalogue, in one query."""
    listed = [top.where(F.col("rank") <= k).select(F.lit(name).alias(METHOD), "asin") for name, top in tops.items()]
    counted = functools.reduce(DataFrame.unionByName, listed).groupBy(METHOD).agg(F.countDistinct("asin"))
    shown: dict[str, int] = {row[0]: row[1] for row in counted.collect()}
    return {name: shown.get(name, 0) / catalogue_size if catalogue_size else 0.0 for name in tops}


GateStatus = Literal["pass", "fail", "too_small"]


@dataclass(frozen=True)
class GateVerdict:
    status: GateStatus
    reasons: list[str] = field(default_factory=list)

    @property
    def publishable(self) -> bool:
        return self.status != "fail"


def judge(
    metrics: dict[str, Metrics], rating_rows: int, ranking_users: int, min_rating_rows: int, min_ranking_users: int
) -> GateVerdict:
    """Publish only a model that beats the bias baseline on RMSE and popularity on NDCG@10.

    Below ``min_rating_rows`` held-out ratings or ``min_ranking_users`` evaluated reviewers
    the comparison is noise, so the model is published with a warning instead of judged; the
    comparisons it lost are still named, so an analyst sees what was not held against it.
    """
    losses = _losses(metrics)
    if rating_rows < min_rating_rows or ranking_users < min_ranking_users:
        return GateVerdict(
            "too_small",
            [
                f"too little held-out data to judge: {rating_rows} ratings (need {min_rating_rows}), "
                f"{ranking_users} reviewers (need {min_ranking_users}); published without a verdict",
                *(f"{loss}, on too little data to tell" for loss in losses),
            ],
        )
    return GateVerdict("fail", losses) if losses else GateVerdict("pass")


def _losses(metrics: dict[str, Metrics]) -> list[str]:
    """Each of the gate's comparisons that the model does not win."""
    losses = []
    model_rmse, bias_rmse = metrics[MODEL]["rmse"], metrics[BIAS]["rmse"]
    if model_rmse is None or bias_rmse is None or not model_rmse < bias_rmse:
        losses.append(f"RMSE {model_rmse} does not beat the user+item bias baseline's {bias_rmse}")
    model_ndcg, pop_ndcg = metrics[MODEL]["ndcg@10"], metrics[POPULARITY]["ndcg@10"]
    if model_ndcg is None or pop_ndcg is None or not model_ndcg > pop_ndcg:
        losses.append(f"NDCG@10 {model_ndcg} does not beat popularity's {pop_ndcg}")
    return losses


def best_baseline(metrics: dict[str, Metrics]) -> str:
    """The servable baseline that ranks best (NDCG@10): what serves the lists when the model fails the gate."""
    return max(SERVABLE_BASELINES, key=lambda name: metrics[name].get("ndcg@10") or 0.0)


def baseline_scores(model: TrainedModel, train: DataFrame) -> dict[str, DataFrame]:
    """``asin, score`` of every catalogue item (seen in training) per baseline: one global order each."""
    catalogue = train.select("asin").distinct()
    return {
        GLOBAL_MEAN: catalogue.withColumn("score", F.lit(model.biases.global_mean)),
        BIAS: catalogue.join(model.baseline.items, "asin").withColumnRenamed("item_bias", "score"),
        POPULARITY: train.groupBy("asin").agg(F.count(F.lit(1)).cast("double").alias("score")),
    }


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, Metrics]
    rating_rows: int  # every held-out rating
    cold_rating_rows: int  # of which the model predicted by the bias baseline alone
    ranking_users: int  # evaluated for ranking: the seeded sample when there were more than the limit
    ranking_users_eligible: int
    catalogue_size: int


def evaluate(
    model: TrainedModel, ratings: DataFrame, relevant_min_rating: float, max_ranking_users: int, seed: int
) -> Evaluation:
    """Score the model and the baselines on the held-out split of ``ratings``.

    Rating metrics use every held-out rating. Ranking metrics use every eligible reviewer, or
    a seeded sample of ``max_ranking_users`` of them (by hash of reviewerID) when there are more.
    """
    train = ratings.where(F.col("split") == TRAIN)
    test = ratings.where(F.col("split") == TEST)
    mu = model.biases.global_mean

    predicted = model.predict_ratings(test).select("overall", PREDICTION, BASELINE, COLD).cache()
    counts = predicted.agg(F.count(F.lit(1)), F.count(F.when(F.col(COLD), True))).first()
    rating_rows, cold_rows = (int(counts[0]), int(counts[1])) if counts is not None else (0, 0)
    metrics: dict[str, Metrics] = rating_metrics_of(
        predicted,
        {
            MODEL: F.col(PREDICTION),
            GLOBAL_MEAN: F.lit(mu),
            BIAS: model.baseline.clipped(F.col(BASELINE)),  # held to the scale, as ours
        },
    )
    metrics[POPULARITY] = {"rmse": None, "mae": None}
    predicted.unpersist()

    relevant = test.where(F.col("overall") >= relevant_min_rating).select("reviewerID", "asin").cache()
    eligible = (
        model.ranker.user_factors().select("reviewerID").join(relevant.select("reviewerID").distinct(), "reviewerID")
    )
    eligible_count = eligible.count()
    if eligible_count > max_ranking_users:
        eligible = eligible.orderBy(F.xxhash64("reviewerID", F.lit(seed)), "reviewerID").limit(max_ranking_users)
    reviewers = eligible.cache()
    catalogue_size = train.select("asin").distinct().count()
    item_scores = baseline_scores(model, train)
    k_max = max(CUTOFFS)
    exclude = train.select("reviewerID", "asin")
    baselines = global_tops(reviewers, exclude, item_scores, k_max).cache()
    tops = {MODEL: model.ranker.recommend(reviewers, exclude, k_max).cache()}
    tops |= {name: baselines.where(F.col(METHOD) == name).drop(METHOD) for name in item_scores}
    for name, values in ranking_metrics_of(tops, relevant, reviewers, CUTOFFS).items():
        metrics[name] |= values
    for name, value in coverage_of(tops, catalogue_size, k_max).items():
        metrics[name][f"coverage@{k_max}"] = value
    tops[MODEL].unpersist()
    baselines.unpersist()
    ranking_users = min(eligible_count, max_ranking_users)  # what the limit kept: no second count
    relevant.unpersist()
    reviewers.unpersist()
    return Evaluation(metrics, rating_rows, cold_rows, ranking_users, eligible_count, catalogue_size)


def metrics_markdown(metrics: dict[str, Metrics]) -> str:
    names = list(next(iter(metrics.values())))
    header = "| metric | " + " | ".join(metrics) + " |\n|---|" + "---:|" * len(metrics) + "\n"
    rows = [
        f"| {name} | " + " | ".join("—" if m.get(name) is None else f"{m[name]:.4f}" for m in metrics.values()) + " |"
        for name in names
    ]
    return header + "\n".join(rows)


def evaluation_chart(metrics: dict[str, Metrics]) -> MarkdownMetadataValue:
    """The gate's two measures for every method, as an inline chart."""
    return bar_chart(
        {
            f"{name} ({direction} is better)": {method: values.get(name) for method, values in metrics.items()}
            for name, direction in (("rmse", "lower"), ("ndcg@10", "higher"))
        }
    )


def evaluation_figure(metrics: dict[str, Metrics], title: str) -> Figure:
    fig = figure(13, 4)
    ax_rating, ax_ranking = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 3]})
    panels = (
        (ax_rating, ["rmse", "mae"], "rating error (lower is better)"),
        (ax_ranking, [f"{m}@10" for m in (*RANKING_METRICS, "coverage")], "top-10 quality (higher is better)"),
    )
    for ax, names, panel_title in panels:
        x = np.arange(len(names))
        width = 0.8 / len(metrics)
        for i, (method, values) in enumerate(metrics.items()):
            heights = [math.nan if values.get(n) is None else values[n] for n in names]
            ax.bar(x + (i - (len(metrics) - 1) / 2) * width, heights, width=width, label=method)
        ax.set_xticks(x, names)
        ax.set_title(panel_title)
    ax_ranking.legend(fontsize="small")
    fig.suptitle(title)
    return fig

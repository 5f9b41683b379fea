"""Quality against outside anchors: our model and baselines beside cornac and implicit, on exactly the same split.

    python -m benchmarks.bench_quality [--datasets All_Beauty ... generated-default generated-5core]
                                       [--reviews 30000] [--reuse]

For each dataset (a category of ``../shared/data/amazon2018``, or ``recsys generate`` data in
the ``default`` or ``amazon-5core`` shape), in a process, database, data folder and model
store of its own, the real pipeline runs with every default (``recsys run``: ingest, then the
model job, whose validation search tunes each ALS head). Our figures are what
``model_evaluation`` published (``evaluation.json`` and its metadata). The process also reads
the saved model back and keeps its held-out predictions and top-10 lists, so every figure can
be recomputed here.

Then, on exactly the training_ratings parquet the model was trained and evaluated on, the
anchors (``pip install -e .[bench]``): cornac's BaselineOnly, biased MF and PMF for
ratings (and their rankings), and implicit's AlternatingLeastSquares and BPR for ranking.
Each anchor picks its hyperparameters on a validation split of its own carved out of train
(one rating per reviewer, as our search does), then is refitted on the whole train split.
Their metrics follow ``recsys_assets/model/evaluation.py``'s definitions, in numpy
(``rating_metrics``, ``ndcg_at_k``); the same numpy code recomputes the published popularity,
global-mean and bias-baseline figures and our model's, and the benchmark prints whether they
agree, so the comparison is apples to apples.

Writes ``benchmarks/results/quality.json``, ``quality.png`` and the quality section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from benchmarks.report import RESULTS, SUITE_RUN_KEY, Figure, provenance, suite_run, use_environment, write_section
from recsys_core.settings import PROJECT_ROOT, Settings, get_settings

AMAZON = ("All_Beauty", "AMAZON_FASHION", "Appliances", "Gift_Cards")
GENERATED = {"generated-default": "default", "generated-5core": "amazon-5core"}
DATASETS = (*AMAZON, *GENERATED)
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "amazon2018"
K = 10
RELEVANT_MIN_RATING = 4.0  # EvaluationConfig's default
RATING_RANGE = (1.0, 5.0)
SEED = 42
QUALITY_REVIEWS = 30_000
"""Reviews of each generated dataset."""
BOOTSTRAP = 2000
TOLERANCE = 1e-9
"""numpy and Spark agree when their figures differ by less than this."""

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
Scorer = Callable[[Ints], Floats]
"""Scores of every catalogue item (columns in asin order) for the given reviewers (rows)."""


# --- the pipeline, in a process of its own -------------------------------------------------------


def run_pipeline_once(dataset: str, reviews: int, out: Path, tuning_budget: float | None) -> None:
    """Run ``recsys run`` on ``dataset``; write what model_evaluation published, our predictions and lists.

    ``tuning_budget`` is ``recsys run --tuning-budget`` (None: its default)."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from recsys_assets.definitions import build_resources
    from recsys_assets.model.features import TEST, TRAIN
    from recsys_assets.model.handles import HANDLE, EvaluationHandle
    from recsys_assets.model.training import COLD, PREDICTION, load_model
    from recsys_cli.pipeline import run_pipeline
    from recsys_core.connections import project_database
    from recsys_datagen import generate

    settings = get_settings()
    assert settings.data_dir is not None
    categories = None if dataset in GENERATED else [dataset]
    if dataset in GENERATED and not any(settings.data_dir.glob("*.json.gz")):
        generate(settings.data_dir, reviews, seed=SEED, shape=GENERATED[dataset])
    db = project_database(settings)
    db.client.drop_database(db.name)
    db.client.close()

    started = time.perf_counter()
    ops = {} if tuning_budget is None else {"als_model": {"config": {"tuning": {"budget_s": tuning_budget}}}}
    outcomes = run_pipeline(settings, categories, ops)
    seconds = time.perf_counter() - started
    if not all(o.success for o in outcomes):
        raise SystemExit(f"the pipeline failed on {dataset}: {[e for o in outcomes for e in o.errors]}")
    metadata = {asset: meta for o in outcomes for asset, meta in o.metadata.items()}
    evaluation = metadata["model_evaluation"]
    handle = EvaluationHandle.model_validate(evaluation[HANDLE])

    spark = SparkSession.getActiveSession()
    assert spark is not None
    store = build_resources(settings)["model_store"]
    published = store.read_json(spark, f"{handle.uri}/evaluation.json")
    model = load_model(store, spark, handle.model.uri)
    ratings = spark.read.parquet(handle.model.ratings.uri)
    train = ratings.where(F.col("split") == TRAIN).select("reviewerID", "asin")
    test = ratings.where(F.col("split") == TEST)
    predictions = model.predict_ratings(test).select("reviewerID", "asin", "overall", PREDICTION, COLD).toPandas()
    relevant = test.where(F.col("overall") >= RELEVANT_MIN_RATING).select("reviewerID").distinct()
    eligible = model.ranker.user_factors().select("reviewerID").join(relevant, "reviewerID")
    lists = model.ranker.recommend(eligible, train, K).select("reviewerID", "asin", "rank").toPandas()
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(predictions).to_parquet(out.parent / "ours-predictions.parquet")
    pd.DataFrame(lists).to_parquet(out.parent / "ours-top10.parquet")
    features = metadata["training_ratings"]
    als = metadata["als_model"]
    run = {
        "dataset": dataset,
        "pipeline_s": round(seconds, 1),
        "ratings_uri": handle.model.ratings.uri,
        "bias_damping": model.biases.damping.model_dump(),
        "published": published,
        "gate_decision": evaluation["gate_decision"],
        "lists_from": evaluation["lists_from"],
        "ranking_users_eligible": evaluation["ranking_users_eligible"],
        "catalogue_size": evaluation["catalogue_size"],
        "split": {k: features[k] for k in features if k.startswith(("train_", "test_"))}
        | {"method": features["split_method"]},
        "heads": als["heads"],
        "tuning_status": als["tuning_status"],
        "arguments": {"reviews": reviews, "tuning_budget": tuning_budget},
        SUITE_RUN_KEY: suite_run(),
    }
    out.write_text(json.dumps(run, indent=2, default=str))


def dataset_folder(suite: Settings, dataset: str) -> Path:
    return suite.state_dir / "bench" / f"quality-{dataset}"


def dataset_environment(suite: Settings, dataset: str) -> dict[str, str]:
    """The data folder, database and model store of one dataset's run, under the suite's settings: the
    environment its own settings come from."""
    bench = dataset_folder(suite, dataset)
    return {
        "RECSYS_DATA_DIR": str(bench / "data" if dataset in GENERATED else SHARED_DATA),
        "RECSYS_MONGO_DB": f"{suite.mongo_db}_{dataset.replace('-', '_')}",
        "RECSYS_MODEL_STORE_URI": str(bench / "model"),
    }


def run_dataset_here(suite: Settings, dataset: str, reviews: int, tuning_budget: float | None) -> None:
    """One dataset's pipeline run in this process (the model benchmark's, warm, in ``--quick``), for this suite
    run's quality benchmark to take instead of running it again. This process's settings stay switched to it."""
    use_environment(dataset_environment(suite, dataset))
    run_pipeline_once(dataset, reviews, dataset_folder(suite, dataset) / "run.json", tuning_budget)


def _run_pipelines(
    datasets: list[str], reviews: int, reuse: bool, tuning_budget: float | None
) -> dict[str, dict[str, Any]]:
    """Each dataset's pipeline run, in a process, database, data folder and model store of its own; or the run
    recorded by an earlier benchmark of this suite run with the same arguments (or any recorded run: ``reuse``)."""
    from recsys_core import services

    suite = get_settings()
    services.up(suite)
    runs = {}
    for dataset in datasets:
        out = dataset_folder(suite, dataset) / "run.json"
        recorded = json.loads(out.read_text()) if out.exists() else None
        if recorded is not None and _same_suite_run(recorded, reviews, tuning_budget):
            print(f"{dataset}: run by an earlier benchmark of this suite run (same data and arguments)")
        elif not (reuse and recorded is not None):
            command = [sys.executable, "-m", "benchmarks.bench_quality", "--one", dataset, "--out", str(out)]
            command += ["--reviews", str(reviews)]
            command += [] if tuning_budget is None else ["--tuning-budget", str(tuning_budget)]
            env = {**os.environ, **dataset_environment(suite, dataset)}
            subprocess.run(command, env=env, check=True, cwd=PROJECT_ROOT)
        runs[dataset] = json.loads(out.read_text())
    return runs


def _same_suite_run(run: dict[str, Any], reviews: int, tuning_budget: float | None) -> bool:
    arguments = {"reviews": reviews, "tuning_budget": tuning_budget}
    return suite_run() is not None and run.get(SUITE_RUN_KEY) == suite_run() and run["arguments"] == arguments


# --- the split, and our metric definitions in numpy ----------------------------------------------


@dataclass(frozen=True)
class Split:
    """The ratings of one split as indices: reviewers and items of the train split, items in asin order."""

    users: list[str]
    items: list[str]
    train_user: Ints
    train_item: Ints
    train_rating: Floats
    test_user: Ints  # -1: a reviewer unknown to the train split
    test_item: Ints  # -1: an item unknown to the train split
    test_rating: Floats
    test_keys: pd.DataFrame  # reviewerID, asin of each test row, in the same order

    @classmethod
    def from_frames(cls, train: pd.DataFrame, test: pd.DataFrame) -> Split:
        users = sorted(set(train["reviewerID"]))
        items = sorted(set(train["asin"]))
        user_index = pd.Index(users)
        item_index = pd.Index(items)
        return cls(
            users=users,
            items=items,
            train_user=user_index.get_indexer(train["reviewerID"]).astype(np.int64),
            train_item=item_index.get_indexer(train["asin"]).astype(np.int64),
            train_rating=train["overall"].to_numpy(np.float64),
            test_user=user_index.get_indexer(test["reviewerID"]).astype(np.int64),
            test_item=item_index.get_indexer(test["asin"]).astype(np.int64),
            test_rating=test["overall"].to_numpy(np.float64),
            test_keys=test[["reviewerID", "asin"]].reset_index(drop=True),
        )

    @classmethod
    def read(cls, uri: str) -> Split:
        """The training_ratings parquet: ``train`` and ``test`` rows."""
        frame = pd.read_parquet(uri.removeprefix("file://"), columns=["reviewerID", "asin", "overall", "split"])
        return cls.from_frames(frame[frame["split"] == "train"], frame[frame["split"] == "test"])

    @property
    def cold(self) -> NDArray[np.bool_]:
        return (self.test_user < 0) | (self.test_item < 0)

    def rated(self) -> list[Ints]:
        """Each train reviewer's train items: never ranked for them."""
        order = np.argsort(self.train_user, kind="stable")
        bounds = np.searchsorted(self.train_user[order], np.arange(len(self.users) + 1))
        return [self.train_item[order[bounds[u] : bounds[u + 1]]] for u in range(len(self.users))]

    def relevant(self) -> tuple[Ints, list[Ints], Ints]:
        """Reviewers evaluated for ranking (known to train, >= 1 relevant held-out item), their relevant catalogue
        items, and how many relevant held-out items each has (items unknown to train count but can never be hit)."""
        liked = (self.test_rating >= RELEVANT_MIN_RATING) & (self.test_user >= 0)
        users, counts = np.unique(self.test_user[liked], return_counts=True)
        hits = [self.test_item[liked & (self.test_user == u) & (self.test_item >= 0)] for u in users]
        return users.astype(np.int64), hits, counts.astype(np.int64)

    def validation(self, seed: int = SEED) -> Split:
        """A split of train alone, for an anchor's own tuning: one random rating of each reviewer with more than one
        is held out (as our search's leave-one-out); the test split is never seen."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(self.train_user))
        counts = np.bincount(self.train_user, minlength=len(self.users))
        first = np.zeros(len(self.train_user), dtype=bool)
        _, where = np.unique(self.train_user[order], return_index=True)
        first[order[where]] = True
        held = first & (counts[self.train_user] > 1)
        frame = pd.DataFrame(
            {
                "reviewerID": np.asarray(self.users, dtype=object)[self.train_user],
                "asin": np.asarray(self.items, dtype=object)[self.train_item],
                "overall": self.train_rating,
            }
        )
        return Split.from_frames(frame[~held], frame[held])


def rating_metrics(truth: Floats, predicted: Floats) -> dict[str, float]:
    """RMSE and MAE over every held-out rating."""
    error = predicted - truth
    return {"rmse": float(np.sqrt(np.mean(error * error))), "mae": float(np.mean(np.abs(error)))}


def top_k(scores: Floats, rated: list[Ints], k: int) -> Ints:
    """Each row's ``k`` best columns, none of its ``rated``; ties by column (asin order); -1 where fewer remain."""
    scores = np.array(scores, dtype=np.float64)
    for row, seen in enumerate(rated):
        scores[row, seen] = -np.inf
    best = np.argsort(-scores, axis=1, kind="stable")[:, :k].astype(np.int64)
    best[np.take_along_axis(scores, best, axis=1) == -np.inf] = -1
    return best


def ndcg_at_k(top: Ints, relevant: list[Ints], n_relevant: Ints, k: int) -> Floats:
    """Per reviewer: binary gains, DCG = sum 1/log2(rank+1), ideal DCG over min(|relevant|, k) hits."""
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)
    gains = np.asarray([np.isin(row[:k], hits) & (row[:k] >= 0) for row, hits in zip(top, relevant, strict=True)])
    gains = gains.reshape(len(relevant), k)
    return np.asarray((gains @ discounts) / ideal[np.minimum(n_relevant, k) - 1], dtype=np.float64)


def ranking_ndcg(split: Split, scorer: Scorer, block: int = 512) -> Floats:
    """NDCG@10 of each evaluated reviewer when ``scorer`` ranks every catalogue item they did not rate in train."""
    users, relevant, n_relevant = split.relevant()
    rated = split.rated()
    out = [
        ndcg_at_k(
            top_k(scorer(users[lo : lo + block]), [rated[u] for u in users[lo : lo + block]], K),
            relevant[lo : lo + block],
            n_relevant[lo : lo + block],
            K,
        )
        for lo in range(0, len(users), block)
    ]
    return np.concatenate(out) if out else np.zeros(0)


def list_ndcg(split: Split, lists: pd.DataFrame) -> Floats:
    """NDCG@10 of each evaluated reviewer for given lists (reviewerID, asin, rank), e.g. the ones our model made."""
    users, relevant, n_relevant = split.relevant()
    position = {user: row for row, user in enumerate(np.asarray(split.users)[users])}
    item_index = pd.Index(split.items)
    top = np.full((len(users), K), -1, dtype=np.int64)
    known = lists[lists["reviewerID"].isin(position.keys())]
    rows = known["reviewerID"].map(position).to_numpy(np.int64)
    top[rows, known["rank"].to_numpy(np.int64) - 1] = item_index.get_indexer(known["asin"])
    return ndcg_at_k(top, relevant, n_relevant, K)


def global_scorer(split: Split, item_scores: Floats) -> Scorer:
    """One order for everyone: the non-personal baselines."""
    return lambda users: np.broadcast_to(item_scores, (len(users), len(split.items)))


@dataclass(frozen=True)
class DampedBiases:
    """``recsys_assets/model/biases.py`` in numpy: ``SWEEPS`` alternations of the item and the user damped means."""

    mu: float
    user: Floats
    item: Floats
    scale: tuple[float, float]  # the lowest and highest training rating, where predictions are held

    @classmethod
    def fit(cls, split: Split, user_damping: float, item_damping: float) -> DampedBiases:
        from recsys_assets.model.biases import SWEEPS

        mu = float(split.train_rating.mean())
        offsets = split.train_rating - mu
        n_items, n_users = len(split.items), len(split.users)
        item_counts = np.bincount(split.train_item, minlength=n_items) + item_damping
        user_counts = np.bincount(split.train_user, minlength=n_users) + user_damping
        user = np.zeros(n_users)
        for _ in range(SWEEPS):
            item = np.bincount(split.train_item, offsets - user[split.train_user], n_items) / item_counts
            user = np.bincount(split.train_user, offsets - item[split.train_item], n_users) / user_counts
        return cls(mu, user, item, (float(split.train_rating.min()), float(split.train_rating.max())))

    def predict(self, split: Split) -> Floats:
        """``mu + b_u + b_i`` on the scale, an unknown reviewer or item contributing no bias."""
        user = np.where(split.test_user >= 0, self.user[np.maximum(split.test_user, 0)], 0.0)
        item = np.where(split.test_item >= 0, self.item[np.maximum(split.test_item, 0)], 0.0)
        return np.clip(np.asarray(self.mu + user + item, dtype=np.float64), *self.scale)


# --- the anchors --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fitted:
    """One anchor fitted on a split: its held-out predictions (None: it predicts no ratings) and its ranking."""

    predictions: Floats | None
    scorer: Scorer


@dataclass(frozen=True)
class Anchor:
    library: str
    name: str
    grid: dict[str, list[Any]]
    fit: Callable[[Split, dict[str, Any]], Fitted]
    judged_by: str  # "rmse" (rating models) or "ndcg@10" (ranking models)


def _cornac_fit(cls_name: str, fixed: dict[str, Any]) -> Callable[[Split, dict[str, Any]], Fitted]:
    def fit(split: Split, params: dict[str, Any]) -> Fitted:
        import cornac
        from cornac.data import Dataset

        triples = list(
            zip(
                np.asarray(split.users, dtype=object)[split.train_user],
                np.asarray(split.items, dtype=object)[split.train_item],
                split.train_rating,
                strict=True,
            )
        )
        data = Dataset.from_uir(triples, seed=SEED)
        model = getattr(cornac.models, cls_name)(**fixed, **params, seed=SEED, verbose=False)
        model.fit(data)
        users = np.asarray([data.uid_map[u] for u in split.users], dtype=np.int64)
        items = np.asarray([data.iid_map[i] for i in split.items], dtype=np.int64)
        mu = float(data.global_mean)
        u_bias = getattr(model, "u_biases", None)
        i_bias = getattr(model, "i_biases", None)
        predictions = np.empty(len(split.test_rating))
        for row, (u, i) in enumerate(zip(split.test_user, split.test_item, strict=True)):
            if u >= 0 and i >= 0:
                predictions[row] = model.rate(users[u], items[i], clipping=True)
            else:  # cold: its own global mean and the bias it knows, as ours
                known = mu + (u_bias[users[u]] if u >= 0 and u_bias is not None else 0.0)
                known += i_bias[items[i]] if i >= 0 and i_bias is not None else 0.0
                predictions[row] = np.clip(known, *RATING_RANGE)

        def scorer(rows: Ints) -> Floats:
            return np.asarray([np.asarray(model.score(users[u]))[items] for u in rows], dtype=np.float64)

        return Fitted(predictions, scorer)

    return fit


def _interactions(split: Split, liked_only: bool) -> Any:
    from scipy.sparse import csr_matrix

    keep = split.train_rating >= RELEVANT_MIN_RATING if liked_only else np.ones(len(split.train_rating), dtype=bool)
    return csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (split.train_user[keep], split.train_item[keep])),
        shape=(len(split.users), len(split.items)),
    )


def _implicit_fit(cls_name: str) -> Callable[[Split, dict[str, Any]], Fitted]:
    def fit(split: Split, params: dict[str, Any]) -> Fitted:
        from implicit import cpu
        from threadpoolctl import threadpool_limits

        params = dict(params)
        liked_only = params.pop("liked_only", False)
        module = cpu.als if cls_name == "AlternatingLeastSquares" else cpu.bpr
        model = getattr(module, cls_name)(**params, random_state=SEED)
        with threadpool_limits(1, "blas"):  # implicit's own threads; a BLAS pool inside them only contends
            model.fit(_interactions(split, liked_only), show_progress=False)
        users, items = np.asarray(model.user_factors), np.asarray(model.item_factors)
        return Fitted(None, lambda rows: np.asarray(users[rows] @ items.T, dtype=np.float64))

    return fit


ANCHORS = (
    Anchor(
        "cornac",
        "BaselineOnly",
        {"lambda_reg": [0.005, 0.02, 0.1], "max_iter": [20, 50]},
        _cornac_fit("BaselineOnly", {"learning_rate": 0.01}),
        "rmse",
    ),
    Anchor(
        "cornac",
        "MF (biased)",
        {"k": [10, 50], "lambda_reg": [0.01, 0.05, 0.2]},
        _cornac_fit("MF", {"use_bias": True, "max_iter": 50, "learning_rate": 0.01}),
        "rmse",
    ),
    Anchor(
        "cornac",
        "PMF",
        {"k": [10, 50], "lambda_reg": [0.001, 0.01, 0.1]},
        _cornac_fit("PMF", {"max_iter": 100, "learning_rate": 0.001}),
        "rmse",
    ),
    Anchor(
        "implicit",
        "ALS",
        {
            "factors": [16, 64],
            "regularization": [0.01, 0.1, 1.0],
            "alpha": [1.0, 10.0, 40.0],
            "iterations": [15],
            "liked_only": [False, True],
        },
        _implicit_fit("AlternatingLeastSquares"),
        "ndcg@10",
    ),
    Anchor(
        "implicit",
        "BPR",
        {"factors": [16, 64], "learning_rate": [0.01, 0.05], "regularization": [0.001, 0.01], "iterations": [100]},
        _implicit_fit("BayesianPersonalizedRanking"),
        "ndcg@10",
    ),
)


def _grid(grid: dict[str, list[Any]]) -> Iterator[dict[str, Any]]:
    for values in product(*grid.values()):
        yield dict(zip(grid, values, strict=True))


def _validation_score(anchor: Anchor, validation: Split, params: dict[str, Any]) -> float:
    """Lower is better: validation RMSE, or minus validation NDCG@10."""
    fitted = anchor.fit(validation, params)
    if anchor.judged_by == "rmse":
        assert fitted.predictions is not None
        return rating_metrics(validation.test_rating, fitted.predictions)["rmse"]
    return -float(np.mean(ranking_ndcg(validation, fitted.scorer)))


def run_anchor(anchor: Anchor, split: Split, validation: Split) -> dict[str, Any]:
    """Tune on ``validation`` (carved out of train), refit on the whole train split, evaluate on test."""
    started = time.perf_counter()
    trials = [(params, _validation_score(anchor, validation, params)) for params in _grid(anchor.grid)]
    params, score = min(trials, key=lambda trial: trial[1])
    fitted = anchor.fit(split, params)
    ndcg = ranking_ndcg(split, fitted.scorer)
    result: dict[str, Any] = {
        "library": anchor.library,
        "name": anchor.name,
        "params": params,
        "validation": {anchor.judged_by: abs(score)},
        "trials": len(trials),
        "ndcg@10": float(np.mean(ndcg)),
        "seconds": round(time.perf_counter() - started, 1),
        "_ndcg_per_user": ndcg,
    }
    if fitted.predictions is not None:
        result |= rating_metrics(split.test_rating, fitted.predictions)
        result["cold"] = int(split.cold.sum())
        result["_squared_errors"] = (fitted.predictions - split.test_rating) ** 2
    return result


# --- one dataset: the checks, the anchors, the goals ----------------------------------------------


def _bootstrap_ci(ours: Floats, theirs: Floats, statistic: Callable[[Floats], Floats]) -> tuple[float, float]:
    """95% paired bootstrap interval of statistic(ours) - statistic(theirs), over the same resampled rows."""
    rng = np.random.default_rng(SEED)
    rows = rng.integers(0, len(ours), size=(BOOTSTRAP, len(ours)))
    differences = statistic(ours[rows]) - statistic(theirs[rows])
    low, high = np.percentile(differences, [2.5, 97.5])
    return float(low), float(high)


def _rmse(squared: Floats) -> Floats:
    return np.asarray(np.sqrt(squared.mean(axis=-1)), dtype=np.float64)


def _mean(values: Floats) -> Floats:
    return np.asarray(values.mean(axis=-1), dtype=np.float64)


def compare(ours: float, best: float, ci: tuple[float, float], lower_is_better: bool) -> str:
    """'level' when the 95% interval of the difference holds 0, else 'ahead' or 'behind' by the estimate."""
    if ci[0] <= 0.0 <= ci[1]:
        return "level"
    better = ours < best if lower_is_better else ours > best
    return "ahead" if better else "behind"


def evaluate_dataset(run: dict[str, Any], bench: Path) -> dict[str, Any]:
    """The numpy checks against what was published, the anchors, and the goals, for one pipeline run."""
    from recsys_assets.model.report import EvaluationReport

    published = EvaluationReport.model_validate(run["published"])
    metrics = published.metrics
    split = Split.read(run["ratings_uri"])

    # Our figures recomputed in numpy from the same split: the definitions agree, or the comparison is void.
    biases = DampedBiases.fit(split, run["bias_damping"]["user"], run["bias_damping"]["item"])
    popularity = np.bincount(split.train_item, minlength=len(split.items)).astype(np.float64)
    baseline_ndcg = {
        "popularity": ranking_ndcg(split, global_scorer(split, popularity)),
        "global_mean": ranking_ndcg(split, global_scorer(split, np.zeros(len(split.items)))),
        "user_item_bias": ranking_ndcg(split, global_scorer(split, biases.item)),
    }
    bias_predictions = biases.predict(split)
    ours = pd.read_parquet(bench / "ours-predictions.parquet")
    ours = split.test_keys.merge(ours, on=["reviewerID", "asin"], how="left", validate="one_to_one")
    if ours["prediction"].isna().any():
        raise RuntimeError(f"{run['dataset']}: our published predictions do not cover the test split")
    ours_squared = (ours["prediction"].to_numpy(np.float64) - split.test_rating) ** 2
    model_ndcg = list_ndcg(split, pd.read_parquet(bench / "ours-top10.parquet"))
    numpy_figures = {
        "model rmse": float(np.sqrt(ours_squared.mean())),
        "model ndcg@10": float(model_ndcg.mean()),
        "user_item_bias rmse": rating_metrics(split.test_rating, bias_predictions)["rmse"],
        "global_mean rmse": rating_metrics(split.test_rating, np.full(len(split.test_rating), biases.mu))["rmse"],
        **{f"{name} ndcg@10": float(values.mean()) for name, values in baseline_ndcg.items()},
        "cold pairs": float(split.cold.sum()),
        "ranking reviewers": float(len(split.relevant()[0])),
    }
    spark_figures: dict[str, float | None] = {
        "model rmse": metrics["model"]["rmse"],
        "model ndcg@10": metrics["model"]["ndcg@10"],
        "user_item_bias rmse": metrics["user_item_bias"]["rmse"],
        "global_mean rmse": metrics["global_mean"]["rmse"],
        **{f"{name} ndcg@10": metrics[name]["ndcg@10"] for name in baseline_ndcg},
        "cold pairs": float(published.counts.heldout_ratings_cold),
        "ranking reviewers": float(run["ranking_users_eligible"]),
    }
    checks = {
        name: {"numpy": mine, "spark": theirs, "agree": theirs is not None and abs(mine - theirs) < TOLERANCE}
        for name, mine in numpy_figures.items()
        for theirs in [spark_figures[name]]
    }
    sampled = published.counts.ranking_users < run["ranking_users_eligible"]
    for name, check in checks.items():
        print(
            f"  check {name:24s} numpy {check['numpy']:.6f}  Spark {check['spark']}  "
            + ("ok" if check["agree"] else "DIFFERS")
        )

    validation = split.validation()
    anchors = []
    for anchor in ANCHORS:
        result = run_anchor(anchor, split, validation)
        rmse = f"RMSE {result['rmse']:.4f}" if "rmse" in result else "no ratings"
        print(
            f"  {anchor.library} {anchor.name}: {rmse}, NDCG@10 {result['ndcg@10']:.4f} "
            f"{result['params']} ({result['seconds']} s)"
        )
        anchors.append(result)

    served = run["lists_from"]
    served_ndcg = model_ndcg if served == "model" else baseline_ndcg[served]
    rating_anchors = [a for a in anchors if "rmse" in a]
    best_rmse = min(rating_anchors, key=lambda a: a["rmse"])
    best_ndcg = max(anchors, key=lambda a: a["ndcg@10"])
    rmse_ci = _bootstrap_ci(ours_squared, best_rmse["_squared_errors"], _rmse)
    ndcg_ci = _bootstrap_ci(served_ndcg, best_ndcg["_ndcg_per_user"], _mean)
    model_rmse = float(metrics["model"]["rmse"] or math.nan)
    served_ndcg_published = float(metrics[served]["ndcg@10"] or math.nan)
    popularity_ndcg = float(metrics["popularity"]["ndcg@10"] or math.nan)
    bias_rmse = float(metrics["user_item_bias"]["rmse"] or math.nan)
    rmse_reason = [r for r in published.gate_reasons if r.startswith("RMSE")]
    result = {
        "dataset": run["dataset"],
        "split": run["split"],
        "heldout_ratings": published.counts.heldout_ratings,
        "heldout_ratings_cold": published.counts.heldout_ratings_cold,
        "ranking_users": published.counts.ranking_users,
        "ranking_users_sampled": sampled,
        "catalogue_size": run["catalogue_size"],
        "gate_status": published.gate_status,
        "gate_decision": run["gate_decision"],
        "gate_rmse_reason": rmse_reason,
        "lists_from": served,
        "heads": run["heads"],
        "tuning_status": run["tuning_status"],
        "pipeline_s": run["pipeline_s"],
        "published": metrics,
        "served_ndcg@10": served_ndcg_published,
        "checks": checks,
        "anchors": [{k: v for k, v in a.items() if not k.startswith("_")} for a in anchors],
        "best_anchor_rmse": {"name": f"{best_rmse['library']} {best_rmse['name']}", "rmse": best_rmse["rmse"]},
        "best_anchor_ndcg": {"name": f"{best_ndcg['library']} {best_ndcg['name']}", "ndcg@10": best_ndcg["ndcg@10"]},
        "rmse_vs_best_anchor": {
            "ratio": model_rmse / best_rmse["rmse"],
            "difference_ci95": rmse_ci,
            "verdict": compare(model_rmse, best_rmse["rmse"], rmse_ci, lower_is_better=True),
        },
        "ndcg_vs_best_anchor": {
            "ratio": served_ndcg_published / best_ndcg["ndcg@10"] if best_ndcg["ndcg@10"] else math.nan,
            "difference_ci95": ndcg_ci,
            "verdict": compare(served_ndcg_published, best_ndcg["ndcg@10"], ndcg_ci, lower_is_better=False),
        },
        "goals": {
            "lists beat popularity on NDCG@10": served_ndcg_published > popularity_ndcg,
            "rating head beats the bias baseline, or the gate says why not": model_rmse < bias_rmse
            or bool(rmse_reason),
        },
    }
    result["goals"]["level with the best anchor on RMSE"] = result["rmse_vs_best_anchor"]["verdict"] != "behind"
    result["goals"]["level with the best anchor on NDCG@10"] = result["ndcg_vs_best_anchor"]["verdict"] != "behind"
    return result


# --- the report ---------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 4) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _write_report(results: list[dict[str, Any]], reviews: int, tuning_budget: float | None) -> None:
    anchor_names = [f"{a.library} {a.name}" for a in ANCHORS]
    lines = [
        provenance(
            f"the four `../shared/data/amazon2018` categories and `recsys generate --reviews {reviews:,}` in the "
            "`default` and `amazon-5core` shapes, `recsys run` defaults (leave-one-out split, tuned heads)"
            + ("" if tuning_budget is None else f" but a tuning budget of {tuning_budget:g} s")
        ),
        "",
        "RMSE (lower is better; cold pairs predicted by each method's own biases or mean):",
        "",
        "| dataset | held-out (cold) | ours: model | bias baseline | "
        + " | ".join(n for n in anchor_names if not n.startswith("implicit"))
        + " | ours / best anchor | vs best anchor |",
        "|---|---:|---:|---:|" + "---:|" * (len(ANCHORS) - 2) + "---:|---|",
    ]
    for r in results:
        by_name = {f"{a['library']} {a['name']}": a for a in r["anchors"]}
        versus = r["rmse_vs_best_anchor"]
        lines.append(
            f"| {r['dataset']} | {r['heldout_ratings']:,} ({r['heldout_ratings_cold']}) | "
            f"{_f(r['published']['model']['rmse'])} | {_f(r['published']['user_item_bias']['rmse'])} | "
            + " | ".join(_f(by_name[n].get("rmse")) for n in anchor_names if not n.startswith("implicit"))
            + f" | {versus['ratio']:.3f} | {versus['verdict']} "
            f"[{versus['difference_ci95'][0]:+.3f}, {versus['difference_ci95'][1]:+.3f}] |"
        )
    lines += [
        "",
        "NDCG@10 (higher is better; every unrated catalogue item ranked, relevant = held-out rating ≥ 4):",
        "",
        "| dataset | reviewers | gate: lists from | ours: served lists | model | popularity | bias baseline | "
        + " | ".join(anchor_names)
        + " | ours / best anchor | vs best anchor |",
        "|---|---:|---|---:|---:|---:|---:|" + "---:|" * len(ANCHORS) + "---:|---|",
    ]
    for r in results:
        by_name = {f"{a['library']} {a['name']}": a for a in r["anchors"]}
        versus = r["ndcg_vs_best_anchor"]
        lines.append(
            f"| {r['dataset']} | {r['ranking_users']:,} | {r['gate_status']}: {r['lists_from']} | "
            f"{_f(r['served_ndcg@10'])} | {_f(r['published']['model']['ndcg@10'])} | "
            f"{_f(r['published']['popularity']['ndcg@10'])} | {_f(r['published']['user_item_bias']['ndcg@10'])} | "
            + " | ".join(_f(by_name[n]["ndcg@10"]) for n in anchor_names)
            + f" | {versus['ratio']:.3f} | {versus['verdict']} "
            f"[{versus['difference_ci95'][0]:+.3f}, {versus['difference_ci95'][1]:+.3f}] |"
        )
    goal_names = list(results[0]["goals"]) if results else []
    lines += [
        "",
        "Goals (issue 9); numpy = Spark: our numpy definitions reproduce every published figure "
        "(model, popularity, global mean, bias baseline; RMSE, NDCG@10, cold and reviewer counts):",
        "",
        "| dataset | " + " | ".join(goal_names) + " | numpy = Spark |",
        "|---|" + "---|" * (len(goal_names) + 1),
    ]
    for r in results:
        agree = all(c["agree"] for c in r["checks"].values())
        differing = ", ".join(n for n, c in r["checks"].items() if not c["agree"])
        lines.append(
            f"| {r['dataset']} | "
            + " | ".join("yes" if r["goals"][g] else "**no**" for g in goal_names)
            + f" | {'yes' if agree else '**no**: ' + differing} |"
        )
    named = [r for r in results if r["gate_rmse_reason"]]
    if named:
        lines += ["", "Where the rating head does not beat the bias baseline, the gate says so:", ""]
        lines += [f"- {r['dataset']}: gate {r['gate_status']}; " + "; ".join(r["gate_rmse_reason"]) for r in named]
    lines += ["", "![quality](benchmarks/results/quality.png)"]
    write_section("quality", lines, "## Quality against outside anchors (`benchmarks/bench_quality.py`)")


def _plot(results: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 5))
    ax_rmse, ax_ndcg = fig.subplots(1, 2)
    x = np.arange(len(results))

    def anchor(name: str, metric: str) -> Callable[[dict[str, Any]], float | None]:
        return lambda r: next(a.get(metric) for a in r["anchors"] if f"{a['library']} {a['name']}" == name)

    rating_series: list[tuple[str, Callable[[dict[str, Any]], float | None]]] = [
        ("ours: model", lambda r: r["published"]["model"]["rmse"]),
        ("bias baseline", lambda r: r["published"]["user_item_bias"]["rmse"]),
    ]
    ranking_series: list[tuple[str, Callable[[dict[str, Any]], float | None]]] = [
        ("ours: served lists", lambda r: r["served_ndcg@10"]),
        ("popularity", lambda r: r["published"]["popularity"]["ndcg@10"]),
    ]
    for a in ANCHORS:
        name = f"{a.library} {a.name}"
        if a.judged_by == "rmse":
            rating_series.append((name, anchor(name, "rmse")))
        ranking_series.append((name, anchor(name, "ndcg@10")))
    for ax, series, title in (
        (ax_rmse, rating_series, "RMSE (lower is better)"),
        (ax_ndcg, ranking_series, "NDCG@10 (higher is better)"),
    ):
        width = 0.8 / len(series)
        for i, (label, get) in enumerate(series):
            heights = [math.nan if (v := get(r)) is None else v for r in results]
            style = {"edgecolor": "black", "linewidth": 1.5} if label.startswith("ours") else {}
            ax.bar(x + (i - (len(series) - 1) / 2) * width, heights, width=width, label=label, **style)
        ax.set_xticks(x, [r["dataset"] for r in results], rotation=20)
        ax.set_title(title)
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(RESULTS / "quality.png", dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--reviews", type=int, default=QUALITY_REVIEWS, help="reviews of each generated dataset")
    parser.add_argument("--reuse", action="store_true", help="reuse each dataset's recorded pipeline run")
    parser.add_argument(
        "--tuning-budget", type=float, metavar="SECONDS", help="the validation search's budget (default: recsys run's)"
    )
    parser.add_argument("--one", choices=DATASETS, help=argparse.SUPPRESS)  # internal: one pipeline run
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_pipeline_once(args.one, args.reviews, args.out, args.tuning_budget)
        return

    settings = get_settings()
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = _run_pipelines(args.datasets, args.reviews, args.reuse, args.tuning_budget)
    results = []
    for dataset, run in runs.items():
        print(f"{dataset}: {run['gate_decision']}")
        results.append(evaluate_dataset(run, dataset_folder(settings, dataset)))
    (RESULTS / "quality.json").write_text(json.dumps(results, indent=2))
    _plot(results)
    _write_report(results, args.reviews, args.tuning_budget)
    for r in results:
        for metric, key, best_key in (("RMSE", "rmse", "best_anchor_rmse"), ("NDCG@10", "ndcg", "best_anchor_ndcg")):
            versus, best = r[f"{key}_vs_best_anchor"], r[best_key]
            ours = r["published"]["model"]["rmse"] if key == "rmse" else r["served_ndcg@10"]
            low, high = versus["difference_ci95"]
            print(
                Figure(
                    f"{r['dataset']}: {metric} {_f(ours)}",
                    f"best anchor, {best['name']}: {_f(best['rmse' if key == 'rmse' else 'ndcg@10'])}",
                    f"{versus['ratio']:.3f}x, {versus['verdict']} [{low:+.3f}, {high:+.3f}]",
                    "level or better",
                    versus["verdict"] != "behind",
                ).line()
            )


if __name__ == "__main__":
    main()

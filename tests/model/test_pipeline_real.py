"""The model graph on the real Amazon 2018 files: what it publishes, and that it is right."""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from recsys_assets.model.assets.publish import PopularConfig
from recsys_assets.model.evaluation import METHODS
from recsys_assets.model.handles import EvaluationHandle, ModelHandle, RatingsHandle, SampleHandle
from recsys_assets.model.plots import INLINE_MARKDOWN_CHARS
from recsys_assets.model.training import TuningConfig, load_model
from recsys_assets.model.tuning import rungs_of
from recsys_assets.runs import materialisation_metadata
from recsys_core import mongo, scoring
from recsys_core.connections import kafka_consumer
from recsys_core.contract import (
    DISLIKED_MAX_RATING,
    ContractError,
    RecommendationEvent,
    Recommendations,
    SimilarProducts,
)
from recsys_core.settings import Settings
from tests.model.conftest import Pipeline, Published, handle

ASSETS = {
    "review_sample",
    "training_ratings",
    "als_model",
    "model_evaluation",
    "user_recommendations",
    "popular_products",
    "item_factors",
    "similar_products",
}


def _ratings(published: Published, spark: SparkSession):
    return spark.read.parquet(handle(published.result, "training_ratings", RatingsHandle).uri)


def _local(uri: str) -> Path:
    """The file behind a file:// URI of the test's model store."""
    parsed = urlparse(uri)
    assert parsed.scheme == "file", uri
    return Path(parsed.path)


def test_every_asset_materialises_and_every_check_passes(published: Published) -> None:
    assert set(materialisation_metadata(published.result)) == ASSETS
    checks = {c.check_name: c for c in published.result.get_asset_check_evaluations()}
    assert set(checks) == {
        "sample_matches_population",
        "model_beats_baselines",
        "popular_products_not_empty",
        "popular_products_cover_rated_categories",
    }
    assert all(c.passed for c in checks.values()), {n: c.description for n, c in checks.items()}
    for asset in ASSETS:
        assert isinstance(published.metadata(asset)["duration_s"], float)


def test_one_run_writes_one_version_folder_and_hands_on_its_handles(published: Published) -> None:
    sample = handle(published.result, "review_sample", SampleHandle)
    ratings = handle(published.result, "training_ratings", RatingsHandle)
    model = handle(published.result, "als_model", ModelHandle)
    evaluation = handle(published.result, "model_evaluation", EvaluationHandle)
    assert sample.version == ratings.version == model.version
    assert model.ratings == ratings
    assert evaluation.model == model
    store = published.pipeline.store
    assert sorted(p.name for p in store.iterdir()) == [model.version]
    assert {p.name for p in (store / model.version).iterdir()} == {
        "sample",
        "sample_proof.png",
        "ratings",
        "model",
        "evaluation",
    }


def test_full_fraction_sample_is_the_population(published: Published) -> None:
    meta = published.metadata("review_sample")
    reviews = published.pipeline.db[mongo.REVIEWS].count_documents({})
    assert meta["fraction"] == 1.0
    assert meta["dagster/row_count"] == meta["population_rows"] == reviews
    assert meta["rating_chi2_p_value"] == pytest.approx(1.0)
    assert meta["plot"].startswith("![sample proof](data:image/png;base64,")
    assert len(meta["chart"]) < INLINE_MARKDOWN_CHARS  # shown in place by the UI
    assert "rating mix of the sample" in meta["chart"]
    assert sum(row["population"] for row in meta["rating_counts"]) == reviews
    assert sum(row["sample"] for row in meta["category_counts"]) == reviews
    assert _local(meta["plot_uri"]).stat().st_size > 1000


def test_training_ratings_are_unique_pairs_with_a_split(published: Published, spark: SparkSession) -> None:
    ratings = _ratings(published, spark)
    meta = published.metadata("training_ratings")
    assert ratings.count() == ratings.select("reviewerID", "asin").distinct().count() == meta["dagster/row_count"]
    assert meta["dropped_older_duplicate_pairs"] > 0  # All_Beauty repeats reviewer-item pairs
    assert {r["split"] for r in ratings.select("split").distinct().collect()} == {"train", "test"}
    # leave-one-out: every reviewer with two or more ratings has exactly one held out
    per_user = ratings.groupBy("reviewerID").agg(
        F.count(F.lit(1)).alias("n"), F.sum(F.when(F.col("split") == "test", 1).otherwise(0)).alias("held_out")
    )
    assert per_user.where("(n > 1 AND held_out != 1) OR (n = 1 AND held_out != 0)").count() == 0


def test_evaluation_reports_every_metric_for_the_model_and_three_baselines(published: Published) -> None:
    meta = published.metadata("model_evaluation")
    for method in METHODS:
        for k in (5, 10):
            for metric in ("precision", "recall", "ndcg", "map"):
                assert 0.0 <= meta[f"{method}/{metric}@{k}"] <= 1.0
        assert 0.0 < meta[f"{method}/coverage@10"] <= 1.0
    for method in ("model", "global_mean", "user_item_bias"):
        assert meta[f"{method}/rmse"] >= meta[f"{method}/mae"] > 0
    assert "popularity/rmse" not in meta  # popularity predicts no ratings
    assert meta["gate_status"] == "pass"
    assert meta["model/rmse"] < meta["user_item_bias/rmse"] < meta["global_mean/rmse"]
    assert meta["model/ndcg@10"] > meta["popularity/ndcg@10"]
    assert meta["ranking_users"] >= 1000
    assert _local(meta["plot_uri"]).stat().st_size > 1000
    assert len(meta["chart"]) < INLINE_MARKDOWN_CHARS
    assert all(f"  {method} " in meta["chart"] for method in METHODS)
    table = {row["metric"]: row for row in meta["metrics"]}  # the UI's table: a column per method
    assert table["rmse"]["model"] == pytest.approx(meta["model/rmse"], abs=5e-5)  # rounded to 4 places
    assert table["ndcg@10"]["popularity"] == pytest.approx(meta["popularity/ndcg@10"], abs=5e-5)
    assert table["rmse"]["popularity"] is None


def test_the_run_is_labelled_with_the_model_version_and_what_it_used(published: Published) -> None:
    run = published.pipeline.instance.get_run_by_id(published.result.run_id)
    assert run is not None
    assert run.tags["recsys/model_version"] == handle(published.result, "als_model", ModelHandle).version
    assert run.tags["recsys/model_store"] == str(published.pipeline.store)
    assert run.tags["recsys/mongo_db"] == published.pipeline.db.name
    assert published.metadata("review_sample")["source"] == f"{published.pipeline.db.name}.{mongo.REVIEWS}"
    params = {row["parameter"]: row["value"] for row in published.metadata("als_model")["params"]}
    assert params["rank"] == "10"


def test_every_training_reviewer_gets_five_unrated_real_products(published: Published, spark: SparkSession) -> None:
    db = published.pipeline.db
    version = published.metadata("als_model")["model_version"]
    train_reviewers = {
        r[0] for r in _ratings(published, spark).where("split = 'train'").select("reviewerID").distinct().collect()
    }
    rated: dict[str, set[str]] = {}
    for review in db[mongo.REVIEWS].find({}, {"reviewerID": 1, "asin": 1}):
        rated.setdefault(review["reviewerID"], set()).add(review["asin"])
    real_asins = set(db[mongo.REVIEWS].distinct("asin"))
    trained: dict[str, dict[str, float]] = {}
    for row in _ratings(published, spark).where("split = 'train'").collect():
        trained.setdefault(row["reviewerID"], {})[row["asin"]] = row["overall"]
    docs = list(db[mongo.RECOMMENDATIONS].find())
    assert {d["_id"] for d in docs} == train_reviewers
    for doc in docs:
        asins = [item["asin"] for item in doc["items"]]
        assert len(asins) == len(set(asins)) == 5
        assert not set(asins) & rated[doc["reviewerID"]]
        assert set(asins) <= real_asins
        assert doc["model_version"] == version
        scores = [item["score"] for item in doc["items"]]
        assert scores == sorted(scores, reverse=True)
        liked = {asin for asin, rating in trained[doc["reviewerID"]].items() if rating >= 4}
        for item in doc["items"]:
            if liked:
                assert item["because_asin"] in liked, "explained by a training item the reviewer liked"
                assert item["because"].startswith("because you rated ")
            else:
                assert item["because_asin"] is None
                assert item["because"] is None
    # The rule itself, as the online updater applies it: the liked item with the largest rating x cosine.
    factors = scoring.ItemFactors.from_documents(db[mongo.ITEM_FACTORS].find())
    for doc in docs[:: max(1, len(docs) // 50)]:
        asins = [item["asin"] for item in doc["items"]]
        assert scoring.reasons(factors, trained[doc["_id"]], asins) == {
            i["asin"]: i["because_asin"] for i in doc["items"]
        }
    titled = [i for d in docs for i in d["items"] if i["title"]]
    assert titled, "Gift_Cards products have metadata, so some recommendations carry titles"


def test_popular_products_are_ordered_by_damped_average(published: Published, spark: SparkSession) -> None:
    db = published.pipeline.db
    ratings = _ratings(published, spark)
    defaults = PopularConfig()
    damping, min_ratings, top_n = defaults.damping, defaults.min_ratings, defaults.top_n
    for category in ("__all__", "All_Beauty", "Gift_Cards"):
        docs = list(db[mongo.POPULAR].find({"category": category}).sort("rank", 1))
        assert [d["rank"] for d in docs] == list(range(1, top_n + 1))
        scoped = ratings if category == "__all__" else ratings.where(F.col("category") == category)
        prior = scoped.agg(F.avg("overall")).first()[0]
        stats = {
            r["asin"]: (r["n"], r["total"])
            for r in scoped.groupBy("asin").agg(F.count(F.lit(1)).alias("n"), F.sum("overall").alias("total")).collect()
        }
        expected = sorted(
            ((damping * prior + total) / (damping + n), asin) for asin, (n, total) in stats.items() if n >= min_ratings
        )[::-1]
        best = sorted(expected, key=lambda pair: (-pair[0], -stats[pair[1]][0], pair[1]))[:top_n]
        assert [d["asin"] for d in docs] == [asin for _, asin in best]
        assert [d["score"] for d in docs] == pytest.approx([score for score, _ in best])
        assert all(d["n_ratings"] >= min_ratings for d in docs)


def test_item_factors_fold_in_reproduces_the_trained_reviewer_vectors(
    published: Published, spark: SparkSession
) -> None:
    """The published factors plus recsys_core.scoring give the vector Spark learnt for a known reviewer."""
    db = published.pipeline.db
    factors = scoring.ItemFactors.from_documents(db[mongo.ITEM_FACTORS].find())
    model_handle = handle(published.result, "als_model", ModelHandle)
    model = load_model(published.pipeline.model_store(), spark, model_handle.uri)
    assert factors.model_version == model.version
    assert len(factors.asins) == model.ids.items.count()
    ranking = {row["head"]: row for row in published.metadata("als_model")["heads"]}["ranking"]
    assert factors.rank == ranking["rank"]
    assert (factors.reg_param, factors.alpha) == (ranking["regParam"], ranking["alpha"])
    train = _ratings(published, spark).where("split = 'train'")
    positives = Counter(r["asin"] for r in train.where(F.col("overall") > DISLIKED_MAX_RATING).collect())
    prior = [ranking["popularityWeight"] * math.log1p(positives[asin]) for asin in factors.asins]
    np.testing.assert_allclose(factors.score_offset, prior)
    reviewers = [r[0] for r in train.select("reviewerID").distinct().orderBy("reviewerID").limit(20).collect()]
    learnt = {r["reviewerID"]: np.asarray(r["vector"]) for r in model.ranker.user_factors().collect()}
    for reviewer in reviewers:
        ratings = {r["asin"]: r["overall"] for r in train.where(F.col("reviewerID") == reviewer).collect()}
        folded = scoring.fold_in(factors, ratings)
        np.testing.assert_allclose(folded, learnt[reviewer], rtol=1e-3, atol=1e-4)
    published_items = db[mongo.RECOMMENDATIONS].find_one({"_id": reviewers[0]})
    assert published_items is not None
    ratings = {r["asin"]: r["overall"] for r in train.where(F.col("reviewerID") == reviewers[0]).collect()}
    # the batch lists also leave out held-out items: the reviewer rated them too
    rated = [r["asin"] for r in _ratings(published, spark).where(F.col("reviewerID") == reviewers[0]).collect()]
    online = [asin for asin, _ in scoring.recommend(factors, ratings, 5, exclude=rated)]
    assert online == [item["asin"] for item in published_items["items"]]


def test_similar_products_are_the_nearest_items_by_cosine_of_the_published_factors(published: Published) -> None:
    db = published.pipeline.db
    factors = scoring.ItemFactors.from_documents(db[mongo.ITEM_FACTORS].find())
    norms = np.linalg.norm(factors.vectors, axis=1)
    unliked = [asin for asin, norm in zip(factors.asins, norms, strict=True) if norm == 0]
    assert unliked, "the real files have items that only got ratings of 2 or less: no direction"
    assert db[SimilarProducts.collection].count_documents({"_id": {"$in": unliked}}) == 0
    asins = [asin for asin, norm in zip(factors.asins, norms, strict=True) if norm > 0]
    unit = factors.vectors[norms > 0] / norms[norms > 0, np.newaxis]
    similarity = unit @ unit.T
    assert db[SimilarProducts.collection].count_documents({}) == len(asins)
    for row in range(0, len(asins), max(1, len(asins) // 25)):
        stored = db[SimilarProducts.collection].find_one({"_id": asins[row]})
        assert stored is not None
        similar = SimilarProducts.from_document(stored)
        expected = sorted((-similarity[row, j], asins[j]) for j in range(len(asins)) if j != row)[:5]
        assert [item.asin for item in similar.items] == [asin for _, asin in expected]
        np.testing.assert_allclose([item.score for item in similar.items], [-s for s, _ in expected], atol=1e-9)
        assert similar.model_version == factors.model_version


def test_published_lists_are_announced_on_kafka(published: Published, settings: Settings) -> None:
    lists = published.metadata("user_recommendations")
    assert lists["announced"] == lists["dagster/row_count"]
    assert lists["announce_failed"] == 0

    db = published.pipeline.db
    wanted = db[mongo.RECOMMENDATIONS].find_one(sort=[("_id", 1)])
    assert wanted is not None
    consumer = kafka_consumer(
        settings.effective_kafka_bootstrap, f"test-announce-{uuid.uuid4()}", **{"auto.offset.reset": "earliest"}
    )
    consumer.subscribe([settings.topic_recommendations])
    found: RecommendationEvent | None = None
    deadline = time.monotonic() + 60
    try:
        while found is None and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error() or message.key() != wanted["_id"].encode():
                continue
            try:
                event = RecommendationEvent.decode(message.value() or b"")
            except ContractError:  # an older run's message; the one we want must decode
                continue
            if event.model_version == wanted["model_version"]:
                found = event
    finally:
        consumer.close()
    assert found is not None, "the published list of the first reviewer never arrived on Kafka"
    assert found.source == "batch"
    assert found == RecommendationEvent.of(Recommendations.from_document(wanted))  # every field, as stored


Row = dict[str, Any]


def _point(trial: Row) -> tuple[int, float, float]:
    return trial["rank"], trial["regParam"], trial["alpha"]


def _in_search_order(trials: list[Row], metric: str) -> list[Row]:
    """One rung's trials in the search's order. An NDCG: the higher first, a tie to the stronger reg, then the
    smaller rank. An RMSE: those within one standard error of the rung's lowest first (as the table records), the
    stronger reg then the smaller rank first; then the rest, lower first."""

    def simpler(trial: Row) -> tuple[float, int]:
        return -trial["regParam"], trial["rank"]

    if metric != "rmse":
        return sorted(trials, key=lambda t: (-t["validation"], *simpler(t)))
    close = sorted((t for t in trials if t["standardErrorsBehind"] <= 1), key=simpler)
    return close + sorted((t for t in trials if t["standardErrorsBehind"] > 1), key=lambda t: t["validation"])


def _assert_a_coordinate_sweep(first: list[Row], axes: dict[str, list[Any]]) -> None:
    """``first`` (a head's first-rung trials) is a sweep from their first point: each axis in turn, every value of
    it not yet tried, at one point already judged (which point the search prefers is test_tuning's to check)."""
    swept = first[:1]
    for axis, values in axes.items():
        sweeps = [_sweep_from(centre, axis, values, swept) for centre in swept]
        following = [[_point(t) for t in first[len(swept) : len(swept) + len(points)]] for points in sweeps]
        matching = [points for points, next_trials in zip(sweeps, following, strict=True) if points == next_trials]
        assert matching, f"the {axis} axis was not swept from any point already judged"
        swept += first[len(swept) : len(swept) + len(matching[0])]
    assert len(swept) == len(first)


def _sweep_from(centre: Row, axis: str, values: list[Any], tried: list[Row]) -> list[tuple[int, float, float]]:
    """The points a sweep of ``axis`` from ``centre`` judges: each value's, unless already ``tried``."""
    seen = {_point(t) for t in tried}
    points = []
    for value in values:
        point = _point({**centre, axis: value})
        if point not in seen:
            seen.add(point)
            points.append(point)
    return points


def test_the_default_search_tunes_each_head_on_validation_and_the_model_uses_its_choice(
    published: Published,
) -> None:
    meta = published.metadata("als_model")
    trials = [row for row in meta["tuning"]]
    heads = {row["head"]: row for row in meta["heads"]}
    assert meta["tuning_status"] == f"{len(trials)} trials"
    config = TuningConfig()
    weights = config.popularity_weights
    for head, metric in (("rating", "rmse"), ("ranking", "ndcg@10")):
        mine = [t for t in trials if t["head"] == head]
        assert {t["metric"] for t in mine} == {metric}
        assert _point(mine[0]) == (10, 0.1, 10.0)  # AlsParams' own values come first
        halving = [t for t in mine if t["rung"] < len(rungs_of(config, head))]
        first = [t for t in halving if t["rung"] == 0]
        if head == "rating":
            # A sweep from AlsParams' values: every rank of the grid (capped by the data), then every regParam at the
            # best so far; then the best third get 20 iterations.
            promoted = math.ceil(len(first) / 3)
            assert [t["rung"] for t in halving] == [0] * len(first) + [1] * promoted
            ranks = [t["rank"] for t in first[1:] if t["regParam"] == 0.1]
            assert ranks
            assert ranks == config.rating_ranks[: len(ranks)]
            _assert_a_coordinate_sweep(first, {"rank": ranks, "regParam": config.rating_reg_params})
        else:
            promoted = 3
            assert [t["rung"] for t in halving] == [0] * 9 + [1] * 3 + [2]  # successive halving: 9, then 3, then 1
        assert [t["maxIter"] for t in first] == [rungs_of(config, head)[0]] * len(first)
        assert halving[-1]["maxIter"] == 20
        best_third = _in_search_order(first, metric)[:promoted]
        assert {_point(t) for t in halving if t["rung"] == 1} == {_point(t) for t in best_third}
        last = [t for t in halving if t["rung"] == halving[-1]["rung"]]
        final = _in_search_order(last, metric)[0]
        assert (heads[head]["rank"], heads[head]["regParam"], heads[head]["maxIter"]) == (
            final["rank"],
            final["regParam"],
            final["maxIter"],
        )
    # The ranking head's popularity prior: the halving's winner, judged at each weight; the best is served.
    priors = [t for t in trials if t["rung"] == len(config.rungs)]
    assert [t["head"] for t in priors] == ["ranking"] * len(weights)
    assert [t["popularityWeight"] for t in priors] == weights
    assert {(t["rank"], t["regParam"], t["alpha"], t["maxIter"]) for t in priors} == {
        (final["rank"], final["regParam"], final["alpha"], final["maxIter"])
    }
    best = max(priors, key=lambda t: (t["validation"], -t["popularityWeight"]))
    assert heads["ranking"]["popularityWeight"] == best["popularityWeight"]
    assert heads["rating"]["popularityWeight"] == 0.0


def test_every_held_out_rating_counts_and_cold_pairs_are_reported(published: Published, spark: SparkSession) -> None:
    meta = published.metadata("model_evaluation")
    held_out = _ratings(published, spark).where("split = 'test'").count()
    assert meta["heldout_ratings"] == held_out
    train = _ratings(published, spark).where("split = 'train'")
    test = _ratings(published, spark).where("split = 'test'")
    cold = (
        test.join(train.select("reviewerID").distinct().withColumn("u", F.lit(1)), "reviewerID", "left")
        .join(train.select("asin").distinct().withColumn("i", F.lit(1)), "asin", "left")
        .where(F.col("u").isNull() | F.col("i").isNull())
        .count()
    )
    assert cold > 0  # the real files have held-out items nobody rated in training
    assert meta["heldout_ratings_cold"] == cold


def test_ranking_metrics_use_a_seeded_sample_of_reviewers_when_there_are_many(isolated: Pipeline) -> None:
    runs = [
        isolated.run(["model_evaluation"], model_evaluation={"max_ranking_users": 300, "seed": s}) for s in (1, 1, 2)
    ]
    metadata = [materialisation_metadata(run)["model_evaluation"] for run in runs]
    for meta in metadata:
        assert meta["ranking_users"] == 300
        assert meta["ranking_users_eligible"] > 300
        assert meta["heldout_ratings"] > 1000  # rating metrics keep every held-out rating
    same, other = metadata[0], metadata[2]
    assert metadata[1]["model/ndcg@10"] == same["model/ndcg@10"]  # the same seed draws the same reviewers
    assert other["model/ndcg@10"] != same["model/ndcg@10"]
    assert other["model/rmse"] == same["model/rmse"]

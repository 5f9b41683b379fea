"""What may be published: a worse model's reviewers get the best baseline's lists, the popular lists are
published on their own checks, any iteration count trains, an older model never replaces a newer one,
a model is never evaluated on ratings it was not trained on, a crashed publish changes nothing,
and only one model run holds the store at a time."""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest
from dagster import AssetMaterialization, ExecuteInProcessResult
from pyspark.sql import SparkSession
from pyspark.sql.types import StringType, StructField, StructType

from recsys_assets.model.evaluation import BIAS, MODEL, POPULARITY, best_baseline, judge
from recsys_assets.model.features import TRAIN
from recsys_assets.model.handles import HANDLE, EvaluationHandle, ModelHandle
from recsys_assets.model.publishing import atomic_publish
from recsys_assets.model.store import LEASE
from recsys_assets.model.training import BASELINE_PREFIX
from recsys_assets.runs import materialisation_metadata
from recsys_core import mongo
from recsys_core.contract import TOP_K, ItemFactor, MongoDocument, PopularItem, Recommendations, SimilarProducts
from recsys_core.locks import Lease
from tests.model.conftest import PUBLISHERS, UNTUNED, Pipeline, handle

SERVED = (Recommendations, PopularItem, ItemFactor)
WORSE_MODEL = {**UNTUNED, "max_iter": 1, "rank": 1}


def _snapshot(pipeline: Pipeline) -> dict[str, list[mongo.Document]]:
    return {d.collection: _documents(pipeline, d) for d in SERVED}


def _documents(pipeline: Pipeline, document: type[MongoDocument]) -> list[mongo.Document]:
    return list(pipeline.db[document.collection].find().sort("_id"))


def _served_versions(pipeline: Pipeline) -> set[str]:
    return {v for d in SERVED for v in pipeline.db[d.collection].distinct("model_version")}


def _failures(result: ExecuteInProcessResult) -> str:
    """Every error a run's events carry, with their causes: what the UI shows of a failure."""
    errors = (getattr(event.event_specific_data, "error", None) for event in result.all_events)
    return "\n".join(error.to_string() for error in errors if error is not None)


def _publish_session_model(pipeline: Pipeline) -> str:
    result = pipeline.run(PUBLISHERS)
    assert result.success, _failures(result)
    return EvaluationHandle.model_validate(pipeline.handles["model_evaluation"]).model.version


def _baseline_lists(spark: SparkSession, evaluation: EvaluationHandle, baseline: str) -> dict[str, list[str]]:
    """Each training reviewer's first 5 unrated items of the baseline's global order, computed here from the data."""
    ratings = [(r.reviewerID, r.asin, r.split) for r in spark.read.parquet(evaluation.model.ratings.uri).collect()]
    if baseline == POPULARITY:
        scores = dict(Counter(asin for _, asin, split in ratings if split == TRAIN))
    else:
        biases = spark.read.parquet(f"{evaluation.model.uri}/{BASELINE_PREFIX}item_bias").collect()
        scores = {row.asin: row.item_bias for row in biases}
    order = sorted(scores, key=lambda asin: (-scores[asin], asin))
    rated: dict[str, set[str]] = defaultdict(set)
    for reviewer, asin, _ in ratings:
        rated[reviewer].add(asin)
    trained = {reviewer for reviewer, _, split in ratings if split == TRAIN}
    return {reviewer: [asin for asin in order if asin not in rated[reviewer]][:TOP_K] for reviewer in trained}


def test_a_worse_model_fails_the_gate_and_the_best_baseline_serves(isolated: Pipeline, spark: SparkSession) -> None:
    """The run succeeds; the lists come from the better-ranking baseline, marked with it; the popular lists are
    published; the failed model's factors and neighbours are not, so the last good model's stay."""
    _publish_session_model(isolated)
    model_only = {d.collection: _documents(isolated, d) for d in (ItemFactor, SimilarProducts)}
    assert all(model_only.values())

    result = isolated.run(["als_model", "model_evaluation", *PUBLISHERS], als_model=WORSE_MODEL)

    assert result.success, _failures(result)
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    gate = checks["model_beats_baselines"]
    assert not gate.passed
    assert gate.severity.value == "WARN"
    assert checks["popular_products_not_empty"].passed
    assert checks["popular_products_cover_rated_categories"].passed
    materialised = materialisation_metadata(result)
    evaluation = materialised["model_evaluation"]
    assert evaluation["gate_status"] == "fail"
    assert evaluation["model/rmse"] > evaluation["user_item_bias/rmse"]
    better = POPULARITY if evaluation["popularity/ndcg@10"] >= evaluation["user_item_bias/ndcg@10"] else BIAS
    assert evaluation["lists_from"] == better
    assert evaluation["gate_decision"].startswith(f"gate fail, lists from {better}: ")
    assert materialised["user_recommendations"]["gate_decision"] == evaluation["gate_decision"]
    assert materialised["item_factors"]["published"] is False

    judged = handle(result, "model_evaluation", EvaluationHandle)
    lists = [Recommendations.from_document(d) for d in isolated.db[Recommendations.collection].find()]
    assert {(r.model_version, r.source, r.gate_decision) for r in lists} == {
        (judged.model.version, better, evaluation["gate_decision"])
    }
    assert {r.reviewerID: [item.asin for item in r.items] for r in lists} == _baseline_lists(spark, judged, better)
    assert set(isolated.db[PopularItem.collection].distinct("model_version")) == {judged.model.version}
    assert {d.collection: _documents(isolated, d) for d in (ItemFactor, SimilarProducts)} == model_only


def test_popular_lists_are_held_to_their_own_checks(isolated: Pipeline) -> None:
    """No product with enough ratings: nothing to list, and the blocking checks say so."""
    result = isolated.run(["popular_products"], popular_products={"min_ratings": 1_000_000_000})
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["popular_products_not_empty"].passed
    assert not checks["popular_products_cover_rated_categories"].passed
    assert "no list for: " in (checks["popular_products_cover_rated_categories"].description or "")


def test_any_iteration_count_trains_with_checkpoints(isolated: Pipeline) -> None:
    """30 iterations overflow the JVM stack without a checkpoint folder; checkpoints are scratch, deleted after."""
    result = isolated.run(["als_model"], als_model={**UNTUNED, "max_iter": 30})
    assert result.success, _failures(result)
    version = handle(result, "als_model", ModelHandle).version
    assert (isolated.store / version / "model" / "model.json").exists()
    assert not (isolated.store / version / "checkpoints").exists()


def test_too_little_data_to_judge_publishes_with_a_warning(isolated: Pipeline) -> None:
    session_version = _publish_session_model(isolated)
    result = isolated.run(
        ["als_model", "model_evaluation", *PUBLISHERS],
        als_model=WORSE_MODEL,
        model_evaluation={"min_heldout_ratings": 1_000_000},
    )
    assert result.success, _failures(result)
    gate = next(c for c in result.get_asset_check_evaluations() if c.check_name == "model_beats_baselines")
    assert not gate.passed
    assert gate.severity.value == "WARN"
    assert "too little held-out data" in (gate.description or "")
    version = handle(result, "als_model", ModelHandle).version
    assert version > session_version
    assert _served_versions(isolated) == {version}


def test_an_older_model_never_replaces_a_newer_one(isolated: Pipeline) -> None:
    """Publishing an older run's evaluation after a newer model is served is refused, and changes nothing."""
    old = EvaluationHandle.model_validate(isolated.handles["model_evaluation"])
    newer = isolated.run(
        ["als_model", "model_evaluation", *PUBLISHERS],
        als_model=UNTUNED,
        model_evaluation={"min_heldout_ratings": 1_000_000},
    )
    assert newer.success, _failures(newer)
    new_version = handle(newer, "als_model", ModelHandle).version
    assert new_version > old.model.version
    before = _snapshot(isolated)

    # The old evaluation becomes the latest materialisation the publishers load.
    isolated.instance.report_runless_asset_event(
        AssetMaterialization("model_evaluation", metadata={HANDLE: old.model_dump(mode="json")})
    )
    stale = isolated.run(PUBLISHERS)

    assert not stale.success
    failures = _failures(stale)
    assert f"refusing to publish model {old.model.version}" in failures
    assert f"it already serves {new_version}, which is newer" in failures
    assert _snapshot(isolated) == before


def test_a_model_is_not_evaluated_on_ratings_it_was_not_trained_on(isolated: Pipeline) -> None:
    resplit = isolated.run(["training_ratings"], training_ratings={"split": "RANDOM", "seed": 9})
    assert resplit.success, _failures(resplit)

    # als_model is still the session's, trained on the session's ratings.
    result = isolated.run(["model_evaluation"])

    assert not result.success
    failures = _failures(result)
    model = EvaluationHandle.model_validate(isolated.handles["model_evaluation"]).model
    assert f"model {model.version} was trained on ratings {model.ratings.version}" in failures
    assert "materialise als_model again" in failures


def test_a_second_model_run_is_refused_while_one_holds_the_store(isolated: Pipeline) -> None:
    with Lease(isolated.db, LEASE, owner="Dagster run other-run-id"):
        result = isolated.run(["review_sample"])
    assert not result.success
    failures = _failures(result)
    assert "the 'model_store' lock is held by Dagster run other-run-id" in failures
    assert not result.get_asset_materialization_events()
    # Released: the next run goes ahead.
    assert isolated.run(["review_sample"]).success


def test_old_run_folders_are_pruned_but_served_and_used_ones_are_kept(isolated: Pipeline, spark: SparkSession) -> None:
    served = _publish_session_model(isolated)
    store = isolated.store
    old = [f"2020010{i}T000000000000Z-0000000{i}" for i in range(1, 7)]
    for name in old:
        (store / name / "model").mkdir(parents=True)

    result = isolated.run(["als_model"], store=store, als_model=UNTUNED)
    assert result.success, _failures(result)

    pruned = materialisation_metadata(result)["als_model"]["pruned_versions"]
    new = handle(result, "als_model", ModelHandle).version
    assert sorted(pruned) == old[:2]  # the newest 5 stay: four old folders and the new one
    assert sorted(p.name for p in store.iterdir()) == [*old[2:], new]
    assert served not in pruned  # the served model lives in the session's store and is never touched


def test_a_crashed_publish_leaves_the_served_collection_intact(isolated: Pipeline, spark: SparkSession) -> None:
    _publish_session_model(isolated)
    before = list(isolated.db[mongo.POPULAR].find().sort("_id"))
    assert before
    schema = StructType([StructField("_id", StringType()), StructField("payload", StringType())])
    rows = [(f"doc-{i}", "small") for i in range(200)]
    rows.append(("too-big", "x" * (17 * 1024 * 1024)))  # over MongoDB's 16 MB document limit
    documents = spark.createDataFrame(rows, schema).repartition(4)

    with pytest.raises(Exception, match="BsonMaximumSizeExceededException"):
        atomic_publish(isolated.mongo, PopularItem, "9999-crash-test", documents)

    assert list(isolated.db[mongo.POPULAR].find().sort("_id")) == before
    assert not [name for name in isolated.db.list_collection_names() if "__staging_" in name]


def _metrics(
    model_rmse: float, bias_rmse: float, model_ndcg: float, pop_ndcg: float
) -> dict[str, dict[str, float | None]]:
    return {
        MODEL: {"rmse": model_rmse, "ndcg@10": model_ndcg},
        BIAS: {"rmse": bias_rmse, "ndcg@10": 0.0},
        POPULARITY: {"rmse": None, "ndcg@10": pop_ndcg},
    }


@pytest.mark.parametrize(
    ("metrics", "status"),
    [
        (_metrics(0.30, 0.40, 0.70, 0.50), "pass"),
        (_metrics(0.45, 0.40, 0.70, 0.50), "fail"),  # loses on RMSE
        (_metrics(0.30, 0.40, 0.50, 0.50), "fail"),  # ties popularity: not a win
    ],
)
def test_gate_needs_both_wins(metrics: dict[str, dict[str, float | None]], status: str) -> None:
    verdict = judge(metrics, rating_rows=1000, ranking_users=1000, min_rating_rows=500, min_ranking_users=200)
    assert verdict.status == status
    assert verdict.publishable == (status == "pass")


def test_the_best_ranking_baseline_serves_and_popularity_wins_a_tie() -> None:
    assert best_baseline(_metrics(0.5, 0.4, 0.1, 0.5)) == POPULARITY
    bias_ranks_better = _metrics(0.5, 0.4, 0.1, 0.5) | {BIAS: {"rmse": 0.4, "ndcg@10": 0.6}}
    assert best_baseline(bias_ranks_better) == BIAS
    tie = _metrics(0.5, 0.4, 0.1, 0.0)
    assert best_baseline(tie) == POPULARITY


def test_gate_warns_instead_of_judging_too_little_data() -> None:
    verdict = judge(
        _metrics(0.9, 0.4, 0.6, 0.5), rating_rows=120, ranking_users=80, min_rating_rows=500, min_ranking_users=200
    )
    assert verdict.status == "too_small"
    assert verdict.publishable
    assert "120 ratings" in verdict.reasons[0]
    # The lost comparison is named, though not held against the model.
    lost = "RMSE 0.9 does not beat the user+item bias baseline's 0.4"
    assert verdict.reasons[1:] == [f"{lost}, on too little data to tell"]


def test_a_failing_sample_check_blocks_training(isolated: Pipeline) -> None:
    """The sample check is blocking: with a threshold no p-value can reach, nothing downstream runs."""
    result = isolated.run(["review_sample", "training_ratings"], review_sample={"fraction": 0.5, "min_p_value": 1.01})
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "sample_matches_population")
    assert not check.passed
    assert "rating_chi2" in (check.description or "")
    assert set(materialisation_metadata(result)) == {"review_sample"}
    version = materialisation_metadata(result)["review_sample"]["version"]
    assert not (isolated.store / version / "ratings").exists()

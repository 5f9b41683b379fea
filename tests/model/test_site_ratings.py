"""Batch hand-off of the real-time loop: site ratings start a retrain at the threshold and are trained on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from dagster import DagsterInstance, RunRequest, SkipReason, build_sensor_context
from pymongo.database import Database
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from recsys_assets.model.handles import ModelHandle, RatingsHandle
from recsys_assets.model.orchestration import RetrainPolicy, retrain_on_site_ratings
from recsys_assets.model.sources import read_site_ratings
from recsys_assets.model.training import load_model
from recsys_assets.resources import MongoResource
from recsys_core import mongo
from recsys_core.contract import Interaction
from recsys_core.settings import Settings
from tests.model.conftest import UNTUNED, Pipeline, handle


def _interaction(reviewer: str, asin: str, kind: str = "rate", when: datetime | None = None) -> Interaction:
    return Interaction.model_validate(
        {"event_id": uuid.uuid4().hex, "reviewerID": reviewer, "asin": asin, "kind": kind,
         "rating": 5.0 if kind == "rate" else None, "ts": when or datetime.now(UTC)}
    )  # fmt: skip


def _evaluate(db: Database[mongo.Document], settings: Settings, instance: DagsterInstance, cursor: str | None):
    resources = {
        "mongo": MongoResource(uri=settings.effective_mongo_uri, database=db.name, timeout_ms=5000),
        "retrain_policy": RetrainPolicy(after_ratings=3),
    }
    with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as context:
        return retrain_on_site_ratings(context), context.cursor


def test_the_retrain_sensor_fires_at_the_threshold_of_new_site_ratings_only(db, running_services) -> None:
    instance = DagsterInstance.ephemeral()
    stored = db[Interaction.collection]
    start = datetime.now(UTC)
    stored.insert_many([_interaction("web-a", "B1", when=start + timedelta(seconds=i)).to_document() for i in range(2)])
    stored.insert_many([_interaction("web-a", "B2", "click").to_document() for _ in range(5)])
    result, _ = _evaluate(db, running_services, instance, None)
    assert isinstance(result, SkipReason)
    assert "2 new site ratings" in str(result.skip_message)

    stored.insert_one(_interaction("web-b", "B3", when=start + timedelta(seconds=5)).to_document())
    result, _ = _evaluate(db, running_services, instance, None)
    assert not isinstance(result, SkipReason)
    assert [type(r) for r in result.run_requests or []] == [RunRequest]
    assert result.cursor is not None

    again, _ = _evaluate(db, running_services, instance, result.cursor)
    assert isinstance(again, SkipReason), "the same ratings do not start a second retrain"
    assert "0 new site ratings" in str(again.skip_message)


def test_site_ratings_are_in_the_next_training_ratings_and_model(isolated: Pipeline, spark: SparkSession) -> None:
    asin = str(isolated.db[mongo.REVIEWS].find_one({"category": "All_Beauty"}, {"asin": 1})["asin"])  # type: ignore[index]
    shopper = f"web-{uuid.uuid4().hex[:16]}"
    isolated.db[Interaction.collection].insert_many(
        [_interaction(shopper, asin).to_document(), _interaction(shopper, asin, "click").to_document()]
    )
    result = isolated.run(["review_sample", "training_ratings", "als_model"], als_model=UNTUNED)
    assert result.success
    ratings = spark.read.parquet(handle(result, "training_ratings", RatingsHandle).uri)
    mine = ratings.where(ratings.reviewerID == shopper).collect()
    assert [(r["asin"], r["overall"], r["category"], r["split"]) for r in mine] == [(asin, 5.0, "All_Beauty", "train")]
    model = load_model(isolated.model_store(), spark, handle(result, "als_model", ModelHandle).uri)
    assert model.ids.users.where(F.col("reviewerID") == shopper).count() == 1


def test_an_empty_interactions_collection_reads_as_no_site_ratings(db, running_services, spark: SparkSession) -> None:
    """As on a fresh deployment: the updater has created the collection, and nobody has acted yet."""
    mongo.ensure_collection(db, mongo.INTERACTIONS)
    resource = MongoResource(uri=running_services.effective_mongo_uri, database=db.name, timeout_ms=5000)
    assert read_site_ratings(spark, resource).count() == 0
    db[Interaction.collection].insert_one(_interaction("web-c", "B9").to_document())
    db[mongo.REVIEWS].insert_one({"_id": "r1", "category": "Toys", "reviewerID": "A1", "asin": "B9", "overall": 3.0})
    rows = [
        (r["reviewerID"], r["asin"], r["overall"], r["category"]) for r in read_site_ratings(spark, resource).collect()
    ]
    assert rows == [("web-c", "B9", 5.0, "Toys")]

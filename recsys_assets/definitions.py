"""The Dagster code location: every asset, check, job, schedule, sensor and resource of recsys.

Load it with ``dagster dev -w workspace.yaml`` (or ``recsys ui``).
"""

from __future__ import annotations

from typing import Any

from dagster import Definitions

from recsys_assets.ingest import defs as ingest
from recsys_assets.model import defs as model
from recsys_assets.model.assets.stage import HANDLES
from recsys_assets.model.handles import HandleIOManager
from recsys_assets.model.orchestration import RetrainPolicy
from recsys_assets.model.store import ModelStore
from recsys_assets.resources import KafkaResource, MongoResource, RawDataResource
from recsys_assets.spark import spark_resource
from recsys_core.settings import Settings, get_settings


def build_resources(settings: Settings) -> dict[str, Any]:
    """Every resource the assets use, configured from ``settings``."""
    mongo = MongoResource(
        uri=settings.effective_mongo_uri, database=settings.mongo_db, timeout_ms=settings.mongo_timeout_ms
    )
    return {
        "mongo": mongo,
        "pyspark": spark_resource(settings),
        "raw_data": RawDataResource(data_dir=str(settings.effective_data_dir)),
        "kafka": KafkaResource(
            bootstrap_servers=settings.effective_kafka_bootstrap,
            topic_recommendations=settings.topic_recommendations,
        ),
        "model_store": ModelStore(
            base_uri=settings.effective_model_store_uri, keep_versions=settings.model_keep_versions, mongo=mongo
        ),
        "retrain_policy": RetrainPolicy(after_ratings=settings.retrain_after_interactions),
        HANDLES: HandleIOManager(),
    }


def definitions(settings: Settings) -> Definitions:
    """The code location with its resources configured from ``settings``: ``recsys run`` runs its jobs on the
    settings it was given, not on those of whichever process imported this module first."""
    return Definitions(
        assets=[*ingest.EXTERNAL, *ingest.ASSETS, *model.ASSETS],
        asset_checks=model.CHECKS,
        jobs=[*ingest.JOBS, *model.JOBS],
        schedules=model.SCHEDULES,
        sensors=[*ingest.SENSORS, *model.SENSORS],
        resources=build_resources(settings),
    )


defs = definitions(get_settings())

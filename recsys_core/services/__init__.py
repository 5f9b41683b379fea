"""Start, report and stop the local MongoDB and Kafka that the project runs on, the online
updater, and on request a local Spark standalone cluster.

Services configured by the user (``RECSYS_MONGO_URI``, ``RECSYS_KAFKA_BOOTSTRAP_SERVERS``)
are only checked, never started or stopped.
"""

from __future__ import annotations

from recsys_core.services.kafka import KafkaService
from recsys_core.services.mongod import MongoService
from recsys_core.services.process import ServiceError
from recsys_core.services.spark import SparkClusterService
from recsys_core.services.status import ServiceStatus
from recsys_core.services.updater import UpdaterService
from recsys_core.settings import Settings

__all__ = ["ServiceError", "ServiceStatus", "down", "status", "up"]


def up(settings: Settings, spark: bool = False, updater: bool = False) -> list[ServiceStatus]:
    """Start (or find running) mongod and Kafka; with ``updater`` the online updater, with ``spark`` the cluster."""
    started = [MongoService(settings).up(), KafkaService(settings).up()]
    if updater:
        started.append(UpdaterService(settings).up())
    return [*started, SparkClusterService(settings).up()] if spark else started


def down(settings: Settings) -> list[str]:
    """Stop the managed services, the updater and the Spark cluster too; the names of those that were running."""
    services = (
        UpdaterService(settings),
        SparkClusterService(settings),
        KafkaService(settings),
        MongoService(settings),
    )
    return [svc.name for svc in services if svc.down()]


def status(settings: Settings) -> list[ServiceStatus]:
    """mongod and Kafka, and the updater and the Spark cluster when they run."""
    spark, updater = SparkClusterService(settings), UpdaterService(settings)
    statuses = [MongoService(settings).status(), KafkaService(settings).status()]
    if updater.process.pid is not None:
        statuses.append(updater.status())
    return [*statuses, spark.status()] if spark.master.pid is not None else statuses

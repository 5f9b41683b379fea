"""Start, report and stop the local MongoDB and Kafka that the project runs on.

Services configured by the user (``RECSYS_MONGO_URI``, ``RECSYS_KAFKA_BOOTSTRAP_SERVERS``)
are only checked, never started or stopped.
"""

from __future__ import annotations

from recsys_core.services.kafka import KafkaService
from recsys_core.services.mongod import MongoService
from recsys_core.services.process import ServiceError
from recsys_core.services.status import ServiceStatus
from recsys_core.settings import Settings

__all__ = ["ServiceError", "ServiceStatus", "down", "status", "up"]


def up(settings: Settings) -> list[ServiceStatus]:
    return [MongoService(settings).up(), KafkaService(settings).up()]


def down(settings: Settings) -> list[str]:
    """Stop the managed services; returns the names of those that were running."""
    return [svc.name for svc in (KafkaService(settings), MongoService(settings)) if svc.down()]


def status(settings: Settings) -> list[ServiceStatus]:
    return [MongoService(settings).status(), KafkaService(settings).status()]

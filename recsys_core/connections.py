"""The one place that opens MongoDB clients and Kafka producers and consumers.

Every process (assets, web app, CLI, services, tests) connects through here, so timeouts,
time zones and delivery guarantees are the same everywhere and are changed in one place.

MongoDB clients carry a client-side operation timeout (``timeoutMS``): an operation that
does not finish in time raises a timeout error instead of holding its thread forever, which
is what keeps a web page from hanging on a mongod that stops answering.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import Consumer, Producer
from pymongo import MongoClient
from pymongo.database import Database

from recsys_core.mongo import Document
from recsys_core.settings import Settings


def mongo_client(uri: str, timeout_ms: int, app_name: str = "recsys", **options: Any) -> MongoClient[Document]:
    """A pooled client whose every operation, server selection included, gives up after ``timeout_ms``."""
    return MongoClient(
        uri,
        appname=app_name,
        tz_aware=True,
        timeoutMS=timeout_ms,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        **options,
    )


def project_database(settings: Settings, timeout_ms: int | None = None) -> Database[Document]:
    """The configured database on a new client; close it with ``db.client.close()``."""
    client = mongo_client(settings.effective_mongo_uri, timeout_ms or settings.mongo_timeout_ms)
    return client[settings.mongo_db]


def kafka_producer(bootstrap_servers: str, message_timeout_ms: int, logger: logging.Logger | None = None) -> Producer:
    """An idempotent producer: retries never duplicate or reorder a reviewer's messages.

    ``message_timeout_ms`` bounds how long a message may wait for delivery before its delivery
    report says it failed.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        "enable.idempotence": True,
        "message.timeout.ms": message_timeout_ms,
    }
    if logger is not None:
        config["logger"] = logger
    return Producer(config)


def kafka_consumer(bootstrap_servers: str, group_id: str, **config: Any) -> Consumer:
    """A consumer that never commits on its own: callers decide where reading resumes."""
    return Consumer(
        {"bootstrap.servers": bootstrap_servers, "group.id": group_id, "enable.auto.commit": False, **config}
    )

"""The one place that opens MongoDB clients and Kafka producers and consumers.

Every process (assets, web app, CLI, services, tests) connects through here, so timeouts,
time zones and delivery guarantees are the same everywhere and are changed in one place.

MongoDB clients carry a client-side operation timeout (``timeoutMS``): an operation that
does not finish in time raises a timeout error instead of holding its thread forever, which
is what keeps a web page from hanging on a mongod that stops answering.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, NamedTuple

from confluent_kafka import Consumer, KafkaError, Message, Producer
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


class DeliveryReport(NamedTuple):
    delivered: int
    failed: int


def deliver(
    messages: Iterable[tuple[bytes, bytes]], bootstrap_servers: str, topic: str, timeout_s: float
) -> DeliveryReport:
    """Produce (key, value) pairs to ``topic`` on a producer of their own and wait for every delivery report.

    A message not confirmed within ``timeout_s`` counts as failed; nothing raises, because
    MongoDB, not Kafka, is the record of what was published.
    """
    producer = kafka_producer(bootstrap_servers, int(timeout_s * 1000))
    outcomes = {"delivered": 0, "failed": 0}

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        outcomes["failed" if error else "delivered"] += 1

    for key, value in messages:
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
                break
            except BufferError:  # the local queue is full: let deliveries drain
                producer.poll(0.5)
        producer.poll(0)
    unconfirmed = producer.flush(timeout_s + 5)
    return DeliveryReport(outcomes["delivered"], outcomes["failed"] + unconfirmed)


def kafka_consumer(bootstrap_servers: str, group_id: str, **config: Any) -> Consumer:
    """A consumer that never commits on its own: callers decide where reading resumes."""
    return Consumer(
        {"bootstrap.servers": bootstrap_servers, "group.id": group_id, "enable.auto.commit": False, **config}
    )

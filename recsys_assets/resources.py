"""Dagster resources: MongoDB, Spark (dagster-pyspark) and Kafka, configured from the one
``RECSYS_*`` settings surface."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from confluent_kafka import Producer
from dagster import ConfigurableResource
from dagster_pyspark import PySparkResource
from pymongo import MongoClient
from pymongo.database import Database

from recsys_assets.spark import spark_config
from recsys_core import mongo
from recsys_core.settings import Settings


class MongoResource(ConfigurableResource):  # type: ignore[misc]
    """The project database; assets open a short-lived client per use."""

    uri: str
    database: str

    @contextmanager
    def db(self) -> Iterator[Database[mongo.Document]]:
        client: MongoClient[mongo.Document] = MongoClient(self.uri, serverSelectionTimeoutMS=10_000)
        try:
            yield client[self.database]
        finally:
            client.close()


class KafkaResource(ConfigurableResource):  # type: ignore[misc]
    """Kafka producer settings for assets that announce what they published."""

    bootstrap_servers: str
    topic_recommendations: str

    def producer(self) -> Producer:
        return Producer({"bootstrap.servers": self.bootstrap_servers, "enable.idempotence": True})


def build_resources(settings: Settings) -> dict[str, ConfigurableResource]:
    return {
        "mongo": MongoResource(uri=settings.effective_mongo_uri, database=settings.mongo_db),
        "pyspark": PySparkResource(spark_config=spark_config(settings)),
        "kafka": KafkaResource(
            bootstrap_servers=settings.effective_kafka_bootstrap,
            topic_recommendations=settings.topic_recommendations,
        ),
    }

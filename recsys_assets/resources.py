"""Dagster resources shared by the stages: MongoDB, Kafka and the folder of raw files.

The model store is the model stage's own (``model/store.py``); ``definitions.build_resources``
configures them all from the one ``RECSYS_*`` settings surface.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from dagster import ConfigurableResource, InitResourceContext
from pymongo.database import Database

from recsys_assets.data_files import CategoryFiles, discover
from recsys_core import mongo
from recsys_core.connections import mongo_client


def label_run(context: InitResourceContext, tags: Mapping[str, str]) -> None:
    """Tag the run with what a resource is configured to use, so the UI tells every run's data apart.

    Resources do it, not the launcher, so runs from the UI, a schedule, a sensor or ``recsys run`` all say it.
    """
    if context.run is not None and context.instance is not None:
        context.instance.add_run_tags(context.run.run_id, tags)


class MongoResource(ConfigurableResource):  # type: ignore[type-arg]  # Dagster's generic resource base
    """The project database; assets open a short-lived client per use."""

    uri: str
    database: str
    timeout_ms: int = 600_000

    def setup_for_execution(self, context: InitResourceContext) -> None:
        label_run(context, {"recsys/mongo_db": self.database})

    def open(self) -> Database[mongo.Document]:
        """The database on a new client, which the caller closes (``db.client.close()``)."""
        return mongo_client(self.uri, self.timeout_ms, app_name="recsys-assets")[self.database]

    def spark_options(self) -> dict[str, str]:
        """The MongoDB Spark Connector's options for this database, so Spark and pymongo never disagree."""
        return {"connection.uri": self.uri, "database": self.database}

    @contextmanager
    def db(self) -> Iterator[Database[mongo.Document]]:
        database = self.open()
        try:
            yield database
        finally:
            database.client.close()


class RawDataResource(ConfigurableResource):  # type: ignore[type-arg]  # Dagster's generic resource base
    """The folder of Amazon review and metadata files, grouped into category partitions."""

    data_dir: str

    def setup_for_execution(self, context: InitResourceContext) -> None:
        label_run(context, {"recsys/data_dir": self.data_dir})

    def categories(self) -> dict[str, CategoryFiles]:
        return discover(Path(self.data_dir))

    def files_of(self, category: str) -> CategoryFiles:
        found = self.categories().get(category)
        if found is None:
            raise FileNotFoundError(
                f"No review or meta file for category {category!r} in {self.data_dir} "
                f"(expected {category}.json[.gz], {category}_5.json[.gz] or meta_{category}.json[.gz])."
            )
        return found


class KafkaResource(ConfigurableResource):  # type: ignore[type-arg]  # Dagster's generic resource base
    """Kafka, for assets that announce what they published on the ``recommendations`` topic
    (``publishing.announce``, from the Spark executors)."""

    bootstrap_servers: str
    topic_recommendations: str
    delivery_timeout_s: float = 30.0

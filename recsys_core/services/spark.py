"""A local Spark standalone cluster: one master and N workers, from the scripts in the pyspark wheel.

Not started by default (``local[*]`` runs the pipeline in the driver's JVM); ``recsys
services up --spark`` starts it for whoever wants the model job to run the way it runs on
a real cluster: executors in other JVMs, reached over the network, sharing nothing but the
model store's URI and MongoDB. Then ``RECSYS_SPARK_MASTER`` is ``spark://127.0.0.1:<port>``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import pyspark

from recsys_core.services.process import ManagedProcess, ServiceError, port_is_free
from recsys_core.services.status import ServiceStatus
from recsys_core.settings import Settings


def spark_home() -> Path:
    """The Spark distribution inside the pyspark wheel (its bin/ holds spark-class)."""
    return Path(pyspark.__file__).resolve().parent


class SparkClusterService:
    name = "spark"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "spark"
        self.master = ManagedProcess("spark-master", self.home)
        self.workers = [
            ManagedProcess(f"spark-worker-{i}", self.home) for i in range(1, settings.spark_cluster_workers + 1)
        ]

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.settings.spark_cluster_port}"

    def _alive_workers(self) -> int:
        """Workers the master reports ALIVE, from its status page's JSON; -1 when the master does not answer."""
        address = f"http://127.0.0.1:{self.settings.spark_cluster_webui_port}/json/"
        try:
            with urllib.request.urlopen(address, timeout=2) as response:
                state = json.load(response)
        except (urllib.error.URLError, OSError, ValueError):
            return -1
        return sum(1 for worker in state.get("workers", []) if worker.get("state") == "ALIVE")

    def up(self) -> ServiceStatus:
        if self._alive_workers() >= len(self.workers):
            return self.status()
        for port, what in (
            (self.settings.spark_cluster_port, "RECSYS_SPARK_CLUSTER_PORT"),
            (self.settings.spark_cluster_webui_port, "RECSYS_SPARK_CLUSTER_WEBUI_PORT"),
        ):
            if self.master.pid is None and not port_is_free(port):
                raise ServiceError(
                    f"port {port} on 127.0.0.1 is already taken, so the Spark master cannot start. "
                    f"Stop what holds it or choose another with {what}."
                )
        spark_class = str(spark_home() / "bin" / "spark-class")
        env = {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_LOCAL_IP": "127.0.0.1"}
        if self.master.pid is None:
            self.master.start(
                [
                    spark_class,
                    "org.apache.spark.deploy.master.Master",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.settings.spark_cluster_port),
                    "--webui-port",
                    str(self.settings.spark_cluster_webui_port),
                ],
                env=env,
            )
            self.master.wait_ready(lambda: self._alive_workers() >= 0, timeout_s=60)
        for worker in self.workers:
            if worker.pid is None:
                work_dir = self.home / worker.name
                work_dir.mkdir(parents=True, exist_ok=True)
                worker.start(
                    [
                        spark_class,
                        "org.apache.spark.deploy.worker.Worker",
                        self.url,
                        "--host",
                        "127.0.0.1",
                        "--cores",
                        str(self.settings.spark_worker_cores),
                        "--memory",
                        self.settings.spark_worker_memory,
                        "--work-dir",
                        str(work_dir),
                        "--webui-port",
                        "0",
                    ],
                    env=env,
                )
        self.master.wait_ready(lambda: self._alive_workers() >= len(self.workers), timeout_s=60)
        return self.status()

    def down(self) -> bool:
        stopped = [worker.stop() for worker in self.workers]
        return self.master.stop() or any(stopped)

    def status(self) -> ServiceStatus:
        alive = self._alive_workers()
        return ServiceStatus(
            name=self.name,
            managed=True,
            address=f"{self.url} ({max(alive, 0)} of {len(self.workers)} workers)",
            pid=self.master.pid,
            reachable=alive >= len(self.workers),
            log=self.master.log_file,
        )

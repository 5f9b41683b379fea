"""The managed Kafka: a real single-node KRaft broker run from the jars that
``services/kafka/pom.xml`` pins, resolved once with mvn into the state folder."""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # the stubs do not export them

from recsys_core.services.jars import kafka_jars
from recsys_core.services.process import ManagedProcess, ServiceError, port_is_free
from recsys_core.services.status import ServiceStatus
from recsys_core.settings import Settings


def java_binary() -> str:
    java = shutil.which("java")
    if java is None:
        raise ServiceError("Java is missing: install Java 17 (apt-get install openjdk-17-jre-headless).")
    return java


# The readiness probe expects "connection refused" while the broker starts: keep librdkafka quiet.
_PROBE_LOGGER = logging.getLogger("recsys.kafka.probe")
_PROBE_LOGGER.addHandler(logging.NullHandler())
_PROBE_LOGGER.propagate = False


def ensure_topics(bootstrap: str, topics: list[str], partitions: int) -> None:
    """Create the project's topics if they do not exist yet (idempotent)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = admin.list_topics(timeout=10).topics
    missing = [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics if t not in existing]
    if not missing:
        return
    for topic, future in admin.create_topics(missing, operation_timeout=30).items():
        try:
            future.result()
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise ServiceError(f"could not create topic {topic}: {exc}") from exc


class KafkaService:
    name = "kafka"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.state_dir / "kafka"
        self.process = ManagedProcess("kafka", self.home)

    def _answers_metadata(self) -> bool:
        try:
            config: dict[str, Any] = {"bootstrap.servers": self.settings.effective_kafka_bootstrap}
            config["logger"] = _PROBE_LOGGER  # the stubs type config values as scalars only
            probe = AdminClient(config)
            probe.list_topics(timeout=1)
        except KafkaException:
            return False
        return True

    def _write_config(self) -> str:
        s = self.settings
        log_dirs = self.home / "data"
        config = self.home / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{s.kafka_controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{s.kafka_port},CONTROLLER://127.0.0.1:{s.kafka_controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{s.kafka_port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={log_dirs}",
                    "offsets.topic.replication.factor=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    f"num.partitions={s.topic_partitions}",
                    "auto.create.topics.enable=false",
                ]
            )
            + "\n"
        )
        return str(config)

    def up(self) -> ServiceStatus:
        s = self.settings
        if s.kafka_managed and not (self.process.pid is not None and self._answers_metadata()):
            self._start()
        ensure_topics(s.effective_kafka_bootstrap, s.topics, s.topic_partitions)
        return self.status()

    def _start(self) -> None:
        s = self.settings
        for port, what in (
            (s.kafka_port, "RECSYS_KAFKA_PORT"),
            (s.kafka_controller_port, "RECSYS_KAFKA_CONTROLLER_PORT"),
        ):
            if not port_is_free(port):
                raise ServiceError(
                    f"port {port} on 127.0.0.1 is already taken, so the Kafka broker cannot start. "
                    f"Stop what holds it, choose another with {what}, "
                    "or use that broker with RECSYS_KAFKA_BOOTSTRAP_SERVERS."
                )
        java = java_binary()
        classpath = ":".join(str(jar) for jar in kafka_jars(s))
        self.home.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        if not (self.home / "data" / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
            # "--cluster-id=<id>" in one word: an id may start with "-", which would read as an option.
            fmt = subprocess.run(
                [
                    java,
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    f"--cluster-id={cluster_id}",
                    "-c",
                    config,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if fmt.returncode != 0:
                raise ServiceError(f"formatting Kafka storage failed:\n{fmt.stdout[-2000:]}{fmt.stderr[-2000:]}")
        self.process.start(
            [
                java,
                "-Xms256m",
                "-Xmx768m",
                "-XX:+UseG1GC",
                "-Djava.awt.headless=true",
                "-cp",
                classpath,
                "kafka.Kafka",
                config,
            ]
        )
        self.process.wait_ready(self._answers_metadata, timeout_s=90)

    def down(self) -> bool:
        return self.settings.kafka_managed and self.process.stop()

    def status(self) -> ServiceStatus:
        managed = self.settings.kafka_managed
        return ServiceStatus(
            name=self.name,
            managed=managed,
            address=self.settings.effective_kafka_bootstrap,
            pid=self.process.pid if managed else None,
            reachable=self._answers_metadata(),
            log=self.process.log_file if managed else None,
        )

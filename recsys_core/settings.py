"""The one configuration surface: every knob is a ``RECSYS_*`` environment variable.

Leaving ``RECSYS_MONGO_URI`` or ``RECSYS_KAFKA_BOOTSTRAP_SERVERS`` unset means "use the
local service that ``recsys services up`` manages"; setting them points the whole project
at your own MongoDB or Kafka, and nothing is started.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECSYS_", extra="ignore")

    state_dir: Path = Field(
        default=PROJECT_ROOT / ".recsys",
        description="Project-local folder for service data, logs, jars and generated data.",
    )

    mongo_uri: str | None = Field(default=None, description="Your own MongoDB; unset = managed mongod.")
    mongo_db: str = "recsys"
    mongo_port: int = Field(default=27217, description="Port of the managed mongod.")
    mongo_replica_set: str = "rs0"
    mongo_timeout_ms: int = Field(
        default=600_000, description="Operation timeout of the batch clients (assets, CLI); the web app sets its own."
    )

    kafka_bootstrap_servers: str | None = Field(default=None, description="Your own Kafka; unset = managed broker.")
    kafka_port: int = Field(default=19092, description="Client port of the managed broker.")
    kafka_controller_port: int = Field(default=19093, description="KRaft controller port of the managed broker.")
    topic_recommendations: str = "recommendations"
    topic_interactions: str = "interactions"
    topic_impressions: str = "impressions"
    topic_dead_letters: str = Field(
        default="interactions_dead_letters", description="Interactions the online updater could not use, with why."
    )
    topic_partitions: int = 3

    spark_master: str = "local[*]"
    spark_driver_memory: str = "2g"
    spark_executor_memory: str = Field(
        default="1g", description="Memory of each executor on a cluster (local[*] runs in the driver)."
    )
    spark_shuffle_partitions: int = 8
    spark_cluster_port: int = Field(default=7177, description="Port of the local standalone master (--spark).")
    spark_cluster_webui_port: int = Field(default=8180, description="Status page of the local standalone master.")
    spark_cluster_workers: int = Field(default=2, description="Workers of the local standalone cluster.")
    spark_worker_cores: int = 1
    spark_worker_memory: str = "2g"
    spark_python: str | None = Field(
        default=None, description="Python of the Spark workers; unset = the driver's own interpreter."
    )

    model_store_uri: str | None = Field(
        default=None,
        description="Base folder or URI (file://, hdfs://, s3a://) of the model store; unset = <state_dir>/model.",
    )
    model_keep_versions: int = Field(default=5, description="Model store run folders kept when pruning.")

    updater_group_id: str = Field(
        default="recsys-updater", description="Kafka consumer group of the online updaters (they share partitions)."
    )
    updater_click_weight: float = Field(
        default=1.0, ge=0.0, description="Implicit signal of a click, on the rating scale (a 1-star rating is 1)."
    )
    updater_view_weight: float = Field(default=0.5, ge=0.0, description="Implicit signal of a product view.")
    updater_batch_max: int = Field(default=500, ge=1, description="Events the updater handles per MongoDB round.")
    updater_model_check_s: float = Field(
        default=2.0, gt=0.0, description="How often the updater looks for a newly published model."
    )
    retrain_after_interactions: int = Field(
        default=1000, ge=1, description="New stored interactions that make the retrain sensor request a model run."
    )

    data_dir: Path | None = Field(
        default=None, description="Folder of review and meta files; unset = <state_dir>/data/generated."
    )

    web_cookie_secure: bool = Field(
        default=True,
        description="Session cookie only over HTTPS; false is accepted only for a web app bound to a loopback address.",
    )
    web_trusted_proxies: int = Field(
        default=0,
        ge=0,
        description="Reverse proxies in front of the web app whose X-Forwarded-For/-Proto are trusted (0 = none).",
    )

    @field_validator("state_dir", "data_dir")
    @classmethod
    def _absolute_path(cls, path: Path | None) -> Path | None:
        """Folders are absolute, so every process (``recsys ui``'s webserver and runs) and every run tag
        names the same folder, whatever its working directory."""
        return Path(os.path.abspath(path)) if path is not None else None

    @field_validator("model_store_uri")
    @classmethod
    def _absolute_store(cls, uri: str | None) -> str | None:
        return os.path.abspath(uri) if uri is not None and "://" not in uri else uri

    @property
    def mongo_managed(self) -> bool:
        return self.mongo_uri is None

    @property
    def kafka_managed(self) -> bool:
        return self.kafka_bootstrap_servers is None

    @property
    def effective_mongo_uri(self) -> str:
        if self.mongo_uri is not None:
            return self.mongo_uri
        return f"mongodb://127.0.0.1:{self.mongo_port}/?replicaSet={self.mongo_replica_set}&directConnection=true"

    @property
    def effective_kafka_bootstrap(self) -> str:
        if self.kafka_bootstrap_servers is not None:
            return self.kafka_bootstrap_servers
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def effective_data_dir(self) -> Path:
        return self.data_dir if self.data_dir is not None else self.state_dir / "data" / "generated"

    @property
    def effective_model_store_uri(self) -> str:
        return self.model_store_uri if self.model_store_uri is not None else str(self.state_dir / "model")

    def environment(self) -> dict[str, str]:
        """These settings as ``RECSYS_*`` variables, for a child process that must see exactly the same."""
        values = self.model_dump(exclude_none=True)
        return {f"RECSYS_{name.upper()}": str(value) for name, value in values.items()}

    @property
    def topics(self) -> list[str]:
        return [self.topic_recommendations, self.topic_interactions, self.topic_impressions, self.topic_dead_letters]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()

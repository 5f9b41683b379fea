"""How the project's Spark sessions are configured: one place, used by the Dagster
PySparkResource and by the tests alike."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from recsys_assets.spark_steps import DRIVER_LOG_PROPERTY
from recsys_core.services.jars import spark_jars
from recsys_core.settings import Settings

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")


def spark_config(settings: Settings) -> dict[str, str]:
    """Spark properties for ``settings``: the master URL, memory, and the MongoDB connector's jars.

    Which database a read or write goes to is not set here: each passes ``MongoResource.spark_options()``.
    The Python workers run the blocked top-k with numpy and pyarrow, so they must be the
    driver's interpreter (or ``RECSYS_SPARK_PYTHON``); PySpark reads that only from
    ``PYSPARK_PYTHON``, which is set here when the environment does not set it.
    The driver also logs to ``<state>/spark/logs/driver-<pid>.log``, where ``spark_steps``
    finds the root cause of a failed step.
    """
    os.environ.setdefault("PYSPARK_PYTHON", settings.spark_python or sys.executable)
    driver_log = settings.state_dir / "spark" / "logs" / f"driver-{os.getpid()}.log"
    return {
        "spark.master": settings.spark_master,
        "spark.app.name": "recsys",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()} "
        f"-D{DRIVER_LOG_PROPERTY}={driver_log}",
        "spark.executor.memory": settings.spark_executor_memory,
        "spark.jars": ",".join(str(jar) for jar in spark_jars(settings)),
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.log.level": "ERROR",
        "spark.ui.enabled": "false",
    }

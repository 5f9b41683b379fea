"""How the project's Spark sessions are configured: one place, used by the Dagster
PySparkResource and by the tests alike."""

from __future__ import annotations

import os
import sys

from recsys_core.services.jars import spark_jars
from recsys_core.settings import Settings


def spark_config(settings: Settings) -> dict[str, str]:
    """Spark properties for ``settings``: the master URL, memory, and the MongoDB connector's jars.

    Which database a read or write goes to is not set here: each passes ``MongoResource.spark_options()``.
    The Python workers run the blocked top-k with numpy and pyarrow, so they must be the
    driver's interpreter (or ``RECSYS_SPARK_PYTHON``); PySpark reads that only from
    ``PYSPARK_PYTHON``, which is set here when the environment does not set it.
    """
    os.environ.setdefault("PYSPARK_PYTHON", settings.spark_python or sys.executable)
    return {
        "spark.master": settings.spark_master,
        "spark.app.name": "recsys",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.executor.memory": settings.spark_executor_memory,
        "spark.jars": ",".join(str(jar) for jar in spark_jars(settings)),
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.log.level": "ERROR",
        "spark.ui.enabled": "false",
    }

"""How the project's Spark sessions are configured: one place, used by the Dagster
PySparkResource and by the tests alike."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from recsys_assets.spark_steps import DRIVER_LOG_PROPERTY
from recsys_core.services.jars import spark_jars
from recsys_core.services.process import alive
from recsys_core.settings import Settings

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
DRIVER_LOG_DAYS = 7
"""How long the driver log of a finished process is kept: long enough to look into last week's failed run."""


def spark_config(settings: Settings) -> dict[str, str]:
    """Spark properties for ``settings``: the master URL, memory, and the MongoDB connector's jars.

    Which database a read or write goes to is not set here: each passes ``MongoResource.spark_options()``.
    The Python workers run the blocked top-k with numpy and pyarrow, so they must be the
    driver's interpreter (or ``RECSYS_SPARK_PYTHON``); PySpark reads that only from
    ``PYSPARK_PYTHON``, which is set here when the environment does not set it.
    The driver also logs to ``<state>/spark/logs/driver-<pid>.log`` (``driver_log``), where
    ``spark_steps`` finds the root cause of a failed step.
    """
    os.environ.setdefault("PYSPARK_PYTHON", settings.spark_python or sys.executable)
    log = driver_log(settings)
    return {
        "spark.master": settings.spark_master,
        "spark.app.name": "recsys",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile={LOG4J_CONFIG.as_uri()} "
        f"-D{DRIVER_LOG_PROPERTY}={log}",
        "spark.executor.memory": settings.spark_executor_memory,
        "spark.jars": ",".join(str(jar) for jar in spark_jars(settings)),
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.log.level": "ERROR",
        "spark.ui.enabled": "false",
    }


def driver_log(settings: Settings) -> Path:
    """This process's driver log; older logs of processes no longer running are deleted.

    Every process that starts Spark (each ``recsys run``, each run launched from the UI, each
    test session) writes a log of its own, so without a lifetime the folder only grows. A log
    goes once it is ``DRIVER_LOG_DAYS`` untouched and its process (the pid in its name) is gone.
    """
    folder = settings.state_dir / "spark" / "logs"
    oldest = time.time() - DRIVER_LOG_DAYS * 86_400
    for log in folder.glob("driver-*.log*"):
        pid = log.name.removeprefix("driver-").split(".")[0]
        try:
            if log.stat().st_mtime < oldest and not (pid.isdigit() and alive(int(pid))):
                log.unlink()
        except FileNotFoundError:  # another process pruned it meanwhile
            pass
    return folder / f"driver-{os.getpid()}.log"

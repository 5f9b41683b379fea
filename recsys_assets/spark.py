"""How the project's Spark sessions are configured: one place, used by the Dagster
PySparkResource and by the tests alike."""

from __future__ import annotations

from recsys_core.services.jars import spark_jars
from recsys_core.settings import Settings


def spark_config(settings: Settings) -> dict[str, str]:
    """Spark properties for ``settings``: the master URL, memory, and the MongoDB connector's jars.

    Which database a read or write goes to is not set here: each passes ``MongoResource.spark_options()``.
    """
    return {
        "spark.master": settings.spark_master,
        "spark.app.name": "recsys",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.jars": ",".join(str(jar) for jar in spark_jars(settings)),
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.showConsoleProgress": "false",
        "spark.log.level": "ERROR",
        "spark.ui.enabled": "false",
    }

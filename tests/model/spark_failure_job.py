"""Assets whose Spark jobs fail in the executors, for ``test_spark_failures.py``.

Run as a module (``python -m tests.model.spark_failure_job out_of_memory``), it materialises
one of them in a Spark of its own, configured from the ``RECSYS_*`` environment, and prints
the step's failure as JSON: an out-of-memory kills the driver's JVM, which must not be the
test session's.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from dagster import DagsterInstance, ExecuteInProcessResult, asset, materialize
from dagster_pyspark import PySparkResource
from pyspark.sql import functions as F
from pyspark.sql.types import LongType

from recsys_assets.runs import failure_causes
from recsys_assets.spark import spark_resource
from recsys_assets.spark_steps import spark_step
from recsys_core.settings import get_settings

BAD_ROW = 7


@F.udf(LongType())
def _refuse_bad_row(value: int) -> int:
    if value == BAD_ROW:
        raise ValueError(f"row {value} is bad")
    return value


@F.udf(LongType())
def _slowly(value: int) -> int:
    time.sleep(0.5)
    return value


@asset
@spark_step
def executor_exception(pyspark: PySparkResource) -> None:
    pyspark.spark_session.range(20, numPartitions=2).select(_refuse_bad_row("id")).collect()


@asset
@spark_step(progress_every_s=1.0)
def slow_job(pyspark: PySparkResource) -> None:
    pyspark.spark_session.range(12, numPartitions=1).select(_slowly("id")).collect()


@asset
@spark_step
def out_of_memory(pyspark: PySparkResource) -> None:
    """Each row asks the executor for a 3.2 GB array, more than the test gives the driver's JVM."""
    pyspark.spark_session.range(2).select(F.size(F.expr("sequence(1L, id + 400000000L)"))).collect()


def failure(result: ExecuteInProcessResult) -> dict[str, Any]:
    """The step failure's description and metadata, and what ``recsys run`` would print."""
    data = result.get_step_failure_events()[0].step_failure_data
    assert data.user_failure_data is not None, data.error
    return {
        "description": data.user_failure_data.description,
        "metadata": {k: v.value for k, v in data.user_failure_data.metadata.items()},
        "causes": failure_causes(result),
    }


if __name__ == "__main__":
    assets = {a.key.to_user_string(): a for a in (executor_exception, slow_job, out_of_memory)}
    outcome = materialize(
        [assets[sys.argv[1]]],
        instance=DagsterInstance.ephemeral(),
        resources={"pyspark": spark_resource(get_settings())},
        raise_on_error=False,
    )
    print(json.dumps(failure(outcome)))

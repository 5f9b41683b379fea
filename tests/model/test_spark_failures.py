"""A Spark job failing in its executors is reported in Dagster with its root cause, stage and hint.

The out-of-memory runs in a process of its own with a small driver: with local[*] it kills the
driver's JVM, after which Python sees only a refused connection (or Spark's
"dagScheduler() is null"), so the cause must come from the driver log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from dagster import DagsterEventType, DagsterInstance, materialize
from dagster_pyspark import PySparkResource

from recsys_assets.spark import spark_config
from recsys_core.settings import PROJECT_ROOT, Settings
from tests.model.spark_failure_job import BAD_ROW, executor_exception, failure, slow_job


def test_an_executor_exception_is_reported_with_its_cause_and_stage(running_services: Settings, spark: Any) -> None:
    result = materialize(
        [executor_exception],
        instance=DagsterInstance.ephemeral(),
        resources={"pyspark": PySparkResource(spark_config=spark_config(running_services))},
        raise_on_error=False,
    )
    assert not result.success
    reported = failure(result)
    root = f"ValueError: row {BAD_ROW} is bad"
    assert reported["metadata"]["root_cause"] == root
    assert reported["metadata"]["stage"].startswith("stage ")
    assert "collect at" in reported["metadata"]["stage"]  # the stage's name, where the job was called
    assert root in reported["description"]
    assert "hint" not in reported["metadata"]  # no setting to raise for a bug in a function
    assert reported["causes"][0] == reported["description"]


def test_a_long_step_logs_the_progress_of_its_stages(running_services: Settings, spark: Any) -> None:
    instance = DagsterInstance.ephemeral()
    result = materialize(
        [slow_job],
        instance=instance,
        resources={"pyspark": PySparkResource(spark_config=spark_config(running_services))},
    )
    assert result.success
    messages = [
        entry.user_message
        for entry in instance.all_logs(result.run_id)
        if entry.dagster_event is None or entry.dagster_event.event_type == DagsterEventType.ENGINE_EVENT
    ]
    progress = [m for m in messages if m.startswith("Spark after ")]
    assert any("tasks done" in m and "collect at" in m for m in progress), messages


def test_out_of_memory_names_the_java_error_the_stage_and_the_setting_to_raise(running_services: Settings) -> None:
    env = {**os.environ, "RECSYS_SPARK_DRIVER_MEMORY": "512m", "RECSYS_SPARK_MASTER": "local[1]"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.model.spark_failure_job", "out_of_memory"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reported = json.loads(done.stdout.strip().splitlines()[-1])
    metadata = reported["metadata"]
    assert metadata["root_cause"] == "java.lang.OutOfMemoryError: Java heap space"
    assert metadata["stage"].startswith("stage 0")
    assert metadata["hint"].startswith("Raise RECSYS_SPARK_DRIVER_MEMORY (now 512m)")
    assert "java.lang.OutOfMemoryError: Java heap space" in reported["description"]
    assert "RECSYS_SPARK_DRIVER_MEMORY" in reported["causes"][0]  # what `recsys run` prints

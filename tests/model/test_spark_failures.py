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
import time
from pathlib import Path
from typing import Any

from dagster import DagsterEventType, DagsterInstance, materialize
from dagster_pyspark import PySparkResource

from recsys_assets.spark import DRIVER_LOG_DAYS, driver_log, spark_config
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


def test_driver_logs_of_finished_processes_are_deleted_once_old(tmp_path: Path) -> None:
    logs = tmp_path / "spark" / "logs"
    logs.mkdir(parents=True)
    finished = subprocess.Popen(["true"])  # a process that has ended, for its pid
    finished.wait()
    old = time.time() - (DRIVER_LOG_DAYS + 1) * 86_400
    ages = {
        f"driver-{finished.pid}.log": old,
        f"driver-{finished.pid}.log.1": old,  # rolled over by log4j
        f"driver-{finished.pid + 1_000_000}.log": time.time(),  # recent
        f"driver-{os.getppid()}.log": old,  # its process still runs
        "notes.txt": old,
    }
    for name, mtime in ages.items():
        (logs / name).write_text("log")
        os.utime(logs / name, (mtime, mtime))

    assert driver_log(Settings(state_dir=tmp_path)) == logs / f"driver-{os.getpid()}.log"
    assert sorted(p.name for p in logs.iterdir()) == sorted(
        [f"driver-{finished.pid + 1_000_000}.log", f"driver-{os.getppid()}.log", "notes.txt"]
    )

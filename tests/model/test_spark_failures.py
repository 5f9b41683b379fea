"""A Spark job failing in its executors is reported in Dagster with its root cause, stage and hint.

The out-of-memory runs in a process of its own with a small driver: with local[*] it kills the
driver's JVM, after which Python sees only a refused connection (or Spark's
"dagScheduler() is null"), so the cause must come from the driver log.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from dagster import DagsterEventType, DagsterInstance, materialize

from recsys_assets.spark import DRIVER_LOG_DAYS, driver_log, spark_resource
from recsys_core import mongo
from recsys_core.connections import project_database
from recsys_core.settings import PROJECT_ROOT, Settings
from tests.model.conftest import recsys_run
from tests.model.spark_failure_job import BAD_ROW, executor_exception, failure, slow_job


def test_an_executor_exception_is_reported_with_its_cause_and_stage(running_services: Settings, spark: Any) -> None:
    result = materialize(
        [executor_exception],
        instance=DagsterInstance.ephemeral(),
        resources={"pyspark": spark_resource(running_services)},
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
        resources={"pyspark": spark_resource(running_services)},
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


def test_recsys_run_stops_at_a_failed_load_and_says_why(model_settings: Settings, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    lines = (
        json.dumps({"reviewerID": f"R{i % 300}", "asin": f"B{i % 97:05d}", "overall": 5.0, "unixReviewTime": 1e9 + i})
        for i in range(20_000)
    )
    whole = gzip.compress("\n".join(lines).encode())
    (data / "Broken_5.json.gz").write_bytes(whole[: len(whole) // 2])  # a download cut short
    database = f"{model_settings.mongo_db}_broken_{uuid.uuid4().hex[:8]}"
    db = project_database(model_settings.model_copy(update={"mongo_db": database}))
    try:
        run = recsys_run(
            "--tuning-budget", "0", database=database, data_dir=data, store=str(tmp_path / "store"), exit_code=1
        )
        reviews = db[mongo.REVIEWS].count_documents({})
    finally:
        db.client.drop_database(database)
        db.client.close()

    summary = run.stdout.splitlines()
    assert summary[0] == "FAIL ingest_job[Broken]", run.stdout
    assert summary[1].startswith("     error: Spark failed in stage "), run.stdout
    assert "Broken_5.json.gz" in summary[1]  # which file
    assert summary[1].endswith("caused by java.io.EOFException: Unexpected end of input stream")  # and why
    assert "recsys_model_job" not in run.stdout  # nothing trains on a partial load
    assert reviews == 0  # and nothing of the broken file was written


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

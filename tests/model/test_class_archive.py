"""The Spark driver's class archive: written whole by the first driver, mapped by the next, never half-kept.

Each driver here is a real Spark process of its own (``python -c``), started as the assets start
theirs (``start_session``) but with an archive folder of the test's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from recsys_assets.spark import DriverClassArchive
from recsys_core.settings import PROJECT_ROOT, Settings

DRIVER = """
import sys
from pathlib import Path
from recsys_assets.spark import JAVA_OPTIONS, DriverClassArchive, spark_config, start_session
from recsys_core.settings import get_settings
config = spark_config(get_settings())
config[JAVA_OPTIONS] += " " + sys.argv[2]
spark = start_session(config, DriverClassArchive(Path(sys.argv[1])))
assert spark.range(1000).selectExpr("sum(id)").first()[0] == 499500
"""


def run_driver(folder: Path, extra_java_options: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", DRIVER, str(folder), extra_java_options],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.fixture(scope="module")
def written(running_services: Settings, tmp_path_factory: pytest.TempPathFactory) -> DriverClassArchive:
    """An archive folder where one driver has run, after a writer that died left its claim and half a file."""
    archive = DriverClassArchive(tmp_path_factory.mktemp("class-archive"))
    assert archive.path is not None
    died = dead_pid()
    archive.path.with_suffix(".claim").write_text(str(died))
    archive.path.with_name(f"{archive.path.stem}.{died}.tmp").write_bytes(b"half an archive")
    first = run_driver(archive.folder)
    assert first.returncode == 0, first.stderr[-3000:]
    return archive


def test_the_first_driver_writes_the_archive_and_leaves_nothing_else(written: DriverClassArchive) -> None:
    assert written.path is not None
    assert sorted(p.name for p in written.folder.iterdir()) == [written.path.name]
    assert written.path.stat().st_size > 50 * 2**20  # Spark's classes, not an empty shell


def test_the_next_driver_maps_it_and_does_not_write_again(written: DriverClassArchive) -> None:
    assert written.path is not None
    before = written.path.stat().st_mtime_ns
    # -Xshare:on makes the JVM refuse to start unless it maps the archive.
    second = run_driver(written.folder, "-Xshare:on")
    assert second.returncode == 0, second.stderr[-3000:]
    assert written.path.stat().st_mtime_ns == before
    assert sorted(p.name for p in written.folder.iterdir()) == [written.path.name]


def test_an_archive_cut_short_is_refused(written: DriverClassArchive, spark: Any, tmp_path: Path) -> None:
    assert written.path is not None
    classpath = str(spark.sparkContext._jvm.System.getProperty("java.class.path"))
    whole, cut = tmp_path / "whole.jsa", tmp_path / "cut.jsa"
    data = written.path.read_bytes()
    whole.write_bytes(data)
    cut.write_bytes(data[: len(data) // 2])
    assert DriverClassArchive.maps(whole, classpath)
    assert not DriverClassArchive.maps(cut, classpath)
    reordered = ":".join(reversed(classpath.split(":")))
    assert not DriverClassArchive.maps(whole, reordered)  # Spark's jars in the order they were written, or nothing


def test_a_live_claim_means_this_driver_neither_maps_nor_writes(tmp_path: Path) -> None:
    archive = DriverClassArchive(tmp_path)
    assert archive.path is not None
    tmp_path.mkdir(exist_ok=True)
    archive.path.with_suffix(".claim").write_text(str(os.getpid()))  # this test process: alive
    assert archive.java_options() == ""

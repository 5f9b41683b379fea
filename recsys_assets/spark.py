"""How the project's Spark sessions are configured and started: one place, used by the Dagster
resource, the tests and the benchmarks alike."""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pyspark
from dagster import InitResourceContext
from dagster_pyspark import PySparkResource
from pyspark import SparkContext
from pyspark.sql import SparkSession

from recsys_assets.spark_steps import DRIVER_LOG_PROPERTY
from recsys_core.services.jars import spark_jars
from recsys_core.services.process import alive
from recsys_core.services.spark import spark_home
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
    ``spark_steps`` finds the root cause of a failed step. ``start_session`` adds the driver's
    class archive to these properties when the session starts.
    DataFrame debugging is off: it sends every column operation's Python call site to the JVM,
    several py4j round trips each, which more than doubled the calls that build a large plan.
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
        "spark.python.sql.dataFrameDebugging.enabled": "false",
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


JAVA_OPTIONS = "spark.driver.extraJavaOptions"
ARCHIVE_WRITE_TIMEOUT_S = 300
"""How long a process waits at exit for its JVM to write the class archive (about 15 s on 2 cores)."""


def java_binary() -> Path | None:
    """The java that spark-submit runs: ``$JAVA_HOME/bin/java``, else the one on the PATH."""
    java_home = os.environ.get("JAVA_HOME")
    found = str(Path(java_home, "bin", "java")) if java_home else shutil.which("java")
    return Path(found).resolve() if found and Path(found).exists() else None


@dataclass
class DriverClassArchive:
    """A class-data-sharing archive of the Spark driver JVM's classes, kept in ``folder``.

    A driver JVM that maps it parses none of the thousands of Spark classes it would otherwise
    load from jars, so every later Spark start (each run, test session and benchmark) is seconds
    faster: about 5 s on a quiet 2-core machine, and three times that under load.

    Java 17 cannot build one as it goes (``-XX:+AutoCreateSharedArchive`` came in Java 19), so the
    first driver that finds none writes one as its JVM exits (``-XX:ArchiveClassesAtExit``), into a
    file of its own. Its Python process then waits for the JVM, checks that the file maps and
    verifies (an archive cut short makes every JVM that maps it crash), and only then renames it
    into place. One process at a time writes, by a claim file holding its pid. The name carries a
    digest of the java binary and Spark's jars, so another JDK or pyspark gets an archive of its own.
    """

    folder: Path

    @classmethod
    def of(cls, settings: Settings) -> DriverClassArchive:
        return cls(settings.state_dir / "spark" / "class-archive")

    @cached_property
    def path(self) -> Path | None:
        """This JDK's and Spark's archive; None when no java is found (Spark then cannot start either)."""
        java = java_binary()
        if java is None:
            return None
        jars = sorted(entry.name for entry in (spark_home() / "jars").iterdir())
        stat = java.stat()
        identity = "\n".join([str(java), str(stat.st_mtime_ns), str(stat.st_size), pyspark.__version__, *jars])
        return self.folder / f"driver-{hashlib.sha256(identity.encode()).hexdigest()[:16]}.jsa"

    def java_options(self) -> str:
        """The driver's options for this start: map the archive, or claim writing it at exit, or nothing
        (another process is writing it)."""
        if self.path is None:
            return ""
        if self.path.exists():
            return f"-XX:SharedArchiveFile={self.path}"
        claim = self._claim()
        if claim is None:
            return ""
        written = self.path.with_name(f"{self.path.stem}.{os.getpid()}.tmp")
        atexit.register(self._keep_at_exit, written, claim, os.getpid())
        # The JVM's own CDS warnings (classes it cannot archive) would flood the driver's output.
        return f"-XX:ArchiveClassesAtExit={written} -XX:+VerifySharedSpaces -Xlog:cds=off -Xlog:cds+dynamic=off"

    def _claim(self) -> Path | None:
        """Claim writing the archive, taking over a claim whose process is gone; None if a live process holds it."""
        assert self.path is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        claim = self.path.with_suffix(".claim")
        for _ in range(2):
            try:
                descriptor = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = claim.read_text().strip() if claim.exists() else ""
                if holder.isdigit() and alive(int(holder)):
                    return None
                claim.unlink(missing_ok=True)
                continue
            with os.fdopen(descriptor, "w") as file:
                file.write(str(os.getpid()))
            self._remove_dead_writers_files()
            return claim
        return None

    def _keep_at_exit(self, written: Path, claim: Path, owner: int) -> None:
        """At this process's exit: stop Spark, wait for the JVM to write the archive, and keep it if it is whole."""
        if os.getpid() != owner:  # a forked child inherits the handler, not the JVM
            return
        try:
            gateway = SparkContext._gateway
            if gateway is None:  # this process never started Spark
                return
            classpath = str(gateway.jvm.System.getProperty("java.class.path"))
            active = SparkContext._active_spark_context
            if active is not None:
                active.stop()
            print("recsys: writing the Spark driver's class archive, once, for faster starts", file=sys.stderr)
            gateway.proc.stdin.close()  # the gateway JVM exits on EOF, and writes the archive as it does
            if gateway.proc.wait(timeout=ARCHIVE_WRITE_TIMEOUT_S) == 0 and self.maps(written, classpath):
                assert self.path is not None
                os.replace(written, self.path)
                for other in self.folder.glob("driver-*.jsa"):  # another JDK's or Spark's
                    if other != self.path:
                        other.unlink(missing_ok=True)
        except Exception as error:  # the archive only makes starts faster: its loss must never fail a run
            print(f"recsys: the Spark class archive was not written: {error!r}", file=sys.stderr)
        finally:
            written.unlink(missing_ok=True)
            claim.unlink(missing_ok=True)

    @staticmethod
    def maps(archive: Path, classpath: str) -> bool:
        """Whether a JVM with ``classpath`` maps ``archive`` and its checksums hold (a truncated file fails)."""
        java = java_binary()
        if java is None or not archive.is_file():
            return False
        check = subprocess.run(
            [str(java), "-Xshare:on", f"-XX:SharedArchiveFile={archive}", "-XX:+VerifySharedSpaces",
             "-XX:ErrorFile=/dev/null", "-XX:-CreateCoredumpOnCrash", "-cp", classpath, "-version"],
            capture_output=True,
            check=False,
        )  # fmt: skip
        return check.returncode == 0

    def _remove_dead_writers_files(self) -> None:
        """Delete what writers that died left (about 200 MB each): ``driver-<digest>.<pid>.tmp``."""
        for left in self.folder.glob("driver-*.*.tmp"):
            pid = left.suffixes[0].lstrip(".")
            if not (pid.isdigit() and alive(int(pid))):
                left.unlink(missing_ok=True)


def start_session(config: dict[str, str], archive: DriverClassArchive) -> SparkSession:
    """A Spark session with ``config`` (``spark_config``) whose driver uses, or writes, ``archive``.

    Only a process's first session launches a JVM: later ones reuse it, options and all.
    """
    if SparkContext._gateway is None:
        config = {**config, JAVA_OPTIONS: f"{config.get(JAVA_OPTIONS, '')} {archive.java_options()}".strip()}
    builder = SparkSession.builder
    for key, value in config.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def spark_session(settings: Settings) -> SparkSession:
    """The session the assets would start with ``settings``: for tests, benchmarks and scripts."""
    return start_session(spark_config(settings), DriverClassArchive.of(settings))


class SparkResource(PySparkResource):
    """``PySparkResource`` whose driver uses, or writes, the class archive in ``class_archive_dir``."""

    class_archive_dir: str

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._spark_session = start_session(self.spark_config, DriverClassArchive(Path(self.class_archive_dir)))


def spark_resource(settings: Settings) -> SparkResource:
    """The ``pyspark`` resource of the assets, configured from ``settings``."""
    archive = DriverClassArchive.of(settings)
    return SparkResource(spark_config=spark_config(settings), class_archive_dir=str(archive.folder))

"""Spark work inside an asset, made legible in Dagster: progress while it runs, the root cause when it fails.

A failed Spark job reaches Python as a Py4J or PySpark error whose message is often not the
cause: when an executor in the driver's JVM runs out of memory, Spark kills that JVM, and the
asset sees a refused connection or "SparkContext.dagScheduler() is null", while the
``OutOfMemoryError`` was only printed to the terminal. ``spark_step`` turns such a failure into
a ``dagster.Failure`` naming the executors' root cause, the failing stage, and for an
out-of-memory the ``RECSYS_*`` setting to raise. The root cause comes from the driver log
(``spark_config`` has log4j write one per process, see ``log4j2.properties``) when Spark
logged a task failure during the step, else from the Java exception chain.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, overload

from dagster import AssetExecutionContext, DagsterLogManager, Failure, MetadataValue
from py4j.protocol import Py4JError
from pyspark import SparkContext
from pyspark.errors import PySparkException

DRIVER_LOG_PROPERTY = "recsys.driver.log"
"""The JVM system property holding this process's driver log file (set by ``spark_config``)."""
PROGRESS_EVERY_S = 60.0
_POLL_S = 2.0

# "ERROR Executor: Exception in task 0.0 in stage 3.0 (TID 7)", the exception on the next lines;
# "Lost task 0.0 in stage 3.0 (TID 7) (host executor 1): <exception>"; "Task 0 in stage 3.0 failed 4 times".
_TASK_FAILURE = re.compile(
    r"(?P<kind>Exception in task \S+|Lost task \S+|Task \d+) in stage (?P<stage>\d+)\.\d+[^:]*?(?:: (?P<cause>.+))?$"
)
_STAGE = re.compile(r"in stage (\d+)\.\d+")
_LOG_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d ")

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _Watch:
    """What a step's monitor learnt while the JVM was alive: settings, stage names, where the log ended."""

    master: str = "?"
    memory: dict[str, str] = field(default_factory=dict)
    stage_names: dict[int, str] = field(default_factory=dict)
    log: Path | None = None
    log_offset: int = 0


@overload
def spark_step(fn: F) -> F: ...
@overload
def spark_step(*, progress_every_s: float = PROGRESS_EVERY_S) -> Callable[[F], F]: ...
def spark_step(fn: F | None = None, *, progress_every_s: float = PROGRESS_EVERY_S) -> F | Callable[[F], F]:
    """Decorate an asset's body (under ``@asset``): log Spark progress, and report a Spark failure's cause."""

    def decorate(body: F) -> F:
        @functools.wraps(body)  # Dagster reads the wrapped signature and annotations
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with watched(AssetExecutionContext.get().log, progress_every_s):
                return body(*args, **kwargs)

        return wrapper  # type: ignore[return-value]  # same signature, through functools.wraps

    return decorate(fn) if fn is not None else decorate


@contextmanager
def watched(log: DagsterLogManager, progress_every_s: float = PROGRESS_EVERY_S) -> Iterator[None]:
    """Log the active Spark stages every ``progress_every_s``; turn a Spark failure into a ``Failure``."""
    watch = _Watch()
    _observe(watch, start=True)
    stop = threading.Event()
    monitor = threading.Thread(target=_monitor, args=(watch, log, progress_every_s, stop), daemon=True)
    monitor.start()
    try:
        yield
    except Exception as exc:
        failure = _failure(exc, watch)
        if failure is None:
            raise
        raise failure from exc
    finally:
        stop.set()
        monitor.join()


def _context() -> SparkContext | None:
    return SparkContext._active_spark_context  # the process's one context, if any


def _observe(watch: _Watch, start: bool = False) -> list[str]:
    """Record the active stages' names (and at the start the settings and the log's end); describe them."""
    sc = _context()
    if sc is None:
        return []
    try:
        if start:
            conf = sc.getConf()
            watch.master = conf.get("spark.master", "?") or "?"
            watch.memory = {k: conf.get(f"spark.{k}.memory", "?") or "?" for k in ("driver", "executor")}
            path = sc._jvm.System.getProperty(DRIVER_LOG_PROPERTY)  # type: ignore[union-attr]
            watch.log = Path(path) if path else None
            watch.log_offset = watch.log.stat().st_size if watch.log and watch.log.exists() else 0
        tracker = sc.statusTracker()
        lines = []
        for stage_id in tracker.getActiveStageIds():
            info = tracker.getStageInfo(stage_id)
            if info is None:
                continue
            watch.stage_names[stage_id] = info.name
            lines.append(
                f"stage {stage_id} ({info.name}): {info.numCompletedTasks}/{info.numTasks} tasks done, "
                f"{info.numActiveTasks} running, {info.numFailedTasks} failed"
            )
        return lines
    except (Py4JError, ConnectionError):  # the JVM is gone; the failure path reports why
        return []


def _monitor(watch: _Watch, log: DagsterLogManager, every_s: float, stop: threading.Event) -> None:
    started = last = time.monotonic()
    while not stop.wait(min(_POLL_S, every_s)):
        stages = _observe(watch)
        if time.monotonic() - last >= every_s:
            last = time.monotonic()
            elapsed = round(last - started)
            log.info(f"Spark after {elapsed} s: " + ("; ".join(stages) if stages else "no stage running"))


def _failure(exc: Exception, watch: _Watch) -> Failure | None:
    """A ``Failure`` with the root cause, stage and hint, if ``exc`` is a Spark failure; else None."""
    logged = _logged_task_failure(watch)
    # A dead JVM shows as a refused connection: Spark's, if Spark logged a task failure meanwhile.
    if not (isinstance(exc, Py4JError | PySparkException) or (logged and isinstance(exc, ConnectionError))):
        return None
    stage, cause = logged or (None, None)
    chain = _java_chain(exc)
    if stage is None:
        found = _STAGE.search("\n".join([_message(exc), *chain]))
        stage = int(found[1]) if found else None
    root = cause or (chain[-1] if chain else f"{type(exc).__name__}: {_message(exc)}")
    root = _python_error(root)
    name = watch.stage_names.get(stage) or _stage_name(stage) if stage is not None else None
    where = f"stage {stage}" + (f" ({name})" if name else "")
    hint = _hint(root, watch)
    description = f"Spark failed in {where if stage is not None else 'the driver'}: {root}" + (
        f". {hint}" if hint else ""
    )
    metadata: dict[str, Any] = {
        "root_cause": root,
        "stage": where if stage is not None else "none (driver)",
        "spark_master": watch.master,
        "raised": MetadataValue.text(f"{type(exc).__name__}: {(_message(exc).strip().splitlines() or [''])[0]}"),
    }
    if hint:
        metadata["hint"] = hint
    return Failure(description=description, metadata=metadata)


def _message(exc: BaseException) -> str:
    """``str(exc)``; a Py4J error asks the JVM for it, so if the JVM died meanwhile, what Python holds."""
    try:
        return str(exc)
    except (Py4JError, ConnectionError):
        return str(getattr(exc, "errmsg", "")) or "(the JVM died before it could say)"


def _stage_name(stage: int) -> str | None:
    """The stage's name (its call site) from Spark's status tracker, if the JVM is alive to tell."""
    sc = _context()
    try:
        info = sc.statusTracker().getStageInfo(stage) if sc is not None else None
    except (Py4JError, ConnectionError):
        return None
    return str(info.name) if info is not None else None


def _logged_task_failure(watch: _Watch) -> tuple[int, str | None] | None:
    """The first task failure the driver logged since the step started: its stage and exception line."""
    if watch.log is None or not watch.log.exists():
        return None
    with watch.log.open("rb") as file:
        file.seek(watch.log_offset if watch.log.stat().st_size >= watch.log_offset else 0)
        lines = file.read().decode("utf-8", "replace").splitlines()
    for i, line in enumerate(lines):
        found = _TASK_FAILURE.search(line)
        if found:
            cause = found["cause"]
            if cause is None and found["kind"].startswith("Exception"):
                cause = _python_error("\n".join(_exception_block(lines[i + 1 :])))
                innermost = _innermost_cause(lines[i + 1 :])
                if innermost and innermost not in cause:  # e.g. "could not read file X" is not why
                    cause = f"{cause}; caused by {innermost}"
            return int(found["stage"]), _python_error(cause) if cause else None
    return None


def _exception_block(lines: list[str]) -> list[str]:
    """The logged exception's message lines: up to its stack trace or the next log line."""
    block = []
    for line in lines:
        if line.lstrip().startswith("at ") or _LOG_LINE.match(line):
            break
        block.append(line)
    return block


def _innermost_cause(lines: list[str]) -> str | None:
    """The last ``Caused by:`` of the logged exception's stack trace, the most specific reason."""
    innermost = None
    for line in lines:
        if _LOG_LINE.match(line):
            break
        if line.startswith("Caused by: "):
            innermost = line.removeprefix("Caused by: ").strip()
    return innermost


def _java_chain(exc: BaseException) -> list[str]:
    """``Class: message`` of each Java throwable behind ``exc``, outermost first (empty if the JVM is gone)."""
    throwable = getattr(exc, "java_exception", None) or getattr(exc, "_origin", None)
    chain: list[str] = []
    try:
        while throwable is not None and len(chain) < 20:
            chain.append(str(throwable.toString()))
            throwable = throwable.getCause()
    except (Py4JError, ConnectionError):
        pass
    return chain


def _python_error(text: str) -> str:
    """A Python worker's traceback reduced to its exception line; any other text to its first line."""
    if "Traceback (most recent call last)" not in text:
        return text.strip().splitlines()[0] if text.strip() else text
    lines = [line for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b", line.strip()):
            return line.strip().removesuffix("SQLSTATE: 38000").strip()
    return lines[-1].strip()


def _hint(root: str, watch: _Watch) -> str | None:
    """For an out-of-memory, the setting to raise: with local[*] the executors live in the driver's JVM."""
    if "OutOfMemoryError" not in root and "Java heap space" not in root:
        return None
    driver = f"RECSYS_SPARK_DRIVER_MEMORY (now {watch.memory.get('driver', '?')})"
    if watch.master.startswith("local"):
        return f"Raise {driver}: with {watch.master} the executors run in the driver's JVM"
    executor = f"RECSYS_SPARK_EXECUTOR_MEMORY (now {watch.memory.get('executor', '?')})"
    return f"Raise {executor}, or {driver} if the driver ran out collecting a result"

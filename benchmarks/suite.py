"""Every benchmark in turn, each in a process of its own, and the summary at the top of BENCHMARKS.md.

    recsys bench [--quick]        (or: bash bin/bench [--quick], or python -m benchmarks.suite)

Each benchmark writes its own section of BENCHMARKS.md (``report.write_section``) and prints
each figure as a result line (``report.Figure``); this driver streams their output, reads
those lines back and writes the summary: the machine, the date, the commit, the mode, and
each figure beside its anchor. A benchmark that fails is reported and the next one runs; the
exit status is non-zero when any benchmark could not run to its end.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.report import REPORT, SUITE_RUN_ENV, Figure, machine, write_section
from recsys_core.settings import PROJECT_ROOT


@dataclass(frozen=True)
class Benchmark:
    area: str
    module: str
    quick: tuple[str, ...]
    full: tuple[str, ...] = ()

    def command(self, quick: bool) -> list[str]:
        return [sys.executable, "-m", self.module, *(self.quick if quick else self.full)]


QUICK_SCALE_SIZES = ("5000", "20000")  # the larger is the model benchmark's own size
QUICK_QUALITY_DATASET, QUICK_TUNING_BUDGET = "Gift_Cards", "15"

# Cheapest first, so a quick run reports something early. The first benchmark's process, the first on a fresh
# clone to start Spark, also writes the driver's class archive at exit (recsys_assets.spark.DriverClassArchive),
# which the later ones map. --quick keeps every benchmark to small sizes; its floor is the pipeline runs, each
# about 1.5 min at any small size in a fresh process. So --quick makes them all in the model benchmark's process:
# its own first (also scale's larger size), then, in the warm JVM (about 40 s less each), scale's smaller size and
# the quality benchmark's dataset, which the scale and quality benchmarks take from this suite run.
BENCHMARKS = (
    Benchmark("ingest (issue 12, item 1)", "benchmarks.bench_ingest", ("--reviews", "50000"), ("--reviews", "1000000")),
    Benchmark(
        "model and batch publish (items 2, 3, 5)",
        "benchmarks.bench_model",
        (
            *("--reviews", QUICK_SCALE_SIZES[-1], "--rounds", "2", "--also-scale-sizes", *QUICK_SCALE_SIZES[:-1]),
            *("--also-quality-datasets", QUICK_QUALITY_DATASET, "--quality-tuning-budget", QUICK_TUNING_BUDGET),
        ),
        ("--reviews", "1000000"),
    ),
    Benchmark(
        "real time (item 8)",
        "benchmarks.bench_realtime",
        ("--events", "300", "--users", "60", "--items", "20000", "--backlog", "1000"),
    ),
    Benchmark("API and load (items 4, 9)", "benchmarks.bench_load", ("--quick",)),
    Benchmark(
        "scale (item 6)",
        "benchmarks.bench_scale",
        ("--reviews", *QUICK_SCALE_SIZES),
        ("--reviews", "100000", "1000000", "5000000"),
    ),
    Benchmark(
        "quality (item 7)",
        "benchmarks.bench_quality",
        ("--datasets", QUICK_QUALITY_DATASET, "--tuning-budget", QUICK_TUNING_BUDGET),
    ),
)


@dataclass
class Outcome:
    benchmark: Benchmark
    status: str  # "ok", "failed (exit N)" or "not in this checkout"
    seconds: float = 0.0
    figures: list[Figure] = field(default_factory=list)

    @property
    def ran(self) -> bool:
        return self.status == "ok"


def run_one(benchmark: Benchmark, quick: bool, run_id: str) -> Outcome:
    """Run ``benchmark`` as part of suite run ``run_id``, echoing its output line by line as it comes, and collect
    its result lines."""
    if importlib.util.find_spec(benchmark.module) is None:
        print(f"== {benchmark.area}: {benchmark.module} is not in this checkout; skipped", flush=True)
        return Outcome(benchmark, "not in this checkout")
    command = benchmark.command(quick)
    env = {**os.environ, SUITE_RUN_ENV: run_id}
    print(f"== {benchmark.area}: {' '.join(command[1:])}", flush=True)
    started = time.monotonic()
    figures = []
    with subprocess.Popen(
        command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, env=env
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(f"   {line}", end="", flush=True)
            if (figure := Figure.parse(line)) is not None:
                figures.append(figure)
    seconds = time.monotonic() - started
    status = "ok" if process.returncode == 0 else f"failed (exit {process.returncode})"
    print(f"== {benchmark.area}: {status} after {seconds:.0f} s", flush=True)
    return Outcome(benchmark, status, seconds, figures)


def _commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False).stdout

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no").strip()
    return commit + (" with uncommitted changes" if changed else "")


def summary(outcomes: list[Outcome], quick: bool, when: datetime, commit: str, on: str) -> list[str]:
    """The summary section's lines: what ran where, then one row per figure (or per benchmark without one)."""
    mode = "`--quick` (small sizes: indicative only)" if quick else "full"
    lines = [
        f"Run by `recsys bench{' --quick' if quick else ''}` on {when:%Y-%m-%d %H:%M} UTC at commit {commit}, "
        f"on {on}. Mode: {mode}.",
        "",
        "| area | figure | anchor (same run) | ratio | goal | met? |",
        "|---|---|---|---|---|---|",
    ]
    for outcome in outcomes:
        area = outcome.benchmark.area
        if not outcome.ran:
            what = (
                f"not measured: `{outcome.benchmark.module}` is not in this checkout"
                if outcome.status == "not in this checkout"
                else f"**{outcome.status}**: see its output"
            )
            lines.append(f"| {area} | {what} | | | | |")
        for figure in outcome.figures:
            met = "-" if figure.met is None else "yes" if figure.met else "**no**"
            lines.append(f"| {area} | {figure.figure} | {figure.anchor} | {figure.ratio} | {figure.goal} | {met} |")
        if outcome.ran and not outcome.figures:
            lines.append(f"| {area} | ran; printed no result line: see its section below | | | | |")
    took = ", ".join(f"{o.benchmark.area.split(' (')[0]} {o.seconds:.0f} s" for o in outcomes if o.seconds)
    lines += ["", f"Time per benchmark: {took or 'none ran'}."]
    return lines


def run_suite(benchmarks: tuple[Benchmark, ...], quick: bool, report: Path = REPORT) -> int:
    """Run every benchmark, write the summary; 0 only when every one ran to its end."""
    started = datetime.now(UTC)
    commit = _commit()  # before the benchmarks rewrite BENCHMARKS.md, which would read as uncommitted changes
    run_id = f"{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    outcomes = [run_one(benchmark, quick, run_id) for benchmark in benchmarks]
    lines = summary(outcomes, quick, started, commit, machine())
    write_section("summary", lines, "## Summary", first=True, report=report)
    print("\n".join(lines))
    failed = [o for o in outcomes if not o.ran]
    if failed:
        print(f"did not run to the end: {', '.join(f'{o.benchmark.area} ({o.status})' for o in failed)}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recsys bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: the whole suite in under 10 minutes")
    args = parser.parse_args(argv)
    return run_suite(BENCHMARKS, args.quick)


if __name__ == "__main__":
    raise SystemExit(main())

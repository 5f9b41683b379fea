"""BENCHMARKS.md's sections: each benchmark rewrites only the part between its own markers.

Each figure is also printed as one result line (``Figure.line``), which ``recsys bench``
reads back from the benchmark's output for the summary at the top of BENCHMARKS.md.
"""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from recsys_core.settings import PROJECT_ROOT, Settings, get_settings

REPORT = PROJECT_ROOT / "BENCHMARKS.md"
RESULTS = PROJECT_ROOT / "benchmarks" / "results"


def logs_folder(name: str) -> Path:
    """``results/<name>-logs``, created (and RESULTS with it): a benchmark's process logs, not committed."""
    folder = RESULTS / f"{name}-logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def provenance(what: str) -> str:
    """The line that opens a section: when, at which commit, on which machine, and what was run."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    return (
        f"Measured {datetime.now(UTC):%Y-%m-%d} at commit {commit.stdout.strip()} on {platform.node()} "
        f"({os.cpu_count()} cores), {what}."
    )


def machine() -> str:
    """The CPU model, its cores and the memory, as Linux reports them: what every absolute figure depends on."""
    cpu = platform.processor() or "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.partition(":")[2].strip()
            break
    kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            kib = int(line.split()[1])
    return f"{cpu}, {os.cpu_count()} cores, {kib / 2**20:.0f} GiB memory"


SUITE_RUN_ENV = "RECSYS_BENCH_SUITE_RUN"
SUITE_RUN_KEY = "suite_run"
"""A result file records the suite run that measured it, so a later benchmark of the same run can reuse it."""


def suite_run() -> str | None:
    """The running suite's id (``recsys bench`` sets it for every benchmark it runs), or None outside one."""
    return os.environ.get(SUITE_RUN_ENV) or None


RESULT_PREFIX = "result: "
GOAL_MET, GOAL_MISSED, GOAL_REPORTED = "met", "MISSED", "-"


@dataclass(frozen=True)
class Figure:
    """One measured figure beside its anchor: what a benchmark prints and the summary table shows."""

    figure: str  # what was measured, with its value
    anchor: str  # the anchor measured in the same run, with its value ("-" when there is none)
    ratio: str
    goal: str
    met: bool | None  # None: the figure has no goal to meet, it is reported

    def line(self) -> str:
        """``result: figure | anchor | ratio | goal | met``: one line, which ``parse`` reads back."""
        met = GOAL_REPORTED if self.met is None else GOAL_MET if self.met else GOAL_MISSED
        cells = [self.figure, self.anchor, self.ratio, self.goal, met]
        return RESULT_PREFIX + " | ".join(cell.replace("|", "/").replace("\n", " ") for cell in cells)

    @classmethod
    def parse(cls, line: str) -> Figure | None:
        """The figure a result line printed, or None for any other line."""
        if not line.startswith(RESULT_PREFIX):
            return None
        cells = line[len(RESULT_PREFIX) :].rstrip("\n").split(" | ")
        if len(cells) != 5:
            return None
        figure, anchor, ratio, goal, met = cells
        return cls(figure, anchor, ratio, goal, None if met == GOAL_REPORTED else met == GOAL_MET)


def write_section(name: str, lines: list[str], heading: str, *, first: bool = False, report: Path = REPORT) -> None:
    """Replace ``name``'s section (between ``<!-- name:begin -->`` and ``<!-- name:end -->``), or add it:
    at the end, or, when ``first``, right under the title (the summary of the whole run)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    section = "\n".join([begin, *lines, end])
    text = report.read_text() if report.exists() else "# Benchmarks\n"
    if begin in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    elif first:
        title, _, rest = text.partition("\n")
        text = f"{title}\n\n{heading}\n\n{section}\n\n{rest.lstrip()}"
    else:
        text = text.rstrip() + f"\n\n{heading}\n\n" + section + "\n"
    report.write_text(text)


def use_environment(environment: dict[str, str]) -> Settings:
    """This process's settings switched to ``environment`` (``RECSYS_*`` variables): how one process runs the graph
    for several sizes or datasets, each in its own data folder, database and model store."""
    os.environ.update(environment)
    get_settings.cache_clear()
    return get_settings()

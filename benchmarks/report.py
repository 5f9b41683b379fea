"""BENCHMARKS.md's sections: each benchmark rewrites only the part between its own markers."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from recsys_core.settings import PROJECT_ROOT

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


def write_section(name: str, lines: list[str], heading: str) -> None:
    """Replace ``name``'s section (between ``<!-- name:begin -->`` and ``<!-- name:end -->``), or append it."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    section = "\n".join([begin, *lines, end])
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"
    if begin in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + f"\n\n{heading}\n\n" + section + "\n"
    REPORT.write_text(text)

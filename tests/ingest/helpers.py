"""Writers of small crafted review and metadata files."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def write_lines(path: Path, lines: Iterable[str | dict[str, Any]]) -> Path:
    """Write JSON lines (dicts are encoded, strings written as they are, to craft bad lines)."""
    text = "".join((json.dumps(line) if isinstance(line, dict) else line) + "\n" for line in lines)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def review(reviewer: str, asin: str, overall: float = 5.0, t: int = 1_500_000_000, **extra: Any) -> dict[str, Any]:
    return {
        "overall": overall,
        "verified": True,
        "reviewTime": "07 14, 2017",
        "reviewerID": reviewer,
        "asin": asin,
        "reviewerName": "R",
        "reviewText": "fine",
        "summary": "ok",
        "unixReviewTime": t,
        **extra,
    }

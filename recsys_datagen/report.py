"""What ``generate`` wrote, with exact counts, so tests and benchmarks need not re-read the files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CategoryCounts:
    """What was written for one category."""

    lines: int
    duplicate_lines: int
    products: int


@dataclass(frozen=True)
class GenerationReport:
    """What `generate` wrote, with exact counts so tests and benchmarks need not re-read the files."""

    out_dir: Path
    categories: tuple[str, ...]
    review_files: tuple[Path, ...]
    meta_files: tuple[Path, ...]
    lines: int
    duplicate_lines: int
    users: int
    items: int
    per_category: dict[str, CategoryCounts]

"""Which files make up which category partition.

Review files are ``<Category>.json[.gz]`` or ``<Category>_5.json[.gz]`` (the 5-core subsets),
with a ``reviews_`` prefix as the 2014 release names them (``reviews_<Category>_5.json.gz``);
metadata files are ``meta_<Category>.json[.gz]``. One category is one Dagster partition and
may hold several files.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

_DATA_FILE = re.compile(
    r"^(?:(?P<meta>meta_)|reviews_)?(?P<name>[A-Za-z0-9][A-Za-z0-9_.&-]*?)(?P<core>_5)?\.json(\.gz)?$"
)


@dataclass
class CategoryFiles:
    category: str
    review_files: list[Path] = field(default_factory=list)
    meta_files: list[Path] = field(default_factory=list)

    def fingerprint(self) -> str:
        """Changes when a file of the category is added, removed or rewritten."""
        stats = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in (*self.review_files, *self.meta_files)]
        return hashlib.sha256(repr(stats).encode()).hexdigest()[:16]


def discover(data_dir: Path) -> dict[str, CategoryFiles]:
    """Group the data folder's JSON-lines files by category, sorted for stable partition keys."""
    found: dict[str, CategoryFiles] = {}
    if not data_dir.is_dir():
        return found
    for path in sorted(data_dir.iterdir()):
        match = _DATA_FILE.match(path.name)
        if not path.is_file() or match is None:
            continue
        files = found.setdefault(match["name"], CategoryFiles(match["name"]))
        (files.meta_files if match["meta"] else files.review_files).append(path)
    return dict(sorted(found.items()))

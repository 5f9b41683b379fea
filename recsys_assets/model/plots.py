"""Figures for asset metadata: saved as PNG and embedded in Markdown, so the Dagster UI shows them."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on a worker; must precede pyplot

from dagster import MetadataValue
from matplotlib.figure import Figure


def figure_metadata(fig: Figure, path: Path, title: str) -> dict[str, MetadataValue]:
    """Save ``fig`` to ``path`` and return metadata entries: the image inline and its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    png = buffer.getvalue()
    path.write_bytes(png)
    encoded = base64.b64encode(png).decode("ascii")
    return {
        "plot": MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})"),
        "plot_path": MetadataValue.path(str(path)),
    }

"""Figures for asset metadata: stored as PNG in the model store, and summed up as inline text charts.

Dagster shows a markdown entry in place only when it is shorter than ``INLINE_MARKDOWN_CHARS``;
a PNG as a data URI never is, so the UI puts it behind a "[Show Markdown]" link. Each figure
therefore comes with a text bar chart of what matters most in it (``bar_chart``), which the
asset page shows inline, next to the figure one click away.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")  # no display on a worker; must precede pyplot

from dagster import MarkdownMetadataValue, MetadataValue
from matplotlib.figure import Figure
from pyspark.sql import SparkSession

from recsys_assets.model.store import ModelStore

INLINE_MARKDOWN_CHARS = 1000
"""Dagster's UI (1.13) renders markdown metadata in place below this length, else behind a link."""
BAR_WIDTH = 24


def figure(width: float, height: float) -> Figure:
    """A figure whose layout keeps the title, panel titles and labels apart."""
    return Figure(figsize=(width, height), layout="constrained")


def store_figure(fig: Figure, store: ModelStore, spark: SparkSession, uri: str, title: str) -> dict[str, MetadataValue]:
    """Write ``fig`` as a PNG to ``uri`` in the store; metadata entries with the image and its URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    png = buffer.getvalue()
    store.write_bytes(spark, uri, png)
    encoded = base64.b64encode(png).decode("ascii")
    return {
        "plot": MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})"),
        "plot_uri": MetadataValue.url(uri),
    }


def bar_chart(groups: Mapping[str, Mapping[str, float | None]]) -> MarkdownMetadataValue:
    """A text bar chart per group (heading → bar label → value), each group scaled to its own largest value.

    Short enough for Dagster to show inline; a missing value is drawn as "—".
    """
    labels = max(len(label) for bars in groups.values() for label in bars)
    lines = []
    for heading, bars in groups.items():
        lines.append(heading)
        top = max((v for v in bars.values() if v is not None), default=0.0)
        for label, value in bars.items():
            if value is None:
                lines.append(f"  {label:<{labels}} —")
                continue
            bar = "█" * round(BAR_WIDTH * value / top) if top > 0 else ""
            lines.append(f"  {label:<{labels}} {bar:<{BAR_WIDTH}} {value:.4g}")
    text = "```\n" + "\n".join(lines) + "\n```"
    if len(text) >= INLINE_MARKDOWN_CHARS:
        raise ValueError(f"a chart of {len(text)} characters is not shown inline; chart fewer bars")
    return MetadataValue.md(text)

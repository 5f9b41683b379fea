"""Figures for asset metadata: stored as PNG in the model store and shown inline in the Dagster UI."""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # no display on a worker; must precede pyplot

from dagster import MetadataValue
from matplotlib.figure import Figure
from pyspark.sql import SparkSession

from recsys_assets.model.store import ModelStore


def store_figure(fig: Figure, store: ModelStore, spark: SparkSession, uri: str, title: str) -> dict[str, MetadataValue]:
    """Write ``fig`` as a PNG to ``uri`` in the store; metadata entries with the image inline and its URI."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    png = buffer.getvalue()
    store.write_bytes(spark, uri, png)
    encoded = base64.b64encode(png).decode("ascii")
    return {
        "plot": MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})"),
        "plot_uri": MetadataValue.url(uri),
    }

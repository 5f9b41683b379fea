"""What every model asset shares: group names, the handle I/O manager's key, the timer, the ratings check."""

from __future__ import annotations

import time

from pyspark.sql import DataFrame, SparkSession

from recsys_assets.model.features import fingerprint
from recsys_assets.model.handles import RatingsHandle

MODEL_GROUP = "model"
PUBLISH_GROUP = "publish"
HANDLES = "model_handles"
"""The resource key of the ``HandleIOManager`` every model asset returns its handle through."""


class Timer:
    """Seconds since creation, for the ``duration_s`` metadata entry."""

    def __init__(self) -> None:
        self._started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return round(time.perf_counter() - self._started, 2)


def read_ratings(spark: SparkSession, ratings: RatingsHandle) -> DataFrame:
    """The ratings a handle names, after checking they are still exactly the data it fingerprinted."""
    frame = spark.read.parquet(ratings.uri)
    found = fingerprint(frame)
    if found != ratings.fingerprint:
        raise RuntimeError(
            f"the ratings at {ratings.uri} have fingerprint {found}, not {ratings.fingerprint} as recorded "
            "when they were written: they were changed outside the pipeline; re-materialise training_ratings"
        )
    return frame

"""What the Dagster UI says about every asset besides its code: owner, stage, code version, freshness.

Every asset is owned by ``OWNERS`` and tagged with its ``stage`` (filter the graph with
``tag:stage=train``). Each asset states its own ``code_version``, a string constant bumped when
what the asset writes for the same inputs and config changes (its logic, or that of the modules
it calls); not for refactors, logging or metadata. Dagster then marks its materialisations
made by older code as stale.
"""

from datetime import timedelta
from enum import StrEnum

from dagster import FreshnessPolicy

OWNERS = ["team:data"]
STAGE_TAG = "stage"


class Stage(StrEnum):
    INGEST = "ingest"
    SAMPLE = "sample"
    FEATURES = "features"
    TRAIN = "train"
    EVALUATE = "evaluate"
    PUBLISH = "publish"


def stage_tags(stage: Stage) -> dict[str, str]:
    return {STAGE_TAG: stage.value}


PUBLISHED_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=26), warn_window=timedelta(hours=25))
"""What the web app serves comes from the daily 03:00 retrain: older than a day plus its run time is late."""

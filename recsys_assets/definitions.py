"""The Dagster code location: every asset, check, job, schedule, sensor and resource of recsys.

Load it with ``dagster dev -w workspace.yaml`` (or ``recsys ui``).
"""

from __future__ import annotations

from dagster import Definitions

from recsys_assets import ingest, model
from recsys_assets.resources import build_resources
from recsys_core.settings import get_settings

defs = Definitions(
    assets=[*ingest.ASSETS, *model.ASSETS],
    asset_checks=model.CHECKS,
    jobs=[*ingest.JOBS, *model.JOBS],
    schedules=model.SCHEDULES,
    sensors=[*ingest.SENSORS, *model.SENSORS],
    resources=build_resources(get_settings()),
)

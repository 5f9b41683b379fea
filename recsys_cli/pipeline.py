"""Run the Dagster jobs from the command line, recorded in the project's Dagster instance
(``<state_dir>/dagster``), so ``recsys ui`` shows these runs with their metadata."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from recsys_core.settings import Settings

# The console shows Dagster's INFO events (asset logs, check results), not every DEBUG step event.
_INFO_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@dataclass(frozen=True)
class StepOutcome:
    job: str
    partition: str | None
    success: bool
    metadata: dict[str, dict[str, Any]]


def use_project_instance(settings: Settings) -> None:
    home = settings.state_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)


def run_pipeline(settings: Settings, categories: Sequence[str] | None = None) -> list[StepOutcome]:
    """Load every category (or the given ones), then run the model job if it is defined."""
    use_project_instance(settings)
    from dagster import DagsterInstance

    from recsys_assets import model
    from recsys_assets.definitions import defs
    from recsys_assets.ingest import CATEGORY
    from recsys_assets.resources import RawDataResource
    from recsys_assets.runs import materialisation_metadata

    found = RawDataResource(data_dir=str(settings.effective_data_dir)).categories()
    chosen = list(categories) if categories else list(found)
    missing = sorted(set(chosen) - set(found))
    if missing:
        raise SystemExit(f"no data files for categories {missing} in {settings.effective_data_dir}")
    if not chosen:
        raise SystemExit(f"no review or meta files in {settings.effective_data_dir}; run `recsys generate` first")

    instance = DagsterInstance.get()
    known = set(instance.get_dynamic_partitions(CATEGORY))
    instance.add_dynamic_partitions(CATEGORY, [c for c in chosen if c not in known])

    outcomes = []
    ingest = defs.resolve_job_def("ingest_job")
    for category in tqdm(chosen, desc="ingest", unit="category"):
        result = ingest.execute_in_process(
            partition_key=category, instance=instance, run_config=_INFO_LOGS, raise_on_error=True
        )
        outcomes.append(StepOutcome("ingest_job", category, result.success, materialisation_metadata(result)))
    for job in model.JOBS:
        result = defs.resolve_job_def(job.name).execute_in_process(
            instance=instance, run_config=_INFO_LOGS, raise_on_error=False
        )
        outcomes.append(StepOutcome(job.name, None, result.success, materialisation_metadata(result)))
    return outcomes

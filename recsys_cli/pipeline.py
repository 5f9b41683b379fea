"""Run the Dagster jobs from the command line, recorded in the project's Dagster instance
(``<state_dir>/dagster``), so ``recsys ui`` shows these runs with their metadata."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from recsys_core.connections import project_database
from recsys_core.locks import Lease
from recsys_core.settings import Settings

# The console shows Dagster's INFO events (asset logs, check results), not every DEBUG step event.
_INFO_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}

# The instance the CLI and `recsys ui` share: no telemetry, and the run queue starts one model
# run at a time (runs launched from the UI wait instead of failing on the model store's lease).
INSTANCE_YAML = """\
telemetry:
  enabled: false
concurrency:
  runs:
    tag_concurrency_limits:
      - key: "recsys/model_run"
        limit: 1
"""

PIPELINE_LEASE = "pipeline"


@dataclass(frozen=True)
class StepOutcome:
    job: str
    partition: str | None
    success: bool
    metadata: dict[str, dict[str, Any]]
    errors: list[str] = field(default_factory=list)


def use_project_instance(settings: Settings) -> None:
    home = settings.state_dir / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() != INSTANCE_YAML:
        config.write_text(INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)


def run_pipeline(
    settings: Settings, categories: Sequence[str] | None = None, model_ops: Mapping[str, Any] | None = None
) -> list[StepOutcome]:
    """Load every category (or the given ones), then run the model job; one ``recsys run`` at a time.

    ``model_ops`` is the model job's ``ops`` run config (per-asset ``config``), for runs that
    need other settings than the defaults.
    """
    use_project_instance(settings)
    db = project_database(settings)
    try:
        with Lease(db, PIPELINE_LEASE, owner="recsys run"):
            return _run_jobs(settings, categories, dict(model_ops or {}))
    finally:
        db.client.close()


def _run_jobs(settings: Settings, categories: Sequence[str] | None, model_ops: dict[str, Any]) -> list[StepOutcome]:
    from dagster import DagsterInstance, ExecuteInProcessResult

    from recsys_assets.definitions import definitions
    from recsys_assets.ingest.assets import CATEGORY
    from recsys_assets.model import defs as model
    from recsys_assets.resources import RawDataResource
    from recsys_assets.runs import failure_causes, materialisation_metadata

    found = RawDataResource(data_dir=str(settings.effective_data_dir)).categories()
    chosen = list(categories) if categories else list(found)
    missing = sorted(set(chosen) - set(found))
    if missing:
        raise SystemExit(f"no data files for categories {missing} in {settings.effective_data_dir}")
    if not chosen:
        raise SystemExit(f"no review or meta files in {settings.effective_data_dir}; run `recsys generate` first")

    instance = DagsterInstance.get()
    # What the UI shows of a CLI run: who launched it and what it ran on.
    tags = {
        "recsys/launched_by": "recsys run",
        "recsys/data_dir": str(settings.effective_data_dir),
        "recsys/mongo_db": settings.mongo_db,
        "recsys/model_store": settings.effective_model_store_uri,
    }
    known = set(instance.get_dynamic_partitions(CATEGORY))
    instance.add_dynamic_partitions(CATEGORY, [c for c in chosen if c not in known])

    def outcome(job: str, partition: str | None, result: ExecuteInProcessResult) -> StepOutcome:
        return StepOutcome(
            job,
            partition,
            result.success,
            materialisation_metadata(result),
            [] if result.success else failure_causes(result),
        )

    defs = definitions(settings)
    outcomes = []
    ingest = defs.resolve_job_def("ingest_job")
    for category in tqdm(chosen, desc="ingest", unit="category"):
        result = ingest.execute_in_process(
            partition_key=category, instance=instance, run_config=_INFO_LOGS, raise_on_error=False, tags=tags
        )
        outcomes.append(outcome("ingest_job", category, result))
        if not result.success:  # the model must not train on a partial load; the summary says why
            return outcomes
    for job in model.JOBS:
        result = defs.resolve_job_def(job.name).execute_in_process(
            instance=instance, run_config={**_INFO_LOGS, "ops": model_ops}, raise_on_error=False, tags=tags
        )
        outcomes.append(outcome(job.name, None, result))
    return outcomes

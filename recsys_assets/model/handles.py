"""What one model asset hands the next: a small typed handle, passed through Dagster.

A handle names where its data lies in the model store and what identifies it (version,
row count, fingerprint), never the data itself: a Spark DataFrame is a plan, not a value.
``HandleIOManager`` records each handle in the asset's materialisation, and gives the next
asset the handle of exactly the materialisation it depends on: the same run's, the parent
run's when a run is re-executed, else the latest. No file names are shared between runs.
"""

from __future__ import annotations

from typing import Any

from dagster import (
    ConfigurableIOManager,
    DagsterEventType,
    DagsterInvariantViolationError,
    EventLogEntry,
    InputContext,
    MetadataValue,
    OutputContext,
)
from pydantic import BaseModel, ConfigDict

from recsys_assets.model.evaluation import MODEL, POPULARITY, GateStatus, GateVerdict

HANDLE = "handle"


class Handle(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SampleHandle(Handle):
    """The seeded review sample of one run, and its proof."""

    version: str
    uri: str
    rows: int
    fraction: float | None = None  # of each stratum; None reads handles recorded before it was
    p_values: dict[str, float]
    min_p_value: float
    p_value_threshold: float

    @property
    def diverging(self) -> list[str]:
        """The tests whose p-value is below the threshold: the sample does not represent the population there."""
        return sorted(name for name, p in self.p_values.items() if p < self.p_value_threshold)


class RatingsHandle(Handle):
    """Clean ratings labelled train/test; the fingerprint is checked wherever they are used."""

    version: str
    uri: str
    rows: int
    fingerprint: str


class ModelHandle(Handle):
    """A fitted model; ``version`` orders publishing, ``ratings`` is what it was trained on."""

    version: str
    uri: str
    ratings: RatingsHandle


class EvaluationHandle(Handle):
    """The model's held-out evaluation, the gate's verdict on it, and the baseline serving if it fails."""

    uri: str
    model: ModelHandle
    gate_status: GateStatus
    gate_reasons: list[str]
    fallback: str = POPULARITY  # the default reads handles recorded before there was a choice

    @property
    def publishable(self) -> bool:
        return GateVerdict(self.gate_status, self.gate_reasons).publishable

    @property
    def serves(self) -> str:
        """What the reviewers' lists come from: the model when the gate lets it through, else the best baseline."""
        return MODEL if self.publishable else self.fallback

    @property
    def decision(self) -> str:
        """The gate's decision in one line, for metadata, the CLI summary and the logs."""
        reasons = f": {'; '.join(self.gate_reasons)}" if self.gate_reasons else ""
        return f"gate {self.gate_status}, lists from {self.serves}{reasons}"


class HandleIOManager(ConfigurableIOManager):
    """Stores an asset's handle in its materialisation metadata and loads it back for the next asset."""

    def handle_output(self, context: OutputContext, obj: Handle) -> None:
        context.add_output_metadata({HANDLE: MetadataValue.json(obj.model_dump(mode="json"))})

    def load_input(self, context: InputContext) -> Handle:
        entry = _source_materialisation(context)
        handle_type = context.dagster_type.typing_type
        if not (isinstance(handle_type, type) and issubclass(handle_type, Handle)):
            raise TypeError(f"input {context.name} must be annotated with a Handle class, not {handle_type}")
        materialization = entry.asset_materialization
        if materialization is None or HANDLE not in materialization.metadata:
            raise RuntimeError(f"{context.asset_key.to_user_string()} in run {entry.run_id} recorded no handle")
        value: Any = materialization.metadata[HANDLE].value
        return handle_type.model_validate(value)


def _source_materialisation(context: InputContext) -> EventLogEntry:
    """The upstream materialisation this input depends on: this run's or the parent run's, else the latest."""
    key = context.asset_key
    instance = context.instance
    run_id = _upstream_run_id(context)
    if run_id is not None and instance.has_run(run_id):  # not a placeholder for "outside this run"
        records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION).records
        found = [r.event_log_entry for r in records if r.asset_key == key]
        if not found:
            raise RuntimeError(f"run {run_id} did not materialise {key.to_user_string()}")
        return found[-1]
    latest = instance.get_latest_materialization_event(key)
    if latest is None:
        raise RuntimeError(f"{key.to_user_string()} has never been materialised: materialise it first")
    return latest


def _upstream_run_id(context: InputContext) -> str | None:
    upstream = context.upstream_output
    if upstream is None:
        return None
    try:
        return upstream.run_id
    except DagsterInvariantViolationError:  # the upstream asset is not part of this run or its parent
        return None

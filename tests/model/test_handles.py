"""HandleIOManager against a real Dagster instance: which materialisation's handle an asset receives.

(No postponed annotations: Dagster reads the asset's Config annotation at definition time.)
"""

import pytest
from dagster import (
    AssetKey,
    Config,
    DagsterInstance,
    InputContext,
    asset,
    build_input_context,
    build_output_context,
    materialize,
)
from dagster._core.types.dagster_type import resolve_dagster_type  # the resolver Dagster applies to annotations
from pydantic import ValidationError

from recsys_assets.model.assets.stage import HANDLES
from recsys_assets.model.handles import HandleIOManager, RatingsHandle, SampleHandle


class VersionConfig(Config):
    version: str


@asset(io_manager_key=HANDLES)
def ratings(config: VersionConfig) -> RatingsHandle:
    return RatingsHandle(
        version=config.version, uri=f"file:///store/{config.version}/ratings", rows=1, fingerprint="1:1"
    )


def _materialise(instance: DagsterInstance, version: str) -> str:
    result = materialize(
        [ratings],
        instance=instance,
        resources={HANDLES: HandleIOManager()},
        run_config={"ops": {"ratings": {"config": {"version": version}}}},
    )
    assert result.success
    return result.run_id


def _context(instance: DagsterInstance, upstream_run_id: str | None, handle_type: type) -> InputContext:
    """The input context Dagster builds for an asset input of ``handle_type`` from ``ratings``."""
    return build_input_context(
        asset_key=AssetKey("ratings"),
        upstream_output=build_output_context(asset_key=AssetKey("ratings"), run_id=upstream_run_id),
        instance=instance,
        dagster_type=resolve_dagster_type(handle_type),
    )


def _load(instance: DagsterInstance, upstream_run_id: str | None) -> RatingsHandle:
    loaded = HandleIOManager().load_input(_context(instance, upstream_run_id, RatingsHandle))
    assert isinstance(loaded, RatingsHandle)
    return loaded


def test_an_input_gets_its_own_runs_handle_not_the_latest() -> None:
    """As when an old run is re-executed: its publishers get the old run's handles, not a newer run's."""
    instance = DagsterInstance.ephemeral()
    old_run = _materialise(instance, "v1")
    _materialise(instance, "v2")
    assert _load(instance, old_run).version == "v1"


def test_an_input_from_outside_the_run_gets_the_latest_handle() -> None:
    instance = DagsterInstance.ephemeral()
    _materialise(instance, "v1")
    _materialise(instance, "v2")
    assert _load(instance, None).version == "v2"


def test_a_handle_of_another_type_is_refused() -> None:
    instance = DagsterInstance.ephemeral()
    run = _materialise(instance, "v1")
    with pytest.raises(ValidationError, match="SampleHandle"):
        HandleIOManager().load_input(_context(instance, run, SampleHandle))

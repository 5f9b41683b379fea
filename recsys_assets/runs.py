"""Reading what a finished Dagster run did, for the CLI summary and the tests."""

from __future__ import annotations

from typing import Any

from dagster import ExecuteInProcessResult


def materialisation_metadata(result: ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """The metadata of each materialised asset, as plain values, keyed by asset key."""
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        materialisation = event.step_materialization_data.materialization
        out[materialisation.asset_key.to_user_string()] = {k: v.value for k, v in materialisation.metadata.items()}
    return out


def failure_causes(result: ExecuteInProcessResult) -> list[str]:
    """The innermost message of each error the run's events carry: what actually went wrong."""
    causes = []
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None and error.message.strip() not in causes:
            causes.append(error.message.strip())
    return causes

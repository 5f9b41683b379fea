"""Reading what a finished Dagster run did, for the CLI summary and the tests."""

from __future__ import annotations

from typing import Any

from dagster import ExecuteInProcessResult, TableMetadataValue


def materialisation_metadata(result: ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """The metadata of each materialised asset, as plain values (a table as its rows), keyed by asset key."""
    out: dict[str, dict[str, Any]] = {}
    for event in result.get_asset_materialization_events():
        materialisation = event.step_materialization_data.materialization
        out[materialisation.asset_key.to_user_string()] = {
            k: [dict(r.data) for r in v.records] if isinstance(v, TableMetadataValue) else v.value
            for k, v in materialisation.metadata.items()
        }
    return out


def failure_causes(result: ExecuteInProcessResult) -> list[str]:
    """What actually went wrong, per error the run's events carry.

    A ``dagster.Failure`` (``spark_steps`` raises one with the executors' root cause) says it in
    its description; any other error in its innermost cause.
    """
    causes = []
    for event in result.all_events:
        user_failure = getattr(event.event_specific_data, "user_failure_data", None)
        error = getattr(event.event_specific_data, "error", None)
        while error is not None and error.cause is not None:
            error = error.cause
        cause = user_failure.description if user_failure and user_failure.description else error and error.message
        if cause and cause.strip() not in causes:
            causes.append(cause.strip())
    return causes

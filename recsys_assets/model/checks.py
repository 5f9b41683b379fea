"""Asset checks: the sample must match its population, and the model must earn publication.

Both read the verdict their asset recorded in its materialisation metadata, so the numbers
shown in the UI and the decision taken are the same numbers. (No postponed annotations:
Dagster inspects the ``context`` annotation at definition time.)
"""

from typing import Any

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, AssetKey, asset_check

from recsys_assets.model.assets import model_evaluation, review_sample


def _latest_metadata(context: AssetCheckExecutionContext, key: AssetKey) -> dict[str, Any]:
    event = context.instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        raise RuntimeError(f"{key.to_user_string()} has never been materialised")
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


@asset_check(
    asset=review_sample,
    blocking=True,
    description="Rating, category, user-activity and item-popularity "
    "distributions of the sample are consistent with the population (every p-value above the threshold).",
)
def sample_matches_population(context: AssetCheckExecutionContext) -> AssetCheckResult:
    meta = _latest_metadata(context, review_sample.key)
    p_values = {name: meta[name] for name in meta if name.endswith("_p_value")}
    threshold = float(meta["p_value_threshold"])
    diverging = sorted(name for name, p in p_values.items() if p < threshold)
    return AssetCheckResult(
        passed=not diverging,
        description=f"diverging: {', '.join(diverging)}" if diverging else "the sample matches the population",
        metadata={"p_value_threshold": threshold, **p_values},
    )


@asset_check(
    asset=model_evaluation,
    blocking=True,
    description="The model gate: beat the user+item bias "
    "baseline on RMSE and popularity on NDCG@10, or nothing is published. Too little held-out data "
    "to judge gives a warning and publishes.",
)
def model_beats_baselines(context: AssetCheckExecutionContext) -> AssetCheckResult:
    meta = _latest_metadata(context, model_evaluation.key)
    status = meta["gate_status"]
    reasons = list(meta["gate_reasons"])
    details = {
        "model_version": meta["model_version"],
        "gate_status": status,
        "model_rmse": meta.get("model/rmse"),
        "bias_rmse": meta.get("user_item_bias/rmse"),
        "model_ndcg@10": meta.get("model/ndcg@10"),
        "popularity_ndcg@10": meta.get("popularity/ndcg@10"),
    }
    metadata = {name: value for name, value in details.items() if value is not None}
    if status == "pass":
        return AssetCheckResult(passed=True, description="beats both baselines", metadata=metadata)
    # A WARN failure does not block downstream assets: small data publishes, with this warning on record.
    severity = AssetCheckSeverity.WARN if status == "too_small" else AssetCheckSeverity.ERROR
    return AssetCheckResult(passed=False, severity=severity, description="; ".join(reasons), metadata=metadata)

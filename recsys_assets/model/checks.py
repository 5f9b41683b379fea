"""Asset checks: the sample must match its population, and the model must earn publication.

Each check reads its asset's handle, the same value the next asset receives, so the verdict
the UI shows and the one the publishers act on cannot differ. (No postponed annotations:
Dagster inspects the parameter annotations at definition time.)
"""

from dagster import AssetCheckResult, AssetCheckSeverity, asset_check

from recsys_assets.model.assets import model_evaluation, review_sample
from recsys_assets.model.handles import EvaluationHandle, SampleHandle


@asset_check(
    asset=review_sample,
    blocking=True,
    description="Rating, category, user-activity and item-popularity "
    "distributions of the sample are consistent with the population (every p-value above the threshold).",
)
def sample_matches_population(review_sample: SampleHandle) -> AssetCheckResult:
    diverging = review_sample.diverging
    return AssetCheckResult(
        passed=not diverging,
        description=f"diverging: {', '.join(diverging)}" if diverging else "the sample matches the population",
        metadata={"p_value_threshold": review_sample.p_value_threshold, **review_sample.p_values},
    )


@asset_check(
    asset=model_evaluation,
    blocking=True,
    description="The model gate: beat the user+item bias "
    "baseline on RMSE and popularity on NDCG@10, or nothing is published. Too little held-out data "
    "to judge gives a warning and publishes.",
)
def model_beats_baselines(model_evaluation: EvaluationHandle) -> AssetCheckResult:
    status = model_evaluation.gate_status
    metadata = {"model_version": model_evaluation.model.version, "gate_status": status}
    if status == "pass":
        return AssetCheckResult(passed=True, description="beats both baselines", metadata=metadata)
    # A WARN failure does not block downstream assets: small data publishes, with this warning on record.
    severity = AssetCheckSeverity.WARN if status == "too_small" else AssetCheckSeverity.ERROR
    return AssetCheckResult(
        passed=False, severity=severity, description="; ".join(model_evaluation.gate_reasons), metadata=metadata
    )

"""Asset checks: the sample must match its population, the model is judged, and the popular lists must be whole.

Each check reads its asset's handle, the same value the next asset receives, so the verdict
the UI shows and the one the publishers act on cannot differ. (No postponed annotations:
Dagster inspects the parameter annotations at definition time.)
"""

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, asset_check

from recsys_assets.model.assets import model_evaluation, popular_products, review_sample
from recsys_assets.model.handles import EvaluationHandle, SampleHandle
from recsys_assets.resources import MongoResource
from recsys_core.contract import ALL_CATEGORIES, PopularItem


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
    description="The model gate: beat the user+item bias baseline on RMSE and popularity on NDCG@10. "
    "It decides what serves, never whether something is: a failed model's reviewers get the best baseline's "
    "lists (a warning, not a blocked run); too little held-out data to judge gives a warning and the model's lists.",
)
def model_beats_baselines(model_evaluation: EvaluationHandle) -> AssetCheckResult:
    metadata = {
        "model_version": model_evaluation.model.version,
        "gate_status": model_evaluation.gate_status,
        "lists_from": model_evaluation.serves,
    }
    if model_evaluation.gate_status == "pass":
        return AssetCheckResult(passed=True, description="beats both baselines", metadata=metadata)
    return AssetCheckResult(
        passed=False, severity=AssetCheckSeverity.WARN, description=model_evaluation.decision, metadata=metadata
    )


def _popular_lists(context: AssetCheckExecutionContext, mongo: MongoResource) -> tuple[str, dict[str, int], list[str]]:
    """The published version, its list length per category, and the categories its ratings had (as recorded)."""
    event = context.instance.get_latest_materialization_event(popular_products.key)
    materialization = event.asset_materialization if event is not None else None
    if materialization is None:
        raise RuntimeError("popular_products has never been materialised")
    version = str(materialization.metadata["model_version"].value)
    rated: list[str] = list(materialization.metadata["rated_categories"].value)
    with mongo.db() as db:
        counts = db[PopularItem.collection].aggregate(
            [{"$match": {"model_version": version}}, {"$group": {"_id": "$category", "n": {"$sum": 1}}}]
        )
        return version, {str(row["_id"]): int(row["n"]) for row in counts}, rated


@asset_check(
    asset=popular_products, blocking=True, description="The served popular lists are not empty, nor is the overall one."
)
def popular_products_not_empty(context: AssetCheckExecutionContext, mongo: MongoResource) -> AssetCheckResult:
    version, lists, _ = _popular_lists(context, mongo)
    passed = bool(lists) and lists.get(ALL_CATEGORIES, 0) > 0
    return AssetCheckResult(
        passed=passed,
        description=f"{sum(lists.values())} products in {len(lists)} lists" if passed else "no popular list served",
        metadata={"model_version": version, "products": sum(lists.values()), "lists": len(lists)},
    )


@asset_check(
    asset=popular_products, blocking=True, description="Every category with training ratings has a served popular list."
)
def popular_products_cover_rated_categories(
    context: AssetCheckExecutionContext, mongo: MongoResource
) -> AssetCheckResult:
    version, lists, rated = _popular_lists(context, mongo)
    missing = sorted(set(rated) - set(lists))
    return AssetCheckResult(
        passed=not missing,
        description=f"no list for: {', '.join(missing)}" if missing else f"all {len(rated)} rated categories have one",
        metadata={"model_version": version, "rated_categories": len(rated), "missing": missing},
    )

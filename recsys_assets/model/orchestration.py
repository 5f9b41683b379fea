"""When the model graph runs: on demand, daily, when raw data is re-ingested, and when shoppers have rated enough."""

from datetime import UTC, datetime

from dagster import (
    AssetKey,
    AssetSelection,
    ConfigurableResource,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    EventLogEntry,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset_sensor,
    define_asset_job,
    in_process_executor,
    sensor,
)
from pydantic import Field

from recsys_assets.model.assets import (
    als_model,
    item_factors,
    model_evaluation,
    popular_products,
    review_sample,
    similar_products,
    training_ratings,
    user_recommendations,
)
from recsys_assets.resources import MongoResource
from recsys_core.contract import Interaction

MODEL_ASSETS = [
    review_sample,
    training_ratings,
    als_model,
    model_evaluation,
    user_recommendations,
    popular_products,
    item_factors,
    similar_products,
]
RAW_REVIEWS = AssetKey("raw_reviews")
ALS_MODEL = AssetKey("als_model")
MODEL_RUN_TAG = "recsys/model_run"
"""Tagged on model runs, so the run queue of the Dagster instance starts one at a time."""

# The raw assets are partitioned by category and these are not, and one Dagster run has one
# partition key, so this job starts from what ingestion left in MongoDB (all categories).
recsys_model_job = define_asset_job(
    "recsys_model_job",
    selection=AssetSelection.assets(*MODEL_ASSETS),
    executor_def=in_process_executor,  # one process, one Spark session for the whole run
    description="Sample, train, evaluate and (if the gate passes) publish, from all ingested categories. "
    "One model run at a time: the model store's lease refuses a second.",
    tags={MODEL_RUN_TAG: "true"},
)

daily_retrain = ScheduleDefinition(
    name="recsys_daily_retrain",
    job=recsys_model_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description="Retrain and republish every day at 03:00 UTC from what ingestion left in MongoDB. Off until "
    "turned on: a retrain without new data only costs time.",
)


@asset_sensor(
    asset_key=RAW_REVIEWS,
    job=recsys_model_job,
    minimum_interval_seconds=60,
    description="Retrain once after raw_reviews is materialised (a burst of categories gives one run).",
)
def retrain_on_raw_reviews(context: SensorEvaluationContext, asset_event: EventLogEntry) -> RunRequest:
    """Retrain after a category of raw reviews is (re-)ingested.

    Dagster hands the sensor only the newest materialisation since its last tick, so a burst
    of re-ingested categories gives one retrain, not one per category.
    """
    materialization = asset_event.asset_materialization
    partition = materialization.partition if materialization else None
    context.log.info(f"raw_reviews partition {partition} materialised; requesting a retrain")
    return RunRequest(
        run_key=f"raw_reviews-{asset_event.run_id}-{asset_event.timestamp}",
        tags={"recsys/trigger": f"raw_reviews:{partition}"},
    )


class RetrainPolicy(ConfigurableResource):  # type: ignore[type-arg]  # Dagster's generic resource
    """How many new site ratings make a retrain worth its cost (``RECSYS_RETRAIN_AFTER_INTERACTIONS``)."""

    after_ratings: int = Field(default=1000, ge=1)


@sensor(
    job=recsys_model_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Retrain once shoppers have given enough new ratings on the site since the last training "
    "(RECSYS_RETRAIN_AFTER_INTERACTIONS). The cursor is the time of the newest rating already counted.",
)
def retrain_on_site_ratings(
    context: SensorEvaluationContext, mongo: MongoResource, retrain_policy: RetrainPolicy
) -> SensorResult | SkipReason:
    """Counts the ``interactions`` of kind rate newer than both the last training and the last request.

    Only ratings count: clicks and views change a reviewer's online list but are not training
    data. The online updater serves the new ratings at once; the retrain makes the item
    factors learn from them too (``training_ratings`` includes them).
    """
    trained = context.instance.get_latest_materialization_event(ALS_MODEL)
    since = max(
        datetime.fromtimestamp(trained.timestamp, UTC) if trained else datetime.min.replace(tzinfo=UTC),
        datetime.fromisoformat(context.cursor) if context.cursor else datetime.min.replace(tzinfo=UTC),
    )
    with mongo.db() as db:
        new = {"kind": "rate", "ts": {"$gt": since}}
        count = db[Interaction.collection].count_documents(new)
        newest = db[Interaction.collection].find_one(new, {"ts": 1}, sort=[("ts", -1)]) if count else None
    if newest is None or count < retrain_policy.after_ratings:
        return SkipReason(
            f"{count} new site ratings since {since.isoformat()}; {retrain_policy.after_ratings} start a retrain"
        )
    newest_ts = newest["ts"].isoformat()
    return SensorResult(
        run_requests=[
            RunRequest(run_key=f"site-ratings-{newest_ts}", tags={"recsys/trigger": f"site_ratings:{count}"})
        ],
        cursor=newest_ts,
    )

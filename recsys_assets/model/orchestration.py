"""When the model graph runs: on demand, daily, and whenever raw data is re-ingested."""

from __future__ import annotations

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    EventLogEntry,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    asset_sensor,
    define_asset_job,
    in_process_executor,
)

from recsys_assets.model.assets import (
    als_model,
    item_factors,
    model_evaluation,
    popular_products,
    review_sample,
    top5_recommendations,
    training_ratings,
)

MODEL_ASSETS = [
    review_sample,
    training_ratings,
    als_model,
    model_evaluation,
    top5_recommendations,
    popular_products,
    item_factors,
]
RAW_REVIEWS = AssetKey("raw_reviews")
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

"""Stage 4: the model and three baselines on the held-out ratings, and the gate's verdict."""

from dagster import AssetExecutionContext, Config, MetadataValue, Output, TableMetadataValue, asset
from dagster_pyspark import PySparkResource
from pydantic import Field

from recsys_assets.catalog import OWNERS, Stage, stage_tags
from recsys_assets.metadata import table
from recsys_assets.model import evaluation as ev
from recsys_assets.model.assets.stage import HANDLES, MODEL_GROUP, Timer, read_ratings
from recsys_assets.model.handles import EvaluationHandle, ModelHandle, RatingsHandle
from recsys_assets.model.plots import store_figure
from recsys_assets.model.report import REPORT_KEY, EvaluationCounts, EvaluationReport
from recsys_assets.model.store import ModelStore
from recsys_assets.model.training import load_model
from recsys_assets.spark_steps import spark_step


class EvaluationConfig(Config):
    relevant_min_rating: float = Field(default=4.0, description="A held-out rating this high is a hit.")
    min_heldout_ratings: int = Field(default=500, description="Below this the gate warns instead of judging.")
    min_ranking_users: int = Field(default=200, description="Below this the gate warns instead of judging.")
    max_ranking_users: int = Field(
        default=20_000,
        ge=1,
        description="Ranking metrics on a seeded sample of this many reviewers when there are more.",
    )
    seed: int = Field(default=42, description="Seed of the reviewer sample for the ranking metrics.")


def _metrics_table(metrics: dict[str, ev.Metrics]) -> TableMetadataValue:
    """One row per metric, one column per method: the model against every baseline (empty: not defined)."""
    names = list(next(iter(metrics.values())))
    rounded = [{name: None if v is None else round(v, 4) for name, v in values.items()} for values in metrics.values()]
    return table(
        {"metric": "string", **dict.fromkeys(metrics, "float")},
        ([name, *(values.get(name) for values in rounded)] for name in names),
    )


@asset(
    group_name=MODEL_GROUP,
    kinds={"spark"},
    io_manager_key=HANDLES,
    owners=OWNERS,
    tags=stage_tags(Stage.EVALUATE),
    code_version="6",  # 2: every rating counts, cold pairs by the biases; 3: the report; 4: bias baseline on scale;
    # 5: the bias baseline is the biases of the ratings alone, not the rating head's refitted ones;
    # 6: a too_small gate names the comparisons the model lost
)
@spark_step
def model_evaluation(
    context: AssetExecutionContext,
    config: EvaluationConfig,
    pyspark: PySparkResource,
    model_store: ModelStore,
    als_model: ModelHandle,
    training_ratings: RatingsHandle,
) -> Output[EvaluationHandle]:
    """Evaluate the model on the held-out split of the very ratings it was trained on, and judge it."""
    timer = Timer()
    spark = pyspark.spark_session
    if training_ratings.fingerprint != als_model.ratings.fingerprint:
        raise RuntimeError(
            f"model {als_model.version} was trained on ratings {als_model.ratings.version} "
            f"(fingerprint {als_model.ratings.fingerprint}), but training_ratings is now {training_ratings.version} "
            f"(fingerprint {training_ratings.fingerprint}): materialise als_model again before evaluating it"
        )
    model = load_model(model_store, spark, als_model.uri)
    result = ev.evaluate(
        model,
        read_ratings(spark, training_ratings),
        config.relevant_min_rating,
        config.max_ranking_users,
        config.seed,
    )
    verdict = ev.judge(
        result.metrics, result.rating_rows, result.ranking_users, config.min_heldout_ratings, config.min_ranking_users
    )
    fallback = ev.best_baseline(result.metrics)
    uri = model_store.uri(model_store.run_version, "evaluation")
    handle = EvaluationHandle(
        uri=uri, model=als_model, gate_status=verdict.status, gate_reasons=verdict.reasons, fallback=fallback
    )
    report = EvaluationReport(
        model_version=als_model.version,
        metrics=result.metrics,
        counts=EvaluationCounts(
            heldout_ratings=result.rating_rows,
            heldout_ratings_cold=result.cold_rating_rows,
            ranking_users=result.ranking_users,
            ranking_users_eligible=result.ranking_users_eligible,
            catalogue_size=result.catalogue_size,
        ),
        relevant_min_rating=config.relevant_min_rating,
        gate_status=verdict.status,
        gate_reasons=verdict.reasons,
        gate_decision=handle.decision,
        fallback=fallback,
        lists_from=handle.serves,
    )
    model_store.write_json(spark, f"{uri}/evaluation.json", report.model_dump(mode="json"))
    context.log.info(f"{als_model.version}: {handle.decision}\n{ev.metrics_markdown(result.metrics)}")
    figure = ev.evaluation_figure(result.metrics, f"model {als_model.version} vs baselines")
    flat = {
        f"{method}/{name}": value
        for method, values in result.metrics.items()
        for name, value in values.items()
        if value is not None
    }
    return Output(
        handle,
        metadata={
            "model_version": als_model.version,
            "gate_status": verdict.status,
            "gate_reasons": MetadataValue.json(verdict.reasons),
            "gate_decision": handle.decision,
            "lists_from": handle.serves,
            "metrics": _metrics_table(result.metrics),
            "chart": ev.evaluation_chart(result.metrics),
            **flat,
            **report.counts.model_dump(),
            "relevant_min_rating": config.relevant_min_rating,
            REPORT_KEY: MetadataValue.json(report.model_dump(mode="json")),
            "uri": MetadataValue.url(uri),
            **store_figure(figure, model_store, spark, f"{uri}/evaluation.png", "evaluation"),
            "duration_s": timer.seconds,
        },
    )

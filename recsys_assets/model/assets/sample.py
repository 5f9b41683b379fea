"""Stage 1: a seeded sample of the ingested reviews, stratified and proved faithful to the population."""

from dagster import AssetExecutionContext, Config, MetadataValue, Output, TableMetadataValue, asset
from dagster_pyspark import PySparkResource
from pydantic import Field

from recsys_assets.catalog import OWNERS, Stage, stage_tags
from recsys_assets.metadata import table
from recsys_assets.model.assets.stage import HANDLES, MODEL_GROUP, Timer
from recsys_assets.model.handles import SampleHandle
from recsys_assets.model.plots import store_figure
from recsys_assets.model.sampling import (
    Distribution,
    proof_chart,
    proof_figure,
    prove,
    resolve_fraction,
    stratified_sample,
    with_population_activity,
)
from recsys_assets.model.sources import read_reviews
from recsys_assets.model.store import ModelStore
from recsys_assets.resources import MongoResource
from recsys_assets.spark_steps import spark_step
from recsys_core.mongo import REVIEWS

RAW_DEPS = ["raw_reviews", "raw_products"]


MAX_REVIEWS = 1_000_000
"""The default size cap: the largest size BENCHMARKS.md measured end to end within the default memory."""


class ReviewSampleConfig(Config):
    fraction: float = Field(default=1.0, description="Share of each (category, rating) stratum to keep; 1.0 = all.")
    max_reviews: int | None = Field(
        default=MAX_REVIEWS,
        description="Size cap: larger data is sampled down to about this many reviews (with a smaller "
        "fraction, the fraction's size); null = no cap. It bounds the model job's cost on big categories.",
    )
    seed: int = 42
    min_p_value: float = Field(default=0.01, description="The sample check fails below this p-value.")


def _table(name: str, dist: Distribution) -> TableMetadataValue:
    rows = zip(dist.values, dist.population, dist.sample, strict=True)
    return table({name: "string", "population": "int", "sample": "int"}, rows)


@asset(
    deps=RAW_DEPS,
    group_name=MODEL_GROUP,
    kinds={"spark", "parquet"},
    io_manager_key=HANDLES,
    owners=OWNERS,
    tags=stage_tags(Stage.SAMPLE),
    code_version="2",  # 2: a size cap by default
)
@spark_step
def review_sample(
    context: AssetExecutionContext,
    config: ReviewSampleConfig,
    pyspark: PySparkResource,
    model_store: ModelStore,
    mongo: MongoResource,
) -> Output[SampleHandle]:
    """A seeded sample stratified by (category, rating), written once into this run's folder, with its proof."""
    timer = Timer()
    spark = pyspark.spark_session
    version = model_store.run_version
    uri = model_store.uri(version, "sample")
    population = with_population_activity(read_reviews(spark, mongo)).cache()
    population_rows = population.count()
    if population_rows == 0:
        raise ValueError(f"no reviews in {REVIEWS}: materialise raw_reviews first")
    fraction = resolve_fraction(population_rows, config.fraction, config.max_reviews)
    stratified_sample(population, fraction, config.seed).write.mode("overwrite").parquet(uri)
    proof = prove(population, spark.read.parquet(uri))
    population.unpersist()
    p_values = {
        "rating_chi2": proof.ratings_chi2.p_value,
        "category_chi2": proof.categories_chi2.p_value,
        "user_activity_ks": proof.user_activity_ks.p_value,
        "item_popularity_ks": proof.item_popularity_ks.p_value,
    }
    context.log.info(
        f"sample of {proof.sample_rows} / {proof.population_rows} reviews, min p-value {proof.min_p_value:.3g}"
    )
    handle = SampleHandle(
        version=version,
        uri=uri,
        rows=proof.sample_rows,
        fraction=fraction,
        p_values=p_values,
        min_p_value=proof.min_p_value,
        p_value_threshold=config.min_p_value,
    )
    return Output(
        handle,
        metadata={
            "uri": MetadataValue.url(uri),
            "version": version,
            "source": f"{mongo.database}.{REVIEWS}",
            "population_rows": proof.population_rows,
            "dagster/row_count": proof.sample_rows,
            "fraction": fraction,
            "max_reviews": config.max_reviews,
            "seed": config.seed,
            **{f"{name}_p_value": p for name, p in p_values.items()},
            "min_p_value": proof.min_p_value,
            "p_value_threshold": config.min_p_value,
            "rating_counts": _table("rating", proof.ratings),
            "category_counts": _table("category", proof.categories),
            "chart": proof_chart(proof),
            **store_figure(
                proof_figure(proof), model_store, spark, model_store.uri(version, "sample_proof.png"), "sample proof"
            ),
            "duration_s": timer.seconds,
        },
    )

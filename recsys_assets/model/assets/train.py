"""Stage 3: biases, dense id indices and two ALS heads, each tuned on a validation split, saved in the run's folder."""

import json
from typing import Any

from dagster import AssetExecutionContext, MetadataValue, Output, TableMetadataValue, asset
from dagster_pyspark import PySparkResource
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from recsys_assets.catalog import OWNERS, Stage, stage_tags
from recsys_assets.metadata import table
from recsys_assets.model.assets.stage import HANDLES, MODEL_GROUP, Timer, read_ratings
from recsys_assets.model.features import TRAIN
from recsys_assets.model.handles import ModelHandle, RatingsHandle
from recsys_assets.model.publishing import served_versions
from recsys_assets.model.store import ModelStore
from recsys_assets.model.training import MODEL_JSON, AlsParams, HeadParams, als_blocks, fit_model, save_model
from recsys_assets.model.tuning import search, table_rows
from recsys_assets.resources import MongoResource
from recsys_assets.spark_steps import spark_step


def _in_use(store: ModelStore, spark: SparkSession, mongo: MongoResource, *current: str) -> set[str]:
    """Run folders pruning must keep: this run's inputs, and every served model with the ratings it was fitted on."""
    with mongo.db() as db:
        served = served_versions(db)
    keep = set(current) | served
    existing = set(store.versions(spark))
    for version in served & existing:
        meta = store.read_json(spark, store.uri(version, "model", MODEL_JSON))
        if (ratings_version := store.version_of(str(meta["ratings_uri"]))) is not None:
            keep.add(ratings_version)
    return keep


def _params(config: AlsParams) -> list[tuple[str, str]]:
    """Each hyperparameter as text: values are numbers, flags, None or the tuning grid."""
    return [(name, json.dumps(value)) for name, value in config.model_dump(mode="json").items()]


def _heads_table(heads: dict[str, HeadParams]) -> TableMetadataValue:
    return table(
        {
            "head": "string",
            "rank": "int",
            "regParam": "float",
            "alpha": "float",
            "popularityWeight": "float",
            "maxIter": "int",
        },
        ([name, h.rank, h.reg_param, h.alpha, h.popularity_weight, h.max_iter] for name, h in heads.items()),
    )


@asset(
    group_name=MODEL_GROUP,
    kinds={"spark"},
    io_manager_key=HANDLES,
    owners=OWNERS,
    tags=stage_tags(Stage.TRAIN),
    code_version="8",  # 2: a search per head, positive-only implicit head; 3: the rating scale; 4: tuned biases;
    # 5: biases refitted on the rating head's residual (bias_rounds), the bias baseline's saved beside;
    # 6: the ranking head's popularity prior, and the items' positive signals saved; 7: the coordinate sweep;
    # 8: the rating head's one-standard-error rule, and its own regParam grid (to 3)
)
@spark_step
def als_model(
    context: AssetExecutionContext,
    config: AlsParams,
    pyspark: PySparkResource,
    model_store: ModelStore,
    mongo: MongoResource,
    training_ratings: RatingsHandle,
) -> Output[ModelHandle]:
    """Fit the model on the ratings' train split; its version is this run's, which orders publishing."""
    timer = Timer()
    spark = pyspark.spark_session
    version = model_store.run_version
    uri = model_store.uri(version, "model")
    train = read_ratings(spark, training_ratings).where(F.col("split") == TRAIN).cache()
    train_rows = train.count()
    blocks = als_blocks(config, train_rows, spark.sparkContext.defaultParallelism)
    # ALS only checkpoints (and so cuts its lineage, which at 20+ iterations overflows the JVM stack) with a
    # checkpoint folder; checkpoints are scratch, deleted once the model is saved.
    checkpoints = model_store.uri(version, "checkpoints")
    spark.sparkContext.setCheckpointDir(checkpoints)
    chosen = search(train, config, blocks, train_rows)
    context.log.info(
        f"tuning: {chosen.skipped or f'{len(chosen.trials)} trials'}; biases damped {chosen.damping}, "
        f"rating head {chosen.heads.rating}, ranking head {chosen.heads.ranking}"
    )
    model = fit_model(train, config, chosen.heads, chosen.damping, version, blocks)
    train.unpersist()
    save_model(model, model_store, spark, uri, training_ratings.uri)
    model_store.delete(spark, checkpoints)
    pruned = model_store.prune(spark, _in_use(model_store, spark, mongo, version, training_ratings.version))
    context.log.info(f"model {version} saved to {uri}; pruned {pruned or 'nothing'}")
    metadata: dict[str, Any] = {
        "model_version": version,
        "uri": MetadataValue.url(uri),
        "ratings_version": training_ratings.version,
        "ratings_fingerprint": training_ratings.fingerprint,
        "params": table({"parameter": "string", "value": "string"}, _params(config)),
        "reviewers": model.ids.users.count(),
        "items": model.ids.items.count(),
        "global_mean": model.biases.global_mean,
        "bias_damping": MetadataValue.json(model.biases.damping.model_dump()),
        "heads": _heads_table({"rating": model.heads.rating, "ranking": model.ranking_params}),
        "tuning_status": chosen.skipped
        or f"{len(chosen.trials)} trials" + (", stopped by the time budget" if chosen.budget_exhausted else ""),
        "als_blocks": blocks,
        "pruned_versions": MetadataValue.json(pruned),
        "duration_s": timer.seconds,
    }
    if chosen.damping_trials:
        metadata["bias_tuning"] = table(
            {"user_damping": "float", "item_damping": "float", "validation_rmse": "float"},
            ([t.damping.user, t.damping.item, t.rmse] for t in chosen.damping_trials),
        )
    if chosen.trials:
        metadata["tuning"] = table(
            {
                "head": "string",
                "rung": "int",
                "rank": "int",
                "regParam": "float",
                "alpha": "float",
                "popularityWeight": "float",
                "maxIter": "int",
                "metric": "string",
                "validation": "float",
                "standardErrorsBehind": "float",
                "seconds": "float",
            },
            table_rows(chosen.trials),
        )
    return Output(ModelHandle(version=version, uri=uri, ratings=training_ratings), metadata=metadata)

"""The model stage's Dagster definitions: sample, features, ALS, evaluation and publishing."""

from __future__ import annotations

from typing import Any

from recsys_assets.model.checks import (
    model_beats_baselines,
    popular_products_cover_rated_categories,
    popular_products_not_empty,
    sample_matches_population,
)
from recsys_assets.model.orchestration import (
    MODEL_ASSETS,
    daily_retrain,
    recsys_model_job,
    retrain_on_raw_reviews,
    retrain_on_site_ratings,
)

ASSETS: list[Any] = list(MODEL_ASSETS)
CHECKS: list[Any] = [
    sample_matches_population,
    model_beats_baselines,
    popular_products_not_empty,
    popular_products_cover_rated_categories,
]
JOBS: list[Any] = [recsys_model_job]
SCHEDULES: list[Any] = [daily_retrain]
SENSORS: list[Any] = [retrain_on_raw_reviews, retrain_on_site_ratings]

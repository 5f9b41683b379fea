"""The model graph on the real Amazon 2018 files: what it publishes, and that it is right."""

from __future__ import annotations

from tests.model.conftest import Published


def test_every_asset_materialised_and_checks_pass(published: Published) -> None:
    materialised = {e.asset_key.to_user_string() for e in published.result.get_asset_materialization_events()}
    assert materialised == {
        "review_sample",
        "training_ratings",
        "als_model",
        "model_evaluation",
        "top5_recommendations",
        "popular_products",
        "item_factors",
    }
    checks = {c.check_name: c for c in published.result.get_asset_check_evaluations()}
    assert checks["sample_matches_population"].passed
    assert checks["model_beats_baselines"].passed, checks["model_beats_baselines"].description
    print(published.metadata("model_evaluation")["metrics"])

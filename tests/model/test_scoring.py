"""recsys_core.scoring in plain numpy: the fold-in solves Spark's per-user normal equations."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from recsys_core.contract import ItemFactor
from recsys_core.scoring import ItemFactors, fold_in, recommend, scores


def _document(
    asin: str,
    vector: list[float],
    version: str = "v1",
    implicit: bool = True,
    bias: float = 0.0,
    bias_rounds: int = 1,
    prior: float = 0.0,
):
    """An ``item_factors`` document as the publisher writes it, through the contract: the explicit head's score
    offset is the item bias, the implicit head's its popularity ``prior``."""
    factor = ItemFactor(
        asin=asin,
        vector=vector,
        item_bias=bias,
        score_offset=prior if implicit else bias,
        model_version=version,
        rank=len(vector),
        reg_param=0.1,
        implicit_prefs=implicit,
        alpha=2.0,
        global_mean=4.0,
        user_bias_damping=5.0,
        bias_rounds=bias_rounds,
        updated_at=datetime(2026, 11, 1, tzinfo=UTC),
    )
    return factor.to_document()


def _factors(implicit: bool, bias_rounds: int = 1, priors: list[float] | None = None) -> ItemFactors:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(6, 3))
    docs = [
        _document(
            f"i{i}",
            vectors[i].tolist(),
            implicit=implicit,
            bias=0.1 * i,
            bias_rounds=bias_rounds,
            prior=priors[i] if priors else 0.0,
        )
        for i in range(6)
    ]
    return ItemFactors.from_documents(reversed(docs))


def test_implicit_fold_in_minimises_the_weighted_loss_over_positive_signals() -> None:
    factors = _factors(implicit=True)
    ratings = {"i0": 5.0, "i2": 4.0, "i3": 1.0}  # the 1-star rating is a dislike: strength 0, unobserved
    x = fold_in(factors, ratings)
    y = factors.vectors
    strength = {"i0": 5.0, "i2": 4.0}
    p = np.array([1.0 if a in strength else 0.0 for a in factors.asins])
    c = np.array([1.0 + 2.0 * strength.get(a, 0.0) for a in factors.asins])

    def loss(v: np.ndarray) -> float:
        return float((c * (p - y @ v) ** 2).sum() + 0.1 * len(strength) * v @ v)

    rng = np.random.default_rng(2)
    assert all(loss(x) <= loss(x + 1e-3 * rng.normal(size=3)) for _ in range(50))


def test_a_dislike_teaches_the_implicit_head_nothing_and_outweighs_a_click() -> None:
    factors = _factors(implicit=True)
    liked = fold_in(factors, {"i0": 5.0})
    np.testing.assert_allclose(fold_in(factors, {"i0": 5.0, "i3": 2.0}), liked)
    np.testing.assert_allclose(fold_in(factors, {"i0": 5.0, "i3": 1.0}, implicit={"i3": 1.0}), liked)
    assert not np.allclose(fold_in(factors, {"i0": 5.0, "i3": 3.0}), liked)
    assert not np.allclose(fold_in(factors, {"i0": 5.0}, implicit={"i3": 1.0}), liked)  # a click still counts


def test_explicit_fold_in_fits_the_residuals_and_scores_add_the_item_bias() -> None:
    factors = _factors(implicit=False)
    ratings = {"i1": 5.0, "i2": 3.0, "i4": 4.0}
    x = fold_in(factors, ratings)
    rows = [factors.asins.index(a) for a in ratings]
    r = np.array(list(ratings.values()))
    offsets = r - 4.0 - factors.item_bias[rows]
    residual = offsets - offsets.sum() / (3 + 5.0)
    y = factors.vectors[rows]
    np.testing.assert_allclose((y.T @ y + 0.1 * 3 * np.eye(3)) @ x, y.T @ residual)
    np.testing.assert_allclose(scores(factors, x), factors.vectors @ x + factors.item_bias)


def test_explicit_fold_in_alternates_the_bias_and_the_vector_as_the_rating_head_was_fitted() -> None:
    ratings = {"i0": 2.0, "i1": 5.0, "i2": 3.0, "i4": 4.0}
    one = _factors(implicit=False)
    rows = [one.asins.index(a) for a in ratings]
    offsets = np.array(list(ratings.values())) - 4.0 - one.item_bias[rows]
    y = one.vectors[rows]
    a = y.T @ y + 0.1 * 4 * np.eye(3)
    first = fold_in(one, ratings)
    second_bias = (offsets - y @ first).sum() / (4 + 5.0)  # the bias refitted on what the first vector leaves
    second = fold_in(_factors(implicit=False, bias_rounds=2), ratings)
    np.testing.assert_allclose(a @ second, y.T @ (offsets - second_bias))

    # Alternated long enough, bias and vector reach the ridge fit of both at once.
    x = fold_in(_factors(implicit=False, bias_rounds=200), ratings)
    bias = (offsets - y @ x).sum() / (4 + 5.0)

    def loss(b: float, v: np.ndarray) -> float:
        return float(((offsets - b - y @ v) ** 2).sum() + 5.0 * b * b + 0.1 * 4 * v @ v)

    rng = np.random.default_rng(3)
    assert all(loss(bias, x) <= loss(bias + 1e-3 * rng.normal(), x + 1e-3 * rng.normal(size=3)) for _ in range(50))


def test_recommend_skips_rated_and_excluded_items_and_unknown_ratings_are_ignored() -> None:
    factors = _factors(implicit=True)
    ranked = recommend(factors, {"i0": 5.0, "unknown": 5.0}, 10, exclude=["i5"])
    assert sorted(a for a, _ in ranked) == ["i1", "i2", "i3", "i4"]
    assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
    assert not fold_in(factors, {"unknown": 4.0}).any()


def test_the_implicit_head_scores_add_the_popularity_prior_and_the_fold_in_ignores_it() -> None:
    priors = [0.0, 0.0, 0.0, 0.0, 0.0, 100.0]
    with_prior, without = _factors(implicit=True, priors=priors), _factors(implicit=True)
    ratings = {"i0": 5.0, "i2": 4.0}
    x = fold_in(with_prior, ratings)
    np.testing.assert_allclose(x, fold_in(without, ratings))
    np.testing.assert_allclose(scores(with_prior, x), with_prior.vectors @ x + np.array(priors))
    assert recommend(with_prior, ratings, 1)[0][0] == "i5"
    assert recommend(without, ratings, 1)[0][0] != "i5"


@pytest.mark.parametrize("implicit", [True, False])
def test_a_document_published_before_score_offset_scores_as_it_did(implicit: bool) -> None:
    documents = [_document(f"i{i}", [float(i), 1.0], implicit=implicit, bias=0.5 * i) for i in range(3)]
    for document in documents:
        del document["score_offset"]
    factors = ItemFactors.from_documents(documents)
    expected = np.zeros(3) if implicit else np.array([0.0, 0.5, 1.0])
    np.testing.assert_allclose(factors.score_offset, expected)


def test_factors_of_mixed_versions_are_refused() -> None:
    docs = [_document("a", [1.0], version="v1"), _document("b", [1.0], version="v2")]
    with pytest.raises(ValueError, match="more than one model version"):
        ItemFactors.from_documents(docs)

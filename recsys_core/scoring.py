"""Online scoring without Spark: fold a reviewer into the published item factors, in numpy.

Spark's ALS solves, per user, the normal equations below with the item factors fixed and
"weighted-lambda" regularisation (``reg_param`` times the user's number of ratings). Solving
the same system here gives the vector Spark would have learnt for a reviewer with these
ratings, so new ratings change recommendations at once, before the next retrain.

- implicit head (``implicit_prefs``): ``(Y'Y + sum c_i y_i y_i' + lambda n I) x = sum (1 + c_i) y_i``
  with ``c_i = alpha * s_i`` over the positive signals (Hu, Koren and Volinsky, 2008), where the
  strength ``s_i`` is the rating, or 0 for a rating of at most ``DISLIKED_MAX_RATING``
  (``implicit_strength``);
- explicit head: ``(sum y_i y_i' + lambda n I) x = sum e_i y_i`` where ``e_i`` is the rating
  minus the damped baseline ``mu + b_u + b_i``. When the rating head alternates its biases and
  factors (``bias_rounds``), so does the fold-in: ``b_u`` is refitted on what ``x`` leaves, and
  ``x`` solved again.

Either way an item's score is ``x . y_i`` plus its published ``score_offset``: ``b_i`` for the
explicit head, the popularity prior for the implicit head, exactly as the batch lists add it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

from recsys_core.contract import DISLIKED_MAX_RATING, LIKED_RATING, ItemFactor

Vector = NDArray[np.float64]

PROBE_COLUMNS = 2048
"""Columns ``best_k`` samples per row for its floor: enough that few columns beat it, few enough to be cheap."""


@dataclass(frozen=True)
class ItemFactors:
    """The ``item_factors`` collection of one model version, as arrays."""

    asins: list[str]
    vectors: NDArray[np.float64]  # (items, rank)
    item_bias: Vector  # (items,)
    score_offset: Vector  # (items,)
    reg_param: float
    implicit_prefs: bool
    alpha: float
    global_mean: float
    user_bias_damping: float
    bias_rounds: int
    model_version: str

    @classmethod
    def from_documents(cls, documents: Iterable[Mapping[str, Any]]) -> ItemFactors:
        """The ``item_factors`` documents of one model version, read through the contract."""
        factors = sorted((ItemFactor.from_document(d) for d in documents), key=lambda f: f.asin)
        if not factors:
            raise ValueError("no item factors")
        first = factors[0]
        if any(f.model_version != first.model_version for f in factors):
            raise ValueError("item factors of more than one model version")
        return cls(
            asins=[f.asin for f in factors],
            vectors=np.asarray([f.vector for f in factors], dtype=np.float64),
            item_bias=np.asarray([f.item_bias for f in factors], dtype=np.float64),
            score_offset=np.asarray([f.score_offset for f in factors], dtype=np.float64),
            reg_param=first.reg_param,
            implicit_prefs=first.implicit_prefs,
            alpha=first.alpha,
            global_mean=first.global_mean,
            user_bias_damping=first.user_bias_damping,
            bias_rounds=first.bias_rounds,
            model_version=first.model_version,
        )

    @property
    def rank(self) -> int:
        return int(self.vectors.shape[1])

    @cached_property
    def _index(self) -> dict[str, int]:
        return {asin: i for i, asin in enumerate(self.asins)}

    @cached_property
    def gram(self) -> NDArray[np.float64]:
        """``Y'Y``, the part of every implicit fold-in that does not depend on the reviewer."""
        gram: NDArray[np.float64] = self.vectors.T @ self.vectors
        return gram

    def positions(self, asins: Iterable[str]) -> dict[str, int]:
        return {asin: self._index[asin] for asin in asins if asin in self._index}

    def learns_from(self, signals: Signals) -> bool:
        """Whether any of the signals is of an item this model knows (else a fold-in gives nothing)."""
        return bool(self.positions(_used_signals(self, signals.ratings, signals.implicit)))


@dataclass(frozen=True)
class Signals:
    """What is known of one reviewer: ratings, and implicit signals (clicks, views) as weights on the rating scale."""

    ratings: Mapping[str, float]
    implicit: Mapping[str, float] = field(default_factory=dict)
    exclude: frozenset[str] = frozenset()  # never recommended, besides the rated items


def fold_in(factors: ItemFactors, ratings: Mapping[str, float], implicit: Mapping[str, float] | None = None) -> Vector:
    """The reviewer's vector from their ``{asin: rating}``; unknown items are ignored.

    ``implicit`` holds signals that are not ratings (clicks, views), as weights on the rating
    scale. The implicit head learns from them as from ratings (a rating of the same item
    wins); the explicit head predicts ratings, so it ignores them.
    """
    signals = _used_signals(factors, ratings, implicit)
    known = factors.positions(signals)
    if not known:
        return np.zeros(factors.rank)
    rows = np.fromiter(known.values(), dtype=np.int64)
    r = np.asarray([signals[asin] for asin in known], dtype=np.float64)
    y = factors.vectors[rows]
    if not factors.implicit_prefs:
        return _explicit_fold_in(factors, r - factors.global_mean - factors.item_bias[rows], y)
    confidence = factors.alpha * np.abs(r)
    positive = r > 0
    a = factors.gram + (y.T * confidence) @ y + factors.reg_param * positive.sum() * np.eye(factors.rank)
    b = y[positive].T @ (1.0 + confidence[positive])
    solution: Vector = np.linalg.solve(a, b)
    return solution


def _explicit_fold_in(factors: ItemFactors, offsets: Vector, y: NDArray[np.float64]) -> Vector:
    """The vector, as the rating head fits it: ``bias_rounds`` alternations of the reviewer's damped bias on what
    the vector leaves and the vector on what the bias leaves (``training.fit_rating_head``); one round is the
    bias of the ratings alone."""
    a = y.T @ y + factors.reg_param * len(offsets) * np.eye(factors.rank)
    explained = np.zeros_like(offsets)
    for _ in range(factors.bias_rounds):
        user_bias = (offsets - explained).sum() / (len(offsets) + factors.user_bias_damping)
        solution: Vector = np.linalg.solve(a, y.T @ (offsets - user_bias))
        explained = y @ solution
    return solution


def implicit_strength(rating: float) -> float:
    """What the implicit head learns from a rating: the rating, or 0 for a dislike.

    A one-class model has no "negative": a 1-star review as a positive would recommend more
    of what the reviewer disliked. At 0 it weighs nothing, exactly as Spark's implicit ALS
    treats a rating of 0 (no preference, no confidence), so the batch and online heads agree.
    The batch side is ``training.IMPLICIT_STRENGTH``.
    """
    return 0.0 if rating <= DISLIKED_MAX_RATING else rating


def _used_signals(
    factors: ItemFactors, ratings: Mapping[str, float], implicit: Mapping[str, float] | None
) -> dict[str, float]:
    """The explicit head's ratings, or the implicit head's strengths (a rating of an item wins over its clicks)."""
    if not factors.implicit_prefs:
        return dict(ratings)
    return {**(implicit or {}), **{asin: implicit_strength(rating) for asin, rating in ratings.items()}}


def scores(factors: ItemFactors, user: Vector) -> Vector:
    """A ranking score per item: ``user . item`` plus the item's ``score_offset``."""
    result: Vector = factors.vectors @ user + factors.score_offset
    return result


def recommend(
    factors: ItemFactors,
    ratings: Mapping[str, float],
    n: int,
    exclude: Iterable[str] = (),
    implicit: Mapping[str, float] | None = None,
) -> list[tuple[str, float]]:
    """The ``n`` best items for a reviewer with these ratings (and implicit signals), best first, ties by asin.

    Rated items and ``exclude`` (e.g. items bought but not rated) are never recommended; an
    item only clicked or viewed may be.
    """
    return recommend_many(factors, [Signals(ratings, implicit or {}, frozenset(exclude))], n)[0]


def recommend_many(factors: ItemFactors, reviewers: Sequence[Signals], n: int) -> list[list[tuple[str, float]]]:
    """``recommend`` for many reviewers at once: one matrix product and one ``best_k`` for them all."""
    if not reviewers:
        return []
    users = np.stack([fold_in(factors, r.ratings, r.implicit) for r in reviewers])
    table = users @ factors.vectors.T + factors.score_offset
    for row, reviewer in enumerate(reviewers):
        table[row, list(factors.positions([*reviewer.ratings, *reviewer.exclude]).values())] = -np.inf
    indices, values = best_k(table, n)
    return [
        [(factors.asins[i], float(v)) for i, v in zip(indices[row], values[row], strict=True) if v > -np.inf]
        for row in range(len(reviewers))
    ]


def reasons(factors: ItemFactors, ratings: Mapping[str, float], recommended: Iterable[str]) -> dict[str, str | None]:
    """For each recommended asin, the liked item that explains it best, or None when nothing liked is known.

    A liked item is one the reviewer rated at least ``LIKED_RATING``. Its weight in the
    explanation is its rating times its cosine similarity to the recommended item in factor
    space: the item the reviewer liked most, among those most like the recommendation.
    Ties go to the smaller asin.
    """
    liked = sorted(factors.positions(asin for asin, rating in ratings.items() if rating >= LIKED_RATING).items())
    targets = factors.positions(recommended)
    if not liked:
        return dict.fromkeys(recommended)
    liked_rows = np.asarray([row for _, row in liked], dtype=np.int64)
    weights = np.asarray([ratings[asin] for asin, _ in liked], dtype=np.float64)
    unit = _unit_rows(factors.vectors[liked_rows])
    found: dict[str, str | None] = {}
    for asin in recommended:
        if asin not in targets:
            found[asin] = None
            continue
        contribution = weights * (unit @ _unit_rows(factors.vectors[[targets[asin]]])[0])
        found[asin] = liked[int(np.argmax(contribution))][0]  # argmax takes the first, i.e. smallest asin, of ties
    return found


def _unit_rows(vectors: NDArray[np.float64]) -> NDArray[np.float64]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: NDArray[np.float64] = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return unit


def best_k(
    scores: NDArray[np.float64], k: int, probe_columns: int = PROBE_COLUMNS
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Per row, the columns of the ``k`` highest scores, best first, ties broken by the lower column.

    Exactly what sorting each whole row by ``(-score, column)`` and keeping ``k`` gives, in
    one vectorised pass over the row instead of a sort or a selection: the k-th best of an
    evenly spaced probe of about ``probe_columns`` columns is a floor that the row's own k-th
    best is at or above, so only the few columns at or above it are sorted. With columns in
    asin order, ties go to the smaller asin. Excluded columns are ``-inf``; a row with fewer
    than ``k`` others returns some ``-inf`` entries, which callers drop.
    """
    rows, columns = scores.shape
    k = min(k, columns)
    if k == 0 or rows == 0:
        return np.empty((rows, 0), dtype=np.int64), np.empty((rows, 0), dtype=np.float64)
    probe = scores[:, :: max(1, columns // max(probe_columns, k))]
    if probe.shape[1] >= k:
        floor = np.partition(probe, probe.shape[1] - k, axis=1)[:, probe.shape[1] - k]
    else:
        floor = np.full(rows, -np.inf)
    row_of, column_of = np.nonzero(scores >= floor[:, np.newaxis])
    values = scores[row_of, column_of]
    order = np.lexsort((column_of, -values, row_of))  # by row, then best first, then the lower column
    first = np.searchsorted(row_of, np.arange(rows))  # nonzero's rows ascend; each has at least k candidates
    taken = order[first[:, np.newaxis] + np.arange(k)]
    return column_of[taken].astype(np.int64), values[taken]

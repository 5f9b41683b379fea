"""The numbers that shape the generated data: sizes, distributions and the rates of the warts.

One place, so a new shape (another category's statistics) changes numbers here, not code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DEFAULT_CATEGORIES: tuple[str, ...] = ("Synthetic_Beauty", "Synthetic_Garden")

#: Share of 1..5 star ratings, close to the Amazon 2018 mix.
STAR_MIX: tuple[float, float, float, float, float] = (0.08, 0.05, 0.09, 0.20, 0.58)
#: Share of review lines that are exact copies of an earlier line (when warts=True).
DUPLICATE_RATE = 0.03
#: Minimum review lines per category: below this a 5-core-like graph cannot be built.
MIN_REVIEWS_PER_CATEGORY = 50

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Objects = npt.NDArray[np.object_]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Shape:
    """How one category's reviews spread over its reviewers and products."""

    mean_user_degree: float  # reviews per reviewer
    mean_item_degree: float  # reviews per product
    user_alpha: float = 1.1  # Pareto tail of user activity (lower = heavier)
    item_alpha: float = 0.9  # Pareto tail of item popularity


SHAPES: dict[str, Shape] = {
    "default": Shape(mean_user_degree=15.0, mean_item_degree=30.0),
    # As in the 2018 5-core files: reviewers are about 11% and products about 2.5% of the reviews.
    "amazon-5core": Shape(mean_user_degree=1 / 0.11, mean_item_degree=1 / 0.025),
}

MIN_DEGREE = 5  # 5-core-like: every user and item gets at least this many reviews
RANK = 3  # latent factors behind the ratings: low, so that ~15 ratings per user pin a user's taste down
TEXTS_PER_NOUN = 40  # review texts per product noun and star
CHUNK = 65_536  # review lines built and compressed per step
EPOCH_FIRST_DAY = (dt.date(2000, 1, 1) - dt.date(1970, 1, 1)).days
EPOCH_LAST_DAY = (dt.date(2018, 9, 30) - dt.date(1970, 1, 1)).days
ALNUM = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)

# Wart rates (only used when warts=True).
VOTE_RATE = 0.15
BIG_VOTE_RATE = 0.01  # of voted lines: a vote >= 1000, written "1,234"
NO_TEXT_RATE = 0.003
NO_SUMMARY_RATE = 0.002
HTML_TITLE_RATE = 0.02
EMPTY_PRICE_RATE = 0.75
JUNK_PRICE_RATE = 0.005
UNREVIEWED_PRODUCT_RATE = 0.03

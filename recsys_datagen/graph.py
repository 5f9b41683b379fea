"""Who reviews what, and how they rate it: power-law degrees, distinct user-item pairs, ratings with signal.

The degree sequences, the configuration model that pairs them up, and the per-pair stars,
days and duplicate lines of one category (``ReviewPlan``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from recsys_datagen.people import People
from recsys_datagen.shape import (
    EPOCH_FIRST_DAY,
    EPOCH_LAST_DAY,
    MIN_DEGREE,
    RANK,
    STAR_MIX,
    Bools,
    Floats,
    Ints,
    Shape,
)


def split(total: int, weights: Floats) -> Ints:
    """Integers proportional to `weights` that sum exactly to `total` (largest remainder)."""
    share = total * weights / weights.sum()
    out: Ints = np.floor(share).astype(np.int64)
    out[np.argsort(out - share, kind="stable")[: total - int(out.sum())]] += 1
    return out


def _power_degrees(n: int, total: int, cap: int, alpha: float) -> Ints:
    """A power-law degree sequence: n values >= MIN_DEGREE (when possible), <= cap, summing to total.

    The excess over the floor follows Pareto quantiles, so the shape is smooth and the same for every
    seed; which user or item gets which degree is shuffled by the caller.
    """
    floor = min(MIN_DEGREE, total // n)
    q = (np.arange(n) + 0.5) / n
    x = q ** (-1.0 / alpha) - 1.0  # Pareto excess, largest first
    capped = np.zeros(n, dtype=bool)
    share = np.full(n, float(cap))
    for _ in range(n):  # water-filling: converges in a handful of passes
        free = ~capped
        spare = total - cap * (n - int(free.sum())) - floor * int(free.sum())
        share[free] = floor + spare * x[free] / x[free].sum()
        over = share > cap
        if not over.any():
            break
        capped |= over
        share[over] = cap
    return split(total, share)


def _pair_up(rng: np.random.Generator, user_deg: Ints, item_deg: Ints) -> tuple[Ints, Ints]:
    """Distinct (user, item) pairs with exactly the given degrees: a configuration model.

    Slots are matched at random; then each repeated pair swaps its item with a random other slot
    when neither side then repeats a pair (an edge switch, which keeps both degree sequences).
    """
    users = np.repeat(np.arange(user_deg.size, dtype=np.int64), user_deg)
    items = rng.permutation(np.repeat(np.arange(item_deg.size, dtype=np.int64), item_deg))
    n_items = item_deg.size
    for _ in range(500):
        keys = users * n_items + items
        order = np.argsort(keys)
        known = keys[order]
        repeated = order[1:][known[1:] == known[:-1]]
        if repeated.size == 0:
            return users, items
        partner = rng.integers(0, items.size, repeated.size)
        ok = (
            (items[repeated] != items[partner])
            & ~_contains(known, users[repeated] * n_items + items[partner])
            & ~_contains(known, users[partner] * n_items + items[repeated])
        )
        repeated, partner = repeated[ok], partner[ok]
        slots, seen = np.unique(np.concatenate([repeated, partner]), return_counts=True)
        clash = slots[seen > 1]
        alone = ~np.isin(repeated, clash) & ~np.isin(partner, clash)
        repeated, partner = repeated[alone], partner[alone]
        items[repeated], items[partner] = items[partner], items[repeated].copy()
    raise RuntimeError("could not make user-item pairs distinct; the degree caps are too loose")


def _contains(sorted_keys: Ints, keys: Ints) -> Bools:
    """Membership of `keys` in an ascending array."""
    at = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[at] == keys  # type: ignore[no-any-return]  # numpy types a comparison as Any


@dataclass(frozen=True)
class ReviewPlan:
    """Every per-review value of one category as arrays, one entry per distinct user-item pair,
    plus `order`: the unique-pair index of each line in the file, duplicates included."""

    global_user: Ints  # per category user -> people index
    item_degree: Ints
    user: Ints
    item: Ints
    stars: npt.NDArray[np.int8]
    day: Ints
    order: Ints

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        pairs: int,
        n_users: int,
        n_items: int,
        duplicates: int,
        people: People,
        shape: Shape,
    ) -> ReviewPlan:
        # Caps keep the heaviest user-item combinations sparse enough for `_pair_up` to converge fast.
        user_cap = max(MIN_DEGREE, min(n_items // 2, math.ceil(1.2 * math.sqrt(pairs))))
        item_cap = max(MIN_DEGREE, min(n_users // 2, math.ceil(5 * math.sqrt(pairs))))
        user_deg = rng.permutation(_power_degrees(n_users, pairs, user_cap, shape.user_alpha))
        item_deg = rng.permutation(_power_degrees(n_items, pairs, item_cap, shape.item_alpha))
        global_user = rng.choice(people.ids.size, n_users, replace=False)
        item_bias = rng.normal(0.0, 0.5, n_items)
        item_factors = rng.normal(0.0, RANK**-0.25, (n_items, RANK))
        user, item = _pair_up(rng, user_deg, item_deg)
        # File order: grouped by asin (items are indexed in asin order), random within an item.
        shuffle = rng.permutation(pairs)
        user, item = user[shuffle], item[shuffle]
        by_item = np.argsort(item, kind="stable")
        user, item = user[by_item], item[by_item]

        # Ratings: biases + low-rank taste match + noise, cut at quantiles to give Amazon's star mix.
        gu = global_user[user]
        score = people.bias[gu] + item_bias[item] + rng.normal(0.0, 0.5, pairs)
        for lo in range(0, pairs, 1 << 20):  # bounded temporaries for the dot products
            hi = min(pairs, lo + (1 << 20))
            score[lo:hi] += np.einsum("ij,ij->i", people.factors[gu[lo:hi]], item_factors[item[lo:hi]])
        cuts = np.quantile(score, np.cumsum(STAR_MIX)[:-1])
        stars = (np.searchsorted(cuts, score) + 1).astype(np.int8)

        # Dates: items launch mostly in recent years; reviews follow the launch.
        span = EPOCH_LAST_DAY - EPOCH_FIRST_DAY
        launch = span - np.minimum(rng.exponential(1400.0, n_items), span).astype(np.int64)
        day = np.minimum(launch[item] + rng.exponential(250.0, pairs).astype(np.int64), span)

        # Duplicates: copies of a random earlier line, placed up to a few lines later.
        lines = np.arange(pairs, dtype=np.int64)
        sources = np.sort(rng.choice(pairs, duplicates, replace=False))
        keys = np.concatenate([2 * lines, 2 * (sources + rng.integers(0, 4, sources.size)) + 1])
        order = np.concatenate([lines, sources])[np.argsort(keys, kind="stable")]
        return cls(global_user, item_deg, user, item, stars, day, order)

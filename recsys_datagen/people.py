"""Reviewers shared by every category: ids, names, and the latent tastes behind their ratings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys_datagen.ids import unique_ids
from recsys_datagen.shape import RANK, Floats, Objects
from recsys_datagen.vocabulary import FIRST_NAMES


@dataclass(frozen=True)
class People:
    """Reviewers shared by all categories: ids, names and the latent tastes behind their ratings."""

    ids: Objects
    names: Objects
    bias: Floats
    factors: Floats

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int) -> People:
        ids = np.array(unique_ids(rng, n, 13, "A"), dtype=object)
        pool = [f"{f} {chr(65 + i % 26)}." for f in FIRST_NAMES for i in range(26)]
        pool += [f"{f.lower()}{i}" for f in FIRST_NAMES for i in range(10, 40)] + ["Amazon Customer"] * 60
        names = np.array(pool, dtype=object)[rng.integers(0, len(pool), n)]
        return cls(ids, names, rng.normal(0.0, 0.4, n), rng.normal(0.0, RANK**-0.25, (n, RANK)))

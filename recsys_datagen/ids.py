"""Amazon-like identifiers: fixed-width uppercase base-36, distinct, drawn from a seed."""

from __future__ import annotations

import numpy as np

from recsys_datagen.shape import ALNUM, Ints


def base36(values: Ints, width: int) -> list[str]:
    """Fixed-width uppercase base-36 strings, vectorised."""
    powers = 36 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = (values[:, None] // powers) % 36
    return ALNUM[digits].view(f"S{width}").ravel().astype(str).tolist()  # type: ignore[no-any-return]  # tolist() is typed Any


def unique_ids(rng: np.random.Generator, n: int, width: int, prefix: str) -> list[str]:
    """n distinct ids: `prefix` + `width` random uppercase alphanumerics (base 36 of distinct integers)."""
    body = min(width, 12)  # 36**12 still fits in int64
    values = np.unique(rng.integers(0, 36**body, n + 16))
    while values.size < n:  # vanishingly rare: integer collisions
        values = np.unique(np.concatenate([values, rng.integers(0, 36**body, n)]))
    values = rng.permutation(values)[:n]
    head = base36(rng.integers(0, 36 ** (width - body), n), width - body) if width > body else [""] * n
    return [prefix + h + b for h, b in zip(head, base36(values, body), strict=True)]

"""The entry point: every category's review and meta files from one seed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from recsys_datagen.graph import ReviewPlan, split
from recsys_datagen.ids import unique_ids
from recsys_datagen.people import People
from recsys_datagen.report import CategoryCounts, GenerationReport
from recsys_datagen.shape import (
    DEFAULT_CATEGORIES,
    DUPLICATE_RATE,
    MIN_REVIEWS_PER_CATEGORY,
    SHAPES,
    UNREVIEWED_PRODUCT_RATE,
    Ints,
)
from recsys_datagen.vocabulary import theme_of
from recsys_datagen.writers import DayStrings, write_meta, write_reviews


def generate(
    out_dir: Path,
    reviews: int,
    *,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    seed: int = 42,
    warts: bool = True,
    progress: bool = False,
    compress: bool = True,
    shape: str = "default",
) -> GenerationReport:
    """Write `<Category>_5.json[.gz]` and `meta_<Category>.json[.gz]` for each category into `out_dir`.

    `reviews` is the exact number of review lines written over all categories, duplicates included.
    `shape` names how reviews spread over reviewers and products (``SHAPES``). The same
    arguments always produce byte-identical files.
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    spread = SHAPES[shape]
    cats = tuple(categories)
    if not cats or len(set(cats)) != len(cats):
        raise ValueError("categories must be non-empty and distinct")
    if reviews < MIN_REVIEWS_PER_CATEGORY * len(cats):
        raise ValueError(f"need at least {MIN_REVIEWS_PER_CATEGORY} reviews per category")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    suffix = ".json.gz" if compress else ".json"

    streams = np.random.SeedSequence(seed).spawn(len(cats) + 1)
    rng = np.random.default_rng(streams[0])
    cat_lines = split(reviews, 1.0 / np.sqrt(np.arange(1, len(cats) + 1)))
    cat_dups = [max(1, round(DUPLICATE_RATE * n)) if warts else 0 for n in cat_lines]
    cat_pairs = [int(n) - d for n, d in zip(cat_lines, cat_dups, strict=True)]
    # Small runs get extra users and items: users x items >= 3 pairs leaves room for the degree caps.
    cat_users = [max(round(m / spread.mean_user_degree), math.ceil(math.sqrt(6 * m))) for m in cat_pairs]
    cat_items = [max(round(m / spread.mean_item_degree), math.ceil(math.sqrt(1.5 * m))) for m in cat_pairs]
    people = People.draw(rng, max(max(cat_users), round(0.8 * sum(cat_users))))
    item_ids = unique_ids(rng, sum(cat_items) + sum(_unreviewed(n, warts) for n in cat_items), 9, "B")
    days = DayStrings.build()

    review_files: list[Path] = []
    meta_files: list[Path] = []
    per_category: dict[str, CategoryCounts] = {}
    seen_users: list[Ints] = []
    id_start = 0
    with tqdm(total=reviews, unit="rev", disable=not progress, desc="generate") as bar:
        for k, cat in enumerate(cats):
            crng = np.random.default_rng(streams[k + 1])
            n_items = cat_items[k] + _unreviewed(cat_items[k], warts)
            asins = sorted(item_ids[id_start : id_start + n_items])
            id_start += n_items
            reviewed = np.sort(crng.choice(n_items, cat_items[k], replace=False))  # positions in `asins`
            noun = crng.integers(0, len(theme_of(cat).nouns), n_items)  # what each product is
            plan = ReviewPlan.draw(crng, cat_pairs[k], cat_users[k], cat_items[k], cat_dups[k], people, spread)
            seen_users.append(plan.global_user)
            review_path = out_dir / f"{cat}_5{suffix}"
            reviewed_asins = [asins[p] for p in reviewed.tolist()]
            write_reviews(
                review_path, cat, plan, crng, reviewed_asins, noun[reviewed], people, days, warts, compress, bar
            )
            popularity = np.zeros(n_items, dtype=np.int64)
            popularity[reviewed] = plan.item_degree
            meta_path = out_dir / f"meta_{cat}{suffix}"
            write_meta(meta_path, crng, cat, asins, noun.tolist(), popularity, warts, compress)
            review_files.append(review_path)
            meta_files.append(meta_path)
            per_category[cat] = CategoryCounts(int(cat_lines[k]), cat_dups[k], n_items)

    return GenerationReport(
        out_dir=out_dir,
        categories=cats,
        review_files=tuple(review_files),
        meta_files=tuple(meta_files),
        lines=reviews,
        duplicate_lines=sum(cat_dups),
        users=int(np.unique(np.concatenate(seen_users)).size),
        items=sum(cat_items),
        per_category=per_category,
    )


def _unreviewed(items: int, warts: bool) -> int:
    """Products listed in the meta file that nobody reviewed, as in the real catalogues."""
    return max(1, round(UNREVIEWED_PRODUCT_RATE * items)) if warts else 0

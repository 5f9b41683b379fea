"""The files: review and meta lines assembled from fragment pools, a chunk at a time, streamed to gzip."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from recsys_datagen.graph import ReviewPlan
from recsys_datagen.people import People
from recsys_datagen.shape import (
    BIG_VOTE_RATE,
    CHUNK,
    EMPTY_PRICE_RATE,
    EPOCH_FIRST_DAY,
    EPOCH_LAST_DAY,
    HTML_TITLE_RATE,
    JUNK_PRICE_RATE,
    NO_SUMMARY_RATE,
    NO_TEXT_RATE,
    TEXTS_PER_NOUN,
    VOTE_RATE,
    Bools,
    Ints,
    Objects,
)
from recsys_datagen.vocabulary import (
    ADJECTIVES,
    BRAND_PARTS,
    BRAND_SUFFIXES,
    JUNK_PRICES,
    SUMMARIES_PER_STAR,
    fragment,
    image_urls,
    style_fragments,
    text_fragments,
    text_index,
    theme_of,
)


@dataclass(frozen=True)
class DayStrings:
    """Per day offset d: `unixReviewTime` text at d, and the `"verified": ..., "reviewTime": ...` fragment
    at 2d (unverified) and 2d + 1 (verified)."""

    verified_time: Objects
    unix_time: Objects

    @classmethod
    def build(cls) -> DayStrings:
        first = dt.date(2000, 1, 1)
        dates = [first + dt.timedelta(days=d) for d in range(EPOCH_LAST_DAY - EPOCH_FIRST_DAY + 1)]
        times = [
            f'"verified": {flag}, "reviewTime": "{d.month:02d} {d.day}, {d.year}", '
            for d in dates
            for flag in ("false", "true")
        ]
        unix = [str((EPOCH_FIRST_DAY + k) * 86_400) for k in range(len(dates))]
        return cls(np.array(times, dtype=object), np.array(unix, dtype=object))


def _flags(rng: np.random.Generator, n: int, rate: float) -> Bools:
    """Exactly max(1, round(rate * n)) randomly chosen True values, so rare warts always show up."""
    out = np.zeros(n, dtype=bool)
    out[rng.choice(n, min(n, max(1, round(rate * n))), replace=False)] = True
    return out


@contextmanager
def _open(path: Path, compress: bool) -> Iterator[Callable[[bytes], int]]:
    """The write function of a new file; gzip without mtime or file name so the bytes depend only on the content."""
    with path.open("wb") as raw:
        if not compress:
            yield raw.write
            return
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=1, mtime=0) as gz:
            yield gz.write


_REVIEW_LINE = '{%s%s%s"reviewerID": "%s", "asin": "%s", %s"reviewerName": "%s", %s"unixReviewTime": %s}'


def write_reviews(
    path: Path,
    category: str,
    plan: ReviewPlan,
    rng: np.random.Generator,
    asins: list[str],
    noun: Ints,
    people: People,
    days: DayStrings,
    warts: bool,
    compress: bool,
    bar: tqdm[Any],
) -> None:
    """Stream the review lines, a chunk at a time.

    Each line is nine pre-serialised fragments (some combine neighbouring keys, some are empty for an
    absent key), picked from pools by integer indexes drawn here for every distinct user-item pair.
    """
    theme = theme_of(category)
    pairs = plan.user.size
    stars = plan.stars.astype(np.int64)
    empty = np.array([""], dtype=object)

    text_pool, per_star = text_fragments(rng, theme)
    text_pick = noun[plan.item] + len(theme.nouns) * rng.integers(0, TEXTS_PER_NOUN, pairs)
    summary_pick = rng.integers(0, SUMMARIES_PER_STAR, pairs)
    no_text = _flags(rng, pairs, NO_TEXT_RATE) if warts else np.zeros(pairs, dtype=bool)
    no_summary = (_flags(rng, pairs, NO_SUMMARY_RATE) & ~no_text) if warts else np.zeros(pairs, dtype=bool)
    text = text_index(stars, text_pick, summary_pick, no_text, no_summary, per_star).astype(np.int32)

    max_vote = 5000 if warts else 999
    vote = np.where(rng.random(pairs) < VOTE_RATE, 2 + rng.pareto(1.5, pairs).astype(np.int64), 0)
    vote = np.minimum(vote, 999)
    if warts:
        big = _flags(rng, pairs, VOTE_RATE * BIG_VOTE_RATE)
        vote[big] = rng.integers(1000, max_vote + 1, int(big.sum()))
    overall_vote_pool = np.array(
        [
            f'"overall": {star}.0, ' + (f'"vote": "{v:,}", ' if v else "")
            for star in range(1, 6)
            for v in range(max_vote + 1)
        ],
        dtype=object,
    )
    overall_vote = ((stars - 1) * (max_vote + 1) + vote).astype(np.int32)

    style_pool = np.concatenate([empty, style_fragments(rng, theme)])
    item_style = np.where(rng.random(len(asins)) < 0.7, rng.integers(1, style_pool.size, len(asins)), 0)
    style = np.where(item_style[plan.item] > 0, item_style[plan.item] + rng.integers(0, 4, pairs), 0)
    style = np.where(style >= style_pool.size, style - style_pool.size + 1, style).astype(np.int16)

    image_pool = np.concatenate([empty, fragment("image", image_urls(rng, 512, 1, 4))])
    image = np.where(rng.random(pairs) < 0.02, rng.integers(1, image_pool.size, pairs), 0).astype(np.int16)
    verified_day = (2 * plan.day + (rng.random(pairs) < 0.9)).astype(np.int32)
    asin_arr = np.array(asins, dtype=object)

    with _open(path, compress) as write:
        for lo in range(0, plan.order.size, CHUNK):
            j = plan.order[lo : lo + CHUNK]
            gu = plan.global_user[plan.user[j]]
            columns = (
                image_pool[image[j]],
                overall_vote_pool[overall_vote[j]],
                days.verified_time[verified_day[j]],
                people.ids[gu],
                asin_arr[plan.item[j]],
                style_pool[style[j]],
                people.names[gu],
                text_pool[text[j]],
                days.unix_time[plan.day[j]],
            )
            block = "\n".join([_REVIEW_LINE % row for row in zip(*(c.tolist() for c in columns), strict=True)])
            write((block + "\n").encode())
            bar.update(j.size)


def write_meta(
    path: Path,
    rng: np.random.Generator,
    category: str,
    asins: list[str],
    noun_of: list[int],
    popularity: Ints,
    warts: bool,
    compress: bool,
) -> None:
    """One metadata line per product, in asin order; `popularity` (review count, 0 for products nobody
    reviewed) drives the sales rank and which products show up in also_buy / also_view."""
    theme = theme_of(category)
    n = len(asins)
    sales_rank = np.empty(n, dtype=np.int64)
    sales_rank[np.argsort(-popularity - rng.random(n), kind="stable")] = np.arange(1, n + 1)
    sales_rank = sales_rank * rng.integers(3, 40, n) + rng.integers(0, 50, n)
    cumulative = np.cumsum(popularity + 0.5)
    n_buy = rng.integers(0, 8, n)
    n_view = rng.integers(0, 10, n)
    linked = np.searchsorted(cumulative, rng.random(int(n_buy.sum() + n_view.sum())) * cumulative[-1])
    linked = np.minimum(linked, n - 1)
    bounds = np.cumsum(np.concatenate([[0], n_buy, n_view]))
    html_title = (_flags(rng, n, HTML_TITLE_RATE) if warts else np.zeros(n, dtype=bool)).tolist()
    junk_price = _flags(rng, n, JUNK_PRICE_RATE) if warts else np.zeros(n, dtype=bool)
    empty_price = (rng.random(n) < EMPTY_PRICE_RATE) & warts & ~junk_price
    prices = [f"${p:.2f}" for p in rng.lognormal(2.6, 0.7, n).tolist()]
    for i in np.flatnonzero(empty_price).tolist():
        prices[i] = ""
    for k, i in enumerate(np.flatnonzero(junk_price).tolist()):
        prices[i] = JUNK_PRICES[k % len(JUNK_PRICES)]
    rank_as_text = ((rng.random(n) < 0.5) & warts).tolist()
    picks = rng.integers(0, 1 << 30, (n, 6)).tolist()
    images = image_urls(rng, n, 0, 3)
    ranks = sales_rank.tolist()
    bound = bounds.tolist()
    linked_asins = [asins[a] for a in linked.tolist()]
    display = category.replace("_", " ")
    main = theme.main_cat

    with _open(path, compress) as write:
        for lo in range(0, n, CHUNK):
            lines = []
            for i in range(lo, min(n, lo + CHUNK)):
                pick = picks[i]
                brand = BRAND_PARTS[pick[0] % len(BRAND_PARTS)] + BRAND_SUFFIXES[pick[1] % len(BRAND_SUFFIXES)]
                brand = brand.capitalize()
                noun = theme.nouns[noun_of[i]]
                adjective = ADJECTIVES[pick[2] % len(ADJECTIVES)]
                sub = theme.subcats[pick[3] % len(theme.subcats)]
                title = f"{brand} {adjective} {noun.title()}"
                if html_title[i]:
                    title = f"{brand} {adjective} &amp; <b>{noun.title()}</b>"
                rank: str | list[str] = f"{ranks[i]:,} in {main} ("
                if not rank_as_text[i]:
                    rank = [
                        f">#{ranks[i]:,} in {main} (See Top 100 in {main})",
                        f">#{ranks[i] // 7 + 1:,} in {main} > {sub}",
                    ]
                record = {
                    "category": [display, sub],
                    "tech1": "",
                    "description": [f"{adjective} {noun} by {brand}, for everyday use."],
                    "fit": "",
                    "title": title,
                    "also_buy": [a for a in dict.fromkeys(linked_asins[bound[i] : bound[i + 1]]) if a != asins[i]],
                    "tech2": "",
                    "brand": brand,
                    "feature": [f"{adjective} quality", f"Made for {sub.lower()}"][: pick[4] % 3],
                    "rank": rank,
                    "also_view": [
                        a for a in dict.fromkeys(linked_asins[bound[n + i] : bound[n + i + 1]]) if a != asins[i]
                    ],
                    "details": {"Shipping Weight:": f"{pick[5] % 60 + 1} ounces", "ASIN:": asins[i]},
                    "main_cat": main,
                    "similar_item": "",
                    "date": "",
                    "price": prices[i],
                    "asin": asins[i],
                    "imageURL": images[i],
                    "imageURLHighRes": [u.replace("._SY88", "") for u in images[i]],
                }
                lines.append(json.dumps(record))
            write(("\n".join(lines) + "\n").encode())

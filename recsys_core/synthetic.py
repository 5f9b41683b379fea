"""Synthetic review and product files in the exact Amazon Review Data (2018) format.

The real files are for research use only and cannot ship with the project, so the demo, the unit
tests and the scale benchmarks run on this generator instead. It reproduces what the pipeline has
to cope with: the 2018 keys and types, power-law users and items, Amazon's skewed star mix, ratings
with collaborative-filtering signal (so a factor model can beat the bias baselines), and the
known warts of the real files (exact duplicate lines, "1,234" votes, missing text, HTML in titles,
junk prices, `rank` as a string or a list).

Everything is drawn as numpy arrays up front; lines are then assembled chunk by chunk from small
pools of pre-serialised JSON fragments and streamed to gzip, so 5 million reviews take well under
two minutes and memory stays bounded.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

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

_MIN_DEGREE = 5  # 5-core-like: every user and item gets at least this many reviews
_MEAN_USER_DEGREE = 15.0
_MEAN_ITEM_DEGREE = 30.0
_USER_ALPHA = 1.1  # Pareto tail of user activity (lower = heavier)
_ITEM_ALPHA = 0.9  # Pareto tail of item popularity
_RANK = 3  # latent factors behind the ratings: low, so that ~15 ratings per user pin a user's taste down
_TEXTS_PER_NOUN = 40  # review texts per product noun and star
_CHUNK = 65_536  # review lines built and compressed per step
_EPOCH_FIRST_DAY = (dt.date(2000, 1, 1) - dt.date(1970, 1, 1)).days
_EPOCH_LAST_DAY = (dt.date(2018, 9, 30) - dt.date(1970, 1, 1)).days
_ALNUM = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)

# Wart rates (only used when warts=True).
_VOTE_RATE = 0.15
_BIG_VOTE_RATE = 0.01  # of voted lines: a vote >= 1000, written "1,234"
_NO_TEXT_RATE = 0.003
_NO_SUMMARY_RATE = 0.002
_HTML_TITLE_RATE = 0.02
_EMPTY_PRICE_RATE = 0.75
_JUNK_PRICE_RATE = 0.005
_UNREVIEWED_PRODUCT_RATE = 0.03


@dataclass(frozen=True)
class CategoryCounts:
    """What was written for one category."""

    lines: int
    duplicate_lines: int
    products: int


@dataclass(frozen=True)
class GenerationReport:
    """What `generate` wrote, with exact counts so tests and benchmarks need not re-read the files."""

    out_dir: Path
    categories: tuple[str, ...]
    review_files: tuple[Path, ...]
    meta_files: tuple[Path, ...]
    lines: int
    duplicate_lines: int
    users: int
    items: int
    per_category: dict[str, CategoryCounts]


@dataclass(frozen=True)
class _Theme:
    """Words that make one category's products and reviews read like that category."""

    main_cat: str
    subcats: tuple[str, ...]
    nouns: tuple[str, ...]
    styles: dict[str, tuple[str, ...]]  # variation key (ending in a colon) -> its values


_THEMES: dict[str, _Theme] = {
    "beauty": _Theme(
        "All Beauty",
        ("Skin Care", "Hair Care", "Bath & Body", "Fragrance", "Tools & Accessories"),
        (
            "shampoo",
            "conditioner",
            "face cream",
            "body lotion",
            "lip balm",
            "soap bar",
            "hair oil",
            "cleanser",
            "serum",
            "hand cream",
            "body wash",
            "face mask",
        ),
        {
            "Size:": (" 2 oz", " 4 oz", " 7.0 oz", " 8.5 Fl Oz", " 16 oz", " Pack of 2"),
            "Color:": (" Natural", " Black", " Pink", " Nude"),
            "Scent Name:": (" Lavender", " Unscented", " Citrus", " Rose", " Mint"),
        },
    ),
    "garden": _Theme(
        "Patio, Lawn & Garden",
        ("Gardening & Lawn Care", "Outdoor Decor", "Pest Control", "Watering Equipment", "Plants & Seeds"),
        (
            "garden hose",
            "pruning shears",
            "planter",
            "bird feeder",
            "sprinkler",
            "trowel",
            "seed mix",
            "solar light",
            "hose nozzle",
            "potting soil",
            "rain gauge",
            "garden gloves",
        ),
        {
            "Size:": (" Small", " Medium", " Large", " 25 ft", " 50 ft", " 100 ft", " Pack of 4"),
            "Color:": (" Green", " Black", " Terracotta", " Blue"),
            "Style:": (" Classic", " Deluxe", " Compact"),
        },
    ),
}
_GENERIC_THEME = _Theme(
    "Synthetic Goods",
    ("Everyday Items", "Accessories", "Home Basics", "Gifts"),
    ("gadget", "organizer", "kit", "set", "holder", "bottle", "case", "tool", "cover", "stand"),
    {"Size:": (" Small", " Medium", " Large", " Pack of 3"), "Color:": (" Black", " White", " Blue", " Red")},
)

_POSITIVE = (
    "Works great.",
    "Exactly as described.",
    "Good value for the price.",
    "Would buy again.",
    "My family loves it.",
    "Arrived quickly and well packed.",
    "Better than I expected.",
    "Very happy with it.",
    "Does the job well.",
    "Nice quality for the money.",
)
_NEUTRAL = (
    "It is okay.",
    "Does what it says but nothing special.",
    "A bit smaller than I thought.",
    "Average quality.",
    "Fine for the price.",
    "Not bad, not great.",
    "Took a while to arrive.",
)
_NEGATIVE = (
    "Stopped working after a week.",
    "Not as described.",
    "Cheaply made.",
    "Would not buy again.",
    "Waste of money.",
    "Arrived damaged.",
    "Did not work for me.",
    "I returned it.",
)
_OPENERS = (
    "I bought this {} for myself.",
    "Got this {} as a gift.",
    "This is my second {}.",
    "Ordered the {} last month.",
    "I use this {} every day.",
    "Tried this {} on a friend's advice.",
)
_SUMMARIES: dict[int, tuple[str, ...]] = {
    1: ("One Star", "Disappointed", "Do not buy", "Waste of money", "Junk"),
    2: ("Two Stars", "Not great", "Meh", "Could be better", "Flimsy"),
    3: ("Three Stars", "Okay", "It's fine", "Average", "So-so"),
    4: ("Four Stars", "Pretty good", "Nice", "Good value", "Works well"),
    5: ("Five Stars", "Love it", "Great product", "Excellent", "Highly recommend"),
}
_SUMMARIES_PER_STAR = 5
_FIRST_NAMES = (
    "Mary", "John", "Linda", "James", "Patricia", "Robert", "Susan", "Michael", "Karen", "David", "Lisa",
    "William", "Nancy", "Richard", "Sandra", "Joseph", "Ashley", "Thomas", "Emily", "Daniel", "Donna", "Mark",
    "Carol", "Paul", "Amanda", "Steven", "Sarah", "Kevin", "Laura", "Brian",
)  # fmt: skip
_BRAND_PARTS = (
    "Green", "Sun", "Pure", "Bright", "North", "Oak", "Silver", "Blue", "Wild", "Happy", "Stone", "River",
    "Nova", "Prime", "Golden",
)  # fmt: skip
_BRAND_SUFFIXES = ("leaf", "works", "co", "labs", "home", "field", "wood", "craft", "ly", "mark")
_ADJECTIVES = (
    "Premium", "Natural", "Classic", "Deluxe", "Organic", "Heavy Duty", "Gentle", "Professional", "Compact", "Ultra",
)  # fmt: skip
_JUNK_PRICES = (
    '\n\t\t                    \n\r\n\r\n    \n        <div class="a-row a-spacing-small">\n',
    ".price-block{color:#b12704;font-size:13px}.price-block .a-color-secondary{display:none}",
)


def generate(
    out_dir: Path,
    reviews: int,
    *,
    categories: Sequence[str] = DEFAULT_CATEGORIES,
    seed: int = 42,
    warts: bool = True,
    progress: bool = False,
    compress: bool = True,
) -> GenerationReport:
    """Write `<Category>_5.json[.gz]` and `meta_<Category>.json[.gz]` for each category into `out_dir`.

    `reviews` is the exact number of review lines written over all categories, duplicates included.
    The same arguments always produce byte-identical files.
    """
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
    cat_lines = _split(reviews, 1.0 / np.sqrt(np.arange(1, len(cats) + 1)))
    cat_dups = [max(1, round(DUPLICATE_RATE * n)) if warts else 0 for n in cat_lines]
    cat_pairs = [int(n) - d for n, d in zip(cat_lines, cat_dups, strict=True)]
    # Small runs get extra users and items: users x items >= 3 pairs leaves room for the degree caps.
    cat_users = [max(round(m / _MEAN_USER_DEGREE), math.ceil(math.sqrt(6 * m))) for m in cat_pairs]
    cat_items = [max(round(m / _MEAN_ITEM_DEGREE), math.ceil(math.sqrt(1.5 * m))) for m in cat_pairs]
    people = _People.draw(rng, max(max(cat_users), round(0.8 * sum(cat_users))))
    item_ids = _unique_ids(rng, sum(cat_items) + sum(_unreviewed(n, warts) for n in cat_items), 9, "B")
    days = _DayStrings.build()

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
            noun = crng.integers(0, len(_theme(cat).nouns), n_items)  # what each product is
            plan = _ReviewPlan.draw(crng, cat_pairs[k], cat_users[k], cat_items[k], cat_dups[k], people)
            seen_users.append(plan.global_user)
            review_path = out_dir / f"{cat}_5{suffix}"
            reviewed_asins = [asins[p] for p in reviewed.tolist()]
            _write_reviews(
                review_path, cat, plan, crng, reviewed_asins, noun[reviewed], people, days, warts, compress, bar
            )
            popularity = np.zeros(n_items, dtype=np.int64)
            popularity[reviewed] = plan.item_degree
            meta_path = out_dir / f"meta_{cat}{suffix}"
            _write_meta(meta_path, crng, cat, asins, noun.tolist(), popularity, warts, compress)
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
    return max(1, round(_UNREVIEWED_PRODUCT_RATE * items)) if warts else 0


def _split(total: int, weights: Floats) -> Ints:
    """Integers proportional to `weights` that sum exactly to `total` (largest remainder)."""
    share = total * weights / weights.sum()
    out: Ints = np.floor(share).astype(np.int64)
    out[np.argsort(out - share, kind="stable")[: total - int(out.sum())]] += 1
    return out


def _power_degrees(n: int, total: int, cap: int, alpha: float) -> Ints:
    """A power-law degree sequence: n values >= _MIN_DEGREE (when possible), <= cap, summing to total.

    The excess over the floor follows Pareto quantiles, so the shape is smooth and the same for every
    seed; which user or item gets which degree is shuffled by the caller.
    """
    floor = min(_MIN_DEGREE, total // n)
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
    return _split(total, share)


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
    return sorted_keys[at] == keys  # type: ignore[no-any-return]


def _base36(values: Ints, width: int) -> list[str]:
    """Fixed-width uppercase base-36 strings, vectorised."""
    powers = 36 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = (values[:, None] // powers) % 36
    return _ALNUM[digits].view(f"S{width}").ravel().astype(str).tolist()  # type: ignore[no-any-return]


def _unique_ids(rng: np.random.Generator, n: int, width: int, prefix: str) -> list[str]:
    """n distinct ids: `prefix` + `width` random uppercase alphanumerics (base 36 of distinct integers)."""
    body = min(width, 12)  # 36**12 still fits in int64
    values = np.unique(rng.integers(0, 36**body, n + 16))
    while values.size < n:  # vanishingly rare: integer collisions
        values = np.unique(np.concatenate([values, rng.integers(0, 36**body, n)]))
    values = rng.permutation(values)[:n]
    head = _base36(rng.integers(0, 36 ** (width - body), n), width - body) if width > body else [""] * n
    return [prefix + h + b for h, b in zip(head, _base36(values, body), strict=True)]


@dataclass(frozen=True)
class _People:
    """Reviewers shared by all categories: ids, names and the latent tastes behind their ratings."""

    ids: Objects
    names: Objects
    bias: Floats
    factors: Floats

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int) -> _People:
        ids = np.array(_unique_ids(rng, n, 13, "A"), dtype=object)
        pool = [f"{f} {chr(65 + i % 26)}." for f in _FIRST_NAMES for i in range(26)]
        pool += [f"{f.lower()}{i}" for f in _FIRST_NAMES for i in range(10, 40)] + ["Amazon Customer"] * 60
        names = np.array(pool, dtype=object)[rng.integers(0, len(pool), n)]
        return cls(ids, names, rng.normal(0.0, 0.4, n), rng.normal(0.0, _RANK**-0.25, (n, _RANK)))


@dataclass(frozen=True)
class _DayStrings:
    """Per day offset d: `unixReviewTime` text at d, and the `"verified": ..., "reviewTime": ...` fragment
    at 2d (unverified) and 2d + 1 (verified)."""

    verified_time: Objects
    unix_time: Objects

    @classmethod
    def build(cls) -> _DayStrings:
        first = dt.date(2000, 1, 1)
        dates = [first + dt.timedelta(days=d) for d in range(_EPOCH_LAST_DAY - _EPOCH_FIRST_DAY + 1)]
        times = [
            f'"verified": {flag}, "reviewTime": "{d.month:02d} {d.day}, {d.year}", '
            for d in dates
            for flag in ("false", "true")
        ]
        unix = [str((_EPOCH_FIRST_DAY + k) * 86_400) for k in range(len(dates))]
        return cls(np.array(times, dtype=object), np.array(unix, dtype=object))


@dataclass(frozen=True)
class _ReviewPlan:
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
        people: _People,
    ) -> _ReviewPlan:
        # Caps keep the heaviest user-item combinations sparse enough for `_pair_up` to converge fast.
        user_cap = max(_MIN_DEGREE, min(n_items // 2, math.ceil(1.2 * math.sqrt(pairs))))
        item_cap = max(_MIN_DEGREE, min(n_users // 2, math.ceil(5 * math.sqrt(pairs))))
        user_deg = rng.permutation(_power_degrees(n_users, pairs, user_cap, _USER_ALPHA))
        item_deg = rng.permutation(_power_degrees(n_items, pairs, item_cap, _ITEM_ALPHA))
        global_user = rng.choice(people.ids.size, n_users, replace=False)
        item_bias = rng.normal(0.0, 0.5, n_items)
        item_factors = rng.normal(0.0, _RANK**-0.25, (n_items, _RANK))
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
        span = _EPOCH_LAST_DAY - _EPOCH_FIRST_DAY
        launch = span - np.minimum(rng.exponential(1400.0, n_items), span).astype(np.int64)
        day = np.minimum(launch[item] + rng.exponential(250.0, pairs).astype(np.int64), span)

        # Duplicates: copies of a random earlier line, placed up to a few lines later.
        lines = np.arange(pairs, dtype=np.int64)
        sources = np.sort(rng.choice(pairs, duplicates, replace=False))
        keys = np.concatenate([2 * lines, 2 * (sources + rng.integers(0, 4, sources.size)) + 1])
        order = np.concatenate([lines, sources])[np.argsort(keys, kind="stable")]
        return cls(global_user, item_deg, user, item, stars, day, order)


def _flags(rng: np.random.Generator, n: int, rate: float) -> Bools:
    """Exactly max(1, round(rate * n)) randomly chosen True values, so rare warts always show up."""
    out = np.zeros(n, dtype=bool)
    out[rng.choice(n, min(n, max(1, round(rate * n))), replace=False)] = True
    return out


def _fragment(key: str, values: Sequence[Any]) -> Objects:
    """Pre-serialised `"key": value, ` fragments, one per value, to be picked by index."""
    return np.array([f'"{key}": {json.dumps(v)}, ' for v in values], dtype=object)


def _text_pool(rng: np.random.Generator, theme: _Theme) -> tuple[Objects, int]:
    """`reviewText` + `summary` fragments for every (star, text, summary) combination, then text-only and
    summary-only ones for the missing-field warts. Text t of a star is about noun t % len(nouns).

    Returns the pool and T, the number of texts per star; `_text_index` computes positions in it.
    """
    per_star = _TEXTS_PER_NOUN * len(theme.nouns)
    texts: list[list[str]] = []
    for star in range(1, 6):
        moods = _NEGATIVE if star <= 2 else _NEUTRAL if star == 3 else _POSITIVE
        opener = rng.integers(0, len(_OPENERS), per_star).tolist()
        said = rng.permuted(np.tile(np.arange(len(moods)), (per_star, 1)), axis=1).tolist()
        length = rng.integers(1, 4, per_star).tolist()
        texts.append(
            [
                " ".join(
                    [
                        _OPENERS[opener[t]].format(theme.nouns[t % len(theme.nouns)]),
                        *(moods[m] for m in said[t][: length[t]]),
                    ]
                )
                for t in range(per_star)
            ]
        )
    text = [[f'"reviewText": {json.dumps(t)}, ' for t in star_texts] for star_texts in texts]
    summary = [[f'"summary": {json.dumps(s)}, ' for s in _SUMMARIES[star]] for star in range(1, 6)]
    both = [t + s for star in range(5) for t in text[star] for s in summary[star]]
    pool = both + [t for star in text for t in star] + [s for star in summary for s in star]
    return np.array(pool, dtype=object), per_star


def _text_index(stars: Ints, text: Ints, summary: Ints, no_text: Bools, no_summary: Bools, per_star: int) -> Ints:
    """Positions in the `_text_pool` pool; summary-only where `no_text`, text-only where `no_summary`."""
    star = stars - 1
    both = (star * per_star + text) * _SUMMARIES_PER_STAR + summary
    text_only = 5 * per_star * _SUMMARIES_PER_STAR + star * per_star + text
    summary_only = 5 * per_star * (_SUMMARIES_PER_STAR + 1) + star * _SUMMARIES_PER_STAR + summary
    return np.where(no_text, summary_only, np.where(no_summary, text_only, both))


def _theme(category: str) -> _Theme:
    """The vocabulary for a category name (generic for names the generator does not know)."""
    lowered = category.lower()
    return next((t for key, t in _THEMES.items() if key in lowered), _GENERIC_THEME)


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


def _write_reviews(
    path: Path,
    category: str,
    plan: _ReviewPlan,
    rng: np.random.Generator,
    asins: list[str],
    noun: Ints,
    people: _People,
    days: _DayStrings,
    warts: bool,
    compress: bool,
    bar: tqdm[Any],
) -> None:
    """Stream the review lines, a chunk at a time.

    Each line is nine pre-serialised fragments (some combine neighbouring keys, some are empty for an
    absent key), picked from pools by integer indexes drawn here for every distinct user-item pair.
    """
    theme = _theme(category)
    pairs = plan.user.size
    stars = plan.stars.astype(np.int64)
    empty = np.array([""], dtype=object)

    text_pool, per_star = _text_pool(rng, theme)
    text_pick = noun[plan.item] + len(theme.nouns) * rng.integers(0, _TEXTS_PER_NOUN, pairs)
    summary_pick = rng.integers(0, _SUMMARIES_PER_STAR, pairs)
    no_text = _flags(rng, pairs, _NO_TEXT_RATE) if warts else np.zeros(pairs, dtype=bool)
    no_summary = (_flags(rng, pairs, _NO_SUMMARY_RATE) & ~no_text) if warts else np.zeros(pairs, dtype=bool)
    text = _text_index(stars, text_pick, summary_pick, no_text, no_summary, per_star).astype(np.int32)

    max_vote = 5000 if warts else 999
    vote = np.where(rng.random(pairs) < _VOTE_RATE, 2 + rng.pareto(1.5, pairs).astype(np.int64), 0)
    vote = np.minimum(vote, 999)
    if warts:
        big = _flags(rng, pairs, _VOTE_RATE * _BIG_VOTE_RATE)
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

    style_pool = np.concatenate([empty, _style_pool(rng, theme)])
    item_style = np.where(rng.random(len(asins)) < 0.7, rng.integers(1, style_pool.size, len(asins)), 0)
    style = np.where(item_style[plan.item] > 0, item_style[plan.item] + rng.integers(0, 4, pairs), 0)
    style = np.where(style >= style_pool.size, style - style_pool.size + 1, style).astype(np.int16)

    image_pool = np.concatenate([empty, _fragment("image", _image_urls(rng, 512, 1, 4))])
    image = np.where(rng.random(pairs) < 0.02, rng.integers(1, image_pool.size, pairs), 0).astype(np.int16)
    verified_day = (2 * plan.day + (rng.random(pairs) < 0.9)).astype(np.int32)
    asin_arr = np.array(asins, dtype=object)

    with _open(path, compress) as write:
        for lo in range(0, plan.order.size, _CHUNK):
            j = plan.order[lo : lo + _CHUNK]
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


def _style_pool(rng: np.random.Generator, theme: _Theme) -> Objects:
    """`"style": {...}, ` fragments: one or two of the theme's variation keys, keys ending in a colon."""
    out = []
    keys = list(theme.styles)
    for _ in range(256):
        chosen = sorted(rng.choice(len(keys), int(rng.integers(1, 3)), replace=False))
        style = {keys[k]: theme.styles[keys[k]][int(rng.integers(len(theme.styles[keys[k]])))] for k in chosen}
        out.append(f'"style": {json.dumps(style)}, ')
    return np.array(out, dtype=object)


def _image_urls(rng: np.random.Generator, n: int, low: int, high: int) -> list[list[str]]:
    """n lists of low..high-1 made-up image addresses (nothing is served there)."""
    counts = rng.integers(low, high, n)
    codes = _base36(rng.integers(0, 36**11, int(counts.sum())), 11)
    urls = [f"https://images.synthetic.example/I/{c}._SY88.jpg" for c in codes]
    ends = np.cumsum(counts).tolist()
    return [urls[e - c : e] for e, c in zip(ends, counts.tolist(), strict=True)]


def _write_meta(
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
    theme = _theme(category)
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
    html_title = (_flags(rng, n, _HTML_TITLE_RATE) if warts else np.zeros(n, dtype=bool)).tolist()
    junk_price = _flags(rng, n, _JUNK_PRICE_RATE) if warts else np.zeros(n, dtype=bool)
    empty_price = (rng.random(n) < _EMPTY_PRICE_RATE) & warts & ~junk_price
    prices = [f"${p:.2f}" for p in rng.lognormal(2.6, 0.7, n).tolist()]
    for i in np.flatnonzero(empty_price).tolist():
        prices[i] = ""
    for k, i in enumerate(np.flatnonzero(junk_price).tolist()):
        prices[i] = _JUNK_PRICES[k % len(_JUNK_PRICES)]
    rank_as_text = ((rng.random(n) < 0.5) & warts).tolist()
    picks = rng.integers(0, 1 << 30, (n, 6)).tolist()
    images = _image_urls(rng, n, 0, 3)
    ranks = sales_rank.tolist()
    bound = bounds.tolist()
    linked_asins = [asins[a] for a in linked.tolist()]
    display = category.replace("_", " ")
    main = theme.main_cat

    with _open(path, compress) as write:
        for lo in range(0, n, _CHUNK):
            lines = []
            for i in range(lo, min(n, lo + _CHUNK)):
                pick = picks[i]
                brand = _BRAND_PARTS[pick[0] % len(_BRAND_PARTS)] + _BRAND_SUFFIXES[pick[1] % len(_BRAND_SUFFIXES)]
                brand = brand.capitalize()
                noun = theme.nouns[noun_of[i]]
                adjective = _ADJECTIVES[pick[2] % len(_ADJECTIVES)]
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

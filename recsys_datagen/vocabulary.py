"""Words: what makes a category's products and reviews read like that category, as JSON fragment pools."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from recsys_datagen.ids import base36
from recsys_datagen.shape import TEXTS_PER_NOUN, Bools, Ints, Objects


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
SUMMARIES_PER_STAR = 5
FIRST_NAMES = (
    "Mary", "John", "Linda", "James", "Patricia", "Robert", "Susan", "Michael", "Karen", "David", "Lisa",
    "William", "Nancy", "Richard", "Sandra", "Joseph", "Ashley", "Thomas", "Emily", "Daniel", "Donna", "Mark",
    "Carol", "Paul", "Amanda", "Steven", "Sarah", "Kevin", "Laura", "Brian",
)  # fmt: skip
BRAND_PARTS = (
    "Green", "Sun", "Pure", "Bright", "North", "Oak", "Silver", "Blue", "Wild", "Happy", "Stone", "River",
    "Nova", "Prime", "Golden",
)  # fmt: skip
BRAND_SUFFIXES = ("leaf", "works", "co", "labs", "home", "field", "wood", "craft", "ly", "mark")
ADJECTIVES = (
    "Premium", "Natural", "Classic", "Deluxe", "Organic", "Heavy Duty", "Gentle", "Professional", "Compact", "Ultra",
)  # fmt: skip
JUNK_PRICES = (
    '\n\t\t                    \n\r\n\r\n    \n        <div class="a-row a-spacing-small">\n',
    ".price-block{color:#b12704;font-size:13px}.price-block .a-color-secondary{display:none}",
)


def fragment(key: str, values: Sequence[Any]) -> Objects:
    """Pre-serialised `"key": value, ` fragments, one per value, to be picked by index."""
    return np.array([f'"{key}": {json.dumps(v)}, ' for v in values], dtype=object)


def text_fragments(rng: np.random.Generator, theme: _Theme) -> tuple[Objects, int]:
    """`reviewText` + `summary` fragments for every (star, text, summary) combination, then text-only and
    summary-only ones for the missing-field warts. Text t of a star is about noun t % len(nouns).

    Returns the pool and T, the number of texts per star; `text_index` computes positions in it.
    """
    per_star = TEXTS_PER_NOUN * len(theme.nouns)
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


def text_index(stars: Ints, text: Ints, summary: Ints, no_text: Bools, no_summary: Bools, per_star: int) -> Ints:
    """Positions in the `text_pool` pool; summary-only where `no_text`, text-only where `no_summary`."""
    star = stars - 1
    both = (star * per_star + text) * SUMMARIES_PER_STAR + summary
    text_only = 5 * per_star * SUMMARIES_PER_STAR + star * per_star + text
    summary_only = 5 * per_star * (SUMMARIES_PER_STAR + 1) + star * SUMMARIES_PER_STAR + summary
    return np.where(no_text, summary_only, np.where(no_summary, text_only, both))


def theme_of(category: str) -> _Theme:
    """The vocabulary for a category name (generic for names the generator does not know)."""
    lowered = category.lower()
    return next((t for key, t in _THEMES.items() if key in lowered), _GENERIC_THEME)


def style_fragments(rng: np.random.Generator, theme: _Theme) -> Objects:
    """`"style": {...}, ` fragments: one or two of the theme's variation keys, keys ending in a colon."""
    out = []
    keys = list(theme.styles)
    for _ in range(256):
        chosen = sorted(rng.choice(len(keys), int(rng.integers(1, 3)), replace=False))
        style = {keys[k]: theme.styles[keys[k]][int(rng.integers(len(theme.styles[keys[k]])))] for k in chosen}
        out.append(f'"style": {json.dumps(style)}, ')
    return np.array(out, dtype=object)


def image_urls(rng: np.random.Generator, n: int, low: int, high: int) -> list[list[str]]:
    """n lists of low..high-1 made-up image addresses (nothing is served there)."""
    counts = rng.integers(low, high, n)
    codes = base36(rng.integers(0, 36**11, int(counts.sum())), 11)
    urls = [f"https://images.synthetic.example/I/{c}._SY88.jpg" for c in codes]
    ends = np.cumsum(counts).tolist()
    return [urls[e - c : e] for e, c in zip(ends, counts.tolist(), strict=True)]

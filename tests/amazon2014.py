"""Real 2018 files rewritten in the 2014 release's format, at test time (no 2014 file is on this machine).

The 2014 release (McAuley et al.) names review files ``reviews_<Category>_5.json``: one JSON
object a line, with ``helpful`` [helpful votes, votes], ``reviewTime``, ``unixReviewTime`` and
``overall`` a number. Its ``meta_<Category>.json`` lines are Python dict literals (single
quotes): ``imUrl``, ``categories`` as nested lists, ``related`` {``also_bought``, ``also_viewed``,
``bought_together``}, ``salesRank`` {category: rank}, a numeric ``price``, and no key at all
for a missing value. Some titles are given HTML fragments and entities, as real files have.
"""

from __future__ import annotations

import gzip
import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_PRICE = re.compile(r"^\$([0-9,]+(?:\.[0-9]+)?)$")


@dataclass
class Written2014:
    """The files written and what the products should become once ingested."""

    reviews: Path
    meta: Path
    titles: dict[str, str] = field(default_factory=dict)  # asin -> the title as written (with its HTML)
    clean_titles: dict[str, str] = field(default_factory=dict)  # asin -> what the product's title must be
    prices: dict[str, float] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)


def _lines(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _review(source: dict[str, Any]) -> dict[str, Any]:
    votes = int(str(source.get("vote", "0")).replace(",", ""))
    review = {
        "reviewerID": source["reviewerID"],
        "asin": source["asin"],
        "reviewerName": source.get("reviewerName"),
        "helpful": [votes, votes + len(source["reviewerID"]) % 3],
        "reviewText": source.get("reviewText", ""),
        "overall": float(source["overall"]),
        "summary": source.get("summary", ""),
        "unixReviewTime": source["unixReviewTime"],
        "reviewTime": source["reviewTime"],
    }
    return {k: v for k, v in review.items() if v is not None}


# What every fourth title is wrapped in, in turn, and what its clean text is: the HTML the real files hold.
_MARKUP = (("<b>{}</b>", "{}"), ("{} &amp; Co.", "{} & Co."), ('<span class="a-size-medium">{}<br', "{}"))


def _title(title: str, position: int) -> tuple[str, str | None]:
    """The title as written, and the plain text it must become (None: not predictable without the cleaner)."""
    plain = " ".join(html.unescape(title).split())
    written, clean = _MARKUP[position // 4 % 3] if position % 4 == 0 else ("{}", "{}")
    return written.format(title), None if "<" in plain or ">" in plain else clean.format(plain)


def convert_category(source_dir: Path, category: str, out_dir: Path) -> Written2014:
    """Write ``reviews_<category>_5.json`` and ``meta_<category>.json`` in the 2014 format from the 2018 files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = Written2014(out_dir / f"reviews_{category}_5.json", out_dir / f"meta_{category}.json")
    reviews = [_review(r) for r in _lines(source_dir / f"{category}_5.json.gz")]
    written.reviews.write_text("".join(json.dumps(r) + "\n" for r in reviews), encoding="utf-8")
    meta_lines = []
    for position, product in enumerate(_lines(source_dir / f"meta_{category}.json.gz")):
        asin = product["asin"]
        meta: dict[str, Any] = {"asin": asin, "salesRank": {category.replace("_", " "): position + 1}}
        if product.get("title"):
            meta["title"], clean = _title(product["title"], position)
            written.titles[asin] = meta["title"]
            if clean:
                written.clean_titles[asin] = clean
        price = _PRICE.match(product.get("price") or "")
        meta["price"] = written.prices[asin] = (
            float(price.group(1).replace(",", "")) if price else round(5.0 + (position % 40) * 2.5, 2)
        )
        if product.get("image"):
            meta["imUrl"] = written.images[asin] = product["image"][0]
        if product.get("brand"):
            meta["brand"] = product["brand"]
        if product.get("category"):
            meta["categories"] = [product["category"], [product["category"][0]]]
        related = {
            "also_bought": product.get("also_buy") or [],
            "also_viewed": product.get("also_view") or [],
            "bought_together": (product.get("also_buy") or [])[:1],
        }
        if any(related.values()):
            meta["related"] = {k: v for k, v in related.items() if v}
        if product.get("description"):
            meta["description"] = " ".join(product["description"])
        meta_lines.append(repr(meta))
    written.meta.write_text("".join(line + "\n" for line in meta_lines), encoding="utf-8")
    return written

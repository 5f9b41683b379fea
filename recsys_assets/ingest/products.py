"""Parse raw product metadata lines (``meta_<Category>``) into the ``products`` document shape.

Cleaning done here: HTML is stripped from titles and descriptions, the price becomes a
number or null (empty strings and CSS/HTML junk are common), the first image URL is kept
(2018 files use imageURLHighRes/imageURL, some use image), and rank becomes one string
whether the source wrote a string or a list.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_assets.ingest.parsing import CORRUPT, field, parse_json_strings, quarantine_reason

_SOURCE_FIELDS = (
    "asin", "title", "brand", "price", "category", "description", "feature", "imageURL",
    "imageURLHighRes", "image", "rank", "also_buy", "also_view", "main_cat",
)  # fmt: skip

PRODUCT_FIELDS = (
    "asin", "title", "brand", "price", "image", "categories", "main_cat", "rank",
    "also_buy", "also_view", "description",
)  # fmt: skip

_ENTITIES = {"&nbsp;": " ", "&lt;": "<", "&gt;": ">", "&quot;": '"', "&#39;": "'", "&#x27;": "'", "&amp;": "&"}
_STRINGS = T.ArrayType(T.StringType())


def plain_text(raw: Column) -> Column:
    """Strip tags, decode the common entities, collapse white space; empty becomes null."""
    text = F.regexp_replace(raw, r"<[^>]*>", " ")
    for entity, char in _ENTITIES.items():  # &amp; last, so "&amp;lt;" stays "&lt;"
        text = F.replace(text, F.lit(entity), F.lit(char))
    text = F.trim(F.regexp_replace(text, r"\s+", " "))
    return F.when(text == "", None).otherwise(text)


def price_value(raw: Column) -> Column:
    """ "$1,234.50" -> 1234.5; a range "$10.00 - $20.00" -> its low end; anything else -> null."""
    amount = F.regexp_extract(raw, r"^\s*\$\s*([0-9][0-9,]*(\.[0-9]+)?)", 1)
    return F.when(amount == "", None).otherwise(F.regexp_replace(amount, ",", "").try_cast(T.DoubleType()))


def _strings(name: str) -> Column:
    return F.from_json(field(name), _STRINGS)


def _first_url(*arrays: Column) -> Column:
    firsts = [F.get(F.filter(a, lambda url: F.trim(url) != ""), 0) for a in arrays]
    return F.coalesce(*firsts)


def parse_products(lines: DataFrame, category: str) -> DataFrame:
    """Map numbered metadata lines to product documents plus ``reason`` (null when good).

    Output columns: _id (= asin), source_category, source_file, line_number, *PRODUCT_FIELDS,
    reason, value.
    """
    j = parse_json_strings(lines, _SOURCE_FIELDS)

    asin = F.trim(field("asin"))
    rank_list = _strings("rank")
    rank = F.when(field("rank").startswith("["), F.get(rank_list, 0)).otherwise(field("rank"))
    reason = quarantine_reason(
        [
            (F.col("j").isNull(), "empty_line"),
            (F.col(f"j.{CORRUPT}").isNotNull(), "invalid_json"),
            (asin.isNull() | (asin == ""), "missing_asin"),
            (asin.startswith("{") | asin.startswith("["), "wrong_type:asin"),
        ]
    )
    fields = {
        "asin": asin,
        "title": plain_text(field("title")),
        "brand": plain_text(field("brand")),
        "price": price_value(field("price")),
        "image": _first_url(_strings("imageURLHighRes"), _strings("imageURL"), _strings("image")),
        "categories": F.coalesce(_strings("category"), F.array().cast(_STRINGS)),
        "main_cat": plain_text(field("main_cat")),
        "rank": plain_text(rank),
        "also_buy": F.coalesce(_strings("also_buy"), F.array().cast(_STRINGS)),
        "also_view": F.coalesce(_strings("also_view"), F.array().cast(_STRINGS)),
        "description": plain_text(F.array_join(F.coalesce(_strings("description"), F.array().cast(_STRINGS)), "\n")),
    }
    return j.select(
        asin.alias("_id"),
        F.lit(category).alias("source_category"),
        "source_file",
        "line_number",
        *[column.alias(name) for name, column in fields.items()],
        reason.alias("reason"),
        "value",
    )

"""Parse raw product metadata lines (``meta_<Category>``) into the ``products`` document shape.

Three releases map onto one schema (the 2018 field names):

==============  ==========================  ===============================  ==========================
product         2018                        2014 (Python dict literals)      2023 (item metadata)
==============  ==========================  ===============================  ==========================
asin            asin                        asin                             parent_asin
title           title                       title                            title
brand           brand                       brand                            store
price           price ("$1,234.50")         price (a number)                 price (number, text, "None")
image           imageURLHighRes, imageURL,  imUrl                            images[].large (else hi_res,
                image: the first URL                                         thumb) of the first image
categories      category                    categories: the first path       categories
main_cat        main_cat (an ``<img alt>``  the top of the category path     main_category
                is read as its alt text)
rank            rank (a string or list)     salesRank {"Books": 123}:        (none)
                                            "123 in Books"
also_buy        also_buy                    related.also_bought +            bought_together
                                            related.bought_together
also_view       also_view                   related.also_viewed              (none)
description     description (a list)        description (a string)           description (a list)
details         details                     (none)                           details
==============  ==========================  ===============================  ==========================

Texts are cleaned by :mod:`recsys_assets.ingest.cleaning`; a value that says "missing" is null,
a list field is always a list (empty when missing). A field of the wrong JSON kind (an object
for a title, a list for a price) quarantines the line as ``wrong_type:<source field>``.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from recsys_assets.ingest.cleaning import clean_text, clean_texts, present
from recsys_assets.ingest.parsing import (
    CORRUPT,
    field,
    is_array,
    is_object,
    item_key,
    parse_json_strings,
    quarantine_reason,
)
from recsys_core.contract import HTTP_URL

# Source fields by the JSON kind they must have: a scalar, a scalar or a list, an object.
_SCALARS = ("title", "brand", "store", "main_cat", "main_category", "price", "imUrl")
_LISTS = (
    "category", "categories", "description", "imageURL", "imageURLHighRes", "image", "images", "rank",
    "also_buy", "also_view", "bought_together",
)  # fmt: skip
_OBJECTS = ("related", "salesRank", "details")
_SOURCE_FIELDS = ("asin", "parent_asin", *_SCALARS, *_LISTS, *_OBJECTS)

PRODUCT_FIELDS = (
    "asin", "title", "brand", "price", "image", "categories", "main_cat", "rank",
    "also_buy", "also_view", "description", "details",
)  # fmt: skip

_STRINGS = T.ArrayType(T.StringType())
_NUMBER = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+"
# "9.49", "$1,234.50", "$10.00 - $20.00" (a range keeps its low end); nothing else is a price.
_PRICE = rf"^\s*\$?\s*({_NUMBER})(?:\s*-\s*\$?\s*(?:{_NUMBER}))?\s*$"
_IMG_ALT = r"^\s*<img\b[^>]*\balt=\"([^\"]*)\""


def price_value(raw: Column) -> Column:
    """A number, a "$" amount or a range as a finite number; anything else (CSS junk, "None") is null."""
    amount = F.regexp_extract(raw, _PRICE, 1)
    value = F.when(amount != "", F.regexp_replace(amount, ",", "").try_cast(T.DoubleType()))
    return F.when(value < F.lit(float("inf")), value)


def _raw_list(raw: Column) -> Column:
    """The elements of a JSON list as raw texts; a lone scalar is a list of one; missing is empty."""
    return (
        F.when(is_array(raw), F.from_json(raw, _STRINGS))
        .when(present(raw).isNotNull() & ~is_object(raw), F.array(raw))
        .otherwise(F.array().cast(_STRINGS))
    )


def _asins(*raws: Column) -> Column:
    """The distinct product ids of the given lists, in order, without blanks or "None"."""
    ids = F.concat(*[F.transform(_raw_list(raw), lambda a: present(F.trim(a))) for raw in raws])
    return F.array_distinct(F.filter(ids, lambda a: a.isNotNull()))


def _first_path(raw: Column) -> Column:
    """The first of several category paths (2014's ``[["Books", "Fiction"], [...]]``), else ``raw``."""
    first = F.get_json_object(raw, "$[0]")
    return F.when(raw.startswith("[[") & is_array(first), first).otherwise(raw)


def _first_url(*lists: Column) -> Column:
    urls = F.concat(
        *[F.filter(F.transform(u, lambda url: F.trim(url)), lambda url: url.rlike("(?i)" + HTTP_URL)) for u in lists]
    )
    return F.get(urls, 0)


def _images_2023(raw: Column) -> Column:
    """The best URL of each 2023 image (``{"thumb", "large", "hi_res", "variant"}``)."""
    images = F.from_json(raw, T.ArrayType(T.MapType(T.StringType(), T.StringType())))
    return F.coalesce(F.transform(images, lambda i: F.coalesce(i["large"], i["hi_res"], i["thumb"])), F.array())


def _sales_rank(raw: Column) -> Column:
    """2014's ``{"Books": 123}`` in the 2018 form "123 in Books"."""
    first = F.get(F.map_entries(F.from_json(raw, T.MapType(T.StringType(), T.StringType()))), 0)
    return F.concat(first["value"], F.lit(" in "), first["key"])


def _details(raw: Column) -> Column:
    """The details object as a map of texts (nested values as JSON text), without blank entries; else null."""
    entries = F.map_filter(
        F.from_json(raw, T.MapType(T.StringType(), T.StringType())),
        lambda k, v: (F.trim(k) != "") & present(v).isNotNull(),
    )
    return F.when(F.size(entries) > 0, entries)


def _wrong_types() -> list[tuple[Column, str]]:
    """Quarantine rules for source fields of the wrong JSON kind, e.g. an object for a title."""
    wrong = {
        **{name: is_array(field(name)) | is_object(field(name)) for name in _SCALARS},
        **{name: is_object(field(name)) for name in _LISTS},
        **{name: present(field(name)).isNotNull() & ~is_object(field(name)) for name in _OBJECTS},
    }
    return [(condition, f"wrong_type:{name}") for name, condition in wrong.items()]


def parse_products(lines: DataFrame, category: str) -> DataFrame:
    """Map numbered metadata lines to product documents plus ``reason`` (null when good).

    Output columns: _id (= asin), source_category, source_file, line_number, *PRODUCT_FIELDS,
    reason, value.
    """
    j = parse_json_strings(lines, _SOURCE_FIELDS, python_literals=True)
    asin = item_key()
    reason = quarantine_reason(
        [
            (F.col("j").isNull(), "empty_line"),
            (F.col(f"j.{CORRUPT}").isNotNull(), "invalid_json"),
            (asin.isNull() | (asin == ""), "missing_asin"),
            (is_array(asin) | is_object(asin), "wrong_type:asin"),
            *_wrong_types(),
        ]
    )
    main_cat = F.coalesce(present(field("main_cat")), present(field("main_category")))
    alt_text = F.regexp_extract(main_cat, _IMG_ALT, 1)
    related = field("related")
    # Three stages, so each expression is computed once and the next stage reads it as a column.
    raw = j.select(
        asin.alias("_id"),
        F.lit(category).alias("source_category"),
        "source_file",
        "line_number",
        asin.alias("asin"),
        field("title").alias("title"),
        F.coalesce(present(field("brand")), present(field("store"))).alias("brand"),
        price_value(field("price")).alias("price"),
        _first_url(
            *[_raw_list(field(n)) for n in ("imageURLHighRes", "imageURL", "image", "imUrl")],
            _images_2023(field("images")),
        ).alias("image"),
        _raw_list(_first_path(F.coalesce(field("category"), field("categories")))).alias("categories"),
        F.when(alt_text != "", alt_text).otherwise(main_cat).alias("main_cat"),
        _raw_list(field("rank")).alias("rank"),
        _sales_rank(field("salesRank")).alias("sales_rank"),
        _asins(
            field("also_buy"),
            F.get_json_object(related, "$.also_bought"),
            F.get_json_object(related, "$.bought_together"),
            field("bought_together"),
        ).alias("also_buy"),
        _asins(field("also_view"), F.get_json_object(related, "$.also_viewed")).alias("also_view"),
        _raw_list(field("description")).alias("description"),
        _details(field("details")).alias("details"),
        reason.alias("reason"),
        "value",
    )
    texts = ("title", "brand", "main_cat", "sales_rank")
    lists = ("categories", "rank", "description")
    cleaned = raw.select(
        *[clean_text(F.col(c)).alias(c) if c in texts else clean_texts(F.col(c)).alias(c) if c in lists else c
          for c in raw.columns]
    )  # fmt: skip
    c = F.col
    final = {
        "main_cat": F.coalesce(c("main_cat"), F.get(c("categories"), 0)),
        "rank": F.coalesce(F.get(c("rank"), 0), c("sales_rank")),
        "description": F.when(F.size(c("description")) > 0, F.array_join(c("description"), " ")),
    }
    return cleaned.select(
        "_id", "source_category", "source_file", "line_number",
        *[final.get(name, c(name)).alias(name) for name in PRODUCT_FIELDS], "reason", "value",
    )  # fmt: skip

"""Properties of metadata parsing and cleaning, over generated garbled and mixed-format lines.

Each example is one batch, parsed in one Spark job, so the examples stay few and cheap.
"""

from __future__ import annotations

import html
import json
import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from recsys_assets.ingest.cleaning import MISSING, TAG, clean_text, clean_texts, unescape
from recsys_assets.ingest.parsing import python_literal_as_json
from recsys_assets.ingest.products import parse_products

FRAGMENT = '<span class="a-size-medium a-color-secondary"'
PIECES = [
    "<b>", "</b>", FRAGMENT, "<br/>", "<!-- note -->", '<a href="x">', "&amp;", "&amp;amp;", "&amp;lt;i&amp;gt;",
    "&#233;", "&#x263A;", "&#39;", "&nbsp;", "&lt;", "&gt;", "&", "<", ">", "5 < 6", "None", "nan", "[]", " ",
    "\t", "\xa0", "&#0;", "&#xD800;", "&bogus;", "&amp", "caf\xe9", "\u2603", "'", '"', "\\",
]  # fmt: skip
texts = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=6)), max_size=6).map("".join)
# A text whose whole content is JSON list or object text ("[1]") cannot be told from a list by
# its raw text; real titles never are, so valid records avoid them (garbled ones do not).
plain_texts = texts.filter(lambda t: not t.startswith(("[", "{")))
asins = st.from_regex(r"[A-Z0-9]{10}", fullmatch=True)
urls = st.sampled_from(["https://img/a.jpg", "http://img/b.jpg", "", "None", "ftp://x", "<img>"])
prices = st.floats(min_value=0, max_value=1e6, allow_nan=False).map(lambda p: round(p, 2))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)

Line = tuple[str, str | None, float | None]  # the line, the asin it must load as (or None), its price


@st.composite
def line_2018(draw: st.DrawFn) -> Line:
    asin = draw(asins)
    price = draw(st.sampled_from(["", "$9.99", "$1,234.50", ".a-box-inner{color:#fff}", "$10.00 - $20.00"]))
    record = {
        "asin": asin, "title": draw(plain_texts), "brand": draw(plain_texts), "main_cat": draw(plain_texts),
        "price": price,
        "category": draw(st.lists(plain_texts, max_size=3)), "description": draw(st.lists(texts, max_size=3)),
        "imageURL": draw(st.lists(urls, max_size=2)), "rank": draw(plain_texts | st.lists(plain_texts, max_size=2)),
        "also_buy": draw(st.lists(asins, max_size=3)), "details": draw(st.dictionaries(texts, texts, max_size=3)),
    }  # fmt: skip
    expected = {"$9.99": 9.99, "$1,234.50": 1234.5, "$10.00 - $20.00": 10.0}.get(price)
    return json.dumps(record), asin, expected


@st.composite
def line_2014(draw: st.DrawFn) -> Line:
    """A Python dict literal, as the 2014 files hold them (some with None, so not JSON at all)."""
    asin, price = draw(asins), draw(prices | st.none())
    record = {
        "asin": asin, "title": draw(plain_texts), "price": price, "imUrl": draw(urls), "brand": draw(plain_texts),
        "related": {"also_bought": draw(st.lists(asins, max_size=3)), "bought_together": draw(st.lists(asins))},
        "salesRank": draw(st.dictionaries(plain_texts, st.integers(0, 10**7), max_size=1)),
        "categories": draw(st.lists(st.lists(plain_texts, max_size=3), max_size=2)),
        "description": draw(plain_texts),
    }  # fmt: skip
    return repr(record), asin, price


@st.composite
def line_2023(draw: st.DrawFn) -> Line:
    asin, price = draw(asins), draw(prices | st.none())
    image = st.fixed_dictionaries({"thumb": urls, "large": urls, "hi_res": urls | st.none(), "variant": texts})
    record = {
        "parent_asin": asin, "main_category": draw(plain_texts), "title": draw(plain_texts),
        "store": draw(plain_texts | st.integers()), "images": draw(st.lists(image, max_size=2)),
        "price": draw(st.sampled_from([price, str(price), "None"])), "categories": draw(st.lists(plain_texts)),
        "details": draw(st.dictionaries(texts, texts | st.integers() | st.none(), max_size=3)),
        "description": draw(st.lists(texts, max_size=2)), "bought_together": None,
    }  # fmt: skip
    expected = price if record["price"] != "None" else None
    return json.dumps(record), asin, expected


def _no_newlines(text: str) -> str:
    return text.replace("\n", " ").replace("\r", " ")


def _with_field(line: str, name: str, value: Any) -> Line:
    """A valid line (JSON or a Python literal) with ``name`` set to ``value``, as JSON."""
    record = json.loads(python_literal_as_json(line) or line)
    return json.dumps({**record, name: value}), None, None


valid_lines = st.one_of(line_2018(), line_2014(), line_2023())
garbled_lines = st.one_of(
    # A valid record with one field of any JSON kind: loaded or quarantined, never a crash.
    st.builds(
        _with_field,
        valid_lines.map(lambda v: v[0]),
        st.sampled_from(["title", "price", "brand", "categories", "images", "related", "salesRank", "asin", "rank"]),
        json_values,
    ),
    valid_lines.flatmap(lambda v: st.integers(1, len(v[0]) - 1).map(lambda k: (v[0][:k], None, None))),
    st.text(max_size=40).map(lambda t: (_no_newlines(t), None, None)),
    st.binary(max_size=40).map(lambda b: (_no_newlines(b.decode("latin-1")), None, None)),
)

REASON = re.compile(r"empty_line|invalid_json|missing_asin|wrong_type:\w+")
TEXT_FIELDS = ("title", "brand", "main_cat", "rank", "description")


def _assert_clean(text: str) -> None:
    """No tag, no entity left to decode, no edge white space, no text that means "missing"."""
    assert text
    assert not re.search(TAG, text), text
    assert html.unescape(text) == text, text
    assert text == text.strip(), text
    assert not re.search(r"[\x00-\x1f\x7f-\x9f]", text), text
    assert not re.fullmatch(MISSING, text, re.IGNORECASE), text


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


# Few examples of many lines each: a Spark job costs far more than a line, and lines are independent.
@settings(max_examples=15)
@given(batch=st.lists(st.one_of(valid_lines, garbled_lines), min_size=1, max_size=80))
def test_every_line_is_loaded_or_quarantined_with_a_reason(spark: SparkSession, batch: list[Line]) -> None:
    lines = spark.createDataFrame(
        [("meta_P.json", number, line) for number, (line, _, _) in enumerate(batch, 1)],
        "source_file string, line_number long, value string",
    )
    rows = {row["line_number"]: row.asDict(recursive=True) for row in parse_products(lines, "P").collect()}

    assert sorted(rows) == list(range(1, len(batch) + 1))  # each line exactly once
    for number, (_, asin, price) in enumerate(batch, 1):
        row = rows[number]
        if row["reason"] is not None:
            assert REASON.fullmatch(row["reason"]), row
            assert asin is None, f"a valid line was quarantined: {row}"
            continue
        assert row["asin"]
        assert row["_id"] == row["asin"]
        if asin is not None:
            assert row["asin"] == asin
            assert row["price"] == (None if price is None else pytest.approx(price))
        assert row["price"] is None or (math.isfinite(row["price"]) and row["price"] >= 0)
        assert row["image"] is None or row["image"].startswith(("http://", "https://"))
        for name in TEXT_FIELDS:
            if row[name] is not None:
                _assert_clean(row[name])
        for name in ("categories", "also_buy", "also_view"):
            assert isinstance(row[name], list)
        for text in row["categories"]:
            _assert_clean(text)
        assert not [s for s in _strings(row) if s.strip() in ("", "None", "nan", "[]")], row


@settings(max_examples=15)
@given(batch=st.lists(st.tuples(texts, st.lists(texts | st.none(), max_size=4)), min_size=1, max_size=60))
def test_cleaning_is_idempotent_and_leaves_plain_text(
    spark: SparkSession, batch: list[tuple[str, list[str | None]]]
) -> None:
    frame = spark.createDataFrame(batch, "text string, texts array<string>")
    once = frame.select(clean_text(F.col("text")).alias("text"), clean_texts(F.col("texts")).alias("texts"))
    rows = once.select("*", clean_text(F.col("text")).alias("again"), clean_texts(F.col("texts")).alias("agains"))
    for (source, _), row in zip(batch, rows.collect(), strict=True):
        assert row["again"] == row["text"]
        assert row["agains"] == row["texts"]
        for text in [row["text"], *row["texts"]]:
            if text is not None:
                _assert_clean(text)
        plain = source.strip()
        if not re.search(r"[<>&\x00-\x1f\x7f-\x9f]|\s", plain) and not re.fullmatch(MISSING, plain, re.IGNORECASE):
            assert row["text"] == (plain or None)  # plain text passes unchanged


@given(st.text() | texts)
def test_unescape_reaches_a_fixed_point(text: str) -> None:
    decoded = unescape(text)
    assert html.unescape(decoded) == decoded
    assert unescape(decoded) == decoded


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    return isinstance(value, list) and any(_has_non_finite(v) for v in value)


@given(st.dictionaries(st.text(max_size=5), json_values, max_size=4))
def test_python_literals_read_as_the_same_json(record: dict[str, Any]) -> None:
    converted = python_literal_as_json(repr(record))
    if _has_non_finite(record):
        assert converted is None  # nan and inf have no JSON form: the line stays invalid_json
    else:
        assert converted is not None
        assert json.loads(converted) == record

"""Metadata of the 2014, 2018 and 2023 releases lands in `products` cleaned and in one schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pymongo.database import Database

from recsys_core import mongo
from tests.ingest.conftest import Materialise
from tests.ingest.helpers import review, write_lines

FRAGMENT = '<span class="a-size-medium a-color-secondary"'

# Written as the 2014 files were: Python dict literals (repr), single quotes, None, \x escapes.
META_2014 = [
    {"asin": "0000031852", "title": "Girls Ballet Tutu &amp; Zebra <b>Hot</b> Pink", "price": 9.49,
     "imUrl": "http://ecx.images-amazon.com/images/I/51fAmVkTbyL._SY300_.jpg",
     "related": {"also_bought": ["B00JHONN1S", "B002BZX8Z6"], "also_viewed": ["B00JHONN1S", "B00D2K1M3O"],
                 "bought_together": ["B002BZX8Z6", "B00D0WDS9A"]},
     "salesRank": {"Toys & Games": 211836}, "brand": "Coxlists",
     "categories": [["Sports & Outdoors", "Other Sports", "Dance"], ["Clothing, Shoes & Jewelry", "Girls"]],
     "description": "A caf\xe9 tutu, it&#39;s &#x263A; <br/>"},
]  # fmt: skip
# As Python 2 wrote it: a u'' prefix and a \x escape, which no JSON reader takes.
META_2014_PY2 = (
    "{'asin': u'0000032034', 'title': u'None', 'price': None, 'categories': [[u'Books']], "
    "'salesRank': {}, 'brand': u'Caf\\xe9 Press'}"
)

META_2023 = [
    {"main_category": "All Beauty", "title": "Howard LC0008 Leather Conditioner, 8-Ounce &amp; More",
     "average_rating": 4.8, "rating_number": 10, "features": [], "description": [], "price": "None",
     "images": [{"thumb": "https://m.media-amazon.com/t.jpg", "large": "https://m.media-amazon.com/l.jpg",
                 "variant": "MAIN", "hi_res": None}],
     "videos": [], "store": "Howard Products", "categories": [],
     "details": {"Package Dimensions": "7.1 x 5.5 x 3 inches; 2.38 Pounds", "UPC": "617390882781",
                 "Best Sellers Rank": {"Beauty & Personal Care": 1}, "Date First Available": ""},
     "parent_asin": "B01CUPMQZE", "bought_together": None},
    {"main_category": "Books", "title": FRAGMENT, "price": 12.5, "images": [], "store": "",
     "categories": ["Books", "Literature &amp; Fiction"], "details": {}, "parent_asin": "B0000AAAA1"},
    {"main_category": "Books", "title": "Text", "price": "$7.25", "parent_asin": "B0000AAAA2", "store": 1984},
]  # fmt: skip

META_2018 = [
    {"asin": "B0000BBBB1", "title": FRAGMENT, "brand": "", "price": "", "category": ["Gift Cards", ""],
     "main_cat": '<img src="https://images/fashion.png" alt="Amazon Fashion"/>', "also_buy": [], "rank": [],
     "description": [], "image": []},
]  # fmt: skip


def _strings(document: Any) -> Iterator[str]:
    """Every string value in a document, however deeply nested."""
    if isinstance(document, str):
        yield document
    elif isinstance(document, dict):
        for value in document.values():
            yield from _strings(value)
    elif isinstance(document, list):
        for value in document:
            yield from _strings(value)


def test_2014_2018_and_2023_metadata_map_onto_one_cleaned_schema(
    materialise: Materialise, db: Database[mongo.Document], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_lines(data / "Mixed_5.json", [review("U1", "0000031852"), review("U2", "B01CUPMQZE")])
    lines = [repr(META_2014[0]), META_2014_PY2] + [json.dumps(r) for r in META_2023 + META_2018]
    write_lines(data / "meta_Mixed.json.gz", lines)

    meta = materialise(data, "Mixed")["raw_products"]

    assert (meta["lines_read"], meta["loaded"], meta["quarantined"]) == (6, 6, 0)
    assert meta["titles_missing"] == 3  # "None", and the two bare fragments
    products = {p["_id"]: p for p in db[mongo.PRODUCTS].find({"source_category": "Mixed"})}

    old = products["0000031852"]
    assert old["title"] == "Girls Ballet Tutu & Zebra Hot Pink"
    assert old["price"] == 9.49
    assert old["image"] == "http://ecx.images-amazon.com/images/I/51fAmVkTbyL._SY300_.jpg"
    assert old["categories"] == ["Sports & Outdoors", "Other Sports", "Dance"]  # the first path
    assert old["main_cat"] == "Sports & Outdoors"
    assert old["rank"] == "211836 in Toys & Games"
    assert old["also_buy"] == ["B00JHONN1S", "B002BZX8Z6", "B00D0WDS9A"]  # also_bought, then bought_together
    assert old["also_view"] == ["B00JHONN1S", "B00D2K1M3O"]
    assert old["description"] == "A caf\xe9 tutu, it's \u263a"
    assert old["details"] is None
    py2 = products["0000032034"]
    assert (py2["title"], py2["brand"], py2["price"], py2["rank"], py2["main_cat"]) == (
        None, "Caf\xe9 Press", None, None, "Books"
    )  # fmt: skip

    new = products["B01CUPMQZE"]
    assert (new["asin"], new["title"]) == ("B01CUPMQZE", "Howard LC0008 Leather Conditioner, 8-Ounce & More")
    assert (new["brand"], new["main_cat"], new["price"]) == ("Howard Products", "All Beauty", None)
    assert new["image"] == "https://m.media-amazon.com/l.jpg"
    assert new["details"] == {
        "Package Dimensions": "7.1 x 5.5 x 3 inches; 2.38 Pounds",
        "UPC": "617390882781",
        "Best Sellers Rank": '{"Beauty & Personal Care":1}',
    }
    assert (new["categories"], new["also_buy"], new["description"]) == ([], [], None)
    fragment_title = products["B0000AAAA1"]
    assert (fragment_title["title"], fragment_title["price"], fragment_title["brand"]) == (None, 12.5, None)
    assert fragment_title["categories"] == ["Books", "Literature & Fiction"]
    assert (products["B0000AAAA2"]["price"], products["B0000AAAA2"]["brand"]) == (7.25, "1984")

    fashion = products["B0000BBBB1"]
    assert (fashion["title"], fashion["main_cat"], fashion["categories"]) == (None, "Amazon Fashion", ["Gift Cards"])

    # Null is null: no stored string stands for a missing value, in any field.
    stored = [s for p in products.values() for s in _strings(p)]
    assert not {s for s in stored if s.strip() in {"", "None", "nan", "null", "[]", "{}"}}
    assert not [s for s in stored if "<span" in s or "&amp;" in s]

    # 2023 reviews and items are keyed alike, so they join: the review names the parent product.
    assert {r["asin"] for r in db[mongo.REVIEWS].find({"category": "Mixed"})} <= set(products)


def test_2023_reviews_are_keyed_by_their_parent_product(
    materialise: Materialise, db: Database[mongo.Document], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    variant_review = {
        "rating": 5.0, "title": "t", "text": "x", "asin": "B0VARIANT1", "parent_asin": "B0PARENT01",
        "user_id": "U23", "timestamp": 1588687728923, "helpful_vote": 0, "verified_purchase": True,
    }  # fmt: skip
    write_lines(data / "Items.json", [variant_review])
    write_lines(data / "meta_Items.json", [{"parent_asin": "B0PARENT01", "title": "Parent", "images": []}])
    materialise(data, "Items")
    loaded = db[mongo.REVIEWS].find_one({"reviewerID": "U23"})
    assert loaded is not None
    assert loaded["asin"] == "B0PARENT01"
    assert db[mongo.PRODUCTS].find_one({"_id": loaded["asin"]}) is not None

"""Bad lines never kill a run and are never silently dropped: exact quarantine counts and reasons."""

from __future__ import annotations

import json
from pathlib import Path

from pymongo.database import Database

from recsys_core import mongo
from tests.ingest.conftest import Materialise
from tests.ingest.helpers import review, write_lines


def test_crafted_bad_lines_are_quarantined_with_reasons(
    materialise: Materialise, db: Database[mongo.Document], tmp_path: Path
) -> None:
    good = review("U1", "B000000001")
    lines: list[str | dict[str, object]] = [
        good,  # 1
        review("U2", "B000000001", 4.0, vote="1,234", style={"Size:": " 7 oz"}, image=["https://x/1.jpg"]),  # 2
        "{not json",  # 3
        "",  # 4
        "[1, 2, 3]",  # 5
        {k: v for k, v in good.items() if k != "reviewerID"},  # 6
        review("U3", ""),  # 7
        review("U4", "B000000002", 7.0),  # 8
        review("U5", "B000000002", "five"),  # type: ignore[arg-type]  # 9
        {k: v for k, v in review("U6", "B000000002").items() if k != "overall"},  # 10
        review("U7", "B000000002", vote="lots"),  # 11
        review("U8", "B000000002", t="yesterday"),  # type: ignore[arg-type]  # 12
        review("U9", "B000000002", style="big"),  # 13
        good,  # 14: exact duplicate of line 1
        json.dumps(good, indent=None, separators=(",", ":")),  # 15: same record, other spacing
        review("U10", "B000000003", 0.0),  # 16
    ]
    data = tmp_path / "data"
    data.mkdir()
    write_lines(data / "Crafted_5.json.gz", lines)

    meta = materialise(data, "Crafted")["raw_reviews"]

    expected_reasons = {
        "invalid_json": 2,
        "empty_line": 1,
        "missing_reviewerID": 1,
        "missing_asin": 1,
        "rating_out_of_range": 2,
        "wrong_type:overall": 1,
        "missing_rating": 1,
        "wrong_type:vote": 1,
        "wrong_type:unixReviewTime": 1,
        "wrong_type:style": 1,
    }
    assert meta["quarantine_reasons"] == [{"reason": r, "lines": n} for r, n in sorted(expected_reasons.items())]
    assert (meta["lines_read"], meta["loaded"], meta["duplicate"], meta["quarantined"]) == (16, 2, 2, 12)

    quarantined = {d["line_number"]: d for d in db[mongo.QUARANTINE].find({"category": "Crafted"})}
    assert sorted(quarantined) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 16]
    assert quarantined[3]["reason"] == "invalid_json"
    assert quarantined[3]["raw"] == "{not json"
    assert quarantined[8]["reason"] == "rating_out_of_range"
    assert {d["source_file"] for d in quarantined.values()} == {"Crafted_5.json.gz"}

    loaded = {d["reviewerID"]: d for d in db[mongo.REVIEWS].find({"category": "Crafted"})}
    assert sorted(loaded) == ["U1", "U2"]
    assert loaded["U2"]["vote"] == 1234
    assert loaded["U2"]["style"] == {"Size:": " 7 oz"}
    assert loaded["U2"]["image"] == ["https://x/1.jpg"]
    assert loaded["U1"]["line_number"] == 1  # the first occurrence is the one kept


def test_bad_metadata_lines_are_quarantined(
    materialise: Materialise, db: Database[mongo.Document], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_lines(data / "Shop_5.json", [review("U1", "B00000000A")])
    write_lines(
        data / "meta_Shop.json",
        [
            {"asin": "B00000000A", "title": "Soap &amp; <b>Bar</b>", "price": "$1,234.50",
             "imageURL": ["", "https://img/a.jpg"], "imageURLHighRes": [], "rank": ["12 in Beauty (", "3 in Soap"]},
            {"asin": "B00000000B", "title": "<span>Plain</span>", "price": ".a-box-inner{background-color:#fff}",
             "image": ["https://img/b.jpg"], "rank": "1,234 in Beauty ("},
            {"asin": "B00000000C", "title": "Ranged", "price": "$10.00 - $20.00"},
            {"title": "no asin"},
            "<html>",
            {"asin": "B00000000A", "title": "Soap again"},
        ],
    )  # fmt: skip
    meta = materialise(data, "Shop")["raw_products"]
    assert (meta["lines_read"], meta["loaded"], meta["duplicate"], meta["quarantined"]) == (6, 3, 1, 2)
    assert meta["quarantine_reasons"] == [
        {"reason": "invalid_json", "lines": 1},
        {"reason": "missing_asin", "lines": 1},
    ]

    products = {p["_id"]: p for p in db[mongo.PRODUCTS].find()}
    assert products["B00000000A"]["title"] == "Soap & Bar"
    assert products["B00000000A"]["price"] == 1234.5
    assert products["B00000000A"]["image"] == "https://img/a.jpg"
    assert products["B00000000A"]["rank"] == "12 in Beauty ("
    assert products["B00000000B"]["title"] == "Plain"
    assert products["B00000000B"]["price"] is None
    assert products["B00000000B"]["image"] == "https://img/b.jpg"
    assert products["B00000000C"]["price"] == 10.0
    assert products["B00000000C"]["image"] is None

"""The real Amazon 2018 files load with exact counts, and loading again changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from pymongo.database import Database

from recsys_core import mongo
from tests.ingest.conftest import Materialise

# (file, lines read, loaded, duplicate, quarantined): the duplicates are the exact duplicate
# lines listed in ../shared/data/amazon2018/README.md.
REAL_REVIEW_COUNTS = [
    ("All_Beauty", 5269, 4242, 1027, 0),
    ("AMAZON_FASHION", 3176, 3108, 68, 0),
    ("Appliances", 2277, 206, 2071, 0),
    ("Gift_Cards", 2972, 2972, 0, 0),
]


def _one_category(real_data_dir: Path, tmp_path: Path, category: str) -> Path:
    """A data folder holding only this category's files (links, never copies into the project)."""
    folder = tmp_path / "data"
    folder.mkdir()
    for source in real_data_dir.glob(f"*{category}*.json.gz"):
        (folder / source.name).symlink_to(source)
    return folder


@pytest.mark.parametrize(("category", "read", "loaded", "duplicate", "quarantined"), REAL_REVIEW_COUNTS)
def test_real_review_file_counts(
    materialise: Materialise,
    db: Database[mongo.Document],
    real_data_dir: Path,
    tmp_path: Path,
    category: str,
    read: int,
    loaded: int,
    duplicate: int,
    quarantined: int,
) -> None:
    meta = materialise(_one_category(real_data_dir, tmp_path, category), category)["raw_reviews"]
    assert (meta["lines_read"], meta["loaded"], meta["duplicate"], meta["quarantined"]) == (
        read,
        loaded,
        duplicate,
        quarantined,
    )
    assert db[mongo.REVIEWS].count_documents({"category": category}) == loaded
    assert db[mongo.QUARANTINE].count_documents({"category": category}) == quarantined
    assert "asin_hashed" in db[mongo.REVIEWS].index_information()
    assert db[mongo.REVIEWS].index_information()["asin_hashed"]["key"] == [("asin", "hashed")]


def test_real_metadata_is_cleaned(materialise: Materialise, db: Database[mongo.Document], real_data_dir: Path,
                                  tmp_path: Path) -> None:  # fmt: skip
    meta = materialise(_one_category(real_data_dir, tmp_path, "Gift_Cards"), "Gift_Cards")["raw_products"]
    assert (meta["lines_read"], meta["loaded"], meta["duplicate"], meta["quarantined"]) == (1547, 1547, 0, 0)
    products = db[mongo.PRODUCTS]
    assert products.count_documents({}) == 1547
    assert products.count_documents({"title": {"$regex": "<[a-zA-Z/]"}}) == 0  # no tag, closed or not
    assert products.count_documents({"description": {"$regex": "<[a-zA-Z/]|&(amp|lt|gt|quot|#[0-9]+);"}}) == 0
    assert meta["titles_missing"] == products.count_documents({"title": None})
    assert products.count_documents({"brand": {"$in": ["", "None", "nan"]}}) == 0
    priced = products.count_documents({"price": {"$type": "double"}})
    assert 0 < priced < 1547  # most real prices are empty or junk, and those become null
    assert products.count_documents({"price": {"$type": "string"}}) == 0
    assert products.count_documents({"image": {"$type": "array"}}) == 0
    assert products.count_documents({"image": {"$regex": "^https?://"}}) > 0


def test_materialising_again_changes_nothing(
    materialise: Materialise, db: Database[mongo.Document], real_data_dir: Path, tmp_path: Path
) -> None:
    data = _one_category(real_data_dir, tmp_path, "All_Beauty")
    first = materialise(data, "All_Beauty")["raw_reviews"]
    before = list(db[mongo.REVIEWS].find({"category": "All_Beauty"}).sort("_id"))
    second = materialise(data, "All_Beauty")["raw_reviews"]
    after = list(db[mongo.REVIEWS].find({"category": "All_Beauty"}).sort("_id"))
    counted = ("lines_read", "loaded", "duplicate", "quarantined", "documents_in_partition")
    assert [first[k] for k in counted] == [second[k] for k in counted]
    assert second["stale_removed"] == 0
    assert before == after
    assert len(after) == 4242

"""Category partitions load independently; the 2014 and 2023 formats map onto the 2018 schema."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from dagster import DagsterInstance, SensorResult, build_sensor_context
from pymongo.database import Database

from recsys_assets.data_files import discover
from recsys_assets.definitions import build_resources
from recsys_assets.ingest.assets import CATEGORY, FINGERPRINT, category_files_sensor
from recsys_assets.resources import RawDataResource
from recsys_core import mongo
from recsys_core.settings import Settings
from tests.ingest.conftest import Materialise
from tests.ingest.helpers import review, write_lines


def _snapshot(db: Database[mongo.Document], category: str) -> list[mongo.Document]:
    return list(db[mongo.REVIEWS].find({"category": category}).sort("_id"))


def test_two_partitions_load_independently(
    materialise: Materialise, db: Database[mongo.Document], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_lines(data / "Alpha_5.json.gz", [review(f"A{i}", f"B00000000{i % 3}") for i in range(6)])
    write_lines(data / "Beta.json", [review(f"B{i}", f"C00000000{i % 2}", 3.0) for i in range(4)])

    assert materialise(data, "Alpha")["raw_reviews"]["loaded"] == 6
    assert db[mongo.REVIEWS].count_documents({"category": "Beta"}) == 0  # only Alpha was loaded
    assert materialise(data, "Beta")["raw_reviews"]["loaded"] == 4
    beta_before = _snapshot(db, "Beta")

    # Alpha's file shrinks: reloading Alpha removes its stale reviews and leaves Beta alone.
    write_lines(data / "Alpha_5.json.gz", [review(f"A{i}", f"B00000000{i % 3}") for i in range(2)])
    meta = materialise(data, "Alpha")["raw_reviews"]
    assert (meta["loaded"], meta["stale_removed"], meta["documents_in_partition"]) == (2, 4, 2)
    assert _snapshot(db, "Beta") == beta_before
    assert {d["reviewerID"] for d in _snapshot(db, "Alpha")} == {"A0", "A1"}


def test_2014_and_2023_formats_map_to_the_2018_schema(
    materialise: Materialise, db: Database[mongo.Document], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_lines(
        data / "Mixed.json",
        [
            {"reviewerID": "OLD1", "asin": "0000031852", "reviewerName": "x", "helpful": [2, 3],
             "reviewText": "old text", "overall": 4.0, "summary": "old", "unixReviewTime": 1297468800,
             "reviewTime": "02 12, 2011"},
            {"rating": 3.0, "title": "new title", "text": "new text", "images": [{"large_image_url": "https://l.jpg"}],
             "asin": "B01N0TQ0OH", "parent_asin": "B01N0TQ0OH", "user_id": "AGKHLEW2SOWHNMFQIJGBECAF7INQ",
             "timestamp": 1588687728923, "helpful_vote": 2, "verified_purchase": True},
        ],
    )  # fmt: skip
    meta = materialise(data, "Mixed")["raw_reviews"]
    assert (meta["loaded"], meta["quarantined"]) == (2, 0)
    old = db[mongo.REVIEWS].find_one({"reviewerID": "OLD1"})
    new = db[mongo.REVIEWS].find_one({"reviewerID": "AGKHLEW2SOWHNMFQIJGBECAF7INQ"})
    assert old is not None
    assert new is not None
    assert (old["overall"], old["vote"], old["unixReviewTime"], old["summary"]) == (4.0, 2, 1297468800, "old")
    assert (new["overall"], new["vote"], new["verified"], new["unixReviewTime"]) == (3.0, 2, True, 1588687728)
    assert (new["summary"], new["reviewText"], new["image"]) == ("new title", "new text", ["https://l.jpg"])
    assert new["reviewTime"] == "05 5, 2020"


def _sensor(instance: DagsterInstance, data: Path, settings: Settings) -> Callable[[str | None], SensorResult]:
    """Evaluate category_files_sensor on ``data`` with a cursor, as the daemon would."""
    mongo_resource = build_resources(settings)["mongo"]

    def evaluate(cursor: str | None) -> SensorResult:
        resources = {"raw_data": RawDataResource(data_dir=str(data)), "mongo": mongo_resource}
        result = category_files_sensor(build_sensor_context(instance=instance, resources=resources, cursor=cursor))
        assert isinstance(result, SensorResult)
        return result

    return evaluate


def test_sensor_adds_new_categories_and_reloads_changed_files(
    tmp_path: Path, db: Database[mongo.Document], running_services: Settings
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_lines(data / "Alpha_5.json", [review("A", "B0")])
    instance = DagsterInstance.ephemeral()
    evaluate = _sensor(instance, data, running_services)

    first = evaluate(None)
    assert [r.partition_keys for r in first.dynamic_partitions_requests or []] == [["Alpha"]]
    assert [r.partition_key for r in first.run_requests or []] == ["Alpha"]
    instance.add_dynamic_partitions(CATEGORY, ["Alpha"])

    quiet = evaluate(first.cursor)
    assert quiet.run_requests == []

    write_lines(data / "meta_Beta.json", [{"asin": "B0", "title": "t"}])
    landed = evaluate(first.cursor)
    assert [r.partition_keys for r in landed.dynamic_partitions_requests or []] == [["Beta"]]
    assert [r.partition_key for r in landed.run_requests or []] == ["Beta"]


def test_a_fresh_sensor_does_not_reload_what_mongodb_already_holds(
    materialise: Materialise,
    instance: DagsterInstance,
    db: Database[mongo.Document],
    running_services: Settings,
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    write_lines(data / "Alpha_5.json", [review("A", "B0"), review("B", "B1")])
    write_lines(data / "meta_Alpha.json", [{"asin": "B0", "title": "t"}])
    write_lines(data / "Beta.json", [review("C", "B2")])
    meta = materialise(data, "Alpha")
    assert meta["raw_reviews"][FINGERPRINT] == meta["raw_products"][FINGERPRINT]
    assert [f["file"] for f in meta["raw_reviews"]["files"]] == ["Alpha_5.json"]
    evaluate = _sensor(instance, data, running_services)

    # A new daemon (no cursor): Alpha is loaded with these very files; Beta was never loaded.
    fresh = evaluate(None)
    assert [r.partition_key for r in fresh.run_requests or []] == ["Beta"]
    assert [r.partition_keys for r in fresh.dynamic_partitions_requests or []] == [["Beta"]]

    # A changed file of Alpha is loaded again, with a cursor (Beta was requested already) or without.
    os.utime(data / "meta_Alpha.json", ns=(0, 1_000_000_000))
    assert [r.partition_key for r in evaluate(fresh.cursor).run_requests or []] == ["Alpha"]
    assert [r.partition_key for r in evaluate(None).run_requests or []] == ["Alpha", "Beta"]

    # What the instance records but MongoDB no longer holds is loaded again.
    materialise(data, "Alpha")
    assert [r.partition_key for r in evaluate(None).run_requests or []] == ["Beta"]
    db[mongo.REVIEWS].delete_many({"category": "Alpha"})
    assert [r.partition_key for r in evaluate(None).run_requests or []] == ["Alpha", "Beta"]

    for run in instance.get_runs():  # each load says what it read and wrote
        assert (run.tags["recsys/data_dir"], run.tags["recsys/mongo_db"]) == (str(data), db.name)


def test_2014_review_files_join_their_meta_file_in_one_category(tmp_path: Path) -> None:
    """The 2014 release names review files reviews_<Category>[_5].json.gz beside meta_<Category>.json.gz."""
    for name in ("reviews_Toys_and_Games_5.json.gz", "meta_Toys_and_Games.json.gz", "reviews_Books.json"):
        (tmp_path / name).write_text("")
    found = discover(tmp_path)
    assert list(found) == ["Books", "Toys_and_Games"]
    assert [p.name for p in found["Toys_and_Games"].review_files] == ["reviews_Toys_and_Games_5.json.gz"]
    assert [p.name for p in found["Toys_and_Games"].meta_files] == ["meta_Toys_and_Games.json.gz"]

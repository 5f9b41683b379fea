"""Reloads that must not lose or break anything: a product shared by categories, and a Spark task retried."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pymongo.database import Database

from recsys_core import mongo
from recsys_core.settings import PROJECT_ROOT
from tests.ingest.conftest import Materialise
from tests.ingest.helpers import review, write_lines
from tests.ingest.retry_job import ROWS


def product(asin: str, title: str) -> dict[str, str]:
    return {"asin": asin, "title": title}


def test_a_product_stays_while_any_category_lists_it(
    materialise: Materialise, db: Database[mongo.Document], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for category in ("Alpha", "Beta"):
        write_lines(data / f"{category}_5.json", [review("U1", "SHARED0001")])
    write_lines(data / "meta_Alpha.json", [product("ALPHA00001", "only Alpha"), product("SHARED0001", "shared")])
    write_lines(data / "meta_Beta.json", [product("SHARED0001", "shared"), product("BETA000001", "only Beta")])
    materialise(data, "Alpha")
    materialise(data, "Beta")  # the shared product is now Beta's document
    assert db[mongo.PRODUCTS].find_one({"_id": "SHARED0001"}, {"source_category": 1}) == {
        "_id": "SHARED0001",
        "source_category": "Beta",
    }

    write_lines(data / "meta_Beta.json", [product("BETA000001", "only Beta")])  # Beta drops it; Alpha lists it
    meta = materialise(data, "Beta")["raw_products"]
    assert (meta["loaded"], meta["stale_removed"], meta["documents_in_partition"]) == (1, 0, 1)
    products = {p["_id"]: p["source_category"] for p in db[mongo.PRODUCTS].find()}
    assert products == {"ALPHA00001": "Alpha", "SHARED0001": "Alpha", "BETA000001": "Beta"}
    assert db[mongo.PRODUCTS].count_documents({"source_category": "Alpha"}) == 2  # Alpha's counts still add up

    write_lines(data / "meta_Alpha.json", [product("ALPHA00001", "only Alpha")])  # now nobody lists it
    meta = materialise(data, "Alpha")["raw_products"]
    assert (meta["loaded"], meta["stale_removed"], meta["documents_in_partition"]) == (1, 1, 1)
    assert {p["_id"] for p in db[mongo.PRODUCTS].find()} == {"ALPHA00001", "BETA000001"}
    assert db[mongo.PRODUCT_LISTINGS].count_documents({}) == 2


def test_a_first_load_survives_a_spark_task_retry(db: Database[mongo.Document], tmp_path: Path) -> None:
    """A task that fails after writing is retried (local[2,2]); its retry meets the documents already written."""
    marker = tmp_path / "first-attempts"
    env = {**os.environ, "RECSYS_SPARK_MASTER": "local[2,2]", "RECSYS_SPARK_DRIVER_MEMORY": "1g"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.ingest.retry_job", "Retried", str(marker)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"stale_removed": 0}
    written_before_failing = [int(line) for line in marker.read_text().split()]
    assert written_before_failing[0] > 0, "the failed first attempt had written documents"
    stored = list(db[mongo.REVIEWS].find({"category": "Retried"}, {"n": 1}))
    assert len(stored) == ROWS
    assert {d["_id"]: d["n"] for d in stored} == {f"Retried-{n}": n for n in range(ROWS)}

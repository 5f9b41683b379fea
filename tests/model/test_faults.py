"""The Spark driver killed while it publishes: the collection it was publishing is untouched, and a rerun publishes.

The publishers run in a process of their own (``publish_job.py``), which the test SIGKILLs,
with its JVM and Spark's Python workers, at the last moment of a publish: the staging copy of
one collection written and checked, its swap not yet made. Nothing of the publisher runs
afterwards, no ``except`` and no ``finally``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pymongo.database import Database

from recsys_assets.model.handles import EvaluationHandle
from recsys_assets.model.publishing import PUBLISHED, drop_leftover_staging, staging_name
from recsys_assets.model.store import LEASE
from recsys_assets.runs import failure_causes
from recsys_core import mongo
from recsys_core.services.process import alive
from recsys_core.settings import PROJECT_ROOT
from tests.model.conftest import MODEL_ASSETS, PUBLISHERS, UNTUNED, Pipeline, handle
from tests.web.conftest import wait_until

HELD = mongo.ITEM_FACTORS
"""The collection whose swap the killed driver never makes."""
JUDGED_AS_TOO_SMALL = {"min_heldout_ratings": 1_000_000}
"""Every new model is served, whatever its metrics, so every publisher writes (none is held back by the gate)."""


def _served(db: Database[mongo.Document]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Each served collection's MongoDB hash of all its documents, and its versions."""
    names = [document.collection for document in PUBLISHED]
    hashes = db.command("dbHash", collections=names)["collections"]
    return {name: (hashes.get(name, "absent"), tuple(sorted(db[name].distinct("model_version")))) for name in names}


def _staging(db: Database[mongo.Document]) -> list[str]:
    return sorted(db.list_collection_names(filter={"name": {"$regex": "__staging_"}}))


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (the JVM, and Spark's Python workers in a process group of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(current := todo.pop())
        todo.extend(children.get(current, []))
    return tree


@pytest.fixture
def pipeline(ingested: Pipeline, tmp_path: Path) -> Iterator[Pipeline]:
    """The ingested files in a database and Dagster instance of the test's own; it trains its own models."""
    own = ingested.isolated(tmp_path / "model_store")
    yield own
    own.db.client.drop_database(own.db.name)


def _train(pipeline: Pipeline, assets: list[str]) -> EvaluationHandle:
    """A new model (a newer version than any before) judged, through ``assets``."""
    result = pipeline.run(assets, als_model=UNTUNED, model_evaluation=JUDGED_AS_TOO_SMALL)
    assert result.success, failure_causes(result)
    return handle(result, "model_evaluation", EvaluationHandle)


def test_a_driver_killed_while_publishing_leaves_the_served_collections_and_a_rerun_publishes(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    served = _train(pipeline, MODEL_ASSETS)
    before = _served(pipeline.db)
    assert {versions for _, versions in before.values()} == {(served.model.version,)}

    newer = _train(pipeline, ["als_model", "model_evaluation"])
    assert newer.model.version > served.model.version
    handles = tmp_path / "handles.json"
    handles.write_text(json.dumps({"model_evaluation": newer.model_dump(mode="json")}))
    env = {**os.environ, "RECSYS_MONGO_DB": pipeline.db.name, "RECSYS_SPARK_DRIVER_MEMORY": "1g"}
    log, marker = tmp_path / "driver.log", tmp_path / "held"
    with log.open("w") as output:
        driver = subprocess.Popen(
            [sys.executable, "-m", "tests.model.publish_job", str(handles), str(pipeline.store), HELD, str(marker)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, which the JVM joins
        )

    def held() -> str:
        assert driver.poll() is None, f"the publish ended before it was killed:\n{log.read_text()[-3000:]}"
        return marker.read_text() if marker.exists() else ""

    staging = wait_until(held, f"the driver to hold the swap of {HELD}", timeout_s=600)
    processes = _tree(driver.pid)
    os.killpg(driver.pid, signal.SIGKILL)
    for pid in processes:
        if alive(pid):  # a Python worker in its own process group
            os.kill(pid, signal.SIGKILL)
    driver.wait()
    wait_until(lambda: not any(alive(pid) for pid in processes), "the driver, its JVM and workers to end")
    assert len(processes) > 1, "the JVM was among the processes killed"

    # The collection being published is untouched, its complete staging copy left beside it. Each
    # other one is untouched (not yet published) or wholly the newer model's (published before).
    served_now = _served(pipeline.db)
    assert served_now[HELD] == before[HELD], f"{HELD} changed before its swap"
    for name, (digest, versions) in served_now.items():
        assert (digest, versions) == before[name] or versions == (newer.model.version,), f"{name} is half-published"
    assert staging == staging_name(HELD, newer.model.version)
    assert _staging(pipeline.db) == [staging], "the staging copy of the killed publish is left, and only it"
    assert pipeline.db[staging].estimated_document_count() > 0

    # The killed run's lease on the model store lapses (it renews no more); then the next run publishes.
    def lapsed() -> bool:
        return pipeline.db[mongo.LOCKS].find_one({"_id": LEASE, "expires_at": {"$gte": datetime.now(UTC)}}) is None

    wait_until(lapsed, "the killed run's lease to lapse", timeout_s=60)
    rerun = _train(pipeline, ["als_model", "model_evaluation", *PUBLISHERS])
    assert rerun.model.version > newer.model.version
    after = _served(pipeline.db)
    assert {versions for _, versions in after.values()} == {(rerun.model.version,)}
    assert _staging(pipeline.db) == [], "a staging copy was left behind"


def test_a_publish_drops_the_staging_copies_up_to_its_version_and_keeps_newer_ones(
    db: Database[mongo.Document],
) -> None:
    """Older copies are left by killed publishers (and its own by an earlier attempt); a newer run may still write."""
    older, own, newer = (
        "20200101T000000000000Z-00000001",
        "20250101T000000000000Z-00000002",
        "20300101T000000000000Z-00000003",
    )
    for target, version in [
        (mongo.POPULAR, older),
        (mongo.POPULAR, own),
        (mongo.POPULAR, newer),
        (mongo.ITEM_FACTORS, older),
    ]:
        db[staging_name(target, version)].insert_one({"_id": "a document"})

    dropped = drop_leftover_staging(db, mongo.POPULAR, own)

    assert dropped == [staging_name(mongo.POPULAR, older), staging_name(mongo.POPULAR, own)]
    assert _staging(db) == sorted([staging_name(mongo.POPULAR, newer), staging_name(mongo.ITEM_FACTORS, older)])

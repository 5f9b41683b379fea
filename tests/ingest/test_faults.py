"""mongod killed in the middle of a ``raw_reviews`` load: restarted, the load run again, nothing lost or doubled.

The test has a mongod of its own (its own port and data folder), so the session's is never
killed. It loads generated files twice on it: once undisturbed into one database (the
reference), once into another while the test SIGKILLs mongod as soon as part of the
partition is written. mongod is restarted on the same data folder by the project's service
code and the partition materialised again; the second database must then equal the first.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, ExecuteInProcessResult, materialize
from pymongo.database import Database

from recsys_assets.definitions import build_resources
from recsys_assets.ingest.assets import CATEGORY, raw_reviews
from recsys_assets.resources import RawDataResource
from recsys_assets.runs import failure_causes, materialisation_metadata
from recsys_core import mongo
from recsys_core.connections import project_database
from recsys_core.services.mongod import MongoService
from recsys_core.services.process import alive
from recsys_core.settings import Settings
from recsys_datagen.generate import generate
from recsys_datagen.shape import DUPLICATE_RATE
from tests.web.conftest import unused_port, wait_until

KILLED = "Killed"
LINES = 20_000
"""Enough lines that the write takes a while (seconds), so the kill lands while it runs."""
BAD_LINES = ['{"overall": 5.0, "reviewerID": "A1"', "", '{"overall": 9.0, "reviewerID": "A1", "asin": "B1"}']


@pytest.fixture
def own_mongod(tmp_path: Path, running_services: Settings) -> Iterator[MongoService]:
    """A mongod of the test's own to kill (the session's must keep running); stopped afterwards."""
    settings = running_services.model_copy(
        update={"state_dir": tmp_path / "state", "mongo_port": unused_port(), "mongo_timeout_ms": 10_000}
    )
    service = MongoService(settings)
    service.up()
    yield service
    service.down()


def _load(service: MongoService, database: str, data_dir: Path, instance: DagsterInstance) -> ExecuteInProcessResult:
    """Materialise the ``raw_reviews`` partition of KILLED into ``database``, as the ingest job does.

    The connector is told to give up on a mongod it cannot reach after 2 s instead of its 30 s,
    so that the killed load fails sooner; nothing else differs from the managed mongod's URI.
    """
    uri = f"{service.settings.effective_mongo_uri}&serverSelectionTimeoutMS=2000"
    settings = service.settings.model_copy(update={"mongo_db": database, "mongo_uri": uri})
    resources = {**build_resources(settings), "raw_data": RawDataResource(data_dir=str(data_dir))}
    return materialize(
        [raw_reviews], partition_key=KILLED, instance=instance, resources=resources, raise_on_error=False
    )


def _database(service: MongoService, name: str) -> Database[mongo.Document]:
    return project_database(service.settings.model_copy(update={"mongo_db": name}))


def _hash(db: Database[mongo.Document], collection: str) -> str:
    """MongoDB's own hash of every document of ``collection``, in ``_id`` order."""
    return str(db.command("dbHash", collections=[collection])["collections"][collection])


def test_mongod_killed_mid_load_then_restarted_and_rerun_equals_a_clean_load(
    own_mongod: MongoService, spark: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    generate(data, LINES, categories=[KILLED], compress=False)  # uncompressed: both Spark tasks write at once
    with (data / f"{KILLED}_5.json").open("a") as reviews:  # and some lines for quarantine
        reviews.write("".join(f"{line}\n" for line in BAD_LINES))
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(CATEGORY, [KILLED])

    clean = _load(own_mongod, "clean", data, instance)
    assert clean.success, failure_causes(clean)
    expected = materialisation_metadata(clean)["raw_reviews"]
    assert (expected["quarantined"], expected["duplicate"]) == (
        len(BAD_LINES),
        round(LINES * DUPLICATE_RATE),
    )  # every bucket has some

    pid = own_mongod.status().pid
    assert pid is not None
    reloaded = _database(own_mongod, "reloaded")
    written_when_killed: list[int] = []

    def kill_mid_load() -> None:
        """SIGKILL mongod once the partition is partly written."""
        written = wait_until(
            lambda: reloaded[mongo.REVIEWS].count_documents({"category": KILLED}), "the load to write", 120
        )
        os.kill(pid, signal.SIGKILL)
        written_when_killed.append(written)

    killer = threading.Thread(target=kill_mid_load, daemon=True)
    killer.start()
    killed = _load(own_mongod, "reloaded", data, instance)
    killer.join()
    assert not alive(pid)
    assert not killed.success, "the load went on without its mongod"
    assert 0 < written_when_killed[0] < expected["loaded"], "the kill did not land in the middle of the load"

    own_mongod.up()  # the project's service code, on the same port and data folder: journal recovery
    rerun = _load(own_mongod, "reloaded", data, instance)
    assert rerun.success, failure_causes(rerun)
    # The rerun's checks (counts_add_up: every line read is loaded, a duplicate or quarantined) passed.
    assert all(check.passed for check in rerun.get_asset_check_evaluations())

    got = materialisation_metadata(rerun)["raw_reviews"]
    counts = ("lines_read", "loaded", "duplicate", "quarantined", "documents_in_partition", "quarantine_reasons")
    assert {k: got[k] for k in counts} == {k: expected[k] for k in counts}
    assert got["stale_removed"] == 0

    clean_db = _database(own_mongod, "clean")
    for collection in (mongo.REVIEWS, mongo.QUARANTINE):
        # The same number of documents, the same ids (so none lost, none doubled), the same content.
        assert reloaded[collection].count_documents({}) == clean_db[collection].count_documents({})
        assert set(reloaded[collection].distinct("_id")) == set(clean_db[collection].distinct("_id"))
        assert _hash(reloaded, collection) == _hash(clean_db, collection)
    assert reloaded[mongo.REVIEWS].count_documents({}) == expected["loaded"]
    assert reloaded[mongo.QUARANTINE].count_documents({}) == expected["quarantined"]
    reloaded.client.close()
    clean_db.client.close()

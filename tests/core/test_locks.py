"""Leases in the real MongoDB: one holder at a time, a clear refusal, release, and lapse after a crash."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from pymongo.database import Database

from recsys_core import mongo
from recsys_core.locks import Lease, LockHeld


def test_a_held_lease_refuses_a_second_holder_and_names_the_first(db: Database[mongo.Document]) -> None:
    with Lease(db, "model_store", owner="run A"):
        with pytest.raises(LockHeld, match=r"'model_store' lock is held by run A \(pid \d+ on .+, since .+ UTC\)"):
            Lease(db, "model_store", owner="run B").acquire()
        with Lease(db, "pipeline", owner="run B"):  # another name is another lock
            pass
    with Lease(db, "model_store", owner="run B") as lease:  # released: the next holder gets it
        holder = lease.holder()
        assert holder is not None
        assert holder.owner == "run B"
    assert Lease(db, "model_store", owner="nobody").holder() is None


def test_a_lease_whose_holder_died_lapses(db: Database[mongo.Document]) -> None:
    crashed = Lease(db, "model_store", owner="crashed run", ttl_s=60)
    crashed.acquire()
    crashed._stop.set()  # the holder dies: no more renewals
    db[mongo.LOCKS].update_one(
        {"_id": "model_store"}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}}
    )
    with Lease(db, "model_store", owner="next run") as lease:
        holder = lease.holder()
        assert holder is not None
        assert holder.owner == "next run"


def test_the_holder_renews_its_lease_while_it_works(db: Database[mongo.Document]) -> None:
    with Lease(db, "model_store", owner="long run", ttl_s=0.6):
        first = db[mongo.LOCKS].find_one({"_id": "model_store"})
        deadline = time.monotonic() + 10
        renewed = first
        while renewed == first and time.monotonic() < deadline:
            time.sleep(0.05)
            renewed = db[mongo.LOCKS].find_one({"_id": "model_store"})
        assert first is not None
        assert renewed is not None
        assert renewed["expires_at"] > first["expires_at"]
        with pytest.raises(LockHeld):  # well past the first ttl, the lease is still held
            Lease(db, "model_store", owner="other").acquire()

"""Leases in MongoDB: at most one holder of a named lock at a time, across processes and hosts.

Two model runs at once would race on the published collections, and two ``recsys run`` at
once would ingest the same files twice; a lease refuses the second with the name of the
first. It lives in MongoDB because every process of a deployment (CLI, Dagster daemon, Spark
driver on any host) already reaches it. The holder renews the lease while it works; a holder
that dies stops renewing, and its lease lapses after ``ttl_s``, so a crash never locks the
project for good.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from recsys_core import mongo

log = logging.getLogger(__name__)


class LockHeld(RuntimeError):
    """Another holder has the lease; the message says who, since when, and what to do."""


@dataclass(frozen=True)
class Holder:
    owner: str
    host: str
    pid: int
    acquired_at: datetime

    def describe(self) -> str:
        return f"{self.owner} (pid {self.pid} on {self.host}, since {self.acquired_at:%Y-%m-%d %H:%M:%S} UTC)"


class Lease:
    """``with Lease(db, "model", owner="run 1234"):`` holds the lock ``model`` for the block."""

    def __init__(self, db: Database[mongo.Document], name: str, owner: str, ttl_s: float = 60.0) -> None:
        self.database = db
        self._collection = db[mongo.LOCKS]
        self.name = name
        self.owner = owner
        self.ttl_s = ttl_s
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lease, or raise ``LockHeld`` naming the current holder."""
        now = datetime.now(UTC)
        claim = {
            "owner": self.owner,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "acquired_at": now,
            "expires_at": now + timedelta(seconds=self.ttl_s),
        }
        free = {"_id": self.name, "$or": [{"expires_at": {"$lt": now}}, {"owner": self.owner}]}
        try:
            # Matches a lapsed or own lease; with no match the upsert collides on _id, which means "held".
            self._collection.update_one(free, {"$set": claim}, upsert=True)
        except DuplicateKeyError:
            raise LockHeld(self._held_message()) from None
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name=f"lease-{self.name}", daemon=True)
        self._renewer.start()

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        self._collection.delete_one({"_id": self.name, "owner": self.owner})

    def holder(self) -> Holder | None:
        doc = self._collection.find_one({"_id": self.name, "expires_at": {"$gte": datetime.now(UTC)}})
        if doc is None:
            return None
        return Holder(str(doc["owner"]), str(doc["host"]), int(doc["pid"]), doc["acquired_at"])

    def _held_message(self) -> str:
        holder = self.holder()
        who = holder.describe() if holder else "another process (its lease has just lapsed; try again)"
        return (
            f"the {self.name!r} lock is held by {who}: only one may run at a time. "
            f"Wait for it to finish; a holder that died frees the lock within {self.ttl_s:.0f} s."
        )

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            expires = datetime.now(UTC) + timedelta(seconds=self.ttl_s)
            try:
                self._collection.update_one({"_id": self.name, "owner": self.owner}, {"$set": {"expires_at": expires}})
            except PyMongoError as exc:  # MongoDB is briefly away: try again at the next beat
                log.warning("could not renew the %r lease: %s", self.name, exc)

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.release()

"""The long-lived connections of one app: the MongoDB client, the impressions and interactions
publishers, the open streams, and the documents kept in memory (``cache``).

They are created lazily, on first use in a request, never in ``create_app``: under gunicorn
the app is built in the master and the workers are forked from it, and neither a MongoClient
nor a librdkafka handle survives a fork. ``close()`` releases them (gunicorn's worker_exit
hook and the test fixtures call it).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from flask import current_app
from pymongo import MongoClient
from pymongo.database import Database

from recsys_core import mongo
from recsys_core.connections import mongo_client
from recsys_web.cache import DocumentCache
from recsys_web.publisher import Publisher


class StreamSlots:
    """This process's open streams, counted per reviewer and in all, plus how many were ever opened.

    The per-reviewer cap is what keeps one account (ten tabs, or a script) from taking the
    slots of everybody else; the total cap keeps worker threads free for pages.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: Counter[str] = Counter()
        self.current = 0
        self.total = 0
        self.closing = threading.Event()
        """Set when this process is shutting down: every open stream ends at its next probe, with its retry hint."""

    def try_acquire(self, reviewer: str, per_reviewer: int, limit: int) -> str | None:
        """Take a slot for ``reviewer``; else the reason it was refused (the 429's message)."""
        with self._lock:
            if self._open[reviewer] >= per_reviewer:
                return f"You already have {per_reviewer} live streams open: close a tab, or wait for one to end."
            if self.current >= limit:
                return "The server has as many live streams open as it can hold: try again shortly."
            self._open[reviewer] += 1
            self.current += 1
            self.total += 1
            return None

    def release(self, reviewer: str) -> None:
        with self._lock:
            self._open[reviewer] -= 1
            if self._open[reviewer] <= 0:
                del self._open[reviewer]
            self.current -= 1


CACHED_COLLECTIONS = (mongo.SESSIONS, mongo.USERS, mongo.RECOMMENDATIONS)
"""What every request reads: the caller's session, account and list."""


class Resources:
    def __init__(self, config: Mapping[str, Any]) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._client: MongoClient[mongo.Document] | None = None
        self._schema_ready = False
        self._publishers: dict[str, Publisher] = {}
        self._releases: list[Callable[[], None]] = []
        self.streams = StreamSlots()
        self.cache = DocumentCache(CACHED_COLLECTIONS, int(config["READ_CACHE_ENTRIES"]))

    def on_close(self, release: Callable[[], None]) -> None:
        """Something else of this app's that ``close()`` releases (the rate limiter's own MongoDB client)."""
        self._releases.append(release)

    def database(self) -> Database[mongo.Document]:
        with self._lock:
            if self._client is None:
                self._client = mongo_client(
                    self._config["MONGO_URI"], self._config["MONGO_TIMEOUT_MS"], app_name="recsys-web"
                )
            db = self._client[self._config["MONGO_DB"]]
        # Outside the lock: with MongoDB down this waits for the server-selection timeout, and
        # other threads must not queue behind it. Running it twice is harmless (idempotent).
        if not self._schema_ready:
            for name in mongo.WEB_COLLECTIONS:
                mongo.ensure_collection(db, name)
            self._schema_ready = True
            self.cache.start(db)
        return db

    def publisher(self) -> Publisher:
        """The producer of the ``impressions`` topic."""
        return self._publisher_of(self._config["TOPIC_IMPRESSIONS"])

    def interactions(self) -> Publisher:
        """The producer of the ``interactions`` topic (ratings, clicks, views)."""
        return self._publisher_of(self._config["TOPIC_INTERACTIONS"])

    def ratings(self) -> Publisher:
        """The producer of ratings on the ``interactions`` topic: it gives a message up after
        KAFKA_TIMEOUT_S, the time a shopper waits for "recorded" or "not recorded"."""
        return self._publisher_of(self._config["TOPIC_INTERACTIONS"], "ratings", self._config["KAFKA_TIMEOUT_S"] * 1000)

    def _publisher_of(self, topic: str, name: str | None = None, message_timeout_ms: float | None = None) -> Publisher:
        with self._lock:
            name = name or topic
            if name not in self._publishers:
                self._publishers[name] = Publisher(
                    self._config["KAFKA_BOOTSTRAP_SERVERS"],
                    topic,
                    message_timeout_ms=int(message_timeout_ms or self._config["KAFKA_MESSAGE_TIMEOUT_MS"]),
                )
            return self._publishers[name]

    def close(self) -> None:
        self.cache.close()
        for release in self._releases:
            release()
        with self._lock:
            for publisher in self._publishers.values():
                publisher.close()
            self._publishers.clear()
            if self._client is not None:
                self._client.close()
                self._client = None
                self._schema_ready = False


def resources() -> Resources:
    """The resources of the app handling the current request."""
    res: Resources = current_app.extensions["recsys"]
    return res

"""What every request reads (the caller's session, account and list), kept in memory for as long
as a change stream proves it current.

Each API call and page needs three documents, and reading them was three round trips to
MongoDB: most of a request's time, and the reason the API ran at a third of a constant route
(issue 12). Each worker keeps what it read, and one change stream on the database, in a thread
of the worker, drops an entry as soon as its document is changed or deleted, or its collection
is dropped or renamed over (a publish's swap).

The rules that keep it from serving what MongoDB no longer holds, beyond the stream's delay
(milliseconds on one host):
- Nothing is kept while the stream is not open: entries are stored only while it runs, every
  entry is dropped when it fails, and until it runs again every read goes to MongoDB.
- A read that raced a change is not kept: the reader notes the stream's position before it
  reads, and stores its result only if the stream has seen no change to that document since.
- What this worker changes itself (a logout, a session refresh, a password change) is dropped
  at once, not after the stream's delay.

So a session that ends, or an account whose sessions are ended, on one worker or by
``recsys users link``, stops working on every other worker within the stream's delay, and a
list the online updater rewrites is served new within it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Hashable
from typing import Any

from pymongo.database import Database
from pymongo.errors import PyMongoError

from recsys_core import mongo

log = logging.getLogger(__name__)

Loaded = tuple[Any, Any] | None
"""What a loader read: ``(document _id, value to keep)``, or None when there is no such document."""

CHANGES_KEPT = 10_000
"""Changes remembered for readers in flight; a reader that started before the oldest stores nothing."""
AWAIT_MS = 200
"""How long one poll of the stream waits for a change: also how soon a closed cache's thread ends."""
RETRY_S = 1.0


class DocumentCache:
    """One worker's documents of ``collections``, each kept under the key it is looked up by."""

    def __init__(self, collections: Collection[str], max_entries: int) -> None:
        self._collections = frozenset(collections)
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, Hashable], tuple[Any, Any]] = OrderedDict()  # -> (_id, value)
        self._key_of: dict[tuple[str, Any], Hashable] = {}  # (collection, _id) -> lookup key
        self._changed: dict[tuple[str, Any], int] = {}  # (collection, _id) -> position of its last change
        self._changes: deque[tuple[int, tuple[str, Any]]] = deque()
        self._position = 0  # of the stream: one step per change seen
        self._oldest_trusted = 0  # a reader that started before this position stores nothing
        self._live = False
        self._changes_seen = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return self._max_entries > 0

    def start(self, database: Database[mongo.Document]) -> None:
        """Watch ``database`` from a thread of this process; idempotent."""
        with self._lock:
            if not self.enabled or self._thread is not None:
                return
            self._thread = threading.Thread(target=self._watch, args=(database,), name="document-cache", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop watching; the thread ends within one poll. Nothing is served from memory after this."""
        self._stop.set()
        with self._lock:
            self._live = False
            self._drop_all()

    def read(self, collection: str, key: Hashable, load: Callable[[], Loaded]) -> Any:
        """The value kept for ``key``, else what ``load`` reads (kept if no change raced it); None if none."""
        with self._lock:
            entry = self._entries.get((collection, key))
            if entry is not None:
                self._entries.move_to_end((collection, key))
                return entry[1]
            started = self._position if self._live else None
        loaded = load()
        if loaded is None:
            return None
        document_id, value = loaded
        if started is not None:
            self._keep(collection, key, document_id, value, started)
        return value

    def forget(self, collection: str, key: Hashable) -> None:
        """Drop ``key`` now: this worker has just changed its document. Readers in flight keep
        nothing either, since one may have read the document before the change (this worker's
        writes are rare: logins, logouts, password changes, a session's refresh once a minute)."""
        with self._lock:
            entry = self._entries.pop((collection, key), None)
            if entry is not None:
                self._key_of.pop((collection, entry[0]), None)
            self._position += 1
            self._oldest_trusted = self._position

    def holds(self, collection: str, key: Hashable) -> bool:
        with self._lock:
            return (collection, key) in self._entries

    def stats(self) -> dict[str, Any]:
        """For ``/healthz``: whether the stream runs (else every read goes to MongoDB), what is kept,
        and how many changes the stream has brought (each drops at most one entry)."""
        with self._lock:
            return {"live": self._live, "entries": len(self._entries), "changes_seen": self._changes_seen}

    def _keep(self, collection: str, key: Hashable, document_id: Any, value: Any, started: int) -> None:
        with self._lock:
            if not self._live or started < self._oldest_trusted:
                return
            if self._changed.get((collection, document_id), -1) > started:
                return  # changed while it was being read: what was read may be the old document
            self._entries[(collection, key)] = (document_id, value)
            self._key_of[(collection, document_id)] = key
            while len(self._entries) > self._max_entries:
                (old_collection, _), (old_id, _) = self._entries.popitem(last=False)
                self._key_of.pop((old_collection, old_id), None)

    def _changed_now(self, collection: str, document_id: Any) -> None:
        """Under the lock: the document changed; drop it and remember the change for readers in flight."""
        self._position += 1
        key = self._key_of.pop((collection, document_id), None)
        if key is not None:
            self._entries.pop((collection, key), None)
        self._changed[(collection, document_id)] = self._position
        self._changes.append((self._position, (collection, document_id)))
        while len(self._changes) > CHANGES_KEPT:
            position, forgotten = self._changes.popleft()
            self._oldest_trusted = max(self._oldest_trusted, position)
            if self._changed.get(forgotten) == position:
                del self._changed[forgotten]

    def _drop_all(self) -> None:
        """Under the lock: forget everything, and refuse what readers now in flight bring back."""
        self._position += 1
        self._oldest_trusted = self._position
        self._entries.clear()
        self._key_of.clear()
        self._changed.clear()
        self._changes.clear()

    def _apply(self, change: mongo.Document) -> None:
        with self._lock:
            self._changes_seen += 1
            if change["operationType"] in ("insert", "update", "replace", "delete"):
                self._changed_now(change["ns"]["coll"], change["documentKey"]["_id"])
            else:  # drop, rename (a publish's swap), dropDatabase, invalidate
                self._drop_all()

    def _watch(self, database: Database[mongo.Document]) -> None:
        names = sorted(self._collections)
        pipeline: list[mongo.Document] = [
            # Changes to the kept collections, renames over them, and the database's own events.
            {"$match": {"$or": [{"ns.coll": {"$in": names}}, {"to.coll": {"$in": names}}, {"ns.coll": None}]}},
            {"$project": {"operationType": 1, "ns": 1, "documentKey": 1}},
        ]
        while not self._stop.is_set():
            try:
                with database.watch(pipeline, max_await_time_ms=AWAIT_MS) as stream:
                    with self._lock:
                        self._live = not self._stop.is_set()
                    while stream.alive and not self._stop.is_set():
                        change = stream.try_next()
                        if change is not None:
                            self._apply(change)
            except PyMongoError as exc:
                if not self._stop.is_set():
                    log.warning("document cache: change stream failed, reading from MongoDB until it reopens: %s", exc)
            finally:
                with self._lock:
                    self._live = False
                    self._drop_all()
            self._stop.wait(RETRY_S)

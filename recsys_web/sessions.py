"""Server-side sessions: Flask-Session's MongoDB interface on the app's own client.

The cookie holds only a random session id (32 bytes); the session's data lives in MongoDB
``sessions``, so logging out deletes it for good and a copied cookie is worth nothing after.
Timeouts: a session expires PERMANENT_SESSION_LIFETIME after its last request (idle: a request
moves ``expiration`` on) and SESSION_ABSOLUTE_LIFETIME after its login (absolute, checked in
``auth.current_user`` against ``login_at``). An unchanged session is written back (and its
cookie re-set) only when its last refresh is SESSION_REFRESH_AFTER old: otherwise every page
and API call would pay a majority write, the largest cost of a request. The idle timeout then
ends a session up to that much early, never late.

Five things differ from Flask-Session's own ``MongoDBSessionInterface`` set-up, hence the
subclass: the collection comes from the app's resources, opened on first use in a worker
(Flask-Session's constructor wants a connected client and creates an index, in gunicorn's
master before the fork); a session is read through the worker's document cache (``cache.py``:
its writes and deletes here drop it at once, those of other workers within the change
stream's delay); a session whose ``expiration`` has passed is not read back (MongoDB's TTL
monitor deletes it only within a minute); an unchanged session is refreshed in steps (above);
and a MongoDB that is down makes the request the app's 503, whether reading the session (before
the view) or saving it (after) fails.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Request, Response, current_app, g, session
from flask_session.base import ServerSideSession, ServerSideSessionInterface
from flask_session.mongodb import MongoDBSessionInterface
from pymongo.collection import Collection
from pymongo.errors import PyMongoError

from recsys_core import mongo
from recsys_web import errors
from recsys_web.resources import Resources


class SessionInterface(MongoDBSessionInterface):  # type: ignore[misc]  # flask-session ships no type hints
    def __init__(self, app: Flask, resources: Resources) -> None:
        # Not MongoDBSessionInterface.__init__: it connects and builds indexes at once (see above).
        ServerSideSessionInterface.__init__(self, app, key_prefix="", permanent=True, sid_length=32)
        self._resources = resources
        self.use_deprecated_method = False

    @property
    def store(self) -> Collection[mongo.Document]:
        return self._resources.database()[mongo.SESSIONS]

    def _retrieve_session_data(self, store_id: str) -> dict[str, Any] | None:
        document = self._resources.cache.read(mongo.SESSIONS, store_id, lambda: self._find(store_id))
        if document is None or document["expiration"] <= datetime.now(UTC):
            return None
        g.session_expiration = document["expiration"]  # the client is tz_aware
        data: dict[str, Any] = self.serializer.decode(bytes(document["val"]))
        return data

    def _find(self, store_id: str) -> tuple[Any, mongo.Document] | None:
        document = self.store.find_one({"id": store_id})
        return None if document is None else (document["_id"], document)

    def _upsert_session(self, session_lifetime: timedelta, session: ServerSideSession, store_id: str) -> None:
        super()._upsert_session(session_lifetime, session, store_id)
        self._resources.cache.forget(mongo.SESSIONS, store_id)

    def _delete_session(self, store_id: str) -> None:
        super()._delete_session(store_id)
        self._resources.cache.forget(mongo.SESSIONS, store_id)

    def should_set_storage(self, app: Flask, session: ServerSideSession) -> bool:
        """A changed session is always stored; an unchanged one once its refresh is SESSION_REFRESH_AFTER old."""
        expiration: datetime | None = g.get("session_expiration")
        if session.modified or expiration is None:
            return True
        refreshed_at = expiration - app.permanent_session_lifetime
        return bool(datetime.now(UTC) - refreshed_at >= app.config["SESSION_REFRESH_AFTER"])

    def open_session(self, app: Flask, request: Request) -> ServerSideSession:
        try:
            session: ServerSideSession = super().open_session(app, request)
        except PyMongoError as exc:
            g.session_error = exc  # raised again by raise_session_error, inside the error handlers
            session = self.session_class(sid=self._generate_sid(self.sid_length), permanent=True)
            session.unavailable = True
        return session

    def save_session(self, app: Flask, session: ServerSideSession, response: Response) -> None:
        if getattr(session, "unavailable", False):
            return  # never write a blank over a session that could not be read
        try:
            super().save_session(app, session, response)
        except PyMongoError as exc:
            # The session is saved after the view, outside the error handlers. An answer must not
            # stand on what was not stored (a form whose CSRF token is not kept): it becomes the
            # app's 503 in place.
            failed = app.make_response(errors.mongo_error(exc))
            response.status_code = failed.status_code
            response.headers = failed.headers
            response.set_data(failed.get_data())


def raise_session_error() -> None:
    """before_request: a session that could not be read fails the request as MongoDB errors do (503)."""
    error = g.pop("session_error", None)
    if error is not None:
        raise error


def regenerate() -> None:
    """A new id for the current session (its data kept, the old id's document deleted)."""
    interface = current_app.session_interface
    assert isinstance(interface, SessionInterface)
    interface.regenerate(session)


def init_app(app: Flask, resources: Resources) -> None:
    app.session_interface = SessionInterface(app, resources)
    app.before_request(raise_session_error)

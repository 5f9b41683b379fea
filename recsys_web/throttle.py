"""Throttling of everything that checks a password or creates an account, in two layers.

Per client address, Flask-Limiter (moving windows, kept by ``limits`` in MongoDB so every
worker and restart shares them): ``RATELIMIT_LOGIN``, ``RATELIMIT_REGISTER`` and
``RATELIMIT_PASSWORD_CHANGE``, checked before the view runs. This stops one address from
guessing across many accounts (credential stuffing) or making accounts in bulk. The address is
``request.remote_addr``: behind a reverse proxy that is the proxy's, unless
``RECSYS_WEB_TRUSTED_PROXIES`` lets werkzeug's ProxyFix take the client's from
``X-Forwarded-For`` (``create_app``).

Per account, an exponential backoff written here (``reserve``), because no limiter strategy
fits it: an attempt must be *reserved* atomically before the password is checked (so that
concurrent attempts cannot race past the count while the slow hash runs), the wait must double
with each attempt, and a success must start afresh. It is one MongoDB update per attempt:
the first LOGIN_FREE_ATTEMPTS go through, each later one makes the next wait
LOGIN_BACKOFF_BASE_S x 2^k (capped at LOGIN_BACKOFF_MAX_S), and an attempt inside the wait is
refused without counting. It is a delay, never a lock: whoever knows the password gets in after
at most the cap, so guessing from many addresses is slowed down without anyone, a proxy's users
included, being locked out for good.
"""

from __future__ import annotations

import contextlib
import functools
import time
from datetime import UTC, datetime, timedelta

from flask import Flask, current_app
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter, RateLimitExceeded, RouteLimit
from flask_limiter.util import get_remote_address
from limits.storage import Storage
from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import PyMongoError
from werkzeug.exceptions import TooManyRequests

from recsys_core import mongo
from recsys_web import errors
from recsys_web.resources import Resources

limiter = Limiter(key_func=get_remote_address)


def init_app(app: Flask, resources: Resources) -> None:
    """Flask-Limiter on the app's own MongoDB database and deadline."""
    app.config["RATELIMIT_STORAGE_URI"] = app.config["MONGO_URI"]
    app.config["RATELIMIT_STORAGE_OPTIONS"] = {
        "database_name": app.config["MONGO_DB"],
        "counter_collection_name": mongo.RATE_LIMIT_COUNTERS,
        "window_collection_name": mongo.RATE_LIMIT_WINDOWS,
        "timeoutMS": app.config["MONGO_TIMEOUT_MS"],
        "appname": "recsys-web-limits",
    }
    limiter.init_app(app)
    # Every limit here is a route's own decorator (``per_address``), which checks it when its view
    # runs. The app-wide check Flask-Limiter adds before every request has no limit to find on any
    # other route, and cost an API call about 14% of its CPU.
    app.before_request_funcs[None].remove(limiter._check_request_limit)
    resources.on_close(functools.partial(_release, limiter.storage))
    app.register_error_handler(RateLimitExceeded, _too_many_from_address)


def _release(storage: Storage) -> None:
    """Close the client of ``limits``' MongoDB storage now. Its ``__del__`` would otherwise open one
    (the client is opened lazily, by a property that also builds indexes) only to close it, and on
    a MongoDB that is down, raise from a finaliser."""
    with contextlib.suppress(PyMongoError):
        client = getattr(storage, "storage", None)  # opens it, if no request did
        if client is not None:
            client.close()


def _too_many_from_address(exc: RateLimitExceeded) -> ResponseReturnValue:
    """A 429 with Retry-After: when the breached window lets this address in again."""
    breached = limiter.current_limit
    wait_s = max(1, int(breached.reset_at - time.time()) + 1) if breached else 60
    return errors.http_error(
        TooManyRequests(f"Too many attempts from your address ({exc.description}).", retry_after=wait_s)
    )


def per_address(config_key: str) -> RouteLimit:
    """A POST-only limit per client address whose value is the app's ``config_key``."""
    return limiter.limit(lambda: str(current_app.config[config_key]), methods=["POST"])


def account_key(email: str) -> str:
    """Login and password change share an account's backoff; unknown emails get one too, alike."""
    return f"email:{email}"


def reserve(db: Database[mongo.Document], key: str) -> int:
    """Take an attempt for ``key`` before its password is checked: 0 when it may go ahead, else
    the seconds to wait (and nothing was counted)."""
    cfg = current_app.config
    now = datetime.now(UTC)
    fresh = {"$or": [{"$eq": [{"$type": "$expires_at"}, "missing"]}, {"$lte": ["$expires_at", now]}]}
    count = {"$cond": [fresh, 0, "$count"]}
    waiting = {"$and": [{"$not": [fresh]}, {"$gt": ["$next_at", now]}]}
    attempt = {"$add": [count, 1]}
    over = {"$subtract": [attempt, cfg["LOGIN_FREE_ATTEMPTS"]]}
    wait_ms = {
        "$cond": [
            {"$lte": [over, 0]},
            0,
            {
                "$min": [
                    cfg["LOGIN_BACKOFF_MAX_S"] * 1000,
                    {"$multiply": [cfg["LOGIN_BACKOFF_BASE_S"] * 1000, {"$pow": [2, {"$subtract": [over, 1]}]}]},
                ]
            },
        ]
    }
    doc = db[mongo.LOGIN_BACKOFF].find_one_and_update(
        {"_id": key},
        [
            {
                "$set": {
                    "refused": waiting,
                    "count": {"$cond": [waiting, "$count", attempt]},
                    "next_at": {"$cond": [waiting, "$next_at", {"$add": [now, wait_ms]}]},
                    "expires_at": now + timedelta(seconds=cfg["LOGIN_BACKOFF_RESET_S"]),
                }
            }
        ],
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    assert doc is not None, "an upsert returning the document after it always finds one"
    if not doc["refused"]:
        return 0
    next_at: datetime = doc["next_at"]  # the app's client is tz_aware
    return max(1, int((next_at - now).total_seconds() + 0.999))


def clear(db: Database[mongo.Document], key: str) -> None:
    """A right password: the account's count starts afresh."""
    db[mongo.LOGIN_BACKOFF].delete_one({"_id": key})

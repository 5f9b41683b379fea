"""Login throttling: after LOGIN_MAX_FAILURES failed logins for one email from one IP, that
pair is locked out for LOGIN_LOCKOUT_S, counted from its first failure.

The counts live in MongoDB, so every gunicorn worker and every restart sees the same ones; a
TTL index deletes them once the window is over, and the queries also check ``expires_at``
because the TTL monitor only runs once a minute.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pymongo.database import Database

from recsys_core import mongo


def throttle_key(email: str, ip: str | None) -> str:
    return f"{email}|{ip or '-'}"


def retry_after_s(db: Database[mongo.Document], key: str, max_failures: int) -> int:
    """Seconds until ``key`` may try again; 0 when it is not locked out."""
    now = datetime.now(UTC)
    doc = db[mongo.LOGIN_FAILURES].find_one({"_id": key, "expires_at": {"$gt": now}})
    if doc is None or doc["count"] < max_failures:
        return 0
    return max(1, int((doc["expires_at"] - now).total_seconds()))


def record_failure(db: Database[mongo.Document], key: str, window_s: int) -> None:
    """Count a failure; a window that has run out starts afresh (one atomic update)."""
    now = datetime.now(UTC)
    live = {"$gt": ["$expires_at", now]}
    db[mongo.LOGIN_FAILURES].update_one(
        {"_id": key},
        [
            {
                "$set": {
                    "count": {"$cond": [live, {"$add": ["$count", 1]}, 1]},
                    "expires_at": {"$cond": [live, "$expires_at", now + timedelta(seconds=window_s)]},
                }
            }
        ],
        upsert=True,
    )


def clear_failures(db: Database[mongo.Document], key: str) -> None:
    db[mongo.LOGIN_FAILURES].delete_one({"_id": key})

"""The app's configuration: defaults taken from the RECSYS_* settings, overridable per app.

``create_app(test_config)`` replaces any of these keys; a deployment may put the same keys in
``<state_dir>/web/config.py`` (Flask's instance folder), e.g. other ``RATELIMIT_*`` limits.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from recsys_core.settings import Settings


def default_config(settings: Settings) -> dict[str, Any]:
    return {
        "MONGO_URI": settings.effective_mongo_uri,
        "MONGO_DB": settings.mongo_db,
        # Every MongoDB operation's deadline: a page says "database unavailable" after this long
        # instead of hanging a worker thread on a mongod that stopped answering.
        "MONGO_TIMEOUT_MS": 3000,
        "KAFKA_BOOTSTRAP_SERVERS": settings.effective_kafka_bootstrap,
        "TOPIC_RECOMMENDATIONS": settings.topic_recommendations,
        "TOPIC_IMPRESSIONS": settings.topic_impressions,
        "TOPIC_INTERACTIONS": settings.topic_interactions,
        # How long librdkafka retries a message before its delivery callback reports failure.
        "KAFKA_MESSAGE_TIMEOUT_MS": 10_000,
        # Bound on metadata calls (health check, stream start-up).
        "KAFKA_TIMEOUT_S": 3.0,
        "STREAM_HEARTBEAT_S": 15.0,
        # A stream ends after this long; the browser reconnects with Last-Event-ID, and the
        # session is checked again (so a logout ends live updates within this window).
        "STREAM_MAX_S": 300.0,
        # Each open stream holds one worker thread: cap them so pages keep threads to run on,
        # and cap one reviewer's share, so one account cannot take every slot (both a 429).
        "STREAM_MAX_OPEN": 6,
        "STREAM_MAX_PER_USER": 2,
        # How often an open stream checks that its client is still there (frees the slot).
        "STREAM_PROBE_S": 1.0,
        # A Last-Event-ID resumes at most this many messages back on each partition.
        "STREAM_RESUME_MAX": 1000,
        # Per account (email): this many password attempts go through at once; after them each
        # attempt makes the next wait twice as long, from 1 s up to 15 min; an hour without
        # attempts, or a successful one, starts afresh. See throttle.py.
        "LOGIN_FREE_ATTEMPTS": 3,
        "LOGIN_BACKOFF_BASE_S": 1.0,
        "LOGIN_BACKOFF_MAX_S": 15 * 60.0,
        "LOGIN_BACKOFF_RESET_S": 60 * 60,
        # Per client address (Flask-Limiter, moving windows in MONGO_DB). Behind a reverse proxy
        # set RECSYS_WEB_TRUSTED_PROXIES, or every client shares the proxy's address.
        "RATELIMIT_LOGIN": "20 per minute; 200 per day",
        "RATELIMIT_REGISTER": "10 per hour; 50 per day",
        "RATELIMIT_PASSWORD_CHANGE": "10 per hour",
        "RATELIMIT_STRATEGY": "moving-window",
        "TRUSTED_PROXIES": settings.web_trusted_proxies,
        # Server-side sessions (Flask-Session, MongoDB ``sessions``): a session ends after this
        # long without a request (idle) ...
        "PERMANENT_SESSION_LIFETIME": timedelta(minutes=30),
        # ... counted from its last refresh: an unchanged session is written back at most this often.
        "SESSION_REFRESH_AFTER": timedelta(minutes=1),
        # ... and at the latest this long after its login (absolute).
        "SESSION_ABSOLUTE_LIFETIME": timedelta(hours=12),
        "SESSION_COOKIE_NAME": "recsys_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        # Off only for plain-http localhost (recsys serve refuses any other address then).
        "SESSION_COOKIE_SECURE": settings.web_cookie_secure,
        # Forms and JSON bodies are tiny; refuse anything large before parsing it.
        "MAX_CONTENT_LENGTH": 64 * 1024,
        # Sessions, accounts and lists each worker keeps in memory while a change stream proves
        # them current (see cache.py), least recently used out first; 0 reads every one from
        # MongoDB. A list takes about 9 KiB, so this is at most about 90 MiB a worker.
        "READ_CACHE_ENTRIES": 10_000,
    }


def instance_secret_key(instance_path: Path) -> str:
    """The session signing key, generated once and kept in the instance folder.

    Kept on disk (mode 0600) rather than generated per process, so that sessions survive a
    restart and every gunicorn worker signs with the same key.
    """
    instance_path.mkdir(parents=True, exist_ok=True)
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        # Write aside, then link into place: atomic, and the first of racing workers wins.
        tmp = instance_path / f".secret_key.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        try:
            os.link(tmp, key_file)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return key_file.read_text().strip()

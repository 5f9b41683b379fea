"""What the web benchmarks share: a seeded catalogue and shoppers, the app under gunicorn as a
process, shoppers logged in through the real forms, and their open ``/stream``\\ s.

The app is ``recsys_web.server.serve``, exactly what ``recsys serve`` runs once the services are
up (``recsys serve`` itself would also start the managed updater, a second one in the group).
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from recsys_core import mongo
from recsys_core.connections import project_database
from recsys_core.contract import ItemFactor, Product
from recsys_core.services.kafka import ensure_topics
from recsys_core.settings import PROJECT_ROOT, Settings
from recsys_web.passwords import hash_password

RANK = 10
PASSWORD = "benchmark password 1"  # noqa: S105 - the bench accounts' password
LOGINS_PER_ADDRESS = 15
"""Logins sent from one loopback address: below the per-address limit (RATELIMIT_LOGIN, 20 a minute)."""


def percentiles(seconds: list[float]) -> dict[str, float]:
    values = np.asarray(seconds) * 1000
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p99_ms": round(float(np.percentile(values, 99)), 1),
    }


def isolated_settings(base: Settings, name: str) -> Settings:
    """A database, topics and a consumer group of this run's own (the topics are created).

    Session cookies without ``Secure``: the benchmarks talk plain http to 127.0.0.1, the one
    case ``recsys serve`` accepts it for.
    """
    suffix = uuid.uuid4().hex[:8]
    settings = base.model_copy(
        update={
            "mongo_db": f"{base.mongo_db}_bench_{name}",
            "topic_interactions": f"bench-interactions-{suffix}",
            "topic_recommendations": f"bench-recommendations-{suffix}",
            "topic_impressions": f"bench-impressions-{suffix}",
            "topic_dead_letters": f"bench-dead-letters-{suffix}",
            "updater_group_id": f"bench-updater-{suffix}",
            "web_cookie_secure": False,
        }
    )
    ensure_topics(settings.effective_kafka_bootstrap, settings.topics, settings.topic_partitions)
    return settings


def seed(settings: Settings, items: int, users: int) -> list[str]:
    """A fresh database with a served model of ``items`` random implicit factors, their products,
    and ``users`` site shoppers (``<reviewerID>@bench.example``, password PASSWORD)."""
    db = project_database(settings)
    db.client.drop_database(db.name)
    vectors = np.random.default_rng(1).normal(scale=0.3, size=(items, RANK))
    now = datetime.now(UTC)
    factors = [
        ItemFactor(
            asin=f"B{i:09d}",
            vector=vectors[i].tolist(),
            item_bias=0.0,
            score_offset=0.0,
            model_version="bench",
            rank=RANK,
            reg_param=0.1,
            implicit_prefs=True,
            alpha=10.0,
            global_mean=4.2,
            user_bias_damping=5.0,
            updated_at=now,
        ).to_document()
        for i in range(items)
    ]
    for start in range(0, items, 10_000):
        db[ItemFactor.collection].insert_many(factors[start : start + 10_000])
        db[Product.collection].insert_many(
            [
                Product(
                    asin=f"B{i:09d}",
                    title=f"Product {i}",
                    image=None,
                    price=10.0,
                    main_cat="Bench",
                    source_category="Bench",
                ).to_document()
                for i in range(start, min(items, start + 10_000))
            ]
        )
    reviewers = [f"web-{uuid.uuid4().hex[:16]}" for _ in range(users)]
    password_hash = hash_password(PASSWORD)  # one slow hash for every account
    db[mongo.USERS].insert_many(
        [{"email": f"{r}@bench.example", "reviewerID": r, "password_hash": password_hash} for r in reviewers]
    )
    db.client.close()
    return reviewers


@contextmanager
def process(
    command: list[str], settings: Settings, log: Path, ready: Callable[[], bool], what: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` running with exactly ``settings``, from when ``ready()`` until the block ends (SIGTERM)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            env=settings.environment() | {"PATH": "/usr/bin:/bin"},
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start; see {log}")
            time.sleep(0.1)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def _answers(port: int) -> Callable[[], bool]:
    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return True
        except OSError:
            return False

    return answers


def with_stream_cap(settings: Settings, home: Path, streams_per_worker: int) -> Settings:
    """``settings`` with a state folder of the bench's own, whose instance config lets each worker hold
    ``streams_per_worker`` open streams (STREAM_MAX_OPEN): gunicorn spreads connections unevenly, so a
    cap of exactly streams / workers refuses some."""
    state = home / "web-state"
    (state / "web").mkdir(parents=True, exist_ok=True)
    (state / "web" / "config.py").write_text(f"STREAM_MAX_OPEN = {streams_per_worker}\n")
    return settings.model_copy(update={"state_dir": state})


def watch_streams(shoppers: list[Shopper]) -> list[StreamWatcher]:
    """Each shopper's open ``/stream``; a refused one is an error, since its samples would be counted as lost."""
    streams = [StreamWatcher(shopper) for shopper in shoppers]
    refused = [f"{s.reviewer}: {s.error}" for s in streams if s.error is not None]
    if refused:
        for stream in streams:
            stream.close()
        raise RuntimeError(f"{len(refused)} of {len(streams)} streams were refused: {refused[:3]}")
    return streams


def web(settings: Settings, log: Path, port: int, workers: int, threads: int) -> Any:
    """The web app under gunicorn on ``port``; the context's value is gunicorn's master process."""
    serving = f"from recsys_web.server import serve; serve(port={port}, workers={workers}, threads={threads})"
    return process([sys.executable, "-c", serving], settings, log, _answers(port), "the web app")


def serve_constant(port: int, workers: int, threads: int, body: str) -> None:
    """The anchor app: a bare Flask route answering every ``/api/v1/recommendations/<id>`` with the
    constant JSON ``body``, under the same gunicorn options as ``recsys serve``."""
    from flask import Flask

    from recsys_web.server import GunicornApp, gunicorn_options

    app = Flask("constant")
    answer = json.loads(body)

    @app.route("/api/v1/recommendations/<reviewer_id>")
    def recommendations(reviewer_id: str) -> Any:
        return answer

    @app.route("/healthz")
    def healthz() -> Any:
        return {"status": "ok"}

    options = gunicorn_options(app, "127.0.0.1", port, workers, threads)
    options["worker_exit"] = lambda _server, _worker: None  # nothing to flush or close
    options["post_worker_init"] = lambda _worker: None  # no streams to end on shutdown
    GunicornApp(app, options).run()


def constant(settings: Settings, log: Path, port: int, workers: int, threads: int, body: str) -> Any:
    """serve_constant as a process, like ``web``."""
    serving = (
        f"from benchmarks.webapp import serve_constant; "
        f"serve_constant({port}, {workers}, {threads}, {json.dumps(body)})"
    )
    return process([sys.executable, "-c", serving], settings, log, _answers(port), "the anchor app")


class _FromAddress(urllib.request.HTTPHandler):
    """Connections from a given loopback address (all of 127.0.0.0/8 reaches the server)."""

    def __init__(self, address: str) -> None:
        super().__init__()
        self.address = address

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(http.client.HTTPConnection, req, source_address=(self.address, 0))


class Shopper:
    """One shopper's browser: logged in through the real form (CSRF token and all) from ``address``."""

    def __init__(self, base: str, reviewer: str, address: str = "127.0.0.1") -> None:
        self.base = base
        self.reviewer = reviewer
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(_FromAddress(address), urllib.request.HTTPCookieProcessor(self.jar))
        self.post("/auth/login", {"email": f"{reviewer}@bench.example", "password": PASSWORD})
        if self.open("/auth/account").geturl().endswith("/auth/login"):
            raise RuntimeError(f"{reviewer} could not log in")

    def open(self, path: str, timeout: float = 30) -> Any:
        return self.opener.open(f"{self.base}{path}", timeout=timeout)

    def post(self, path: str, form: dict[str, str]) -> None:
        page = self.open(path).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        body = urllib.parse.urlencode({**form, "csrf_token": token.group(1)}).encode()
        self.opener.open(f"{self.base}{path}", data=body, timeout=30).read()

    @property
    def cookie(self) -> str:
        """The ``Cookie`` header value of this shopper's session, for other clients to send."""
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)


def log_in(base: str, reviewers: list[str], parallel: int = 8) -> list[Shopper]:
    """A Shopper per reviewer, LOGINS_PER_ADDRESS from each loopback address (127.0.1.x).

    One address's logins go one after another: two first requests at once from a new address
    can meet a spurious 429 (limits' MongoDB moving window creates its document by an upsert
    whose loser gets a duplicate key, which it counts as over the limit).
    """

    def from_address(n: int) -> list[Shopper]:
        address = f"127.0.1.{1 + n}"
        chunk = reviewers[n * LOGINS_PER_ADDRESS : (n + 1) * LOGINS_PER_ADDRESS]
        return [Shopper(base, reviewer, address) for reviewer in chunk]

    addresses = range((len(reviewers) + LOGINS_PER_ADDRESS - 1) // LOGINS_PER_ADDRESS)
    with ThreadPoolExecutor(parallel) as pool:
        return [shopper for chunk in pool.map(from_address, addresses) for shopper in chunk]


class StreamWatcher:
    """A shopper's open ``/stream``, noting when each new list arrives, and whether it was refused or ended."""

    def __init__(self, shopper: Shopper) -> None:
        self.reviewer = shopper.reviewer
        self.arrivals: list[tuple[float, datetime]] = []
        self.comments = 0
        self.error: str | None = None
        self.ended = False
        self.closing = False
        try:
            self.response = shopper.open("/stream", timeout=600)
        except OSError as exc:  # an HTTPError (a 429, say) too
            self.error = str(exc)
            self.ended = True
            return
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        event = None
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if line.startswith(":"):
                    self.comments += 1
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "recommendations":
                    self.arrivals.append((time.time(), datetime.fromisoformat(json.loads(line[6:])["ts"])))
        except (OSError, ValueError, AttributeError) as exc:  # AttributeError: close() took the file away
            if not self.closing:
                self.error = str(exc)
        if not self.closing and self.error is None:
            self.error = "the server ended the stream"
        self.ended = True

    def close(self) -> None:
        """Leave the stream; the read in progress holds the response's lock until the next
        heartbeat, so the close waits for it in a thread of its own."""
        self.closing = True
        if not self.ended:
            threading.Thread(target=self.response.close, daemon=True).start()

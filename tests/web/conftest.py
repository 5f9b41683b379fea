"""Fixtures for the web app's tests: an app on the real test MongoDB and Kafka, its test
client, users who log in through the real forms, seeded pipeline documents, and a real
Kafka producer and topic reader."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from flask import Flask
from flask.testing import FlaskClient
from pymongo.database import Database

from recsys_core import mongo
from recsys_core.messages import RecommendationEvent, RecommendedItem, Source
from recsys_core.settings import PROJECT_ROOT, Settings
from recsys_web import create_app

ARTIFACTS = PROJECT_ROOT / "artifacts"  # gitignored: server logs, screenshots, measurements
XSS_TITLE = "<script>alert(1)</script>"
PASSWORD = "correct horse battery"
UPDATED_AT = datetime(2026, 11, 20, 8, 30, tzinfo=UTC)
TEST_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret",
    "STREAM_HEARTBEAT_S": 0.2,
    "KAFKA_TIMEOUT_S": 2.0,
    "KAFKA_MESSAGE_TIMEOUT_MS": 2000,
    "MONGO_TIMEOUT_MS": 2000,
}


def unused_port() -> int:
    """A port nothing listens on: a real unreachable server for the "down" tests."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def make_app(**overrides: Any) -> Iterator[Flask]:
    """An app with the test config plus ``overrides``; its connections are closed afterwards."""
    app = create_app({**TEST_CONFIG, **overrides})
    try:
        yield app
    finally:
        app.extensions["recsys"].close()


@pytest.fixture
def app(db: Database[mongo.Document]) -> Iterator[Flask]:
    with make_app() as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def new_reviewer(name: str) -> str:
    """A reviewerID unique to this run, so events of earlier runs on the shared topic never match."""
    return f"{name}{uuid.uuid4().hex[:10].upper()}"


def csrf_token(client: FlaskClient, path: str = "/auth/login") -> str:
    """The token the way a browser gets it: from the hidden field of a form."""
    html = client.get(path).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, f"no CSRF field on {path}"
    return found.group(1)


def register(client: FlaskClient, email: str, reviewer: str | None = None, password: str = PASSWORD) -> Any:
    form = {"csrf_token": csrf_token(client, "/auth/register"), "email": email, "password": password}
    if reviewer is not None:
        form["reviewerID"] = reviewer
    return client.post("/auth/register", data=form)


def login(client: FlaskClient, email: str, password: str = PASSWORD, **kwargs: Any) -> Any:
    form = {"csrf_token": csrf_token(client), "email": email, "password": password}
    return client.post("/auth/login", data=form, **kwargs)


@pytest.fixture
def user_client(app: Flask) -> Callable[[str | None], FlaskClient]:
    """A new test client logged in, through the real forms, as a new user linked to ``reviewer``."""

    def make(reviewer: str | None) -> FlaskClient:
        client = app.test_client()
        email = f"{uuid.uuid4().hex[:12]}@example.org"
        assert register(client, email, reviewer).status_code == 302
        assert login(client, email).status_code == 302
        return client

    return make


@dataclass(frozen=True)
class Catalog:
    """What the seeded pipeline output holds."""

    reviewer: str  # has a top 5
    titles: list[str]  # of the reviewer's top 5, in order
    popular_titles: list[str]  # overall top 5, in rank order


@pytest.fixture
def catalog(db: Database[mongo.Document]) -> Catalog:
    """Documents shaped as the pipeline publishes them: products, one reviewer's top 5, popular."""
    products = [
        {
            "_id": f"B00000000{i}",
            "asin": f"B00000000{i}",
            "title": f"Product {i}",
            "brand": "Acme",
            "price": 10.0 + i,
            "image": f"https://images.example.com/{i}.jpg",
        }
        for i in range(1, 9)
    ]
    products[2]["title"] = XSS_TITLE
    db[mongo.PRODUCTS].insert_many(products)
    reviewer = new_reviewer("ALICE")
    items: list[dict[str, Any]] = [
        {
            "asin": p["asin"],
            "score": 5.0 - i / 4,
            "title": p["title"],
            "image": p["image"],
            "price": p["price"],
            "because": "because you rated Product 8",
        }
        for i, p in enumerate(products[:5])
    ]
    # Tolerance: a missing title/price is filled from products; `because` may be an object.
    items[2].update(title=None, price=None)
    items[4]["because"] = {"asin": "B000000008"}
    db[mongo.RECOMMENDATIONS].insert_one(
        {"_id": reviewer, "reviewerID": reviewer, "items": items, "model_version": "als-v7", "updated_at": UPDATED_AT}
    )
    popular = [
        {
            "_id": f"__all__:{rank}",
            "rank": rank,
            "category": "__all__",
            "asin": p["asin"],
            "title": p["title"],
            "image": p["image"],
            "price": p["price"],
            "score": 4.9 - rank / 10,
            "n_ratings": 100 - rank,
            "model_version": "als-v7",
            "updated_at": UPDATED_AT,
        }
        for rank, p in enumerate(reversed(products[3:]), start=1)
    ]
    popular.append({**popular[0], "_id": "Electronics:1", "category": "Electronics"})
    db[mongo.POPULAR].insert_many(popular)
    return Catalog(
        reviewer=reviewer,
        titles=["Product 1", "Product 2", XSS_TITLE, "Product 4", "Product 5"],
        popular_titles=[str(p["title"]) for p in popular[:5]],
    )


def event_for(reviewer: str, title: str = "Live pick", source: Source = "online") -> RecommendationEvent:
    items = tuple(
        RecommendedItem(
            asin=f"L00000000{i}",
            score=4.0 - i / 10,
            title=f"{title} {i}",
            price=1.5 * i,
            because="because you rated Product 1",
        )
        for i in range(1, 6)
    )
    now = datetime.now(UTC)
    return RecommendationEvent(reviewerID=reviewer, items=items, model_version="online-1", source=source, ts=now)


@pytest.fixture
def publish(running_services: Settings) -> Iterator[Callable[[RecommendationEvent], tuple[int, int]]]:
    """Produce an event to the real topic; returns its (partition, offset) once delivered."""
    producer = Producer({"bootstrap.servers": running_services.effective_kafka_bootstrap})

    def send(event: RecommendationEvent) -> tuple[int, int]:
        delivered: list[Message[Any, Any]] = []
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, msg: Message[Any, Any]) -> None:
            if err is not None:
                errors.append(err)
            else:
                delivered.append(msg)

        producer.produce(
            running_services.topic_recommendations, key=event.key(), value=event.encode(), on_delivery=on_delivery
        )
        producer.flush(10)
        assert not errors, f"delivery failed: {errors}"
        assert delivered, "no delivery report"
        partition, offset = delivered[0].partition(), delivered[0].offset()
        assert partition is not None
        assert offset is not None
        return partition, offset

    yield send
    producer.flush(5)


class TopicReader:
    """Reads the recommendations topic from the moment it was created."""

    def __init__(self, settings: Settings) -> None:
        topic = settings.topic_recommendations
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.effective_kafka_bootstrap,
                "group.id": f"test-web-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
            }
        )
        partitions = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign(
            [
                TopicPartition(topic, p, self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
                for p in partitions
            ]
        )

    def find(self, key: str, timeout_s: float = 10.0) -> Message[Any, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = self.consumer.poll(0.2)
            if msg is not None and msg.error() is None and msg.key() == key.encode():
                return msg
        raise AssertionError(f"no message keyed {key!r} within {timeout_s}s")


@pytest.fixture
def topic_reader(running_services: Settings) -> Iterator[TopicReader]:
    reader = TopicReader(running_services)
    yield reader
    reader.consumer.close()


@dataclass(frozen=True)
class SSE:
    event: str | None
    data: Any
    id: str | None
    retry: str | None


class SSEReader:
    """Parses the streamed response of ``/stream`` from the test client, block by block.

    The app's generator runs in the reading thread, one block per ``next()``; heartbeats keep
    every wait short, so the deadlines here are honoured.
    """

    def __init__(self, response: Any) -> None:
        self.response = response
        self.chunks = iter(response.response)
        self.last_id: str | None = None

    def next(self, timeout_s: float = 10.0) -> SSE | None:
        """The next block (a heartbeat has ``event=None``); None when the stream has ended."""
        deadline = time.monotonic() + timeout_s
        for chunk in self.chunks:
            fields: dict[str, str] = {}
            for line in chunk.decode().splitlines():
                name, _, value = line.partition(": ")
                fields.setdefault(name, value)
            self.last_id = fields.get("id", self.last_id)
            data = fields.get("data")
            return SSE(
                fields.get("event"), None if data is None else json.loads(data), fields.get("id"), fields.get("retry")
            )
        if time.monotonic() > deadline:
            raise AssertionError("stream too slow")
        return None

    def until(self, predicate: Callable[[SSE], bool], timeout_s: float = 10.0) -> list[SSE]:
        """Blocks read until one satisfies ``predicate`` (included)."""
        seen: list[SSE] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            block = self.next()
            assert block is not None, f"stream ended; read {seen}"
            seen.append(block)
            if predicate(block):
                return seen
        raise AssertionError(f"no matching block within {timeout_s}s; read {seen}")

    def close(self) -> None:
        self.response.close()


def open_stream(client: FlaskClient, **headers: str) -> SSEReader:
    response = client.get("/stream", buffered=False, headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    return SSEReader(response)


def positions(event_id: str | None) -> dict[int, int]:
    assert event_id
    return {int(p): int(o) for p, o in (pair.split(":") for pair in event_id.split(","))}


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a local http URL
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


@pytest.fixture
def run_server(
    db: Database[mongo.Document], request: pytest.FixtureRequest
) -> Iterator[Callable[[list[str], int], str]]:
    """Run ``python <args>`` serving on ``port`` (log in artifacts/); returns the base URL once
    /healthz answers. Stopped with SIGTERM at the end, as a process manager would."""
    ARTIFACTS.mkdir(exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []

    def run(args: list[str], port: int) -> str:
        log_path = ARTIFACTS / f"server-{request.node.name}-{len(procs)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)
        procs.append(proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"the server exited; see {log_path}"
            try:
                get_json(f"{base}/healthz")
                return base
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise AssertionError(f"the server did not answer within 30 s; see {log_path}")

    yield run
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

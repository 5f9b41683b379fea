"""Fixtures for the web app's tests: an app on the real test MongoDB and Kafka, its test
client, users who log in through the real forms, pipeline documents written through the
contract the publishing assets use, and a real Kafka producer and topic reader."""

from __future__ import annotations

import http.cookiejar
import json
import queue
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import KafkaError, Message, TopicPartition
from flask import Flask
from flask.testing import FlaskClient
from pymongo.database import Database

from recsys_core import mongo
from recsys_core.connections import kafka_consumer, kafka_producer
from recsys_core.contract import (
    ALL_CATEGORIES,
    PopularItem,
    Product,
    RecommendationEvent,
    Recommendations,
    RecommendedItem,
    Source,
    because_text,
)
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
    """Register through the form; with ``reviewer``, then link the account to it as the operator's
    ``recsys users link`` does (directly: most tests' reviewers exist only on the topic, and
    ``link`` refuses a reviewer the data does not hold)."""
    form = {"csrf_token": csrf_token(client, "/auth/register"), "email": email, "password": password}
    response = client.post("/auth/register", data=form)
    if reviewer is not None and response.status_code == 302:
        users = client.application.extensions["recsys"].database()[mongo.USERS]
        assert users.update_one({"email": email.lower()}, {"$set": {"reviewerID": reviewer}}).matched_count == 1
    return response


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
    """Products, one reviewer's top 5 and the popular lists, written as the pipeline writes them."""
    products = [
        Product(
            asin=f"B00000000{i}",
            title=XSS_TITLE if i == 3 else f"Product {i}",
            image=f"https://images.example.com/{i}.jpg",
            price=10.0 + i,
            main_cat="Beauty",
            source_category="All_Beauty",
        )
        for i in range(1, 9)
    ]
    db[Product.collection].insert_many([p.to_document() for p in products])
    reviewer = new_reviewer("ALICE")
    top = Recommendations(
        reviewerID=reviewer,
        items=[
            RecommendedItem(
                asin=p.asin,
                score=5.0 - i / 4,
                title=p.title,
                image=p.image,
                price=p.price,
                because=because_text("Product 8"),
                because_asin="B000000008",
            )
            for i, p in enumerate(products[:5])
        ],
        model_version="als-v7",
        source="batch",
        updated_at=UPDATED_AT,
    )
    db[Recommendations.collection].insert_one(top.to_document())
    popular = [
        PopularItem(
            category=category,
            rank=rank,
            asin=p.asin,
            title=p.title,
            image=p.image,
            price=p.price,
            score=4.9 - rank / 10,
            n_ratings=100 - rank,
            model_version="als-v7",
            updated_at=UPDATED_AT,
        )
        for category, ranked in ((ALL_CATEGORIES, products[:2:-1]), ("Electronics", products[-1:]))
        for rank, p in enumerate(ranked, start=1)
    ]
    db[PopularItem.collection].insert_many([p.to_document() for p in popular])
    return Catalog(
        reviewer=reviewer,
        titles=[str(item.title) for item in top.items],
        popular_titles=[str(p.title) for p in popular if p.category == ALL_CATEGORIES][:5],
    )


def event_for(reviewer: str, title: str = "Live pick", source: Source = "online") -> RecommendationEvent:
    items = [
        RecommendedItem(
            asin=f"L00000000{i}",
            score=4.0 - i / 10,
            title=f"{title} {i}",
            image=None,
            price=1.5 * i,
            because=because_text("Product 1"),
            because_asin="B000000001",
        )
        for i in range(1, 6)
    ]
    now = datetime.now(UTC)
    return RecommendationEvent(reviewerID=reviewer, items=items, model_version="online-1", source=source, ts=now)


@pytest.fixture
def publish(running_services: Settings) -> Iterator[Callable[[RecommendationEvent], tuple[int, int]]]:
    """Produce an event to the real topic; returns its (partition, offset) once delivered."""
    producer = kafka_producer(running_services.effective_kafka_bootstrap, message_timeout_ms=10_000)

    def send(event: RecommendationEvent) -> tuple[int, int]:
        delivered: list[Message[Any, Any]] = []
        errors: list[KafkaError] = []

        def on_delivery(err: KafkaError | None, msg: Message[Any, Any]) -> None:
            if err is not None:
                errors.append(err)
            else:
                delivered.append(msg)

        producer.produce(
            running_services.topic_recommendations,
            key=event.message_key(),
            value=event.encode(),
            on_delivery=on_delivery,
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
    """Reads one topic from the moment the reader was created."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.consumer = kafka_consumer(settings.effective_kafka_bootstrap, f"test-web-{uuid.uuid4().hex}")
        partitions = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign(
            [
                TopicPartition(topic, p, self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
                for p in partitions
            ]
        )

    def keyed(self, key: str, timeout_s: float) -> list[Message[Any, Any]]:
        """Every message keyed ``key`` that arrives within ``timeout_s``."""
        found = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = self.consumer.poll(0.2)
            if msg is not None and msg.error() is None and msg.key() == key.encode():
                found.append(msg)
        return found

    def find(self, key: str, timeout_s: float = 10.0) -> Message[Any, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msg = self.consumer.poll(0.2)
            if msg is not None and msg.error() is None and msg.key() == key.encode():
                return msg
        raise AssertionError(f"no message keyed {key!r} within {timeout_s}s")


@pytest.fixture
def recommendations_reader(running_services: Settings) -> Iterator[TopicReader]:
    reader = TopicReader(running_services, running_services.topic_recommendations)
    yield reader
    reader.consumer.close()


@pytest.fixture
def impressions_reader(running_services: Settings) -> Iterator[TopicReader]:
    reader = TopicReader(running_services, running_services.topic_impressions)
    yield reader
    reader.consumer.close()


@dataclass(frozen=True)
class SSE:
    event: str | None
    data: Any
    id: str | None
    retry: str | None


class SSEReader:
    """Reads the streamed response of ``/stream`` from the test client, block by block, with deadlines.

    The app's generator runs in a reader thread of its own that queues each block, so a
    stream that goes quiet fails the test at the deadline instead of hanging it. ``close()``
    stops the reader after its current block and closes the generator in that same thread.
    """

    _END = object()

    def __init__(self, response: Any) -> None:
        self.response = response
        self.last_id: str | None = None
        self._blocks: queue.Queue[Any] = queue.Queue()
        self._stop = threading.Event()
        self._ended = False
        self._reader = threading.Thread(target=self._read, name="sse-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for chunk in self.response.response:
                self._blocks.put(chunk)
                if self._stop.is_set():
                    break
        except Exception as exc:  # handed to the test thread, which raises it
            self._blocks.put(exc)
        finally:
            self.response.close()
            self._blocks.put(self._END)

    def next(self, timeout_s: float = 10.0) -> SSE | None:
        """The next block (a heartbeat has ``event=None``); None once the stream has ended."""
        if self._ended:
            return None
        try:
            chunk = self._blocks.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no block from the stream within {timeout_s}s") from None
        if chunk is self._END:
            self._ended = True
            return None
        if isinstance(chunk, Exception):
            raise chunk
        fields: dict[str, str] = {}
        for line in chunk.decode().splitlines():
            name, _, value = line.partition(": ")
            fields.setdefault(name, value)
        self.last_id = fields.get("id", self.last_id)
        data = fields.get("data")
        return SSE(
            fields.get("event"), None if data is None else json.loads(data), fields.get("id"), fields.get("retry")
        )

    def until(self, predicate: Callable[[SSE], bool], timeout_s: float = 10.0) -> list[SSE]:
        """Blocks read until one satisfies ``predicate`` (included)."""
        seen: list[SSE] = []
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            block = self.next(left)
            assert block is not None, f"stream ended; read {seen}"
            seen.append(block)
            if predicate(block):
                return seen
        raise AssertionError(f"no matching block within {timeout_s}s; read {seen}")

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._reader.join(timeout_s)
        assert not self._reader.is_alive(), "the stream did not end after close()"


def open_stream(client: FlaskClient, **headers: str) -> SSEReader:
    response = client.get("/stream", buffered=False, headers=headers)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    return SSEReader(response)


def positions(event_id: str | None) -> dict[int, int]:
    assert event_id
    return {int(p): int(o) for p, o in (pair.split(":") for pair in event_id.split(","))}


def forwarded_until(stream: SSEReader, produced: list[tuple[int, int]]) -> list[Any]:
    """The recommendation events the stream forwards until its position has passed every
    ``produced`` (partition, offset), so any of them that was going to be forwarded has been."""
    end: dict[int, int] = {}
    for partition, offset in produced:
        end[partition] = max(end.get(partition, 0), offset + 1)
    blocks = stream.until(lambda b: b.id is not None and all(positions(b.id).get(p, 0) >= o for p, o in end.items()))
    return [b.data for b in blocks if b.event == "recommendations"]


def wait_until(condition: Callable[[], Any], what: str, timeout_s: float = 20.0) -> Any:
    """``condition()``'s first true value; fails the test when none comes within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None  # the 302 itself is the answer a test checks


def http_login(base: str) -> str:
    """Register and log in a new user (with a reviewer identity of its own) on a running server
    through the real forms; the Cookie header to send."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect())
    email = f"{uuid.uuid4().hex[:12]}@example.org"

    def submit(path: str, **fields: str) -> None:
        html = opener.open(f"{base}{path}", timeout=10).read().decode()
        token = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert token, f"no CSRF field on {path}"
        body = urllib.parse.urlencode({"csrf_token": token.group(1), "email": email, "password": PASSWORD, **fields})
        with pytest.raises(urllib.error.HTTPError) as answer:  # the 302, which the opener does not follow
            opener.open(f"{base}{path}", data=body.encode(), timeout=10)
        assert answer.value.code == 302, f"{path} answered {answer.value.code}"

    submit("/auth/register")
    submit("/auth/login")
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in jar)


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a local http URL
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)

"""MongoDB or Kafka down: a second app pointed at a port where nothing listens (a real
unreachable server). Pages say so with a 503, the API answers 503 JSON, recommendations are
still served without Kafka, and the stream tells the page to reconnect."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from recsys_core.contract import Interaction
from recsys_core.services.kafka import KafkaService
from recsys_core.services.mongod import MongoService
from recsys_core.settings import Settings
from recsys_web.errors import DB_DOWN
from tests.web.conftest import (
    Catalog,
    SSEReader,
    TopicReader,
    csrf_token,
    login,
    make_app,
    open_stream,
    register,
    unused_port,
    wait_until,
)


@pytest.fixture
def mongo_down_app(running_services) -> Iterator[Flask]:
    with make_app(MONGO_URI=f"mongodb://127.0.0.1:{unused_port()}/?directConnection=true", MONGO_TIMEOUT_MS=300) as app:
        yield app


@pytest.fixture
def kafka_down_app(db) -> Iterator[Flask]:
    with make_app(
        KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{unused_port()}", KAFKA_MESSAGE_TIMEOUT_MS=1000, KAFKA_TIMEOUT_S=0.5
    ) as app:
        yield app


def test_mongo_down_pages_say_so_and_api_answers_503_json(mongo_down_app: Flask) -> None:
    client = mongo_down_app.test_client()
    form = client.get("/auth/login")  # its CSRF token is kept in the server-side session, in MongoDB
    assert form.status_code == 503
    assert "database is unavailable" in form.get_data(as_text=True)
    client.set_cookie("recsys_session", "x" * 43)  # a returning visitor: their session is in MongoDB
    page = client.get("/result")
    assert page.status_code == 503
    assert "database is unavailable" in page.get_data(as_text=True)

    api = client.get("/api/v1/popular")
    assert api.status_code == 503
    assert api.get_json()["error"] == "Service Unavailable"
    health = mongo_down_app.test_client().get("/healthz")  # a monitor, without a session cookie
    assert health.status_code == 503
    assert health.get_json() | {"kafka_messages": None} == {
        "status": "degraded",
        "mongo": "down",
        "kafka": "up",
        "kafka_messages": None,
        "streams": {"open": 0, "opened_total": 0},
        "cache": {"live": False, "entries": 0, "changes_seen": 0},  # nothing kept: every read goes to MongoDB
    }


def test_kafka_down_still_serves_and_counts_the_failure(kafka_down_app: Flask, catalog: Catalog) -> None:
    client = kafka_down_app.test_client()
    register(client, "kim@example.org", catalog.reviewer)
    login(client, "kim@example.org")
    page = client.get("/result")
    publisher = kafka_down_app.extensions["recsys"].publisher()
    # The page did not wait for Kafka: its message is queued, and its delivery not yet given up on.
    assert publisher.counts() == {"produced": 1, "delivered": 0, "failed": 0}
    assert page.status_code == 200
    assert page.get_data(as_text=True).count('class="card"') == 5
    assert client.get(f"/api/v1/recommendations/{catalog.reviewer}").get_json()["fallback"] is False

    deadline = time.monotonic() + 10
    while publisher.counts()["failed"] < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert publisher.counts() == {"produced": 2, "delivered": 0, "failed": 2}
    health = client.get("/healthz")
    assert health.status_code == 503
    body = health.get_json()
    assert body["kafka"] == "down"
    assert body["mongo"] == "up"
    assert body["kafka_messages"]["impressions"]["failed"] == 2

    stream = open_stream(client)
    block = stream.next()
    assert block is not None
    assert block.event == "status"
    assert block.data == {"state": "kafka_down"}
    assert block.retry == "3000"
    assert stream.next() is None, "the stream ends so that the browser reconnects"
    assert kafka_down_app.extensions["recsys"].streams.current == 0


@pytest.fixture
def stalling_mongod(tmp_path: Path, running_services: Settings) -> Iterator[tuple[Settings, int]]:
    """A mongod of the test's own (the session's must keep answering), with its pid to stop it."""
    settings = Settings(state_dir=tmp_path / "state", mongo_port=unused_port())
    service = MongoService(settings)
    status = service.up()
    assert status.pid is not None
    yield settings, status.pid
    os.kill(status.pid, signal.SIGCONT)
    service.down()


def test_a_mongod_that_stops_answering_gives_503_instead_of_hanging(stalling_mongod: tuple[Settings, int]) -> None:
    settings, pid = stalling_mongod
    with make_app(MONGO_URI=settings.effective_mongo_uri, MONGO_TIMEOUT_MS=1000) as app:
        client = app.test_client()
        assert client.get("/api/v1/popular").status_code == 404  # answered: nothing is published there
        os.kill(pid, signal.SIGSTOP)  # the process is alive and its port open, but nothing answers
        answers: list[Any] = []
        request = threading.Thread(target=lambda: answers.append(client.get("/api/v1/popular")), daemon=True)
        request.start()
        request.join(timeout=30)  # a bound on hanging, far above the 1 s operation timeout
        assert not request.is_alive(), "the request hung on the stalled mongod"
    assert answers[0].status_code == 503
    assert answers[0].get_json()["message"] == DB_DOWN


@pytest.fixture
def own_kafka(tmp_path: Path, running_services: Settings) -> Iterator[tuple[Settings, KafkaService]]:
    """A broker of the test's own, to stop and start (the session's must keep running)."""
    state = tmp_path / "state"
    state.mkdir()
    (state / "jars").symlink_to(running_services.state_dir / "jars")  # the jars the session resolved
    settings = running_services.model_copy(
        update={"state_dir": state, "kafka_port": unused_port(), "kafka_controller_port": unused_port()}
    )
    service = KafkaService(settings)
    service.up()
    yield settings, service
    service.down()


def test_kafka_stopped_pages_serve_streams_retry_ratings_are_refused_and_all_resumes(
    own_kafka: tuple[Settings, KafkaService], catalog: Catalog
) -> None:
    settings, kafka = own_kafka
    with make_app(KAFKA_BOOTSTRAP_SERVERS=settings.effective_kafka_bootstrap, KAFKA_TIMEOUT_S=2.0) as app:
        client = app.test_client()
        register(client, "kafka-outage@example.org")
        login(client, "kafka-outage@example.org")
        asin = "B000000001"
        interactions = TopicReader(settings, settings.topic_interactions)
        assert kafka.down()

        # Pages and the API keep serving from MongoDB.
        page = client.get("/result")
        assert page.status_code == 200
        assert page.get_data(as_text=True).count('class="card"') == 5
        assert client.get("/api/v1/popular").status_code == 200
        assert client.get(f"/product/{asin}").status_code == 200
        # The stream tells the browser to retry.
        stream = open_stream(client)
        down = stream.next()
        assert down is not None
        assert (down.event, down.data, down.retry) == ("status", {"state": "kafka_down"}, "3000")
        assert stream.next() is None
        # A rating is refused, clearly, and only once librdkafka has given it up.
        token = csrf_token(client, f"/product/{asin}")
        refused = client.post(f"/product/{asin}/rate", data={"csrf_token": token, "rating": "4"})
        assert refused.status_code == 503
        assert "could not be recorded" in refused.get_data(as_text=True)
        assert app.extensions["recsys"].ratings().counts() == {"produced": 1, "delivered": 0, "failed": 1}

        kafka.up()

        def reconnect() -> SSEReader | None:
            """What the browser does after ``retry:``: a new stream, live once the partitions have leaders."""
            stream = open_stream(client)
            first = stream.next(timeout_s=30)
            if first is not None and first.data == {"state": "live"}:
                return stream
            stream.close()
            time.sleep(0.5)
            return None

        stream = wait_until(reconnect, "the stream to be live again", timeout_s=90)
        reviewer = app.extensions["recsys"].database()["users"].find_one({"email": "kafka-outage@example.org"})
        assert reviewer is not None
        stream.close()
        token = csrf_token(client, f"/product/{asin}")
        recorded = client.post(f"/product/{asin}/rate", data={"csrf_token": token, "rating": "5"})
        assert recorded.status_code == 303
        ratings = [Interaction.decode(m.value() or b"") for m in interactions.keyed(reviewer["reviewerID"], 10.0)]
        assert [(r.kind, r.rating) for r in ratings] == [("rate", 5.0)], "the refused rating never arrives later"
        interactions.consumer.close()

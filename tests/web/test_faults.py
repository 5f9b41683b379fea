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

from recsys_core.services.mongod import MongoService
from recsys_core.settings import Settings
from recsys_web.errors import DB_DOWN
from tests.web.conftest import Catalog, login, make_app, open_stream, register, unused_port


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

"""The document cache on the real MongoDB: what a request reads is kept only while the change
stream proves it current. Two apps on the same database stand for two gunicorn workers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pymongo.database import Database

from recsys_core import mongo
from recsys_core.contract import Recommendations
from recsys_web.cache import DocumentCache
from tests.web.conftest import Catalog, csrf_token, login, make_app, register, wait_until


def cache_of(app: Flask) -> DocumentCache:
    cache: DocumentCache = app.extensions["recsys"].cache
    return cache


def held_after_a_read(client: FlaskClient, path: str, collection: str, key: Any) -> dict[str, Any]:
    """Read ``path`` until the app keeps ``key`` (the first reads may precede the stream's start)."""
    cache = cache_of(client.application)
    answers: list[dict[str, Any]] = []

    def read_and_hold() -> bool:
        answer = client.get(path)
        assert answer.status_code == 200
        answers.append(answer.get_json())
        return cache.holds(collection, key)

    wait_until(read_and_hold, f"{collection} {key} kept")
    return answers[-1]


def queries_run(db: Database[mongo.Document]) -> int:
    return int(db.client.admin.command("serverStatus")["opcounters"]["query"])


@pytest.fixture
def held_list(user_client: Callable[[str | None], FlaskClient], catalog: Catalog) -> tuple[FlaskClient, str]:
    """The reviewer's logged-in client and API path, once the app keeps their list."""
    client = user_client(catalog.reviewer)
    path = f"/api/v1/recommendations/{catalog.reviewer}"
    assert held_after_a_read(client, path, mongo.RECOMMENDATIONS, catalog.reviewer)["items"][0]["title"] == "Product 1"
    return client, path


def test_the_api_reads_nothing_from_mongodb_while_its_documents_are_unchanged(
    held_list: tuple[FlaskClient, str], catalog: Catalog, db: Database[mongo.Document]
) -> None:
    client, path = held_list
    client.get(path)  # the stream is open now: whatever this request reads is kept
    before = queries_run(db)
    answers = [client.get(path) for _ in range(20)]
    assert queries_run(db) - before == 0  # the session, the account and the list all came from memory
    assert {a.status_code for a in answers} == {200}
    assert [item["title"] for item in answers[-1].get_json()["items"]] == catalog.titles


def test_a_list_rewritten_in_mongodb_is_served_new(
    held_list: tuple[FlaskClient, str], catalog: Catalog, db: Database[mongo.Document]
) -> None:
    """The online updater's write, from another process: the stream drops the kept list."""
    client, path = held_list
    db[Recommendations.collection].update_one({"_id": catalog.reviewer}, {"$set": {"items.0.title": "Rewritten"}})
    wait_until(lambda: client.get(path).get_json()["items"][0]["title"] == "Rewritten", "the new list served")


def test_a_publish_swap_drops_every_kept_list(
    held_list: tuple[FlaskClient, str], catalog: Catalog, db: Database[mongo.Document]
) -> None:
    client, path = held_list
    published = db[Recommendations.collection].find_one({"_id": catalog.reviewer})
    assert published is not None
    db["recommendations_staging_test"].insert_one({**published, "model_version": "als-v8"})
    db["recommendations_staging_test"].rename(Recommendations.collection, dropTarget=True)
    wait_until(lambda: client.get(path).get_json()["model_version"] == "als-v8", "the swapped-in list served")


def test_a_logout_on_one_worker_ends_the_session_on_another(db: Database[mongo.Document]) -> None:
    with make_app() as first, make_app() as second:
        browser = first.test_client()
        register(browser, "two-workers@example.org")
        assert login(browser, "two-workers@example.org").status_code == 302
        cookie = browser.get_cookie("recsys_session")
        assert cookie is not None
        elsewhere = second.test_client()
        elsewhere.set_cookie("recsys_session", cookie.value)
        account = db[mongo.USERS].find_one({"email": "two-workers@example.org"})
        assert account is not None
        wait_until(
            lambda: (
                elsewhere.get("/auth/account").status_code == 200
                and cache_of(second).holds(mongo.USERS, account["_id"])
            ),
            "the second worker keeps the account",
        )
        browser.post("/auth/logout", data={"csrf_token": csrf_token(browser, "/auth/account")})
        copied = first.test_client()
        copied.set_cookie("recsys_session", cookie.value)
        assert copied.get("/auth/account").status_code == 302  # the worker that logged out: at once
        wait_until(lambda: elsewhere.get("/auth/account").status_code == 302, "the other worker to end it")


def test_a_read_that_raced_a_change_is_not_kept(db: Database[mongo.Document]) -> None:
    cache = DocumentCache([mongo.RECOMMENDATIONS], max_entries=10)
    cache.start(db)
    try:
        wait_until(lambda: cache.stats()["live"], "the change stream open")
        collection = db[mongo.RECOMMENDATIONS]
        collection.insert_one({"_id": "raced", "version": 1})
        wait_until(lambda: cache.stats()["changes_seen"] >= 1, "the insert seen")
        loads: list[int] = []

        def stale_read() -> tuple[str, int]:
            """Reads version 1; before the reader keeps it, version 2 is written and seen."""
            loads.append(1)
            seen = cache.stats()["changes_seen"]
            collection.update_one({"_id": "raced"}, {"$set": {"version": 2}})
            wait_until(lambda: cache.stats()["changes_seen"] > seen, "the update seen")
            return "raced", 1

        assert cache.read(mongo.RECOMMENDATIONS, "raced", stale_read) == 1
        assert not cache.holds(mongo.RECOMMENDATIONS, "raced")
        assert cache.read(mongo.RECOMMENDATIONS, "raced", lambda: ("raced", 2)) == 2
        assert cache.holds(mongo.RECOMMENDATIONS, "raced")
        assert cache.read(mongo.RECOMMENDATIONS, "raced", stale_read) == 2  # kept: no load
        assert loads == [1]
    finally:
        cache.close()


def test_a_read_in_flight_when_this_worker_writes_is_not_kept(db: Database[mongo.Document]) -> None:
    """The worker's own write is dropped at once, even when another thread was reading the document."""
    cache = DocumentCache([mongo.SESSIONS], max_entries=10)
    cache.start(db)
    try:
        wait_until(lambda: cache.stats()["live"], "the change stream open")

        def read_then_logged_out_here() -> tuple[str, str]:
            cache.forget(mongo.SESSIONS, "sid")  # this worker deletes the session meanwhile
            return "sid", "the session before its delete"

        cache.read(mongo.SESSIONS, "sid", read_then_logged_out_here)
        assert not cache.holds(mongo.SESSIONS, "sid")
    finally:
        cache.close()


def test_a_closed_or_disabled_cache_reads_every_time(db: Database[mongo.Document]) -> None:
    loads: list[str] = []

    def load() -> tuple[str, str]:
        loads.append("key")
        return "key", "value"

    disabled = DocumentCache([mongo.USERS], max_entries=0)
    disabled.start(db)
    closed = DocumentCache([mongo.USERS], max_entries=10)
    closed.start(db)
    wait_until(lambda: closed.stats()["live"], "the change stream open")
    closed.close()
    for cache in (disabled, closed):
        for _ in range(3):
            assert cache.read(mongo.USERS, "key", load) == "value"
        assert not cache.holds(mongo.USERS, "key")
        assert cache.stats()["entries"] == 0
    assert len(loads) == 6


def loader_of(document_id: int) -> Callable[[], tuple[int, int]]:
    return lambda: (document_id, document_id)


def test_the_kept_entries_are_bounded(db: Database[mongo.Document]) -> None:
    cache = DocumentCache([mongo.USERS], max_entries=3)
    cache.start(db)
    try:
        wait_until(lambda: cache.stats()["live"], "the change stream open")
        for i in range(5):
            cache.read(mongo.USERS, i, loader_of(i))
        assert cache.stats()["entries"] == 3
        assert [cache.holds(mongo.USERS, i) for i in range(5)] == [False, False, True, True, True]
    finally:
        cache.close()

"""The result and popular pages, escaping of raw product text, and producing what is served."""

from __future__ import annotations

import html
import json
import time

from flask import Flask

from recsys_core import mongo
from recsys_core.messages import RecommendationEvent
from tests.web.conftest import XSS_TITLE, Catalog, TopicReader, new_reviewer


def test_result_shows_the_top_5_with_reasons_and_model_version(user_client, catalog: Catalog) -> None:
    page = user_client(catalog.reviewer).get("/result")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for title in catalog.titles:
        assert html.escape(title, quote=False) in text
    assert text.count('class="card"') == 5
    assert "because you rated Product 8" in text  # both the string and the {asin} object form
    assert text.count("because you rated Product 8") == 5
    assert "$11.00" in text
    assert "$13.00" in text
    assert 'score <span class="score">5.00</span>' in text
    assert "als-v7" in text
    assert "2026-11-20 08:30 UTC" in text
    assert "https://images.example.com/1.jpg" in text


def test_product_text_is_escaped(user_client, catalog: Catalog) -> None:
    page = user_client(catalog.reviewer).get("/result")
    text = page.get_data(as_text=True)
    assert XSS_TITLE not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_unknown_reviewer_falls_back_to_popular(user_client, catalog: Catalog) -> None:
    client = user_client(new_reviewer("NEW"))
    response = client.get("/result")
    assert response.status_code == 302
    assert response.location.endswith("/popular")
    page = client.get("/popular").get_data(as_text=True)
    assert "There are no recommendations for NEW" in page
    titles = [html.escape(t, quote=False) for t in catalog.popular_titles]
    positions = [page.index(t) for t in titles]
    assert positions == sorted(positions), "popular items appear in rank order"
    assert page.count('class="card"') == 5


def test_a_user_without_reviewer_id_is_asked_to_link_one(user_client, catalog: Catalog) -> None:
    client = user_client(None)
    assert client.get("/result").location.endswith("/auth/account")
    token = client.get("/auth/account").get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    for bad in ("", "x" * 65, "a b", "é", "A1<script>"):
        assert client.post("/auth/account", data={"csrf_token": token, "reviewerID": bad}).status_code == 400
    assert client.post("/auth/account", data={"csrf_token": token, "reviewerID[$ne]": "x"}).status_code == 400
    linked = client.post("/auth/account", data={"csrf_token": token, "reviewerID": catalog.reviewer})
    assert linked.status_code == 302
    assert client.get("/result").status_code == 200


def test_pages_need_a_login(client, catalog: Catalog) -> None:
    for path in ("/result", "/popular", "/auth/account", "/stream"):
        assert client.get(path).location.endswith("/auth/login"), path


def test_served_top_5_is_produced_to_kafka(app: Flask, user_client, catalog: Catalog, topic_reader: TopicReader):
    user_client(catalog.reviewer).get("/result")
    msg = topic_reader.find(catalog.reviewer)
    event = RecommendationEvent.decode(msg.value() or b"")
    assert event.reviewerID == catalog.reviewer
    assert event.source == "batch"
    assert event.model_version == "als-v7"
    assert [item.title for item in event.items] == catalog.titles
    assert event.served_at is not None
    assert event.ts.isoformat() == "2026-11-20T08:30:00+00:00"
    assert json.loads(msg.value() or b"")["items"][0]["because"] == "because you rated Product 8"
    deadline = time.monotonic() + 10
    publisher = app.extensions["recsys"].publisher()
    while publisher.counts()["delivered"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert publisher.counts() == {"produced": 1, "delivered": 1, "failed": 0}


def test_an_empty_or_malformed_list_falls_back_to_popular(user_client, catalog: Catalog, db) -> None:
    reviewer = new_reviewer("EMPTY")
    db[mongo.RECOMMENDATIONS].insert_one(
        {"_id": reviewer, "items": [{"score": 1.0}, "B000000001"], "model_version": "als-v7"}
    )
    client = user_client(reviewer)
    assert client.get("/result").location.endswith("/popular")
    assert client.get(f"/api/v1/recommendations/{reviewer}").get_json()["fallback"] is True

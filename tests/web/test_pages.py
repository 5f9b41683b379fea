"""The result and popular pages, escaping of raw product text, and the impressions of what is shown."""

from __future__ import annotations

import html
import time

from flask import Flask

from recsys_core import mongo
from recsys_core.contract import ImpressionEvent, Recommendations
from tests.web.conftest import UPDATED_AT, XSS_TITLE, Catalog, TopicReader, event_for, new_reviewer, open_stream


def test_result_shows_the_top_5_with_reasons_and_model_version(user_client, catalog: Catalog) -> None:
    page = user_client(catalog.reviewer).get("/result")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for title in catalog.titles:
        assert html.escape(title, quote=False) in text
    assert text.count('class="card"') == 5
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


def test_unknown_reviewer_sees_the_popular_list_on_the_live_result_page(user_client, catalog: Catalog) -> None:
    """Until the reviewer has a list of their own; the page listens for it, so it can change without a reload."""
    client = user_client(new_reviewer("NEW"))
    response = client.get("/result")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'id="popular-hint"' in page
    assert '<span data-field="source">popular</span>' in page
    assert 'id="live"' in page
    titles = [html.escape(t, quote=False) for t in catalog.popular_titles]
    positions = [page.index(t) for t in titles]
    assert positions == sorted(positions), "popular items appear in rank order"
    assert page.count('class="card"') == 5
    cards = page.split('id="recommendations"')[1].split("</ol>")[0]
    assert "via=rec" not in cards, "opening a popular item is a view, not a click on a recommendation"


def test_links_of_a_personal_list_are_clicks(user_client, catalog: Catalog) -> None:
    page = user_client(catalog.reviewer).get("/result").get_data(as_text=True)
    assert page.count("/product/B000000001?via=rec") == 1
    assert "popular-hint" not in page


def test_a_baseline_list_says_which_baseline_and_why(user_client, catalog: Catalog, db) -> None:
    """When the model failed the gate, the page names the baseline that serves and the gate's decision."""
    decision = "gate fail, lists from popularity: NDCG@10 0.01 does not beat popularity's 0.02"
    db[Recommendations.collection].update_one(
        {"_id": catalog.reviewer}, {"$set": {"source": "popularity", "gate_decision": decision}}
    )
    page = user_client(catalog.reviewer).get("/result").get_data(as_text=True)
    assert '<span data-field="source">popularity</span>' in page
    assert "this list is the popularity baseline's" in page
    assert decision in html.unescape(page)


def test_a_model_list_has_no_gate_line(user_client, catalog: Catalog) -> None:
    assert 'id="gate-hint"' not in user_client(catalog.reviewer).get("/result").get_data(as_text=True)


def test_registration_gives_the_account_its_own_reviewer_identity(user_client, catalog: Catalog, db) -> None:
    client = user_client(None)
    account = client.get("/auth/account").get_data(as_text=True)
    users = list(db[mongo.USERS].find({}, {"reviewerID": 1}))
    assert len(users) == 1
    assert users[0]["reviewerID"].startswith("web-")
    assert users[0]["reviewerID"] in account
    assert client.get("/result").status_code == 200


def test_pages_need_a_login(client, catalog: Catalog) -> None:
    for path in ("/result", "/popular", "/auth/account", "/stream"):
        assert client.get(path).location.endswith("/auth/login"), path


def test_a_shown_list_is_an_impression(app: Flask, user_client, catalog: Catalog, impressions_reader: TopicReader):
    client = user_client(catalog.reviewer)
    client.get("/result")
    client.get(f"/api/v1/recommendations/{catalog.reviewer}")
    events = [ImpressionEvent.decode(m.value() or b"") for m in impressions_reader.keyed(catalog.reviewer, 5.0)]
    assert [(e.surface, e.source, e.model_version) for e in events] == [
        ("page", "batch", "als-v7"),
        ("api", "batch", "als-v7"),
    ]
    asins = [f"B00000000{i}" for i in range(1, 6)]
    assert all(e.asins == asins for e in events)
    assert len({e.event_id for e in events}) == 2
    publisher = app.extensions["recsys"].publisher()
    deadline = time.monotonic() + 10
    while publisher.counts()["delivered"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert publisher.counts() == {"produced": 2, "delivered": 2, "failed": 0}


def test_loading_a_page_puts_nothing_on_the_users_live_stream(user_client, catalog: Catalog, publish) -> None:
    """A GET has no side effect on the stream: only real changes to the list reach it."""
    client = user_client(catalog.reviewer)
    stream = open_stream(client)
    stream.until(lambda b: b.event == "status")
    assert client.get("/result").status_code == 200
    assert client.get(f"/api/v1/recommendations/{catalog.reviewer}").status_code == 200
    # A real change, keyed like anything the views might have produced, so it lands behind them.
    publish(event_for(catalog.reviewer, title="real change"))
    blocks = stream.until(lambda b: b.event == "recommendations")
    stream.close()
    received = [b.data for b in blocks if b.event == "recommendations"]
    assert [event["items"][0]["title"] for event in received] == ["real change 1"]


def test_an_empty_list_falls_back_to_popular(user_client, catalog: Catalog, db) -> None:
    reviewer = new_reviewer("EMPTY")
    empty = Recommendations(
        reviewerID=reviewer, items=[], model_version="als-v7", source="batch", updated_at=UPDATED_AT
    )
    db[Recommendations.collection].insert_one(empty.to_document())
    client = user_client(reviewer)
    page = client.get("/result")
    assert page.status_code == 200
    assert 'id="popular-hint"' in page.get_data(as_text=True)
    assert client.get(f"/api/v1/recommendations/{reviewer}").get_json()["fallback"] is True


def test_a_list_that_breaks_the_contract_is_an_error_not_a_guess(user_client, catalog: Catalog, db) -> None:
    reviewer = new_reviewer("BROKEN")
    db[mongo.RECOMMENDATIONS].insert_one(
        {"_id": reviewer, "items": [{"score": 1.0}, "B000000001"], "model_version": "als-v7"}
    )
    client = user_client(reviewer)
    page = client.get("/result")
    assert page.status_code == 500
    assert "B000000001" not in page.get_data(as_text=True)
    api = client.get(f"/api/v1/recommendations/{reviewer}")
    assert api.status_code == 500
    assert api.get_json()["error"] == "Internal Server Error"

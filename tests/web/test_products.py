"""The product page, and the interactions it sends: ratings confirmed by the broker, clicks and views by beacon."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from flask.testing import FlaskClient
from pymongo.database import Database

from recsys_core import mongo
from recsys_core.contract import Interaction, RecommendedItem, SimilarProducts
from recsys_core.settings import Settings
from tests.web.conftest import XSS_TITLE, Catalog, TopicReader, login, make_app, new_reviewer, register, unused_port


def _page_token(client: FlaskClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert found
    return found.group(1)


def _interactions(settings: Settings) -> TopicReader:
    return TopicReader(settings, settings.topic_interactions)


def _similar(db: Database[mongo.Document]) -> None:
    items = [
        RecommendedItem(asin=f"B00000000{i}", score=0.9 - i / 10, title=f"Product {i}", image=None, price=None,
                        because=None, because_asin=None)
        for i in (2, 3)
    ]  # fmt: skip
    similar = SimilarProducts(asin="B000000001", items=items, model_version="als-v7", updated_at=datetime.now(UTC))
    db[SimilarProducts.collection].insert_one(similar.to_document())


def test_the_product_page_shows_the_product_its_similar_products_and_rating_buttons(user_client, catalog, db) -> None:
    _similar(db)
    page = user_client(catalog.reviewer).get("/product/B000000001")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert '<h1 class="title">Product 1</h1>' in text
    assert "$11.00" in text
    assert "Beauty" in text
    assert "https://images.example.com/1.jpg" in text
    assert text.count('name="rating"') == 5
    similar = text.split("Similar products")[1]
    assert similar.index("Product 2") < similar.index("Product 3"), "closest first"
    assert similar.count('class="card"') == 2
    assert '/product/B000000002"' in similar, "a similar product is a view, not a click on a recommendation"
    assert 'data-kind="view"' in text


def test_a_product_the_model_does_not_know_has_no_similar_products_and_escapes_its_title(user_client, catalog):
    text = user_client(catalog.reviewer).get("/product/B000000003?via=rec").get_data(as_text=True)
    assert XSS_TITLE not in text
    assert html.escape(XSS_TITLE, quote=False) in text
    assert "does not know this product" in text
    assert 'data-kind="click"' in text


def test_an_unknown_or_malformed_asin_is_a_404_or_400(user_client, catalog) -> None:
    client = user_client(catalog.reviewer)
    assert client.get("/product/B0NOSUCH00").status_code == 404
    assert client.get("/product/a%20b").status_code == 400
    assert client.get("/product/B000000001?via[$ne]=1").status_code == 400


def test_a_rating_is_produced_keyed_by_the_reviewer_once_the_broker_confirms_it(
    user_client, catalog: Catalog, running_services: Settings
) -> None:
    reader = _interactions(running_services)
    reviewer = new_reviewer("RATER")
    client = user_client(reviewer)
    token = _page_token(client, "/product/B000000002")
    answer = client.post("/product/B000000002/rate", data={"csrf_token": token, "rating": "4"})
    assert answer.status_code == 303
    assert answer.location.endswith("/product/B000000002")
    assert "rating of Product 2 is recorded" in client.get(answer.location).get_data(as_text=True)
    event = Interaction.decode(reader.find(reviewer).value() or b"")
    assert (event.reviewerID, event.asin, event.kind, event.rating) == (reviewer, "B000000002", "rate", 4.0)
    assert event.event_id
    reader.consumer.close()


def test_a_rating_needs_a_csrf_token_and_one_to_five_stars(user_client, catalog, running_services) -> None:
    reader = _interactions(running_services)
    reviewer = new_reviewer("BAD")
    client = user_client(reviewer)
    token = _page_token(client, "/product/B000000002")
    assert client.post("/product/B000000002/rate", data={"rating": "5"}).status_code == 400
    for bad in ("0", "6", "4.5", "", "five"):
        answer = client.post("/product/B000000002/rate", data={"csrf_token": token, "rating": bad})
        assert answer.status_code == 303, bad
    assert client.post("/product/B0NOSUCH00/rate", data={"csrf_token": token, "rating": "5"}).status_code == 404
    assert reader.keyed(reviewer, 2.0) == []
    reader.consumer.close()


def test_opening_a_product_is_a_click_or_a_view_sent_by_beacon_never_by_the_get(
    user_client, catalog, running_services
) -> None:
    reader = _interactions(running_services)
    reviewer = new_reviewer("VIEWER")
    client = user_client(reviewer)
    text = client.get("/product/B000000004?via=rec").get_data(as_text=True)
    assert reader.keyed(reviewer, 1.5) == [], "rendering the page sent nothing"
    token = re.search(r'data-csrf="([^"]+)"', text)
    assert token
    assert client.post("/product/B000000004/seen", data={"kind": "click"}).status_code == 400
    assert (
        client.post("/product/B000000004/seen", data={"csrf_token": token.group(1), "kind": "buy"}).status_code == 400
    )
    for kind in ("click", "view"):
        answer = client.post("/product/B000000004/seen", data={"csrf_token": token.group(1), "kind": kind})
        assert answer.status_code == 204
    events = [Interaction.decode(m.value() or b"") for m in reader.keyed(reviewer, 5.0)]
    assert [(e.kind, e.asin, e.rating) for e in events] == [("click", "B000000004", None), ("view", "B000000004", None)]
    reader.consumer.close()


def test_a_rating_that_kafka_cannot_take_is_refused_not_claimed(catalog, db) -> None:
    with make_app(KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{unused_port()}", KAFKA_TIMEOUT_S=1.0) as app:
        client = app.test_client()
        assert register(client, "down@example.org").status_code == 302
        assert login(client, "down@example.org").status_code == 302
        token = _page_token(client, "/product/B000000002")
        answer = client.post("/product/B000000002/rate", data={"csrf_token": token, "rating": "5"})
        assert answer.status_code == 503
        assert "could not be recorded" in answer.get_data(as_text=True)

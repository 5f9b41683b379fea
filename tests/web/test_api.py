"""The JSON API: own recommendations only, the popular fallback, validation, injection, health."""

from __future__ import annotations

import pytest

from tests.web.conftest import XSS_TITLE, Catalog, new_reviewer, wait_until


def test_own_recommendations(user_client, catalog: Catalog) -> None:
    response = user_client(catalog.reviewer).get(f"/api/v1/recommendations/{catalog.reviewer}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["fallback"] is False
    assert body["model_version"] == "als-v7"
    assert [item["title"] for item in body["items"]] == catalog.titles
    assert body["items"][2]["price"] == 13.0
    assert body["items"][0]["because_asin"] == "B000000008"
    # Raw text stays data: served as JSON that browsers must not sniff into HTML.
    assert body["items"][2]["title"] == XSS_TITLE
    assert response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_unknown_reviewer_gets_popular_with_fallback_flag(user_client, catalog: Catalog) -> None:
    reviewer = new_reviewer("NEW")
    body = user_client(reviewer).get(f"/api/v1/recommendations/{reviewer}").get_json()
    assert body["fallback"] is True
    assert body["reviewerID"] == reviewer
    assert [item["title"] for item in body["items"]] == catalog.popular_titles


def test_another_users_recommendations_are_forbidden(user_client, client, catalog: Catalog) -> None:
    other = user_client(new_reviewer("MALLORY"))
    response = other.get(f"/api/v1/recommendations/{catalog.reviewer}")
    assert response.status_code == 403
    assert response.get_json()["error"] == "Forbidden"
    anonymous = client.get(f"/api/v1/recommendations/{catalog.reviewer}")
    assert anonymous.status_code == 401
    assert anonymous.is_json


@pytest.mark.parametrize("reviewer", ["x" * 65, "a%20b", "%00", "%C3%A9", "%24ne", "a.b"])
def test_strange_reviewer_ids_are_400(user_client, catalog: Catalog, reviewer: str) -> None:
    response = user_client(catalog.reviewer).get(f"/api/v1/recommendations/{reviewer}")
    assert response.status_code == 400
    assert "reviewerID" in response.get_json()["message"]


def test_missing_reviewer_id_is_404_json(user_client, catalog: Catalog) -> None:
    response = user_client(catalog.reviewer).get("/api/v1/recommendations/")
    assert response.status_code == 404
    assert response.is_json


def test_popular_api_and_categories(client, catalog: Catalog) -> None:
    overall = client.get("/api/v1/popular").get_json()
    assert [item["title"] for item in overall["items"]] == catalog.popular_titles
    assert [item["rank"] for item in overall["items"]] == [1, 2, 3, 4, 5]
    electronics = client.get("/api/v1/popular?category=Electronics").get_json()
    assert electronics["category"] == "Electronics"
    assert len(electronics["items"]) == 1
    assert client.get("/api/v1/popular?category=Garden").status_code == 404
    assert client.get("/api/v1/popular?category=").status_code == 400
    assert client.get("/api/v1/popular?category=%7B%22%24ne%22%3Anull%7D").status_code == 400
    injected = client.get("/api/v1/popular?category[$ne]=x")
    assert injected.status_code == 400
    assert injected.is_json


def test_healthz_reports_both_services_and_counters(client, catalog: Catalog) -> None:
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok"
    assert body["mongo"] == "up"
    assert body["kafka"] == "up"
    assert body["streams"] == {"open": 0, "opened_total": 0}
    assert set(body["kafka_messages"]["impressions"]) == {"produced", "delivered", "failed"}
    assert set(body["kafka_messages"]["interactions"]) == {"produced", "delivered", "failed"}
    wait_until(lambda: client.get("/healthz").get_json()["cache"]["live"], "the document cache's stream open")

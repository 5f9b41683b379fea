"""The contract test: documents the assets really published, read back by the readers that serve them.

Not fixtures written by hand: if the writer and the contract (or the reader) drift apart,
this fails, whatever the web tests' own documents say.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pyspark.sql import SparkSession

from recsys_assets.documents import conform, spark_schema
from recsys_assets.model.publishing import announcements
from recsys_core.contract import (
    TOP_K,
    ItemFactor,
    MongoDocument,
    PopularItem,
    Product,
    RecommendationEvent,
    Recommendations,
    RecommendedItem,
    stored_time,
)
from recsys_web.cache import DocumentCache
from recsys_web.recommendations import load_popular, load_recommendations
from recsys_web.resources import CACHED_COLLECTIONS
from tests.model.conftest import Published
from tests.web.conftest import login, make_app, register


@pytest.mark.parametrize("document", [Recommendations, PopularItem, ItemFactor])
def test_every_published_document_is_exactly_its_contract(published: Published, document: type[MongoDocument]) -> None:
    stored = list(published.pipeline.db[document.collection].find())
    assert stored
    for doc in stored:
        parsed = document.from_document(doc)  # strict: a wrong type, a missing field or a bad _id raises
        assert set(doc) == {"_id", *document.model_fields}  # the writer writes the contract, no more
        assert parsed.to_document() == doc  # and nothing is lost or coerced on the way


def test_ingested_products_read_as_the_web_reads_them(published: Published) -> None:
    stored = list(published.pipeline.db[Product.collection].find())
    assert stored
    products = [Product.from_document(doc) for doc in stored]
    assert all(p.image is None or p.image.startswith(("http://", "https://")) for p in products)


def test_the_web_readers_serve_what_was_published(published: Published) -> None:
    db = published.pipeline.db
    doc = db[Recommendations.collection].find_one(sort=[("_id", 1)])
    assert doc is not None
    cache = DocumentCache(CACHED_COLLECTIONS, max_entries=10)
    cache.start(db)
    try:
        served = load_recommendations(db, cache, doc["_id"])
    finally:
        cache.close()
    assert served is not None
    assert [item.asin for item in served.items] == [item["asin"] for item in doc["items"]]
    assert len(served.items) == TOP_K
    popular = load_popular(db, "__all__")
    assert popular is not None
    assert [item.rank for item in popular.items] == list(range(1, TOP_K + 1))


def test_the_api_answers_a_real_reviewer_with_the_published_list(published: Published) -> None:
    db = published.pipeline.db
    doc = db[Recommendations.collection].find_one(sort=[("_id", -1)])
    assert doc is not None
    with make_app(MONGO_DB=db.name) as app:
        client = app.test_client()
        email = f"{uuid.uuid4().hex[:12]}@example.org"
        assert register(client, email, doc["_id"]).status_code == 302
        assert login(client, email).status_code == 302
        body = client.get(f"/api/v1/recommendations/{doc['_id']}").get_json()
        db.users.delete_many({"email": email})
    assert body["fallback"] is False
    assert body["model_version"] == doc["model_version"]
    assert [item["asin"] for item in body["items"]] == [item["asin"] for item in doc["items"]]


def test_a_list_announced_by_spark_decodes_as_the_event_of_the_stored_list(spark: SparkSession) -> None:
    """Nulls, awkward text, unrounded floats and the millisecond time survive Spark's ``to_json``."""
    items = [
        RecommendedItem(asin="B0001", score=0.1 + 0.2, title='A "quoted" <b>title</b> \u00e9\u4e2d', image=None,
                        price=None, because=None, because_asin=None),
        RecommendedItem(asin="B0002", score=-1e-300, title=None, image="https://example.org/a.jpg", price=9.49,
                        because="Because you rated \\ something", because_asin="B0009"),
    ]  # fmt: skip
    stored = Recommendations(
        reviewerID="A1ZQ9X2",
        items=items,
        model_version="20261203T000000Z-x",
        source="batch",
        updated_at=stored_time(datetime(2026, 12, 3, 10, 0, 0, 123456, tzinfo=UTC)),
    )
    frame = spark.createDataFrame([stored.model_dump()], schema=spark_schema(Recommendations))
    (row,) = announcements(conform(frame, Recommendations)).collect()
    assert row["key"] == stored.reviewerID
    assert RecommendationEvent.decode(row["value"]) == RecommendationEvent.of(stored)

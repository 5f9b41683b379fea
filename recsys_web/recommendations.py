"""Reading what the model pipeline published, through the contract, and what a shown list records.

The documents are read with the contract's classes (``recsys_core.contract``), the same
ones the publishing assets write through, so a list the pipeline published is exactly the
list a page shows; a reviewer's list is read through the worker's document cache, decoded.
Showing a list is an impression, logged on the ``impressions`` topic; the ``recommendations``
topic carries only real changes to a reviewer's list.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

from recsys_core import mongo
from recsys_core.contract import (
    TOP_K,
    ImpressionEvent,
    ImpressionSource,
    Interaction,
    InteractionKind,
    PopularItem,
    Product,
    Recommendations,
    SimilarProducts,
    Surface,
)
from recsys_web.cache import DocumentCache


@dataclass(frozen=True)
class PopularList:
    """A category's published popular list, best first."""

    category: str
    items: list[PopularItem]

    @property
    def model_version(self) -> str:
        return self.items[0].model_version

    @property
    def updated_at(self) -> datetime:
        return self.items[0].updated_at

    @property
    def source(self) -> ImpressionSource:
        return "popular"

    def to_json(self) -> dict[str, Any]:
        per_list = {"category", "model_version", "updated_at"}
        return {
            "category": self.category,
            "items": [item.model_dump(mode="json", exclude=per_list) for item in self.items],
            "model_version": self.model_version,
            "updated_at": self.updated_at.isoformat(),
        }


def load_recommendations(
    db: Database[mongo.Document], cache: DocumentCache, reviewer_id: str
) -> Recommendations | None:
    """The reviewer's published list, or None when there is none (or an empty one) for them."""

    def find() -> tuple[str, Recommendations] | None:
        doc = db[Recommendations.collection].find_one({"_id": reviewer_id})
        return None if doc is None else (reviewer_id, Recommendations.from_document(doc))

    recommendations: Recommendations | None = cache.read(Recommendations.collection, reviewer_id, find)
    return recommendations if recommendations is not None and recommendations.items else None


def load_popular(db: Database[mongo.Document], category: str) -> PopularList | None:
    """The first ``TOP_K`` of a category's popular list, or None when none is published."""
    docs = db[PopularItem.collection].find({"category": category}).sort("rank", 1).limit(TOP_K)
    items = [PopularItem.from_document(doc) for doc in docs]
    return PopularList(category, items) if items else None


def load_product(db: Database[mongo.Document], asin: str) -> Product | None:
    doc = db[Product.collection].find_one({"_id": asin})
    return None if doc is None else Product.from_document(doc)


def load_similar(db: Database[mongo.Document], asin: str) -> SimilarProducts | None:
    """The product's nearest products in the served model, or None when the model does not know it."""
    doc = db[SimilarProducts.collection].find_one({"_id": asin})
    return None if doc is None else SimilarProducts.from_document(doc)


def interaction(reviewer_id: str, asin: str, kind: InteractionKind, rating: float | None = None) -> Interaction:
    """A shopper's rating, click or view, as the ``interactions`` topic and the updater take it."""
    return Interaction(
        event_id=uuid.uuid4().hex, reviewerID=reviewer_id, asin=asin, kind=kind, rating=rating, ts=datetime.now(UTC)
    )


def impression(reviewer_id: str, shown: Recommendations | PopularList, surface: Surface) -> ImpressionEvent:
    """What the ``impressions`` topic records of one list shown to one reviewer."""
    return ImpressionEvent(
        event_id=uuid.uuid4().hex,
        reviewerID=reviewer_id,
        asins=[item.asin for item in shown.items],
        model_version=shown.model_version,
        source=shown.source,
        surface=surface,
        served_at=datetime.now(UTC),
    )

"""Reading what the model pipeline published: a reviewer's top 5 and the popular lists.

The pipeline is the writer, so the reader is tolerant: a missing or malformed title, image or
price becomes None (and is filled from ``products`` when that has it), ``because`` may be a
string or an ``{asin, title}`` object, and an image is only kept if it is an http(s) URL, so a
``javascript:`` URL in raw data never reaches a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

from recsys_core import mongo
from recsys_core.messages import RecommendationEvent, RecommendedItem, Source
from recsys_web.publisher import Publisher

TOP_N = 5


@dataclass(frozen=True)
class TopList:
    """A reviewer's published recommendations."""

    reviewerID: str
    items: tuple[RecommendedItem, ...]
    model_version: str
    updated_at: datetime | None
    source: Source

    def to_json(self) -> dict[str, Any]:
        return {
            "reviewerID": self.reviewerID,
            "items": [item.to_json() for item in self.items],
            "model_version": self.model_version,
            "updated_at": _iso(self.updated_at),
            "fallback": False,
        }

    def served_event(self) -> RecommendationEvent:
        now = datetime.now(UTC)
        return RecommendationEvent(
            reviewerID=self.reviewerID,
            items=self.items,
            model_version=self.model_version,
            source=self.source,
            ts=self.updated_at or now,
            served_at=now,
        )


@dataclass(frozen=True)
class PopularItem:
    rank: int
    asin: str
    title: str | None
    image: str | None
    price: float | None
    score: float
    n_ratings: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "asin": self.asin,
            "title": self.title,
            "image": self.image,
            "price": self.price,
            "score": self.score,
            "n_ratings": self.n_ratings,
        }


@dataclass(frozen=True)
class PopularList:
    category: str
    items: tuple[PopularItem, ...]
    model_version: str
    updated_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "items": [item.to_json() for item in self.items],
            "model_version": self.model_version,
            "updated_at": _iso(self.updated_at),
        }


def load_recommendations(db: Database[mongo.Document], reviewer_id: str) -> TopList | None:
    """The reviewer's top 5, or None when the pipeline has none (or an empty one) for them."""
    doc = db[mongo.RECOMMENDATIONS].find_one({"_id": reviewer_id})
    if doc is None:
        return None
    entries = [e for e in doc.get("items") or [] if isinstance(e, dict) and isinstance(e.get("asin"), str)]
    entries = entries[:TOP_N]
    if not entries:  # nothing to show is the same as no list: the caller falls back to popular
        return None
    products = _products(db, [e["asin"] for e in entries] + [b["asin"] for b in map(_because_ref, entries) if b])
    items = []
    for entry in entries:
        title, image, price = _display(entry, products.get(entry["asin"], {}))
        items.append(
            RecommendedItem(
                asin=entry["asin"],
                score=_number(entry.get("score")) or 0.0,
                title=title,
                image=image,
                price=price,
                because=_because(entry.get("because"), products),
            )
        )
    source = doc.get("source")
    return TopList(
        reviewerID=reviewer_id,
        items=tuple(items),
        model_version=str(doc.get("model_version", "unknown")),
        updated_at=_time(doc.get("updated_at")),
        source=source if source in ("batch", "online") else "batch",
    )


def load_popular(db: Database[mongo.Document], category: str) -> PopularList | None:
    """The top 5 of a category (``__all__`` for overall), or None when none is published."""
    docs = list(db[mongo.POPULAR].find({"category": category}).sort("rank", 1).limit(TOP_N))
    docs = [d for d in docs if isinstance(d.get("asin"), str)]
    if not docs:
        return None
    products = _products(db, [d["asin"] for d in docs])
    items = []
    for doc in docs:
        title, image, price = _display(doc, products.get(doc["asin"], {}))
        n_ratings = _number(doc.get("n_ratings"))
        items.append(
            PopularItem(
                rank=int(_number(doc.get("rank")) or 0),
                asin=doc["asin"],
                title=title,
                image=image,
                price=price,
                score=_number(doc.get("score")) or 0.0,
                n_ratings=None if n_ratings is None else int(n_ratings),
            )
        )
    return PopularList(
        category=category,
        items=tuple(items),
        model_version=str(docs[0].get("model_version", "unknown")),
        updated_at=_time(docs[0].get("updated_at")),
    )


def _products(db: Database[mongo.Document], asins: list[str]) -> dict[str, mongo.Document]:
    """Product fields for the asins, one query; only for filling what the lists left out."""
    if not asins:
        return {}
    found = db[mongo.PRODUCTS].find({"_id": {"$in": sorted(set(asins))}}, {"title": 1, "image": 1, "price": 1})
    return {doc["_id"]: doc for doc in found}


def _display(entry: dict[str, Any], product: dict[str, Any]) -> tuple[str | None, str | None, float | None]:
    """Title, image and price from the list's own entry, else from the product."""
    price = _number(entry.get("price"))
    return (
        _text(entry.get("title")) or _text(product.get("title")),
        _image(entry.get("image")) or _image(product.get("image")),
        price if price is not None else _number(product.get("price")),
    )


def _because_ref(entry: dict[str, Any]) -> dict[str, Any] | None:
    because = entry.get("because")
    return because if isinstance(because, dict) and isinstance(because.get("asin"), str) else None


def _because(value: object, products: dict[str, mongo.Document]) -> str | None:
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        title = _text(value.get("title"))
        if title is None and isinstance(value.get("asin"), str):
            title = _text(products.get(value["asin"], {}).get("title")) or value["asin"]
        return None if title is None else f"because you rated {title}"
    return None


def _text(value: object) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # NaN
        return None
    return float(value)


def _image(value: object) -> str | None:
    text = _text(value)
    return text if text is not None and text.lower().startswith(("https://", "http://")) else None


def _time(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def serve(db: Database[mongo.Document], publisher: Publisher, reviewer_id: str) -> TopList | None:
    """Load the reviewer's top 5 and produce it to Kafka: every personal list we serve is
    announced. The popular fallback is not; it is nobody's list."""
    top = load_recommendations(db, reviewer_id)
    if top is not None:
        publisher.publish(top.served_event())
    return top

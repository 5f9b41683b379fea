"""Kafka message schemas: what travels on the ``recommendations`` and ``interactions`` topics.

Producers (the web app, the online updater) build these dataclasses and call ``encode()``;
consumers call ``decode()``, which checks every field, so a malformed message is rejected
with a ``MessageError`` in one place instead of surfacing as a ``KeyError`` deep inside a
consumer loop. Messages are UTF-8 JSON keyed by reviewerID (so one reviewer's events stay in
order on one partition). Times are ISO-8601 strings with a UTC offset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

Source = Literal["batch", "online"]
InteractionKind = Literal["rating", "click"]


class MessageError(ValueError):
    """A message does not match its schema; the text names the offending field."""


@dataclass(frozen=True)
class RecommendedItem:
    """One recommended product, as in the Mongo ``recommendations`` items."""

    asin: str
    score: float
    title: str | None = None
    image: str | None = None
    price: float | None = None
    because: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "asin": self.asin,
            "score": self.score,
            "title": self.title,
            "image": self.image,
            "price": self.price,
            "because": self.because,
        }

    @classmethod
    def from_json(cls, obj: object) -> RecommendedItem:
        data = _object(obj, "item")
        return cls(
            asin=_str(data, "asin"),
            score=_number(data, "score"),
            title=_optional_str(data, "title"),
            image=_optional_str(data, "image"),
            price=_optional_number(data, "price"),
            because=_optional_str(data, "because"),
        )


@dataclass(frozen=True)
class RecommendationEvent:
    """A top-N list on the ``recommendations`` topic.

    ``ts`` is when the list was computed (the Mongo document's ``updated_at`` for batch lists,
    the fold-in time for online ones); ``served_at`` is set only by the web app, when it showed
    the list to the user.
    """

    reviewerID: str  # the wire name, as in the Amazon data set
    items: tuple[RecommendedItem, ...]
    model_version: str
    source: Source
    ts: datetime
    served_at: datetime | None = None

    def key(self) -> bytes:
        return self.reviewerID.encode()

    def to_json(self) -> dict[str, Any]:
        return {
            "reviewerID": self.reviewerID,
            "items": [item.to_json() for item in self.items],
            "model_version": self.model_version,
            "source": self.source,
            "ts": self.ts.isoformat(),
            "served_at": None if self.served_at is None else self.served_at.isoformat(),
        }

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> RecommendationEvent:
        data = _load(raw)
        items = data.get("items")
        if not isinstance(items, list):
            raise MessageError("items must be a list")
        source = _str(data, "source")
        if source not in ("batch", "online"):
            raise MessageError(f"source must be 'batch' or 'online', not {source!r}")
        served_at = data.get("served_at")
        return cls(
            reviewerID=_str(data, "reviewerID"),
            items=tuple(RecommendedItem.from_json(item) for item in items),
            model_version=_str(data, "model_version"),
            source=cast(Source, source),
            ts=_time(data, "ts"),
            served_at=None if served_at is None else _time(data, "served_at"),
        )


@dataclass(frozen=True)
class InteractionEvent:
    """A rating or click on the ``interactions`` topic; ``rating`` (1-5) only for ratings."""

    event_id: str
    reviewerID: str
    asin: str
    kind: InteractionKind
    ts: datetime
    rating: float | None = None

    def __post_init__(self) -> None:
        if (self.kind == "rating") != (self.rating is not None):
            raise MessageError("rating is required for kind 'rating' and absent otherwise")
        if self.rating is not None and not 1 <= self.rating <= 5:
            raise MessageError(f"rating must be within 1..5, not {self.rating}")

    def key(self) -> bytes:
        return self.reviewerID.encode()

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "reviewerID": self.reviewerID,
            "asin": self.asin,
            "kind": self.kind,
            "rating": self.rating,
            "ts": self.ts.isoformat(),
        }

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> InteractionEvent:
        data = _load(raw)
        kind = _str(data, "kind")
        if kind not in ("rating", "click"):
            raise MessageError(f"kind must be 'rating' or 'click', not {kind!r}")
        return cls(
            event_id=_str(data, "event_id"),
            reviewerID=_str(data, "reviewerID"),
            asin=_str(data, "asin"),
            kind=cast(InteractionKind, kind),
            ts=_time(data, "ts"),
            rating=_optional_number(data, "rating"),
        )


def _load(raw: bytes | str) -> dict[str, Any]:
    try:
        return _object(json.loads(raw), "message")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MessageError(f"not JSON: {exc}") from exc


def _object(obj: object, what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise MessageError(f"{what} must be a JSON object")
    return cast(dict[str, Any], obj)


def _str(data: dict[str, Any], field: str) -> str:
    value = data.get(field)
    if not isinstance(value, str) or not value:
        raise MessageError(f"{field} must be a non-empty string")
    return value


def _optional_str(data: dict[str, Any], field: str) -> str | None:
    value = data.get(field)
    if value is not None and not isinstance(value, str):
        raise MessageError(f"{field} must be a string or null")
    return value


def _number(data: dict[str, Any], field: str) -> float:
    value = data.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MessageError(f"{field} must be a number")
    return float(value)


def _optional_number(data: dict[str, Any], field: str) -> float | None:
    return None if data.get(field) is None else _number(data, field)


def _time(data: dict[str, Any], field: str) -> datetime:
    try:
        value = datetime.fromisoformat(_str(data, field))
    except ValueError as exc:
        raise MessageError(f"{field} must be an ISO-8601 time: {exc}") from exc
    if value.tzinfo is None:
        raise MessageError(f"{field} must carry a UTC offset")
    return value

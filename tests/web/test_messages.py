"""The Kafka message schemas shared with the online updater: round trips and rejections."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from recsys_core.messages import InteractionEvent, MessageError, RecommendationEvent, RecommendedItem

WHEN = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def recommendation() -> RecommendationEvent:
    return RecommendationEvent(
        reviewerID="A1",
        items=(RecommendedItem("B1", 4.5, "Title", None, 9.99, "because you rated X"), RecommendedItem("B2", 4.0)),
        model_version="als-v7",
        source="batch",
        ts=WHEN,
        served_at=WHEN,
    )


def test_recommendation_round_trip_and_wire_shape() -> None:
    event = recommendation()
    assert RecommendationEvent.decode(event.encode()) == event
    assert event.key() == b"A1"
    wire = json.loads(event.encode())
    assert set(wire) == {"reviewerID", "items", "model_version", "source", "ts", "served_at"}
    assert wire["ts"] == "2026-11-24T12:00:00+00:00"
    assert wire["items"][1] == {
        "asin": "B2",
        "score": 4.0,
        "title": None,
        "image": None,
        "price": None,
        "because": None,
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"reviewerID": ""}, "reviewerID"),
        ({"reviewerID": {"$ne": None}}, "reviewerID"),
        ({"items": "B1"}, "items"),
        ({"items": [{"asin": "B1", "score": "high"}]}, "score"),
        ({"items": [{"asin": "B1", "score": True}]}, "score"),
        ({"source": "manual"}, "source"),
        ({"ts": "yesterday"}, "ts"),
        ({"ts": "2026-11-24T12:00:00"}, "ts"),  # no UTC offset
    ],
)
def test_malformed_recommendations_are_rejected(change: dict[str, object], field: str) -> None:
    wire = {**json.loads(recommendation().encode()), **change}
    with pytest.raises(MessageError, match=field):
        RecommendationEvent.decode(json.dumps(wire))


@pytest.mark.parametrize("raw", [b"", b"\xff", b"[]", b"null"])
def test_non_objects_are_rejected(raw: bytes) -> None:
    with pytest.raises(MessageError):
        RecommendationEvent.decode(raw)


def test_interaction_round_trip_and_rules() -> None:
    rating = InteractionEvent("e1", "A1", "B1", "rating", WHEN, rating=4.0)
    click = InteractionEvent("e2", "A1", "B1", "click", WHEN)
    for event in (rating, click):
        assert InteractionEvent.decode(event.encode()) == event
    with pytest.raises(MessageError, match="rating"):
        InteractionEvent("e3", "A1", "B1", "click", WHEN, rating=5.0)
    with pytest.raises(MessageError, match="rating"):
        InteractionEvent("e4", "A1", "B1", "rating", WHEN)
    with pytest.raises(MessageError, match=r"1\.\.5"):
        InteractionEvent("e5", "A1", "B1", "rating", WHEN, rating=6.0)
    with pytest.raises(MessageError, match="kind"):
        InteractionEvent.decode(json.dumps({**json.loads(click.encode()), "kind": "purchase"}))

"""The contract's classes: round trips, the wire shape, and every kind of bad input refused by name."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from recsys_core.contract import (
    ContractError,
    ImpressionEvent,
    Interaction,
    PopularItem,
    RecommendationEvent,
    Recommendations,
    RecommendedItem,
    because_text,
)

WHEN = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def item(asin: str = "B1", **changes: Any) -> RecommendedItem:
    fields = {
        "asin": asin,
        "score": 4.5,
        "title": "Title",
        "image": "https://img.example/1.jpg",
        "price": 9.99,
        "because": because_text("X"),
        "because_asin": "B9",
    }
    return RecommendedItem(**{**fields, **changes})


def recommendations() -> Recommendations:
    return Recommendations(
        reviewerID="A1",
        items=[item("B1"), item("B2", title=None, image=None, price=None)],
        model_version="v7",
        source="batch",
        updated_at=WHEN,
    )


def test_a_document_round_trips_with_its_key_as_id() -> None:
    doc = recommendations().to_document()
    assert doc["_id"] == "A1"
    assert Recommendations.from_document(doc) == recommendations()
    popular = PopularItem(
        category="__all__",
        rank=1,
        asin="B1",
        title=None,
        image=None,
        price=None,
        score=4.2,
        n_ratings=12,
        model_version="v7",
        updated_at=WHEN,
    )
    assert popular.to_document()["_id"] == "__all__:B1"
    assert PopularItem.from_document(popular.to_document()) == popular


def test_an_event_round_trips_and_has_the_documented_wire_shape() -> None:
    event = RecommendationEvent.of(recommendations())
    assert RecommendationEvent.decode(event.encode()) == event
    assert event.message_key() == b"A1"
    wire = json.loads(event.encode())
    assert set(wire) == {"reviewerID", "items", "model_version", "source", "ts"}
    assert wire["ts"] == "2026-11-24T12:00:00Z"
    assert set(wire["items"][1]) == set(RecommendedItem.model_fields)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"reviewerID": ""}, "reviewerID"),
        ({"reviewerID": {"$ne": None}}, "reviewerID"),
        ({"reviewerID": 12345}, "reviewerID"),  # a number where a string belongs is not coerced
        ({"items": "B1"}, "items"),
        ({"items": [{"asin": "B1", "score": "high"}]}, "items.0"),
        ({"items": [{**json.loads(item().model_dump_json()), "score": True}]}, "items.0.score"),
        ({"items": [{**json.loads(item().model_dump_json()), "image": "javascript:alert(1)"}]}, "items.0.image"),
        ({"items": [json.loads(item().model_dump_json())] * 6}, "items"),  # longer than TOP_K
        ({"source": "manual"}, "source"),
        ({"ts": "yesterday"}, "ts"),
        ({"ts": "2026-11-24T12:00:00"}, "ts"),  # no UTC offset
    ],
)
def test_malformed_events_are_refused_naming_the_field(change: dict[str, object], field: str) -> None:
    wire = {**json.loads(RecommendationEvent.of(recommendations()).encode()), **change}
    with pytest.raises(ContractError, match=rf"RecommendationEvent: {field}"):
        RecommendationEvent.decode(json.dumps(wire))


@pytest.mark.parametrize("raw", [b"", b"\xff", b"[]", b"null", b"{"])
def test_non_objects_are_refused(raw: bytes) -> None:
    with pytest.raises(ContractError):
        RecommendationEvent.decode(raw)


def test_a_document_whose_id_is_not_its_key_is_refused() -> None:
    doc = {**recommendations().to_document(), "_id": "A2"}
    with pytest.raises(ContractError, match="_id 'A2' should be 'A1'"):
        Recommendations.from_document(doc)


def test_unknown_fields_are_ignored_so_a_newer_writer_does_not_break_an_older_reader() -> None:
    doc = {**recommendations().to_document(), "added_later": 1}
    assert Recommendations.from_document(doc) == recommendations()


def test_interactions_need_a_rating_exactly_when_they_rate() -> None:
    rate = Interaction(event_id="e1", reviewerID="A1", asin="B1", kind="rate", rating=4.0, ts=WHEN)
    click = Interaction(event_id="e2", reviewerID="A1", asin="B1", kind="click", rating=None, ts=WHEN)
    for event in (rate, click):
        assert Interaction.decode(event.encode()) == event
        assert Interaction.from_document(event.to_document()) == event
    assert rate.to_document()["_id"] == "e1"
    wire = json.loads(click.encode())
    for change, message in (
        ({"rating": 5.0}, "rating is required for kind 'rate' and absent otherwise"),
        ({"kind": "rate", "rating": None}, "rating is required"),
        ({"kind": "rate", "rating": 6.0}, "rating: Input should be less than or equal to 5"),
        ({"kind": "purchase"}, "kind"),
    ):
        with pytest.raises(ContractError, match=message):
            Interaction.decode(json.dumps({**wire, **change}))


def test_impressions_record_what_was_shown() -> None:
    event = ImpressionEvent(
        event_id="i1",
        reviewerID="A1",
        asins=["B1", "B2"],
        model_version="v7",
        source="popular",
        surface="api",
        served_at=WHEN,
    )
    assert ImpressionEvent.decode(event.encode()) == event
    with pytest.raises(ContractError, match="surface"):
        ImpressionEvent.decode(json.dumps({**json.loads(event.encode()), "surface": "email"}))

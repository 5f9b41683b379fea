"""Everything known about a reviewer, as the fold-in takes it: ratings (reviews and the site), clicks and views.

The updater recomputes a reviewer from all of it on every event, not incrementally from the
last event, so a replayed or reordered event cannot leave a list that depends on history:
the list is a function of what is stored.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo.database import Database

from recsys_core import mongo
from recsys_core.contract import Interaction
from recsys_core.scoring import Signals


@dataclass(frozen=True)
class SignalWeights:
    """Clicks and views as implicit signals, on the rating scale."""

    click: float
    view: float


def load_signals(db: Database[mongo.Document], reviewers: Sequence[str], weights: SignalWeights) -> dict[str, Signals]:
    """Each reviewer's latest rating per item (reviews and site ratings, the later wins) and summed clicks and views."""
    rated: dict[str, dict[str, tuple[datetime, float]]] = {r: {} for r in reviewers}
    implicit: dict[str, dict[str, float]] = {r: defaultdict(float) for r in reviewers}
    projection = {"reviewerID": 1, "asin": 1, "overall": 1, "unixReviewTime": 1}
    for review in db[mongo.REVIEWS].find({"reviewerID": {"$in": list(reviewers)}}, projection):
        when = datetime.fromtimestamp(int(review.get("unixReviewTime") or 0), UTC)
        _keep_latest(rated[review["reviewerID"]], str(review["asin"]), when, float(review["overall"]))
    for stored in db[Interaction.collection].find({"reviewerID": {"$in": list(reviewers)}}):
        event = Interaction.from_document(stored)
        if event.rating is not None:
            _keep_latest(rated[event.reviewerID], event.asin, event.ts, event.rating)
        else:
            implicit[event.reviewerID][event.asin] += weights.click if event.kind == "click" else weights.view
    return {r: Signals({asin: rating for asin, (_, rating) in rated[r].items()}, dict(implicit[r])) for r in reviewers}


def _keep_latest(ratings: dict[str, tuple[datetime, float]], asin: str, when: datetime, rating: float) -> None:
    if asin not in ratings or when >= ratings[asin][0]:
        ratings[asin] = (when, rating)

"""What the updater scores against: the served model's item factors, and the products' display fields."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from pymongo.database import Database
from pymongo.errors import PyMongoError

from recsys_core import mongo
from recsys_core.contract import ItemFactor, Product, is_http_url
from recsys_core.scoring import ItemFactors

log = logging.getLogger(__name__)


class Catalogue:
    """The item factors of the model now served, swapped for a newly published model's without a restart.

    The publisher renames a complete ``item_factors`` collection into place, so every
    document carries the same version; the updater compares one document's version with the
    one it holds every ``check_s`` seconds and reloads when they differ.
    """

    def __init__(self, db: Database[mongo.Document], check_s: float) -> None:
        self._db = db
        self._check_s = check_s
        self._factors: ItemFactors | None = None
        self._checked_at = float("-inf")

    def current(self) -> ItemFactors | None:
        """The served factors, or None while no model is published."""
        now = time.monotonic()
        if now - self._checked_at >= self._check_s:
            self._checked_at = now
            self._refresh()
        return self._factors

    def _refresh(self) -> None:
        collection = self._db[ItemFactor.collection]
        served = collection.find_one({}, {"model_version": 1})
        if served is None:
            self._factors = None
            return
        if self._factors is not None and self._factors.model_version == served["model_version"]:
            return
        try:
            factors = ItemFactors.from_documents(collection.find())
        except (ValueError, PyMongoError) as exc:  # a publish swapped the collection mid-read: next check
            log.warning("could not load the item factors of model %s yet: %s", served["model_version"], exc)
            return
        log.info("scoring with model %s (%d items, rank %d)", factors.model_version, len(factors.asins), factors.rank)
        self._factors = factors


@dataclass(frozen=True)
class Face:
    """What a list shows of a product."""

    title: str | None = None
    image: str | None = None
    price: float | None = None


def faces(db: Database[mongo.Document], asins: Iterable[str]) -> dict[str, Face]:
    """Title, image (http(s) only, as the contract requires) and price of each known product."""
    found: dict[str, Face] = {}
    for doc in db[Product.collection].find({"_id": {"$in": sorted(set(asins))}}, {"title": 1, "image": 1, "price": 1}):
        title, image, price = doc.get("title"), doc.get("image"), doc.get("price")
        found[str(doc["_id"])] = Face(
            title=title if isinstance(title, str) else None,
            image=image if is_http_url(image) else None,
            price=float(price) if isinstance(price, int | float) and not isinstance(price, bool) else None,
        )
    return found

"""The contract: every document and event that crosses a process boundary, defined once.

The Dagster assets write these documents (through Spark, with a schema derived from these
classes), the web app and the online updater read them, Kafka carries the events, and the
tests build their fixtures from them. A writer and a reader can therefore only disagree by
changing this module, which the contract tests run against documents really published.

Every class validates strictly on the way in (``from_document`` / ``decode``): a wrong type
is a ``ContractError`` naming the field, never a silent coercion or a ``KeyError`` deep in a
consumer loop. Unknown extra fields are ignored, so a newer writer can add a field without
breaking an older reader. Times are timezone-aware UTC.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, Self, TypeGuard

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from recsys_core import mongo

TOP_K = 5
"""The length of a reviewer's published list, and of every list a page shows."""

ALL_CATEGORIES = "__all__"
"""The popular list over every category, next to one list per category."""

BECAUSE_PREFIX = "because you rated "
"""The start of an item's reason; the rest is the title (or asin) of the reviewer's closest rated item."""

LIKED_RATING = 4.0
"""A rating at least this high says the reviewer liked the item: only such items explain a recommendation."""

DISLIKED_MAX_RATING = 2.0
"""A rating this low says the reviewer did not like the item: the implicit ranking head learns nothing
positive from it (it counts as unobserved, and the item is still never recommended back to them)."""

WEB_REVIEWER_PREFIX = "web-"
"""The reviewerIDs the web app creates at registration start with this; no Amazon reviewerID does."""

HTTP_URL = r"^https?://"
"""Only http(s) URLs are images; ``javascript:`` and ``data:`` never reach an ``<img src>``."""

_HTTP_URL = re.compile(HTTP_URL, re.IGNORECASE)  # checked on every image of every list read or streamed

KEY_SEPARATOR = ":"

BaselineSource = Literal["popularity", "user_item_bias"]
"""A batch list from a baseline, named as the evaluation names it: the model failed the gate."""
Source = Literal["batch", "online", BaselineSource]
"""Where a reviewer's list comes from: the model ("batch"), its online fold-in, or a baseline."""
ImpressionSource = Literal[Source, "popular"]
Surface = Literal["page", "api"]
InteractionKind = Literal["rate", "click", "view"]


class ContractError(ValueError):
    """A document or message does not match its contract; the text names the field."""


def because_text(rated_title: str) -> str:
    return BECAUSE_PREFIX + rated_title


def stored_time(when: datetime) -> datetime:
    """``when`` as MongoDB keeps it (milliseconds), so a time written and read back compares equal."""
    return when.replace(microsecond=when.microsecond // 1000 * 1000)


def is_http_url(value: object) -> TypeGuard[str]:
    """Whether ``value`` is an http(s) URL: the one rule for every image a page or stream shows."""
    return isinstance(value, str) and _HTTP_URL.match(value) is not None


def _http_url(value: str | None) -> str | None:
    if value is not None and not is_http_url(value):
        raise ValueError("must be an http(s) URL")
    return value


NonEmpty = Annotated[str, Field(min_length=1)]
ImageUrl = Annotated[str | None, AfterValidator(_http_url)]
Rating = Annotated[float, Field(ge=1.0, le=5.0)]


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    @classmethod
    def _validated(cls, data: Mapping[str, Any] | bytes | str) -> Self:
        try:
            if isinstance(data, bytes | str):
                return cls.model_validate_json(data)
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ContractError(f"{cls.__name__}: {_first_problem(exc)}") from exc


class MongoDocument(_Contract):
    """A document of one collection; ``_id`` is derived from ``key_fields``, joined by ``:``."""

    collection: ClassVar[str]
    key_fields: ClassVar[tuple[str, ...]]

    @property
    def document_id(self) -> str:
        return KEY_SEPARATOR.join(str(getattr(self, name)) for name in self.key_fields)

    def to_document(self) -> dict[str, Any]:
        return {"_id": self.document_id, **self.model_dump()}

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Self:
        parsed = cls._validated({k: v for k, v in document.items() if k != "_id"})
        if "_id" in document and document["_id"] != parsed.document_id:
            raise ContractError(f"{cls.__name__}: _id {document['_id']!r} should be {parsed.document_id!r}")
        return parsed


class KafkaEvent(_Contract):
    """A message on one topic, keyed by reviewerID so one reviewer's events stay in order."""

    reviewerID: NonEmpty  # the wire name, as in the Amazon data set

    def message_key(self) -> bytes:
        return self.reviewerID.encode()

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def decode(cls, raw: bytes | str) -> Self:
        return cls._validated(raw)


class RecommendedItem(_Contract):
    """One entry of a reviewer's list: what to show, and why."""

    asin: NonEmpty
    score: float
    title: str | None
    image: ImageUrl
    price: float | None
    because: str | None
    because_asin: str | None


class Recommendations(MongoDocument):
    """A reviewer's top ``TOP_K`` in ``recommendations``, best first."""

    collection: ClassVar[str] = mongo.RECOMMENDATIONS
    key_fields: ClassVar[tuple[str, ...]] = ("reviewerID",)

    reviewerID: NonEmpty
    items: list[RecommendedItem] = Field(max_length=TOP_K)
    model_version: NonEmpty
    source: Source
    updated_at: AwareDatetime
    gate_decision: str | None = None  # why a baseline serves this list (the model failed the gate); else None


class PopularItem(MongoDocument):
    """One ranked entry of a category's popular list in ``popular`` (the cold-start fallback)."""

    collection: ClassVar[str] = mongo.POPULAR
    key_fields: ClassVar[tuple[str, ...]] = ("category", "asin")

    category: NonEmpty
    rank: int = Field(ge=1)
    asin: NonEmpty
    title: str | None
    image: ImageUrl
    price: float | None
    score: float
    n_ratings: int = Field(ge=1)
    model_version: NonEmpty
    updated_at: AwareDatetime


class ItemFactor(MongoDocument):
    """An item's ranking-head vector, bias and score offset in ``item_factors``, with what a fold-in needs to reuse
    them."""

    collection: ClassVar[str] = mongo.ITEM_FACTORS
    key_fields: ClassVar[tuple[str, ...]] = ("asin",)

    asin: NonEmpty
    vector: list[float]
    item_bias: float  # b_i: the explicit fold-in's baseline
    score_offset: float  # what every ranking score of the item adds to user . item: b_i, or the popularity prior
    model_version: NonEmpty
    rank: int = Field(ge=1)
    reg_param: float
    implicit_prefs: bool
    alpha: float
    global_mean: float
    user_bias_damping: float
    bias_rounds: int = Field(default=1, ge=1)  # the rating head's, which the explicit fold-in alternates as often
    updated_at: AwareDatetime

    @model_validator(mode="before")
    @classmethod
    def _offset_before_it_was_published(cls, data: Any) -> Any:
        """A model published before ``score_offset`` scores as it did: the rating head added b_i, the implicit
        head nothing."""
        if isinstance(data, Mapping) and "score_offset" not in data:
            return {**data, "score_offset": 0.0 if data.get("implicit_prefs") else data.get("item_bias")}
        return data


class Product(MongoDocument):
    """A product as the web app shows it; ingestion writes more fields, which readers ignore."""

    collection: ClassVar[str] = mongo.PRODUCTS
    key_fields: ClassVar[tuple[str, ...]] = ("asin",)

    asin: NonEmpty
    title: str | None
    brand: str | None = None
    image: ImageUrl
    price: float | None
    main_cat: str | None
    source_category: NonEmpty

    @property
    def name(self) -> str:
        """What a page calls the product: its title, else its brand, else its category, else its asin."""
        return self.title or self.brand or self.main_cat or self.asin


class SimilarProducts(MongoDocument):
    """A product's nearest products in the model's factor space, in ``similar_products``, closest first."""

    collection: ClassVar[str] = mongo.SIMILAR_PRODUCTS
    key_fields: ClassVar[tuple[str, ...]] = ("asin",)

    asin: NonEmpty
    items: list[RecommendedItem] = Field(max_length=TOP_K)  # score is the cosine similarity; no reason
    model_version: NonEmpty
    updated_at: AwareDatetime


class RecommendationEvent(KafkaEvent):
    """A real change to a reviewer's list on the ``recommendations`` topic: a batch publish or an online update."""

    items: list[RecommendedItem] = Field(max_length=TOP_K)
    model_version: NonEmpty
    source: Source
    ts: AwareDatetime

    @classmethod
    def of(cls, recommendations: Recommendations) -> RecommendationEvent:
        return cls(
            reviewerID=recommendations.reviewerID,
            items=recommendations.items,
            model_version=recommendations.model_version,
            source=recommendations.source,
            ts=recommendations.updated_at,
        )


class ImpressionEvent(KafkaEvent):
    """A list shown to a reviewer, on the ``impressions`` topic: for analytics and future training."""

    event_id: NonEmpty
    asins: list[str]
    model_version: str | None
    source: ImpressionSource
    surface: Surface
    served_at: AwareDatetime


class Interaction(MongoDocument, KafkaEvent):
    """A shopper's rating, click or view: an event on ``interactions`` and, stored, a document of it."""

    collection: ClassVar[str] = mongo.INTERACTIONS
    key_fields: ClassVar[tuple[str, ...]] = ("event_id",)

    event_id: NonEmpty
    asin: NonEmpty
    kind: InteractionKind
    rating: Rating | None
    ts: AwareDatetime

    @model_validator(mode="after")
    def _rating_only_for_rate(self) -> Self:
        if (self.kind == "rate") != (self.rating is not None):
            raise ValueError("rating is required for kind 'rate' and absent otherwise")
        return self


class DeadLetter(_Contract):
    """A message the online updater could not use, on the dead-letter topic, with why and where it came from.

    Keyed like the original message, so a reviewer's dead letters stay in order too.
    """

    reason: NonEmpty
    topic: NonEmpty
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key: str | None
    value: str  # the original bytes, decoded as UTF-8 with replacement
    ts: AwareDatetime

    def message_key(self) -> bytes | None:
        return None if self.key is None else self.key.encode()

    def encode(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, raw: bytes | str) -> Self:
        return cls._validated(raw)


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "document"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {error['msg']}{more}"

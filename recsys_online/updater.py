"""The online updater: a Kafka consumer group that turns interactions into new top-5 lists, without retraining.

Per batch of messages from ``interactions`` (instances of the group share the partitions;
one reviewer's events stay in order on one partition):

1. each message is decoded through the contract; a malformed one, or one naming a product or
   reviewer nobody knows, goes to the dead-letter topic with its reason, and the loop goes on;
2. the good events are stored in ``interactions`` (``_id`` = event_id: a replay stores nothing twice);
3. each reviewer in the batch is recomputed from everything stored about them (the ALS
   fold-in against the served item factors, then one blocked top-k for the whole batch),
   leaving out what they rated;
4. each new list is written to ``recommendations`` (``source: online``) unless a newer list
   is stored, and announced on the ``recommendations`` topic, where the reviewer's open
   page receives it;
5. only then are the offsets committed. A crash before that replays the batch, which stores
   nothing twice and recomputes the same lists; a Kafka failure rewinds and retries it.

A reviewer none of whose items the model knows keeps the popular list until they rate one
that it does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from pymongo import ReplaceOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from recsys_core import mongo
from recsys_core.connections import kafka_consumer, kafka_producer, project_database
from recsys_core.contract import (
    TOP_K,
    ContractError,
    DeadLetter,
    Interaction,
    Product,
    RecommendationEvent,
    Recommendations,
    RecommendedItem,
    because_text,
    stored_time,
)
from recsys_core.scoring import reasons, recommend_many
from recsys_core.settings import Settings
from recsys_online.catalogue import Catalogue, Face, faces
from recsys_online.history import SignalWeights, load_signals

log = logging.getLogger(__name__)

DUPLICATE_KEY = 11000
DELIVERY_TIMEOUT_S = 10.0
RETRY_PAUSE_S = 1.0


class DeliveryFailed(RuntimeError):
    """Kafka did not confirm an announcement or a dead letter; the batch is not committed."""


@dataclass
class Counts:
    """What the updater has done since it started (logged, and read by the tests and benchmarks)."""

    events: int = 0
    stored: int = 0
    dead: int = 0
    lists: int = 0
    batches: int = 0
    retries: int = 0

    def line(self) -> str:
        return ", ".join(f"{name} {value:,}" for name, value in vars(self).items())


@dataclass
class Batch:
    """One poll's messages, sorted into usable events and dead letters."""

    events: list[Interaction] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)


class Updater:
    def __init__(self, settings: Settings, ready_file: Path | None = None) -> None:
        self.settings = settings
        self.ready_file = ready_file
        self.counts = Counts()
        self._db = project_database(settings)
        mongo.ensure_collection(self._db, mongo.INTERACTIONS)
        self._catalogue = Catalogue(self._db, settings.updater_model_check_s)
        self._weights = SignalWeights(click=settings.updater_click_weight, view=settings.updater_view_weight)
        self._producer = kafka_producer(settings.effective_kafka_bootstrap, message_timeout_ms=5000, logger=log)
        self._consumer = kafka_consumer(
            settings.effective_kafka_bootstrap,
            settings.updater_group_id,
            # A crashed instance's partitions pass to the others after 10 s of silence, not librdkafka's 45.
            **{"auto.offset.reset": "earliest", "session.timeout.ms": 10_000, "logger": log},
        )

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; then leave the group, so the others take over at once."""
        self._consumer.subscribe([self.settings.topic_interactions], on_assign=self._on_assign)
        last_report = time.monotonic()
        try:
            while not stop.is_set():
                messages = self._poll()
                if messages:
                    self._handle_or_rewind(messages)
                if time.monotonic() - last_report >= 60:
                    log.info("updater: %s", self.counts.line())
                    last_report = time.monotonic()
        finally:
            self.close()

    def close(self) -> None:
        self._consumer.close()
        self._producer.flush(DELIVERY_TIMEOUT_S)
        self._db.client.close()
        log.info("updater stopped: %s", self.counts.line())

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("updater assigned %s", [p.partition for p in partitions])
        if self.ready_file is not None:
            self.ready_file.write_text(datetime.now(UTC).isoformat())

    def _poll(self) -> list[Message[Any, Any]]:
        """The next message (waiting up to half a second), and every message already fetched after it."""
        first = self._consumer.poll(0.5)
        if first is None:
            return []
        rest = self._consumer.consume(self.settings.updater_batch_max - 1, timeout=0)
        return [m for m in (first, *rest) if self._usable(m)]

    def _usable(self, message: Message[Any, Any]) -> bool:
        error = message.error()
        if error is not None and error.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer error: %s", error)
        return error is None

    def _handle_or_rewind(self, messages: list[Message[Any, Any]]) -> None:
        try:
            self.handle(messages)
            self._consumer.commit(asynchronous=False)
        except (DeliveryFailed, KafkaException) as exc:
            log.warning("batch of %d not done, retrying it: %s", len(messages), exc)
            self.counts.retries += 1
            self._rewind(messages)
            time.sleep(RETRY_PAUSE_S)

    def _rewind(self, messages: Sequence[Message[Any, Any]]) -> None:
        first: dict[int, int] = {}
        for message in messages:
            partition, offset = message.partition(), message.offset()
            if partition is not None and offset is not None:
                first[partition] = min(offset, first.get(partition, offset))
        for partition, offset in first.items():
            self._consumer.seek(TopicPartition(self.settings.topic_interactions, partition, offset))

    def handle(self, messages: Sequence[Message[Any, Any]]) -> None:
        """Store, recompute, write and announce one batch; raises DeliveryFailed if Kafka did not confirm."""
        batch = self._sort(messages)
        self._store(batch.events)
        written = self._recompute(batch.events)
        self._send(
            [(self.settings.topic_recommendations, e.message_key(), e.encode()) for e in written]
            + [(self.settings.topic_dead_letters, d.message_key(), d.encode()) for d in batch.dead]
        )
        self.counts.events += len(messages)
        self.counts.dead += len(batch.dead)
        self.counts.lists += len(written)
        self.counts.batches += 1

    def _sort(self, messages: Sequence[Message[Any, Any]]) -> Batch:
        batch = Batch()
        decoded: list[tuple[Message[Any, Any], Interaction]] = []
        for message in messages:
            try:
                decoded.append((message, Interaction.decode(message.value() or b"")))
            except ContractError as exc:
                batch.dead.append(_dead_letter(message, f"malformed: {exc}"))
        known_products = _existing(self._db, Product.collection, "_id", {e.asin for _, e in decoded})
        known_reviewers = _existing(self._db, mongo.USERS, "reviewerID", {e.reviewerID for _, e in decoded})
        unknown = {e.reviewerID for _, e in decoded} - known_reviewers
        known_reviewers |= _existing(self._db, mongo.REVIEWS, "reviewerID", unknown)
        for message, event in decoded:
            if message.key() != event.message_key():
                batch.dead.append(_dead_letter(message, "key_mismatch: the key is not the event's reviewerID"))
            elif event.asin not in known_products:
                batch.dead.append(_dead_letter(message, f"unknown_asin: {event.asin}"))
            elif event.reviewerID not in known_reviewers:
                batch.dead.append(_dead_letter(message, f"unknown_reviewer: {event.reviewerID}"))
            else:
                batch.events.append(event)
        return batch

    def _store(self, events: Sequence[Interaction]) -> None:
        if not events:
            return
        try:
            result = self._db[Interaction.collection].insert_many([e.to_document() for e in events], ordered=False)
            self.counts.stored += len(result.inserted_ids)
        except BulkWriteError as exc:  # a replay: the events stored before are skipped, the rest inserted
            if any(error["code"] != DUPLICATE_KEY for error in exc.details["writeErrors"]):
                raise
            self.counts.stored += int(exc.details["nInserted"])

    def _recompute(self, events: Sequence[Interaction]) -> list[RecommendationEvent]:
        """The reviewers' new lists, written where not older than the stored ones; their announcements."""
        factors = self._catalogue.current()
        if factors is None or not events:
            return []
        as_of: dict[str, datetime] = {}
        for event in events:
            as_of[event.reviewerID] = max(stored_time(event.ts), as_of.get(event.reviewerID, stored_time(event.ts)))
        reviewers = sorted(as_of)
        signals = load_signals(self._db, reviewers, self._weights)
        scorable = [r for r in reviewers if factors.learns_from(signals[r])]
        tops = recommend_many(factors, [signals[r] for r in scorable], TOP_K)
        explained = [
            reasons(factors, signals[r].ratings, [a for a, _ in top]) for r, top in zip(scorable, tops, strict=True)
        ]
        shown = faces(self._db, [a for top in tops for a, _ in top] + [a for e in explained for a in e.values() if a])
        lists = [
            _recommendations(r, top, because, shown, factors.model_version, as_of[r])
            for r, top, because in zip(scorable, tops, explained, strict=True)
        ]
        return [RecommendationEvent.of(r) for r in self._write_newer(lists)]

    def _write_newer(self, lists: Sequence[Recommendations]) -> list[Recommendations]:
        """Replace each stored list that is not newer than ours; the ones written, in order."""
        if not lists:
            return []
        requests = [
            ReplaceOne({"_id": r.document_id, "updated_at": {"$lte": r.updated_at}}, r.to_document(), upsert=True)
            for r in lists
        ]
        stale: set[int] = set()
        try:
            self._db[Recommendations.collection].bulk_write(requests, ordered=False)
        except BulkWriteError as exc:  # the upsert met a newer stored list: that one stays
            errors = exc.details["writeErrors"]
            if any(error["code"] != DUPLICATE_KEY for error in errors):
                raise
            stale = {int(error["index"]) for error in errors}
        return [r for i, r in enumerate(lists) if i not in stale]

    def _send(self, messages: Iterable[tuple[str, bytes | None, bytes]]) -> None:
        failures: list[str] = []

        def report(err: KafkaError | None, _msg: Message[Any, Any]) -> None:
            if err is not None:
                failures.append(str(err))

        sent = 0
        for topic, key, value in messages:
            self._producer.produce(topic, key=key, value=value, on_delivery=report)
            sent += 1
        if sent and self._producer.flush(DELIVERY_TIMEOUT_S):
            raise DeliveryFailed(f"Kafka did not confirm {sent} messages within {DELIVERY_TIMEOUT_S:.0f}s")
        if failures:
            raise DeliveryFailed(f"{len(failures)} of {sent} messages failed: {failures[0]}")


def _existing(db: Database[mongo.Document], collection: str, key: str, values: set[str]) -> set[str]:
    if not values:
        return set()
    return {str(v) for v in db[collection].distinct(key, {key: {"$in": sorted(values)}})}


def _dead_letter(message: Message[Any, Any], reason: str) -> DeadLetter:
    key = message.key()
    return DeadLetter(
        reason=reason[:500],
        topic=message.topic() or "",
        partition=message.partition() or 0,
        offset=message.offset() or 0,
        key=None if key is None else bytes(key).decode("utf-8", "replace"),
        value=bytes(message.value() or b"").decode("utf-8", "replace"),
        ts=datetime.now(UTC),
    )


def _recommendations(
    reviewer: str,
    top: list[tuple[str, float]],
    because: dict[str, str | None],
    shown: dict[str, Face],
    model_version: str,
    as_of: datetime,
) -> Recommendations:
    items = []
    for asin, score in top:
        face, liked = shown.get(asin, Face()), because[asin]
        items.append(
            RecommendedItem(
                asin=asin,
                score=score,
                title=face.title,
                image=face.image,
                price=face.price,
                because=None if liked is None else because_text(shown.get(liked, Face()).title or liked),
                because_asin=liked,
            )
        )
    return Recommendations(
        reviewerID=reviewer, items=items, model_version=model_version, source="online", updated_at=as_of
    )

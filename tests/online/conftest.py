"""Fixtures for the online updater: a served model in the real test MongoDB, topics of its own on the real
broker, and updaters run in this process (threads) or as the real ``recsys updater`` process."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from confluent_kafka import KafkaError, Message
from confluent_kafka.admin import AdminClient
from pymongo.database import Database

from recsys_core import mongo
from recsys_core.connections import kafka_producer
from recsys_core.contract import Interaction, InteractionKind, ItemFactor, Product
from recsys_core.services.kafka import ensure_topics
from recsys_core.settings import Settings
from recsys_online.updater import Updater
from tests.web.conftest import TopicReader

ITEMS = 40
RANK = 4
OLD_REVIEWER = "AOLDREVIEWER1"  # known from the review data, with three reviews


def item_asin(i: int) -> str:
    return f"P{i:04d}"


UNMODELLED = "PNOTINMODEL"  # a product the model has never seen


def publish_factors(db: Database[mongo.Document], version: str, seed: int) -> np.ndarray:
    """Swap in an implicit-head ``item_factors`` collection of ``version``, as the publisher does (rename)."""
    vectors = np.random.default_rng(seed).normal(size=(ITEMS, RANK))
    documents = [
        ItemFactor(
            asin=item_asin(i),
            vector=vectors[i].tolist(),
            item_bias=0.0,
            score_offset=0.0,
            model_version=version,
            rank=RANK,
            reg_param=0.1,
            implicit_prefs=True,
            alpha=2.0,
            global_mean=4.2,
            user_bias_damping=5.0,
            updated_at=datetime.now(UTC),
        ).to_document()
        for i in range(ITEMS)
    ]
    staging = f"{ItemFactor.collection}__staging_{version}"
    db[staging].insert_many(documents)
    db[staging].rename(ItemFactor.collection, dropTarget=True)
    return vectors


@dataclass
class Online:
    settings: Settings
    db: Database[mongo.Document]
    vectors: np.ndarray
    web_reviewers: list[str]

    def event(self, reviewer: str, asin: str, kind: InteractionKind = "rate", rating: float | None = 5.0,
              ts: datetime | None = None) -> Interaction:  # fmt: skip
        return Interaction(
            event_id=uuid.uuid4().hex,
            reviewerID=reviewer,
            asin=asin,
            kind=kind,
            rating=rating if kind == "rate" else None,
            ts=ts or datetime.now(UTC),
        )

    def reader(self, topic: str) -> TopicReader:
        return TopicReader(self.settings, topic)


@pytest.fixture
def online(db: Database[mongo.Document], running_services: Settings) -> Iterator[Online]:
    suffix = uuid.uuid4().hex[:8]
    settings = running_services.model_copy(
        update={
            "topic_interactions": f"interactions-{suffix}",
            "topic_recommendations": f"recommendations-{suffix}",
            "topic_dead_letters": f"dead-letters-{suffix}",
            "updater_group_id": f"updater-{suffix}",
            "updater_model_check_s": 0.2,
        }
    )
    topics = [settings.topic_interactions, settings.topic_recommendations, settings.topic_dead_letters]
    ensure_topics(settings.effective_kafka_bootstrap, topics, settings.topic_partitions)
    admin = AdminClient({"bootstrap.servers": settings.effective_kafka_bootstrap})

    def led(topic: str) -> bool:
        metadata = admin.list_topics(topic, timeout=5).topics.get(topic)
        return metadata is not None and metadata.error is None and len(metadata.partitions) == settings.topic_partitions

    wait_for(lambda: all(led(t) for t in topics), "the new topics' partitions to have leaders")
    vectors = publish_factors(db, "v1", seed=7)
    products = [
        Product(asin=asin, title=f"Title of {asin}", image=f"https://img.example.com/{asin}.jpg", price=9.5,
                main_cat="Beauty", source_category="All_Beauty")
        for asin in [*(item_asin(i) for i in range(ITEMS)), UNMODELLED]
    ]  # fmt: skip
    db[Product.collection].insert_many([p.to_document() for p in products])
    web_reviewers = [f"web-{uuid.uuid4().hex[:16]}" for _ in range(40)]
    db[mongo.USERS].insert_many([{"email": f"{r}@example.org", "reviewerID": r} for r in web_reviewers])
    reviewed = datetime(2018, 1, 1, tzinfo=UTC)
    db[mongo.REVIEWS].insert_many(
        [
            {"_id": f"r{i}", "reviewerID": OLD_REVIEWER, "asin": item_asin(i), "overall": rating,
             "unixReviewTime": int((reviewed + timedelta(days=i)).timestamp())}
            for i, rating in ((1, 5.0), (2, 2.0), (3, 4.0))
        ]
    )  # fmt: skip
    yield Online(settings, db, vectors, web_reviewers)
    admin.delete_topics(topics)


@pytest.fixture
def produce(online: Online) -> Iterator[Callable[..., None]]:
    """Produce raw (key, value) messages or events to the interactions topic, confirmed by the broker."""
    producer = kafka_producer(online.settings.effective_kafka_bootstrap, message_timeout_ms=10_000)
    errors: list[KafkaError] = []

    def on_delivery(err: KafkaError | None, _msg: Message[Any, Any]) -> None:
        if err is not None:
            errors.append(err)

    def send(*messages: Interaction | tuple[bytes | None, bytes]) -> None:
        for message in messages:
            key, value = (message.message_key(), message.encode()) if isinstance(message, Interaction) else message
            producer.produce(online.settings.topic_interactions, key=key, value=value, on_delivery=on_delivery)
        assert producer.flush(10) == 0
        assert not errors, errors

    yield send
    producer.flush(5)


@contextmanager
def updater_thread(settings: Settings, tmp_path: Path, updater_class: type[Updater] = Updater) -> Iterator[Updater]:
    """A real updater consuming in a thread of this process, until the block ends."""
    ready = tmp_path / f"ready-{uuid.uuid4().hex}"
    updater = updater_class(settings, ready_file=ready)
    stop = threading.Event()
    thread = threading.Thread(target=updater.run, args=(stop,), daemon=True)
    thread.start()
    wait_for(ready.exists, "the updater to join its group", timeout_s=30)
    try:
        yield updater
    finally:
        stop.set()
        thread.join(20)
        assert not thread.is_alive(), "the updater did not stop"


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")

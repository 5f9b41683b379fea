"""Producing the web app's events: impressions and clicks without ever failing a page, ratings confirmed.

``produce()`` only queues the message; librdkafka delivers it in the background and reports
the outcome to a delivery callback, which runs in whichever thread calls ``poll()``. A small
daemon thread polls, so outcomes are counted even when no request is running.

- ``publish`` is fire-and-forget, for what a page shows or a beacon reports (impressions,
  clicks, views): a broker that is down costs the page nothing; the failure arrives later,
  in the callback, and is logged and counted (``/healthz`` shows the counts).
- ``deliver`` waits for the broker's acknowledgement, for what the shopper did on purpose (a
  rating): the page then says it was recorded, or that it was not and to try again, and
  never claims a rating that is lost. It waits for the delivery report itself, which the
  producer's message timeout bounds, so the answer is final: a rating refused to the shopper
  is one librdkafka gave up on, never one still queued that a returning broker takes later.
  Ratings therefore have a producer of their own with a short message timeout.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message

from recsys_core.connections import kafka_producer
from recsys_core.contract import KafkaEvent

log = logging.getLogger(__name__)


class Publisher:
    def __init__(self, bootstrap_servers: str, topic: str, message_timeout_ms: int) -> None:
        self.topic = topic
        self.message_timeout_s = message_timeout_ms / 1000
        self._producer = kafka_producer(bootstrap_servers, message_timeout_ms, logger=log)
        self._lock = threading.Lock()
        self._counts = {"produced": 0, "delivered": 0, "failed": 0}
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="kafka-delivery-reports", daemon=True)
        self._poller.start()

    def publish(self, event: KafkaEvent) -> None:
        """Queue ``event`` for delivery; never raises, a failure is logged and counted."""
        self._produce(event, self._on_delivery)

    def deliver(self, event: KafkaEvent) -> bool:
        """Produce ``event`` and wait for its delivery report; whether the broker confirmed it."""
        confirmed = threading.Event()
        outcome: list[KafkaError | None] = []

        def on_delivery(err: KafkaError | None, msg: Message[Any, Any]) -> None:
            self._on_delivery(err, msg)
            outcome.append(err)
            confirmed.set()

        # The report comes within the message timeout; the margin is for the poll thread's turn.
        if not (self._produce(event, on_delivery) and confirmed.wait(self.message_timeout_s + 5.0)):
            return False
        return outcome[0] is None

    def _produce(self, event: KafkaEvent, on_delivery: Callable[[KafkaError | None, Message[Any, Any]], None]) -> bool:
        try:
            self._producer.produce(self.topic, key=event.message_key(), value=event.encode(), on_delivery=on_delivery)
        except (BufferError, KafkaException) as exc:
            log.warning("could not queue an event of %s for %s: %s", self.topic, event.reviewerID, exc)
            self._count("failed")
            return False
        self._count("produced")
        return True

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reachable(self, timeout_s: float) -> bool:
        try:
            self._producer.list_topics(self.topic, timeout=timeout_s)
        except KafkaException:
            return False
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the poll thread and give queued messages ``timeout_s`` to be delivered."""
        self._stop.set()
        self._poller.join(timeout_s)
        left = self._producer.flush(timeout_s)
        if left:
            log.warning("%d messages for %s left undelivered at shutdown", left, self.topic)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.2)

    def _on_delivery(self, err: KafkaError | None, msg: Message[Any, Any]) -> None:
        if err is None:
            self._count("delivered")
        else:
            log.warning("an event of %s for %r was not delivered: %s", self.topic, msg.key(), err)
            self._count("failed")

    def _count(self, outcome: str) -> None:
        with self._lock:
            self._counts[outcome] += 1

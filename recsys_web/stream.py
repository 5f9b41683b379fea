"""``/stream``: Server-Sent Events with the logged-in user's own recommendation events, live.

Why one Kafka consumer per open stream (and not one shared consumer fanning out to per-user
queues):

- Isolation by construction. A connection's consumer is created for one reviewerID, which the
  server took from the session, and the loop forwards only messages keyed by it. There is no
  shared dispatch table whose one bug would show a user another user's events, which is the
  flaw of the project we started from.
- Resuming is exact. The event id is the consumer's position on every partition
  (``"0:12,1:40,2:7"``); on reconnect the browser sends it back as ``Last-Event-ID`` and the
  new consumer is assigned those offsets, so nothing is lost or repeated. A shared consumer
  sits at one position for everybody and cannot replay one user's gap.
- Clean release. The consumer lives in the response generator; when the client leaves, the
  server closes the generator and its ``finally`` closes the consumer. The open count is in
  ``/healthz``.
- The cost is fine at this size: each stream reads the whole topic and drops other users'
  messages, and holds one worker thread (gthread), so STREAM_MAX_OPEN caps streams per process.
  A shared fan-out consumer is the step to take at thousands of concurrent streams.

The consumer uses ``assign()``, not ``subscribe()``: no group membership, no rebalances, no
committed offsets (its unique ``group.id`` is never registered with the broker).

Wire format: ``event: status`` with ``{"state": "live"|"kafka_down"|"busy"}``, ``event: recommendations``
with a RecommendationEvent, and a comment heartbeat that also carries the position in ``id:``.
When Kafka is down (or too many streams are open) the stream says so and ends with a
``retry:`` hint; the browser shows "reconnecting" and reconnects by itself.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import Conflict

from recsys_core.connections import kafka_consumer
from recsys_core.contract import ContractError, RecommendationEvent
from recsys_web.auth import logged_in_user, login_required
from recsys_web.inputs import InvalidInput
from recsys_web.resources import Gauge, resources

log = logging.getLogger(__name__)

bp = Blueprint("stream", __name__)

EVENT_ID = re.compile(r"\d{1,6}:\d{1,19}(,\d{1,6}:\d{1,19}){0,255}")
RETRY_MS = 3000

Positions = dict[int, int]


@dataclass(frozen=True)
class StreamConfig:
    bootstrap_servers: str
    topic: str
    timeout_s: float
    heartbeat_s: float
    max_s: float
    max_open: int


@bp.route("/stream")
@login_required
def stream() -> Response:
    reviewer = logged_in_user().get("reviewerID")
    if not isinstance(reviewer, str):
        raise Conflict("Link your account to a reviewerID first.")
    resume = parse_event_id(request.headers.get("Last-Event-ID"))
    cfg = current_app.config
    config = StreamConfig(
        bootstrap_servers=cfg["KAFKA_BOOTSTRAP_SERVERS"],
        topic=cfg["TOPIC_RECOMMENDATIONS"],
        timeout_s=cfg["KAFKA_TIMEOUT_S"],
        heartbeat_s=cfg["STREAM_HEARTBEAT_S"],
        max_s=cfg["STREAM_MAX_S"],
        max_open=cfg["STREAM_MAX_OPEN"],
    )
    events = ReviewerStream(reviewer, resume, config, resources().streams)
    return Response(
        iter(events),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def parse_event_id(value: str | None) -> Positions:
    """``"p:o,p:o"`` into ``{p: o}``; an absent id means "from now on"."""
    if not value:
        return {}
    if not EVENT_ID.fullmatch(value):
        raise InvalidInput("Last-Event-ID is not an event id of this stream")
    return {int(p): int(o) for p, o in (pair.split(":") for pair in value.split(","))}


def format_event_id(positions: Positions) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(positions.items()))


def sse(event: str, data: dict[str, Any], event_id: str | None = None, retry_ms: int | None = None) -> str:
    lines = [] if event_id is None else [f"id: {event_id}"]
    if retry_ms is not None:
        lines.append(f"retry: {retry_ms}")
    lines += [f"event: {event}", f"data: {json.dumps(data, separators=(',', ':'))}"]
    return "\n".join(lines) + "\n\n"


class ReviewerStream:
    """One connection's events: a consumer of its own, forwarding one reviewerID's messages."""

    def __init__(self, reviewer: str, resume: Positions, config: StreamConfig, gauge: Gauge) -> None:
        self.reviewer = reviewer
        self.key = reviewer.encode()
        self.positions = dict(resume)
        self.config = config
        self.gauge = gauge
        self.kafka_down = False

    def __iter__(self) -> Iterator[str]:
        # Counted here, not in the view: only a running generator is sure to see its finally.
        if not self.gauge.try_acquire(self.config.max_open):
            yield sse("status", {"state": "busy"}, retry_ms=RETRY_MS * 5)
            return
        try:
            yield from self._run()
        finally:
            self.gauge.release()

    def _run(self) -> Iterator[str]:
        consumer = kafka_consumer(
            self.config.bootstrap_servers,
            f"recsys-web-stream-{uuid.uuid4().hex}",
            **{"auto.offset.reset": "latest", "error_cb": self._on_error, "logger": log},
        )
        try:
            try:
                self._assign(consumer)
            except (KafkaException, LookupError) as exc:
                log.warning("stream for %s cannot start, Kafka unavailable: %s", self.reviewer, exc)
                yield sse("status", {"state": "kafka_down"}, retry_ms=RETRY_MS)
                return
            yield sse("status", {"state": "live"}, event_id=format_event_id(self.positions))
            yield from self._pump(consumer)
        finally:
            consumer.close()

    def _assign(self, consumer: Consumer) -> None:
        """Start where Last-Event-ID left off, else at the current end of every partition."""
        metadata = consumer.list_topics(self.config.topic, timeout=self.config.timeout_s)
        topic = metadata.topics.get(self.config.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise LookupError(f"topic {self.config.topic!r} is not available")
        for partition in topic.partitions:
            if partition not in self.positions:
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(self.config.topic, partition), timeout=self.config.timeout_s, cached=False
                )
                self.positions[partition] = high
        self.positions = {p: o for p, o in self.positions.items() if p in topic.partitions}
        consumer.assign([TopicPartition(self.config.topic, p, o) for p, o in self.positions.items()])

    def _pump(self, consumer: Consumer) -> Iterator[str]:
        now = time.monotonic()
        deadline = now + self.config.max_s
        next_beat = now + self.config.heartbeat_s
        while now < deadline:
            try:
                # poll(), not consume(n): consume waits for n messages or the whole timeout.
                msg = consumer.poll(max(0.0, min(next_beat, deadline) - now))
            except KafkaException as exc:  # a fatal consumer error: start afresh on reconnect
                log.warning("stream for %s: %s", self.reviewer, exc)
                self.kafka_down = True
                msg = None
            event = None if msg is None else self._forward(msg)
            if event is not None:
                yield event
            if self.kafka_down:
                yield sse("status", {"state": "kafka_down"}, retry_ms=RETRY_MS)
                return
            now = time.monotonic()
            if now >= next_beat:
                # Also the disconnect probe: writing to a client that left ends the generator.
                yield f": heartbeat\nid: {format_event_id(self.positions)}\n\n"
                next_beat = now + self.config.heartbeat_s
        yield f"retry: {RETRY_MS}\n\n"  # a planned end: the browser reconnects with Last-Event-ID

    def _forward(self, msg: Message[Any, Any]) -> str | None:
        """The SSE text for a message of this reviewer, None for any other message."""
        partition, offset = msg.partition(), msg.offset()
        if msg.error() is not None or partition is None or offset is None:
            log.warning("stream for %s: consumer error %s", self.reviewer, msg.error())
            return None
        self.positions[partition] = offset + 1
        if msg.key() != self.key:
            return None
        try:
            event = RecommendationEvent.decode(msg.value() or b"")
        except ContractError as exc:
            log.warning("skipping malformed message at %s:%s: %s", partition, offset, exc)
            return None
        if event.reviewerID != self.reviewer:  # key and body disagree: trust neither
            return None
        return sse("recommendations", event.to_json(), event_id=format_event_id(self.positions))

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:  # no progress possible: end, let the browser retry
            log.warning("stream for %s: %s", self.reviewer, err)
            self.kafka_down = True
        else:  # e.g. one failed connection attempt; librdkafka retries by itself
            log.debug("stream for %s: %s", self.reviewer, err)

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
  server closes the response and with it the generator, whose ``finally`` closes the consumer.
  The loop also looks at the client's socket every STREAM_PROBE_S, so a tab that closes frees
  its slot then, not only when the next heartbeat fails to write. The open count is in
  ``/healthz``.
- Clean shutdown. A stream never ends on its own, and gunicorn's graceful stop waits for open
  requests; so a worker told to stop (SIGTERM) first sets ``StreamSlots.closing``, and every
  stream ends at its next probe with its ``retry:`` hint: the browser reconnects, to a live
  worker, from where it was, and the worker exits at once instead of at the graceful timeout.
- The cost is fine at this size: each stream reads the whole topic and drops other users'
  messages, and holds one worker thread (gthread), so STREAM_MAX_OPEN caps streams per process
  and STREAM_MAX_PER_USER caps one reviewer's share of them; past either the answer is a 429
  with ``Retry-After``. A shared fan-out consumer is the step to take at thousands of
  concurrent streams.

Resuming is bounded: a ``Last-Event-ID`` must be well-formed with offsets Kafka can hold
(int64), else 400, and it resumes at most STREAM_RESUME_MAX messages back on each partition,
so an old or forged id cannot replay a reviewer's history from the start of the topic.

The consumer uses ``assign()``, not ``subscribe()``: no group membership, no rebalances, no
committed offsets (its unique ``group.id`` is never registered with the broker).

Wire format: ``event: status`` with ``{"state": "live"|"kafka_down"}``, ``event: recommendations``
with a RecommendationEvent (decoded through the contract, so its images are http(s) URLs),
and a comment heartbeat that also carries the position in ``id:``. When Kafka is down the
stream says so and ends with a ``retry:`` hint; the browser shows "reconnecting" and
reconnects by itself (after a 429 too, waiting ``Retry-After``).
"""

from __future__ import annotations

import json
import logging
import re
import select
import socket
import time
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import Conflict, TooManyRequests

from recsys_core.connections import kafka_consumer
from recsys_core.contract import ContractError, RecommendationEvent
from recsys_web.auth import logged_in_user, login_required
from recsys_web.inputs import InvalidInput
from recsys_web.resources import StreamSlots, resources

log = logging.getLogger(__name__)

bp = Blueprint("stream", __name__)

EVENT_ID = re.compile(r"\d{1,6}:\d{1,19}(,\d{1,6}:\d{1,19}){0,255}")
MAX_OFFSET = 2**63 - 1  # Kafka offsets are int64
RETRY_MS = 3000

Positions = dict[int, int]


@dataclass(frozen=True)
class StreamConfig:
    bootstrap_servers: str
    topic: str
    timeout_s: float
    heartbeat_s: float
    max_s: float
    probe_s: float
    resume_max: int


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
        probe_s=cfg["STREAM_PROBE_S"],
        resume_max=cfg["STREAM_RESUME_MAX"],
    )
    slots = resources().streams
    refused = slots.try_acquire(reviewer, cfg["STREAM_MAX_PER_USER"], cfg["STREAM_MAX_OPEN"])
    if refused is not None:
        raise TooManyRequests(refused, retry_after=RETRY_MS * 5 // 1000)
    # From here the slot belongs to the response: the server closes it, which releases the slot.
    events = ReviewerStream(reviewer, resume, config, slots, client_socket(request.environ))
    return Response(
        events,
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def parse_event_id(value: str | None) -> Positions:
    """``"p:o,p:o"`` into ``{p: o}``; an absent id means "from now on"."""
    if not value:
        return {}
    if not EVENT_ID.fullmatch(value):
        raise InvalidInput("Last-Event-ID is not an event id of this stream")
    positions = {int(p): int(o) for p, o in (pair.split(":") for pair in value.split(","))}
    if max(positions.values()) > MAX_OFFSET:
        raise InvalidInput("Last-Event-ID holds an offset beyond any Kafka offset")
    return positions


def client_socket(environ: dict[str, Any]) -> socket.socket | None:
    """The connection to the client, where the server exposes it (gunicorn, werkzeug's server)."""
    sock = environ.get("gunicorn.socket", environ.get("werkzeug.socket"))
    return sock if isinstance(sock, socket.socket) else None


def client_left(sock: socket.socket | None) -> bool:
    """True once the client has closed its end: readable with nothing to read (an EOF)."""
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:  # reset or closed: gone as well
        return True
    except ValueError:  # a TLS socket takes no recv flags: leave it to the heartbeat
        return False


def format_event_id(positions: Positions) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(positions.items()))


def sse(event: str, data: dict[str, Any], event_id: str | None = None, retry_ms: int | None = None) -> str:
    lines = [] if event_id is None else [f"id: {event_id}"]
    if retry_ms is not None:
        lines.append(f"retry: {retry_ms}")
    lines += [f"event: {event}", f"data: {json.dumps(data, separators=(',', ':'))}"]
    return "\n".join(lines) + "\n\n"


class ReviewerStream:
    """One connection's events: a consumer of its own, forwarding one reviewerID's messages.

    It holds one of ``slots``, taken by the view; ``close()`` (which the WSGI server calls on
    every response, also one whose body never started) releases it, once.
    """

    def __init__(
        self,
        reviewer: str,
        resume: Positions,
        config: StreamConfig,
        slots: StreamSlots,
        sock: socket.socket | None,
    ) -> None:
        self.reviewer = reviewer
        self.key = reviewer.encode()
        self.positions = dict(resume)
        self.config = config
        self.slots = slots
        self.sock = sock
        self.kafka_down = False
        self._events = self._run()
        self._released = False

    def __iter__(self) -> Iterator[str]:
        return self._events

    def close(self) -> None:
        try:
            self._events.close()
        finally:
            if not self._released:
                self._released = True
                self.slots.release(self.reviewer)

    def _run(self) -> Generator[str]:
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
        """Start where Last-Event-ID left off (at most ``resume_max`` back), else at the end of every partition."""
        metadata = consumer.list_topics(self.config.topic, timeout=self.config.timeout_s)
        topic = metadata.topics.get(self.config.topic)
        if topic is None or topic.error is not None or not topic.partitions:
            raise LookupError(f"topic {self.config.topic!r} is not available")
        resume, self.positions = self.positions, {}
        for partition in topic.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(self.config.topic, partition), timeout=self.config.timeout_s, cached=False
            )
            wanted = resume.get(partition, high)
            self.positions[partition] = min(high, max(wanted, low, high - self.config.resume_max))
        consumer.assign([TopicPartition(self.config.topic, p, o) for p, o in self.positions.items()])

    def _pump(self, consumer: Consumer) -> Iterator[str]:
        now = time.monotonic()
        deadline = now + self.config.max_s
        next_beat = now + self.config.heartbeat_s
        while now < deadline and not self.slots.closing.is_set():
            try:
                # poll(), not consume(n): consume waits for n messages or the whole timeout.
                msg = consumer.poll(max(0.0, min(next_beat, deadline, now + self.config.probe_s) - now))
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
            if client_left(self.sock):
                return
            now = time.monotonic()
            if now >= next_beat:
                # Also the disconnect probe: writing to a client that left ends the generator.
                yield f": heartbeat\nid: {format_event_id(self.positions)}\n\n"
                next_beat = now + self.config.heartbeat_s
        # A planned end (its time is up, or the server is shutting down): the browser reconnects with Last-Event-ID.
        yield f"retry: {RETRY_MS}\n\n"

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

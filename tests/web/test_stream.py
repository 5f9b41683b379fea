"""/stream against the real broker: each user sees only their own events, resume works, and a
client that leaves releases its consumer."""

from __future__ import annotations

import contextlib
import gc
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from flask import Flask

from recsys_core import mongo
from tests.web.conftest import SSE, event_for, forwarded_until, new_reviewer, open_stream


def is_up(block: SSE) -> bool:
    return block.event == "status" and block.data == {"state": "live"}


def test_two_users_each_receive_only_their_own_events(app: Flask, user_client, publish) -> None:
    alice, bob, carol = new_reviewer("ALICE"), new_reviewer("BOB"), new_reviewer("CAROL")
    streams = {alice: open_stream(user_client(alice)), bob: open_stream(user_client(bob))}
    for stream in streams.values():
        stream.until(is_up)
    # Carol's event and the other user's event are on the topic too, interleaved.
    produced = [publish(event_for(who, title=f"for {who}")) for who in (carol, bob, alice, carol)]
    for who, stream in streams.items():
        received = forwarded_until(stream, produced)
        assert [e["reviewerID"] for e in received] == [who]
        assert received[0]["items"][0]["title"] == f"for {who} 1"
        assert received[0]["source"] == "online"
        stream.close()
    assert app.extensions["recsys"].streams.current == 0
    # assign(), not subscribe(): no consumer group was ever registered with the broker.
    admin = AdminClient({"bootstrap.servers": app.config["KAFKA_BOOTSTRAP_SERVERS"]})
    groups = admin.list_consumer_groups(request_timeout=10).result().valid
    assert not [g.group_id for g in groups if g.group_id.startswith("recsys-web-stream-")]


def kafka_threads() -> int:
    """librdkafka's threads in this process (it names them rdk:...)."""
    count = 0
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that ended meanwhile
            count += (task / "comm").read_text().startswith("rdk:")
    return count


def test_disconnect_releases_the_consumer(app: Flask, user_client) -> None:
    client = user_client(new_reviewer("LEAVER"))
    assert client.get("/healthz").get_json()["streams"]["open"] == 0  # also starts the app's producer
    gc.collect()  # Kafka clients of earlier tests that are garbage end their threads now, not mid-test
    before = kafka_threads()
    stream = open_stream(client)
    stream.until(is_up)
    gauge = app.extensions["recsys"].streams
    assert gauge.current == 1
    assert client.get("/healthz").get_json()["streams"]["open"] == 1
    assert kafka_threads() >= before + 2  # the stream's consumer: its main and broker threads
    stream.close()
    assert gauge.current == 0
    assert gauge.total == 1
    assert client.get("/healthz").get_json()["streams"]["open"] == 0
    assert kafka_threads() <= before  # the consumer's threads are gone


def test_reconnect_with_last_event_id_gets_the_missed_event(user_client, publish) -> None:
    reviewer = new_reviewer("RESUME")
    client = user_client(reviewer)
    first = open_stream(client)
    first.until(is_up)
    first.close()
    publish(event_for(reviewer, title="missed"))  # while no stream is open
    assert first.last_id
    resumed = open_stream(client, **{"Last-Event-ID": first.last_id})
    blocks = resumed.until(lambda b: b.event == "recommendations")
    assert blocks[-1].data["items"][0]["title"] == "missed 1"
    resumed.close()


def test_bad_last_event_id_is_400(user_client) -> None:
    client = user_client(new_reviewer("BAD"))
    for bad in ("x", "1:2,", "0:-1", "0:1;1:2", "9" * 30 + ":1"):
        assert client.get("/stream", headers={"Last-Event-ID": bad}).status_code == 400, bad


def test_stream_needs_a_linked_reviewer_id(user_client, db) -> None:
    """Accounts get a reviewerID at registration; one from before that has none until it links one."""
    client = user_client(None)
    db[mongo.USERS].update_many({}, {"$unset": {"reviewerID": ""}})
    assert client.get("/stream").status_code == 409


def test_streams_beyond_the_cap_are_told_to_retry_later(app: Flask, user_client) -> None:
    app.config["STREAM_MAX_OPEN"] = 1
    client = user_client(new_reviewer("CAP"))
    first = open_stream(client)
    first.until(is_up)
    second = open_stream(client)
    busy = second.next()
    assert busy is not None
    assert busy.data == {"state": "busy"}
    assert second.next() is None  # ended, so the browser retries after `retry:`
    first.close()
    assert app.extensions["recsys"].streams.current == 0


def test_the_test_reader_fails_a_quiet_stream_at_its_deadline(app: Flask, user_client) -> None:
    """The SSE reader's deadline fires: a stream that sends nothing fails a test instead of hanging it."""
    app.config["STREAM_HEARTBEAT_S"] = 2.0
    stream = open_stream(user_client(new_reviewer("QUIET")))
    stream.until(is_up)
    with pytest.raises(AssertionError, match=r"no block from the stream within 0\.3s"):
        stream.next(timeout_s=0.3)
    heartbeat = stream.next(timeout_s=10)  # the stream itself is fine: its heartbeat comes in time
    assert heartbeat is not None
    assert heartbeat.event is None
    stream.close()

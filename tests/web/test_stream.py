"""/stream against the real broker: each user sees only their own events, resume works, and a
client that leaves releases its consumer."""

from __future__ import annotations

import contextlib
import gc
import os
import re
import signal
import socket
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from flask import Flask

from recsys_core import mongo
from recsys_web.resources import StreamSlots
from tests.web.conftest import (
    ARTIFACTS,
    SSE,
    event_for,
    forwarded_until,
    get_json,
    http_login,
    new_reviewer,
    open_stream,
    positions,
    wait_until,
)


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
    beyond_int64 = str(2**63)  # 19 digits, like a real offset, but no Kafka offset: was a 500 (OverflowError)
    for bad in ("x", "1:2,", "0:-1", "0:1;1:2", "9" * 30 + ":1", f"0:{beyond_int64}", f"0:1,1:{'9' * 19}"):
        answer = client.get("/stream", headers={"Last-Event-ID": bad})
        assert answer.status_code == 400, bad
        assert "Last-Event-ID" in answer.get_data(as_text=True)
    assert app_slots(client).current == 0


def test_a_resume_goes_back_at_most_stream_resume_max_messages(app: Flask, user_client, publish) -> None:
    """An old (or forged, e.g. ``0:0,1:0,2:0``) id replays only the last few messages, not the whole topic."""
    app.config["STREAM_RESUME_MAX"] = 2
    reviewer = new_reviewer("REPLAY")
    sent = [publish(event_for(reviewer, title=f"old {n}")) for n in range(4)]
    partition = sent[0][0]
    assert [p for p, _ in sent] == [partition] * 4  # one key, one partition
    stream = open_stream(user_client(reviewer), **{"Last-Event-ID": "0:0,1:0,2:0"})
    last = sent[-1][1]
    blocks = stream.until(lambda b: b.id is not None and positions(b.id)[partition] > last)
    titles = [b.data["items"][0]["title"] for b in blocks if b.event == "recommendations"]
    assert titles == ["old 2 1", "old 3 1"]
    assert positions(blocks[0].id)[partition] == last + 1 - 2  # where it started: two back from the end
    stream.close()


def test_an_event_with_a_non_http_image_never_reaches_the_stream(user_client, publish) -> None:
    reviewer = new_reviewer("IMG")
    stream = open_stream(user_client(reviewer))
    stream.until(is_up)
    good = event_for(reviewer, title="safe")
    # Built past the contract's validation, as a broken or hostile producer would send it.
    bad = good.model_copy(
        update={"items": [item.model_copy(update={"image": "javascript:alert(1)"}) for item in good.items]}
    )
    publish(bad)
    publish(good)
    blocks = stream.until(lambda b: b.event == "recommendations")
    received = [b.data for b in blocks if b.event == "recommendations"]
    assert len(received) == 1
    assert received[0]["items"][0]["title"] == "safe 1"
    stream.close()


def app_slots(client) -> StreamSlots:
    slots: StreamSlots = client.application.extensions["recsys"].streams
    return slots


def test_stream_needs_a_linked_reviewer_id(user_client, db) -> None:
    """Accounts get a reviewerID at registration; one from before that has none until it links one."""
    client = user_client(None)
    db[mongo.USERS].update_many({}, {"$unset": {"reviewerID": ""}})
    assert client.get("/stream").status_code == 409


def test_one_user_past_their_cap_gets_a_429_and_others_still_get_streams(app: Flask, user_client) -> None:
    """One account with many tabs takes its own share only: the rest of the slots stay for other users."""
    app.config.update(STREAM_MAX_PER_USER=2, STREAM_MAX_OPEN=4)
    alice = user_client(new_reviewer("GREEDY"))
    mine = [open_stream(alice) for _ in range(2)]
    for stream in mine:
        stream.until(is_up)
    refused = alice.get("/stream")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "15"
    assert "You already have 2 live streams open" in refused.get_data(as_text=True)
    bob = open_stream(user_client(new_reviewer("OTHER")))
    bob.until(is_up)
    assert app.extensions["recsys"].streams.current == 3
    mine[0].close()
    again = open_stream(alice)  # a closed stream gave its slot back
    again.until(is_up)
    for stream in (mine[1], bob, again):
        stream.close()
    assert app.extensions["recsys"].streams.current == 0


def test_a_full_server_answers_429_and_a_response_never_read_frees_its_slot(app: Flask, user_client) -> None:
    app.config["STREAM_MAX_OPEN"] = 1
    first = user_client(new_reviewer("FIRST"))
    unread = first.get("/stream", buffered=False)  # the slot is taken by the view, before any byte is read
    assert unread.status_code == 200
    refused = user_client(new_reviewer("SECOND")).get("/stream")
    assert refused.status_code == 429
    assert "as many live streams open as it can hold" in refused.get_data(as_text=True)
    unread.close()  # what the WSGI server does when the client leaves before the body started
    assert app.extensions["recsys"].streams.current == 0
    assert app.extensions["recsys"].streams.total == 1


def _raw_stream(base: str) -> tuple[socket.socket, bytes]:
    """A logged-in ``/stream`` on a socket of its own under gunicorn (heartbeat 10 min, probe 0.2 s), read up to
    its "live" status: the socket, and what it received."""
    # Plain http on loopback: urllib, unlike a browser, sends no Secure cookie to http://127.0.0.1.
    cookie = http_login(base)
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(f"GET /stream HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n\r\n".encode())
    received = b""
    while b'"state":"live"' not in received:
        chunk = sock.recv(4096)
        assert chunk, f"the stream ended: {received!r}"
        received += chunk
    assert received.startswith(b"HTTP/1.1 200")
    return sock, received


QUIET_STREAMS = {"STREAM_HEARTBEAT_S": 600.0, "STREAM_PROBE_S": 0.2, "SESSION_COOKIE_SECURE": False}


def test_a_client_that_leaves_frees_its_slot_before_the_next_heartbeat(start_server) -> None:
    """Under gunicorn, a closed connection is noticed by the socket probe, not at the next heartbeat (here 10 min)."""
    base = start_server(**QUIET_STREAMS)
    sock, _ = _raw_stream(base)
    assert get_json(f"{base}/healthz")[1]["streams"]["open"] == 1
    sock.close()
    wait_until(lambda: get_json(f"{base}/healthz")[1]["streams"]["open"] == 0, "the slot to be freed", timeout_s=20)


def test_a_worker_told_to_stop_ends_its_streams_with_their_retry_hint(start_server, request) -> None:
    """gunicorn's graceful stop waits for open requests: a stream must end (with ``retry:``, so the browser
    reconnects) instead of holding the worker until the graceful timeout kills it mid-stream."""
    base = start_server(**QUIET_STREAMS)
    sock, received = _raw_stream(base)
    log = (ARTIFACTS / f"server-{request.node.name}-0.log").read_text()
    master = re.search(rf"Listening at: {re.escape(base)} \((\d+)\)", log)
    assert master is not None, log
    os.kill(int(master.group(1)), signal.SIGTERM)
    while chunk := sock.recv(4096):
        received += chunk
    sock.close()
    body = received.decode()
    assert "retry: 3000" in body, f"the stream was cut, not ended: {body!r}"
    assert body.endswith("0\r\n\r\n"), "the chunked body was not finished"


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

"""The online updater against the real broker and MongoDB: interactions become new lists, exactly, and safely."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from recsys_core.contract import (
    BECAUSE_PREFIX,
    DeadLetter,
    Interaction,
    Product,
    RecommendationEvent,
    Recommendations,
    stored_time,
)
from recsys_core.scoring import ItemFactors, recommend_many
from recsys_core.settings import PROJECT_ROOT
from recsys_online.history import SignalWeights, load_signals
from recsys_online.updater import Updater
from tests.online.conftest import (
    ITEMS,
    OLD_REVIEWER,
    UNMODELLED,
    Online,
    item_asin,
    publish_factors,
    updater_thread,
    wait_for,
)

ALPHA, REG = 2.0, 0.1


def reference_list(vectors: np.ndarray, signals: dict[str, float], rated: set[str]) -> list[tuple[str, float]]:
    """Hu, Koren and Volinsky's implicit ALS solved for one user the textbook way (Spark's weighted lambda),
    then the five best items not rated, ties by asin."""
    asins = [item_asin(i) for i in range(ITEMS)]
    p = np.array([1.0 if a in signals else 0.0 for a in asins])
    c = np.diag([1.0 + ALPHA * signals.get(a, 0.0) for a in asins])
    x = np.linalg.solve(vectors.T @ c @ vectors + REG * len(signals) * np.eye(vectors.shape[1]), vectors.T @ c @ p)
    ranked = sorted((-float(vectors[i] @ x), a) for i, a in enumerate(asins) if a not in rated)
    return [(a, -s) for s, a in ranked[:5]]


def stored_list(online: Online, reviewer: str) -> Recommendations | None:
    doc = online.db[Recommendations.collection].find_one({"_id": reviewer})
    return None if doc is None else Recommendations.from_document(doc)


def list_as_of(online: Online, reviewer: str, ts: datetime) -> Any:
    found = stored_list(online, reviewer)
    return found if found is not None and found.updated_at == stored_time(ts) else None


def test_ratings_and_clicks_give_the_numpy_fold_in_list_written_and_announced(online: Online, produce, tmp_path):
    reviewer = online.web_reviewers[0]
    announced = online.reader(online.settings.topic_recommendations)
    start = datetime.now(UTC)
    events = [
        online.event(reviewer, item_asin(3), rating=5.0, ts=start),
        online.event(reviewer, item_asin(7), rating=4.0, ts=start + timedelta(seconds=1)),
        online.event(reviewer, item_asin(9), rating=1.0, ts=start + timedelta(seconds=2)),
        online.event(reviewer, item_asin(11), kind="click", ts=start + timedelta(seconds=3)),
        online.event(reviewer, item_asin(11), kind="view", ts=start + timedelta(seconds=4)),
    ]
    with updater_thread(online.settings, tmp_path):
        produce(*events)
        final = wait_for(lambda: list_as_of(online, reviewer, events[-1].ts), "the list of the last event")
    rated = {item_asin(3), item_asin(7), item_asin(9)}
    # the 1-star rating is a dislike: unobserved for the implicit head, yet never recommended back
    signals = {item_asin(3): 5.0, item_asin(7): 4.0, item_asin(11): 1.0 + 0.5}  # click + view
    expected = reference_list(online.vectors, signals, rated)
    assert [item.asin for item in final.items] == [a for a, _ in expected]
    np.testing.assert_allclose([item.score for item in final.items], [s for _, s in expected], rtol=0, atol=1e-6)
    assert (final.source, final.model_version) == ("online", "v1")
    assert all(item.title == f"Title of {item.asin}" for item in final.items)
    assert all(item.because_asin in {item_asin(3), item_asin(7)} for item in final.items), "only liked items explain"
    assert all((item.because or "").startswith(BECAUSE_PREFIX + "Title of P") for item in final.items)
    messages = announced.keyed(reviewer, 3.0)
    assert messages, "the new list was announced on the recommendations topic"
    last = RecommendationEvent.decode(messages[-1].value() or b"")
    assert (last.items, last.source, last.ts) == (final.items, "online", final.updated_at)
    assert online.db[Interaction.collection].count_documents({"reviewerID": reviewer}) == 5
    announced.consumer.close()


def test_a_reviewer_from_the_data_is_folded_in_with_their_reviews(online: Online, produce, tmp_path) -> None:
    event = online.event(OLD_REVIEWER, item_asin(20), rating=4.0)
    with updater_thread(online.settings, tmp_path):
        produce(event)
        final = wait_for(lambda: list_as_of(online, OLD_REVIEWER, event.ts), "the list")
    signals = {item_asin(1): 5.0, item_asin(3): 4.0, item_asin(20): 4.0}  # the 2-star review is a dislike
    expected = reference_list(online.vectors, signals, {*signals, item_asin(2)})
    assert [item.asin for item in final.items] == [a for a, _ in expected]


def test_bad_messages_are_dead_lettered_with_their_reason_and_the_updater_goes_on(online: Online, produce, tmp_path):
    dead = online.reader(online.settings.topic_dead_letters)
    good = online.event(online.web_reviewers[1], item_asin(5))
    wrong_key = online.event(online.web_reviewers[2], item_asin(5))
    with updater_thread(online.settings, tmp_path) as updater:
        produce(
            (b"web-x", b"{not json"),
            (b"web-x", b'{"event_id": "e1", "reviewerID": "web-x", "asin": "P0001", "kind": "buy", "rating": null,'
                       b' "ts": "2026-11-25T00:00:00Z"}'),
            online.event(online.web_reviewers[1], "PNOSUCHITEM"),
            online.event("ANOBODYKNOWS", item_asin(5)),
            (b"someone-else", wrong_key.encode()),
            good,
        )  # fmt: skip
        wait_for(lambda: list_as_of(online, good.reviewerID, good.ts), "the good event's list")
        wait_for(lambda: updater.counts.dead == 5, "five dead letters")
    letters = [DeadLetter.decode(m.value() or b"") for m in _all(dead, 5)]
    reasons = sorted(letter.reason.split(":")[0] for letter in letters)
    assert reasons == ["key_mismatch", "malformed", "malformed", "unknown_asin", "unknown_reviewer"]
    assert all(letter.topic == online.settings.topic_interactions for letter in letters)
    assert any(letter.value == "{not json" for letter in letters)
    assert online.db[Interaction.collection].count_documents({}) == 1
    dead.consumer.close()


def _all(reader: Any, n: int) -> list[Any]:
    """The first ``n`` messages on the reader's topic."""
    found: list[Any] = []

    def more() -> bool:
        message = reader.consumer.poll(0.2)
        if message is not None and message.error() is None:
            found.append(message)
        return len(found) >= n

    wait_for(more, f"{n} messages")
    return found


def test_a_replayed_event_is_stored_once_and_an_older_one_never_overwrites_a_newer_list(online, produce, tmp_path):
    reviewer = online.web_reviewers[3]
    newer = online.event(reviewer, item_asin(8), rating=5.0)
    older = online.event(reviewer, item_asin(30), rating=5.0, ts=newer.ts - timedelta(minutes=5))
    with updater_thread(online.settings, tmp_path) as updater:
        produce(newer, newer)
        first = wait_for(lambda: list_as_of(online, reviewer, newer.ts), "the list")
        produce(older)
        wait_for(lambda: updater.counts.events == 3, "the older event to be handled")
    assert online.db[Interaction.collection].count_documents({"_id": newer.event_id}) == 1
    assert online.db[Interaction.collection].count_documents({"reviewerID": reviewer}) == 2
    assert stored_list(online, reviewer) == first, "the older event left the newer list alone"


def test_an_unmodelled_product_keeps_the_popular_list_until_a_modelled_one_is_rated(online, produce, tmp_path):
    reviewer = online.web_reviewers[4]
    unknown_to_model = online.event(reviewer, UNMODELLED)
    known = online.event(reviewer, item_asin(12), ts=unknown_to_model.ts + timedelta(seconds=1))
    with updater_thread(online.settings, tmp_path) as updater:
        produce(unknown_to_model)
        wait_for(lambda: updater.counts.events == 1, "the event")
        assert stored_list(online, reviewer) is None
        produce(known)
        final = wait_for(lambda: list_as_of(online, reviewer, known.ts), "a personal list")
    assert UNMODELLED not in [item.asin for item in final.items]
    assert item_asin(12) not in [item.asin for item in final.items]


def test_an_online_update_shows_only_http_images(online: Online, produce, tmp_path) -> None:
    """The rule of batch lists holds for online ones: a product's non-http(s) image never reaches the event."""
    urls = ["javascript:alert(1)", "data:text/html,<b>x</b>", " http://padded.example.com/x.jpg"]
    hostile = {item_asin(i): urls[i % 3] for i in range(ITEMS) if i % 4}  # every fourth keeps its https image
    for asin, url in hostile.items():
        online.db[Product.collection].update_one({"_id": asin}, {"$set": {"image": url}})
    reviewer = online.web_reviewers[5]
    announced = online.reader(online.settings.topic_recommendations)
    event = online.event(reviewer, item_asin(30))
    with updater_thread(online.settings, tmp_path):
        produce(event)
        final = wait_for(lambda: list_as_of(online, reviewer, event.ts), "the list")
    sent = RecommendationEvent.decode(announced.find(reviewer).value() or b"")
    assert sent.items == final.items
    assert any(item.asin in hostile for item in final.items), "the list shows products whose image is refused"
    for item in final.items:
        assert item.image == (None if item.asin in hostile else f"https://img.example.com/{item.asin}.jpg")
    announced.consumer.close()


def test_a_newly_published_model_is_used_without_a_restart(online: Online, produce, tmp_path) -> None:
    reviewer = online.web_reviewers[5]
    first = online.event(reviewer, item_asin(1))
    with updater_thread(online.settings, tmp_path):
        produce(first)
        assert wait_for(lambda: list_as_of(online, reviewer, first.ts), "v1 list").model_version == "v1"
        vectors = publish_factors(online.db, "v2", seed=99)
        time.sleep(2 * online.settings.updater_model_check_s)  # the updater looks for a new model this often
        second = online.event(reviewer, item_asin(2), ts=first.ts + timedelta(seconds=1))
        produce(second)
        final = wait_for(lambda: list_as_of(online, reviewer, second.ts), "v2 list")
    assert final.model_version == "v2"
    expected = reference_list(vectors, {item_asin(1): 5.0, item_asin(2): 5.0}, {item_asin(1), item_asin(2)})
    assert [item.asin for item in final.items] == [a for a, _ in expected]


def test_two_updaters_share_the_partitions_and_keep_each_reviewers_order(online: Online, produce, tmp_path):
    handled: list[tuple[int, str, datetime]] = []

    class Recording(Updater):
        """The real updater, noting which instance handled which event, in order."""

        def handle(self, messages: Any) -> None:
            for message in messages:
                event = Interaction.decode(message.value())
                handled.append((id(self), event.reviewerID, event.ts))
            super().handle(messages)

    reviewers = online.web_reviewers[:20]
    start = datetime.now(UTC)
    events = [
        online.event(r, item_asin((i * 7 + j) % ITEMS), ts=start + timedelta(milliseconds=10 * j))
        for j in range(10)
        for i, r in enumerate(reviewers)
    ]
    with updater_thread(online.settings, tmp_path, Recording), updater_thread(online.settings, tmp_path, Recording):
        produce(*events)
        wait_for(lambda: len(handled) >= len(events), "every event", timeout_s=30)
        last = {r: max(e.ts for e in events if e.reviewerID == r) for r in reviewers}
        wait_for(lambda: all(list_as_of(online, r, ts) for r, ts in last.items()), "every final list")
    assert len(handled) == len(events)
    assert online.db[Interaction.collection].count_documents({}) == len(events)
    assert len({instance for instance, _, _ in handled}) == 2, "both instances took partitions"
    for reviewer in reviewers:
        mine = [(instance, ts) for instance, r, ts in handled if r == reviewer]
        assert len({instance for instance, _ in mine}) == 1, "one reviewer's events go to one instance"
        assert [ts for _, ts in mine] == sorted(ts for _, ts in mine), "in the order they were produced"


def test_a_killed_updater_restarts_without_losing_or_duplicating_anything(online: Online, produce, tmp_path):
    reviewers = online.web_reviewers[:30]
    start = datetime.now(UTC)
    events = [
        online.event(r, item_asin((i * 11 + j) % ITEMS), kind="rate" if j % 3 else "click",
                     ts=start + timedelta(milliseconds=j))
        for j in range(12)
        for i, r in enumerate(reviewers)
    ]  # fmt: skip
    stored = online.db[Interaction.collection]
    process = _start_updater(online, tmp_path / "first")
    produce(*events)
    wait_for(lambda: stored.count_documents({}) >= 30, "some events to be handled")
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    killed_at = stored.count_documents({})
    restarted = _start_updater(online, tmp_path / "second")
    try:
        wait_for(lambda: stored.count_documents({}) == len(events), "every event stored", timeout_s=60)
        last = {r: max(e.ts for e in events if e.reviewerID == r) for r in reviewers}
        wait_for(lambda: all(list_as_of(online, r, ts) for r, ts in last.items()), "every final list", timeout_s=30)
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(20)
    assert killed_at < len(events), "the kill came mid-stream"
    assert {d["_id"] for d in stored.find({}, {"_id": 1})} == {e.event_id for e in events}
    # An uninterrupted run ends with each list computed from everything stored about the reviewer.
    factors = ItemFactors.from_documents(online.db["item_factors"].find())
    signals = load_signals(online.db, reviewers, SignalWeights(click=1.0, view=0.5))
    expected = recommend_many(factors, [signals[r] for r in reviewers], 5)
    for reviewer, top in zip(reviewers, expected, strict=True):
        found = stored_list(online, reviewer)
        assert found is not None
        assert [(item.asin, round(item.score, 9)) for item in found.items] == [(a, round(s, 9)) for a, s in top]


def _start_updater(online: Online, home: Path) -> subprocess.Popen[bytes]:
    """The real ``recsys updater`` process, as ``recsys services up`` starts it, in small batches so a kill
    lands between a batch's writes and its commit."""
    home.mkdir(parents=True)
    ready = home / "ready"
    log = (home / "updater.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "recsys_cli", "updater", "--ready-file", str(ready)],
        env={**online.settings.environment(), "RECSYS_UPDATER_BATCH_MAX": "5", "PATH": "/usr/bin:/bin"},
        cwd=PROJECT_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_for(lambda: ready.exists() or process.poll() is not None, "the updater process to join", timeout_s=60)
    assert process.poll() is None, (home / "updater.log").read_text()
    return process

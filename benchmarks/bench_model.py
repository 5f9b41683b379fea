"""Training, the top 5 for every reviewer, and the batch publish reaching open streams, each against its bare anchor.

    python -m benchmarks.bench_model --reviews 1000000 [--rounds 5]

One generated dataset (``amazon-5core`` shape, one category) runs through the whole graph as
one size of the scale benchmark (``bench_scale.measure_size``: ``recsys run`` with no sample
cap, the gate warning, the validation search off, in that size's data folder, database and
model store), which writes that size's scale row; the scale benchmark of the same suite run
takes the row instead of running the graph again (as it does for each ``--also-scale-sizes``, run
at the end in this process's warm JVM: ``--quick``'s smaller scale size). Then, in the same process
and Spark session:

1. ``als_model``'s materialisation (its own ``duration_s``: reading the ratings, biases, id
   indices, both heads' fits, saving) against bare ``pyspark.ml.recommendation.ALS.fit`` of
   the same two heads (the explicit rating head and the implicit ranking head, built with
   the model's recorded parameters and the same blocks and checkpointing) on the same
   training rows, prepared and cached beforehand. Goal: at most 1.2x.
2. ``user_recommendations`` (the top 5 of every training reviewer: Spark top-k, reasons,
   product join, the atomic swap into MongoDB and the announcement on Kafka) against a bare
   numpy blocked top-k on the same factors with the same exclusions
   (``bench_scale.numpy_top_k_anchor``). Goal: at most 3x.
3. A batch publish reaching an open ``/stream``: the web app runs (``webapp.web``, 4 workers), 12
   reviewers spread over the batch are logged in with their stream open, and the published
   lists (read back into Spark and cached, as the publish has them cached) are announced
   again as ``user_recommendations`` announces them (``publishing.announce``: encoded and
   produced by the executors), ``--rounds`` times after one unmeasured round; each sample is
   the time from the start of the announcement to the list's arrival on the reviewer's stream.
   The anchor: the same messages (encoded and collected beforehand) produced by one producer
   to a fresh topic on the same broker and read by a bare consumer, timed the same way for the
   same reviewers.
   Goal: p99 at most 2x the anchor's.
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confluent_kafka import TopicPartition

from benchmarks.bench_quality import DATASETS, QUALITY_REVIEWS, run_dataset_here
from benchmarks.bench_scale import measure_size, numpy_top_k_anchor, reset_mongod_peak, use_size
from benchmarks.report import RESULTS, Figure, logs_folder, provenance, write_section
from benchmarks.webapp import PASSWORD, log_in, percentiles, watch_streams, web, with_stream_cap
from recsys_core import mongo, services
from recsys_core.connections import kafka_consumer, kafka_producer, project_database
from recsys_core.contract import Recommendations
from recsys_core.services.kafka import ensure_topics
from recsys_core.settings import Settings, get_settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ALS_GOAL, TOP_K_GOAL, STREAM_GOAL = 1.2, 3.0, 2.0
WATCHED = 12
"""Open streams; each worker's cap is raised to all of them (``webapp.with_stream_cap``)."""
ARRIVAL_WAIT_S = 60.0
"""How long a round waits for every watched list; a list that never arrives is counted as missing."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def measure_training(model: Any, ratings_uri: str, checkpoints: str) -> float:
    """Seconds of bare ``ALS.fit`` of ``model``'s heads, as ``fit_model`` configures them, on its training rows."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from recsys_assets.model.biases import fit_biases
    from recsys_assets.model.features import TRAIN
    from recsys_assets.model.training import Ids, als_blocks, learning_columns, ranking_head, rating_head

    spark = SparkSession.getActiveSession()
    assert spark is not None
    spark.sparkContext.setCheckpointDir(checkpoints)
    train = spark.read.parquet(ratings_uri).where(F.col("split") == TRAIN)
    params, heads = model.params, model.heads
    blocks = als_blocks(params, train.count(), spark.sparkContext.defaultParallelism)
    data = Ids.of(train).attach(learning_columns(train, fit_biases(train, model.biases.damping))).cache()
    data.count()
    started = time.perf_counter()
    rating_head(params, heads.rating, blocks).fit(data)
    if params.implicit_prefs:
        ranking_head(params, heads.ranking, blocks).fit(data)
    seconds = time.perf_counter() - started
    data.unpersist()
    return seconds


def _watch(settings: Settings, version: str) -> list[str]:
    """``WATCHED`` reviewers spread evenly over the batch's order, each given an account to log in with."""
    from recsys_web.passwords import hash_password

    db = project_database(settings)
    order = [d["reviewerID"] for d in db[mongo.RECOMMENDATIONS].find({"model_version": version}, {"reviewerID": 1})]
    watched = order[:: max(1, len(order) // WATCHED)][:WATCHED]
    password_hash = hash_password(PASSWORD)
    db[mongo.USERS].delete_many({"email": {"$regex": "@bench\\.example$"}})
    db[mongo.USERS].insert_many(
        [{"email": f"{r}@bench.example".lower(), "reviewerID": r, "password_hash": password_hash} for r in watched]
    )
    db.client.close()
    return watched


def _rounds(rounds: int, watched: list[str], announce: Any, arrivals: Any) -> tuple[list[float], int]:
    """Announce the batch ``rounds`` times after one unmeasured round (connections, fetch sessions and caches warm
    up, on both paths alike); each watched reviewer's seconds from the start to its list's arrival."""
    samples, missing = [], 0
    for n in range(1 + rounds):
        seen = {r: len(arrivals(r)) for r in watched}
        started = time.time()
        announce()
        deadline = time.monotonic() + ARRIVAL_WAIT_S
        while any(len(arrivals(r)) == seen[r] for r in watched) and time.monotonic() < deadline:
            time.sleep(0.01)
        for r in watched if n else ():
            if len(arrivals(r)) > seen[r]:
                samples.append(arrivals(r)[seen[r]] - started)
            else:
                missing += 1
        time.sleep(1)  # let the stragglers of a round (lists of unwatched reviewers) pass
    return samples, missing


def measure_streams(settings: Settings, spark: SparkSession, version: str, rounds: int, home: Path) -> dict[str, Any]:
    """The batch announcement reaching open streams, and the bare produce -> consume of the same messages."""
    from pyspark.sql import functions as F

    from recsys_assets.definitions import build_resources
    from recsys_assets.documents import conform
    from recsys_assets.model.publishing import announce, announcements

    resources = build_resources(settings)
    kafka = resources["kafka"]
    lists = conform(
        spark.read.format("mongodb")
        .options(**resources["mongo"].spark_options())
        .option("collection", mongo.RECOMMENDATIONS)
        .load()
        .where(F.col("model_version") == version),
        Recommendations,
    ).cache()
    messages = [(row["key"].encode(), row["value"].encode()) for row in announcements(lists).collect()]
    watched = _watch(settings, version)
    port = _free_port()
    local = settings.model_copy(update={"web_cookie_secure": False})  # plain http on 127.0.0.1
    with web(with_stream_cap(local, home, len(watched)), home / "web.log", port, workers=4, threads=16):
        base = f"http://127.0.0.1:{port}"
        streams = {stream.reviewer: stream for stream in watch_streams(log_in(base, watched))}
        time.sleep(2)  # every stream is assigned its partitions
        ours, ours_missing = _rounds(
            rounds,
            watched,
            lambda: announce(lists, kafka),
            lambda r: [when for when, _ in streams[r].arrivals],
        )
    lists.unpersist()
    bare, bare_missing = _bare_rounds(settings, messages, watched, rounds)
    return {
        "lists": len(messages),
        "watched": len(watched),
        "rounds": rounds,
        "ours": percentiles(ours),
        "ours_missing": ours_missing,
        "bare": percentiles(bare),
        "bare_missing": bare_missing,
    }


def _bare_rounds(
    settings: Settings, messages: list[tuple[bytes, bytes]], watched: list[str], rounds: int
) -> tuple[list[float], int]:
    """The anchor: ``messages`` produced to a fresh topic, a bare consumer noting when each watched key arrives."""
    bootstrap = settings.effective_kafka_bootstrap
    topic = f"bench-batch-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, [topic], settings.topic_partitions)
    keys = {r.encode(): r for r in watched}
    received: dict[str, list[float]] = {r: [] for r in watched}
    stop = threading.Event()
    consumer = kafka_consumer(bootstrap, f"bench-bare-{uuid.uuid4().hex}")
    consumer.assign([TopicPartition(topic, p, 0) for p in range(settings.topic_partitions)])

    def consume() -> None:
        while not stop.is_set():
            for message in consumer.consume(1000, timeout=0.05):
                if message.error() is None and (reviewer := keys.get(message.key() or b"")) is not None:
                    received[reviewer].append(time.time())

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    producer = kafka_producer(bootstrap, 30_000)

    def produce() -> None:
        for key, value in messages:
            while True:
                try:
                    producer.produce(topic, key=key, value=value)
                    break
                except BufferError:  # the local queue is full, as in KafkaResource.announce
                    producer.poll(0.5)
            producer.poll(0)
        producer.flush(60)

    try:
        return _rounds(rounds, watched, produce, lambda r: received[r])
    finally:
        stop.set()
        thread.join(10)
        consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=10, help="announcements of the batch to the open streams")
    parser.add_argument(
        "--also-scale-sizes",
        type=int,
        nargs="*",
        default=[],
        help="smaller sizes of the scale benchmark to run at the end, in this process's warm JVM (--quick)",
    )
    parser.add_argument(
        "--also-quality-datasets",
        nargs="*",
        choices=DATASETS,
        default=[],
        help="the quality benchmark's pipeline runs to make at the end, warm (--quick); its arguments follow",
    )
    parser.add_argument("--quality-reviews", type=int, default=QUALITY_REVIEWS, help="as bench_quality's --reviews")
    parser.add_argument("--quality-tuning-budget", type=float, help="as bench_quality's --tuning-budget")
    args = parser.parse_args()

    suite = get_settings()
    settings = use_size(args.reviews)
    services.up(settings)
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from recsys_assets.model.features import TRAIN

    reset_mongod_peak(settings)
    size = measure_size(args.reviews)  # also the scale benchmark's row of this size
    metadata, handle, model = size.metadata, size.handle, size.model
    als_s = float(metadata["als_model"]["duration_s"])
    publish_s = float(metadata["user_recommendations"]["duration_s"])
    published = int(metadata["user_recommendations"]["dagster/row_count"])
    if metadata["user_recommendations"]["lists_from"] != "model":
        raise SystemExit(f"the lists came from {metadata['user_recommendations']['lists_from']}, not the model")

    spark = SparkSession.getActiveSession()
    assert spark is not None
    with tempfile.TemporaryDirectory(dir=settings.state_dir) as checkpoints:
        fit_s = measure_training(model, handle.ratings.uri, checkpoints)
    ratings = spark.read.parquet(handle.ratings.uri).select("reviewerID", "asin", "split").cache()
    reviewers = ratings.where(F.col("split") == TRAIN).select("reviewerID").distinct().cache()
    numpy_s = numpy_top_k_anchor(model, ratings, reviewers)

    streams = measure_streams(settings, spark, handle.version, args.rounds, logs_folder("model"))
    for reviews in args.also_scale_sizes:
        use_size(reviews)
        measure_size(reviews, after_another_size=True)
    for dataset in args.also_quality_datasets:
        run_dataset_here(suite, dataset, args.quality_reviews, args.quality_tuning_budget)
    spark.stop()

    heads = model.heads
    fitted = f"rating head rank {heads.rating.rank}, {heads.rating.max_iter} iterations" + (
        f"; ranking head rank {heads.ranking.rank}, {heads.ranking.max_iter} iterations"
        if model.params.implicit_prefs
        else ""
    )
    ours, bare = streams["ours"], streams["bare"]
    missing = streams["ours_missing"] + streams["bare_missing"]
    stream_ratio = ours["p99_ms"] / bare["p99_ms"] if bare["n"] else float("nan")
    figures = [
        Figure(
            f"`als_model` materialisation, tuning off: {als_s:.1f} s",
            f"bare `ALS.fit` of the same heads ({fitted}) on the same rows: {fit_s:.1f} s",
            f"{als_s / fit_s:.2f}x",
            f"≤ {ALS_GOAL}x",
            als_s / fit_s <= ALS_GOAL,
        ),
        Figure(
            f"`user_recommendations`, the top 5 of {published:,} reviewers published: {publish_s:.1f} s",
            f"numpy blocked top-k on the same factors and exclusions: {numpy_s:.2f} s",
            f"{publish_s / numpy_s:.1f}x",
            f"≤ {TOP_K_GOAL:g}x",
            publish_s / numpy_s <= TOP_K_GOAL,
        ),
        Figure(
            f"batch publish ({streams['lists']:,} lists) -> open /stream: p50 {ours['p50_ms']} ms, "
            f"p99 {ours['p99_ms']} ms ({ours['n']} samples, {streams['ours_missing']} missing)",
            f"bare produce -> consume of the same messages: p50 {bare['p50_ms']} ms, p99 {bare['p99_ms']} ms "
            f"({bare['n']} samples, {streams['bare_missing']} missing)",
            f"{stream_ratio:.2f}x (p99)",
            f"≤ {STREAM_GOAL:g}x",
            stream_ratio <= STREAM_GOAL and missing == 0,
        ),
    ]
    for figure in figures:
        print(figure.line())
    result = {
        "reviews": args.reviews,
        "als_model_s": als_s,
        "bare_als_fit_s": round(fit_s, 2),
        "user_recommendations_s": publish_s,
        "numpy_top_k_s": round(numpy_s, 2),
        "published": published,
        "streams": streams,
    }
    (RESULTS / "model.json").write_text(json.dumps(result, indent=2))
    what = (
        f"{args.reviews:,} generated reviews (`amazon-5core` shape, one category), tuning off; "
        f"{streams['watched']} open streams, {args.rounds} announcements of the batch"
    )
    lines = [
        provenance(what),
        "",
        "| figure | anchor (same run) | ratio | goal | met? |",
        "|---|---|---:|---|---|",
        *(f"| {f.figure} | {f.anchor} | {f.ratio} | {f.goal} | {'yes' if f.met else '**no**'} |" for f in figures),
    ]
    write_section("model", lines, "## Training and batch publish (`benchmarks/bench_model.py`)")


if __name__ == "__main__":
    main()

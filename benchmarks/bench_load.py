"""Load: 200 open live streams plus 500 requests/s of pages and API calls; and the API beside a constant route.

    python -m benchmarks.bench_load [--quick]

On the configured services (``recsys services up``), in a database and topics of its own, with
shoppers logged in through the real login form:

1. **Load test** (issue 11): the web app as ``recsys serve`` runs it (gunicorn gthread,
   ``--workers 2 --threads 128``; production settings except ``Secure`` cookies, off for
   plain-http 127.0.0.1 as ``serve`` allows) holds ``--streams`` open ``/stream``\\ s, one per
   shopper, while locust sends a steady ``--rate`` requests/s (``constant_throughput``) over the
   home page, ``/popular``, product pages, the shopper's own API list and ``/result`` for
   ``--seconds``. Errors: every failed or unexpected answer, every refused stream (a 429 too)
   and every stream that ended before the test did. Memory: the resident set of all gunicorn
   processes summed, every 2 s, with the slope of a line fitted over the load.
   The default of 6 streams per worker (STREAM_MAX_OPEN) would refuse most of 200 streams, so
   the app's instance config sets it to STREAM_MAX_OPEN_LOAD: each stream holds a thread and a
   Kafka consumer, which is the cost this test measures.
2. **API against its anchor** (issue 12, row 4): wrk sends ``GET /api/v1/recommendations/<id>``
   for random shoppers' ids, each with its owner's session cookie, at 16 and 64 connections, to
   the app under ``recsys serve``'s default gunicorn settings (1 worker x 16 threads); the
   anchor is a bare Flask route answering the same body, under the same settings, in the same run.

Writes ``benchmarks/results/load.json``, ``load.png`` (memory over time) and the load section
of BENCHMARKS.md. Needs ``wrk`` (Debian's package) and the ``bench`` extra (locust, psutil).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from benchmarks.report import RESULTS, Figure, logs_folder, provenance, write_section
from benchmarks.webapp import Shopper, StreamWatcher, constant, isolated_settings, log_in, seed, web, with_stream_cap
from recsys_core import services
from recsys_core.connections import project_database
from recsys_core.contract import ALL_CATEGORIES, TOP_K, PopularItem, Recommendations, RecommendedItem
from recsys_core.settings import Settings, get_settings

PRODUCTS = 2000
LOAD_WORKERS, LOAD_THREADS = 2, 128
STREAM_MAX_OPEN_LOAD = 120
"""Streams per worker in the load test: 2 x 120 leaves room for gunicorn's uneven spread of 200."""
SERVE_WORKERS, SERVE_THREADS = 1, 16
"""``recsys serve``'s defaults, for the API figure (as issue 12 measured it)."""
LOCUST_USERS = 250
"""Locust's users share the rate: 250 keep 500 req/s up while answers take under 0.5 s (each waits for its answer)."""
STREAMS_CONNECTING = 25
MEMORY_EVERY_S = 2.0
PORT, ANCHOR_PORT = 5420, 5421
WARM_UP_S = 3


def _publish(settings: Settings, reviewers: list[str]) -> None:
    """A top 5 for every shopper and the popular list, as the pipeline publishes them."""
    db = project_database(settings)
    now = datetime.now(UTC)
    rng = np.random.default_rng(4)

    def item(i: int, score: float) -> RecommendedItem:
        return RecommendedItem(
            asin=f"B{i:09d}", score=score, title=f"Product {i}", image=None, price=10.0, because=None, because_asin=None
        )

    db[Recommendations.collection].insert_many(
        [
            Recommendations(
                reviewerID=r,
                items=[item(int(i), 5.0 - n / 10) for n, i in enumerate(rng.choice(PRODUCTS, TOP_K, replace=False))],
                model_version="bench",
                source="batch",
                updated_at=now,
            ).to_document()
            for r in reviewers
        ]
    )
    db[PopularItem.collection].insert_many(
        [
            PopularItem(
                category=ALL_CATEGORIES,
                rank=n + 1,
                asin=f"B{n:09d}",
                title=f"Product {n}",
                image=None,
                price=10.0,
                score=5.0 - n / 10,
                n_ratings=100 - n,
                model_version="bench",
                updated_at=now,
            ).to_document()
            for n in range(TOP_K)
        ]
    )
    db.client.close()


class MemorySampler:
    """The summed resident set of a gunicorn master and its workers, every MEMORY_EVERY_S."""

    def __init__(self, pid: int) -> None:
        self.master = psutil.Process(pid)
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.monotonic()
        self._thread.start()

    def rss_mib(self) -> float:
        processes = [self.master, *self.master.children(recursive=True)]
        total = 0
        for proc in processes:
            with contextlib.suppress(psutil.NoSuchProcess):  # a worker being replaced
                total += proc.memory_info().rss
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self.started, self.rss_mib()))
            self._stop.wait(MEMORY_EVERY_S)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def at(self, seconds: float) -> float:
        """The first sample at or after ``seconds``."""
        return next(mib for when, mib in self.samples if when >= seconds)


def _locust(base: str, shoppers_file: Path, rate: float, seconds: int, home: Path) -> dict[str, Any]:
    """Locust's figures per route and in all (its Requests/s: over the time it ran)."""
    prefix = home / "locust"
    env = os.environ | {
        "BENCH_LOAD_SHOPPERS": str(shoppers_file),
        "BENCH_LOAD_PRODUCTS": str(PRODUCTS),
        "BENCH_LOAD_USER_RATE": str(rate / LOCUST_USERS),
    }
    command = [
        str(Path(sys.executable).with_name("locust")),
        "-f",
        str(Path(__file__).with_name("load_shoppers.py")),
        "--headless",
        "--host",
        base,
        "--users",
        str(LOCUST_USERS),
        "--spawn-rate",
        str(LOCUST_USERS),
        "--run-time",
        f"{seconds}s",
        "--csv",
        str(prefix),
        "--only-summary",
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "WARNING",
    ]
    with (home / "locust.log").open("wb") as log:
        subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    rows = _csv_rows(Path(f"{prefix}_stats.csv"))
    routes = {
        row["Name"]: {
            "requests": int(row["Request Count"]),
            "failures": int(row["Failure Count"]),
            "p50_ms": float(row["50%"]),
            "p99_ms": float(row["99%"]),
            "per_s": float(row["Requests/s"]),
        }
        for row in rows
    }
    failures = [
        {"route": row["Name"], "error": row["Error"], "count": int(row["Occurrences"])}
        for row in _csv_rows(Path(f"{prefix}_failures.csv"))
    ]
    total = routes.pop("Aggregated")
    return {"total": total, "routes": routes, "failures": failures, "achieved_per_s": total["per_s"]}


def _csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open() as handle:
        return list(csv.DictReader(handle))


def load_test(
    settings: Settings, reviewers: list[str], rate: float, seconds: int, home: Path
) -> tuple[dict[str, Any], list[Shopper]]:
    """The figures, and the logged-in shoppers (their sessions outlive this server)."""
    base = f"http://127.0.0.1:{PORT}"
    web_settings = with_stream_cap(settings, home, STREAM_MAX_OPEN_LOAD)
    with web(web_settings, home / "web-load.log", PORT, LOAD_WORKERS, LOAD_THREADS) as server:
        shoppers = log_in(base, reviewers)
        memory = MemorySampler(server.pid)
        time.sleep(4)
        streams_at = time.monotonic() - memory.started
        with ThreadPoolExecutor(STREAMS_CONNECTING) as pool:  # browsers connect side by side, not in a queue
            streams = list(pool.map(StreamWatcher, shoppers))
        time.sleep(4)  # every stream has its consumer assigned
        refused = [s.error for s in streams if s.error is not None]
        shoppers_file = home / "shoppers.json"
        shoppers_file.write_text(json.dumps([{"reviewer": s.reviewer, "cookie": s.cookie} for s in shoppers]))
        load_at = time.monotonic() - memory.started
        traffic = _locust(base, shoppers_file, rate, seconds, home)
        end_at = time.monotonic() - memory.started
        time.sleep(MEMORY_EVERY_S)
        ended = [s.error for s in streams if s.error is not None]
        heartbeats = [s.comments for s in streams]
        memory.stop()
        for s in streams:
            s.close()
    during = [(t, mib) for t, mib in memory.samples if load_at <= t <= end_at]
    slope = float(np.polyfit([t for t, _ in during], [m for _, m in during], 1)[0]) * 60
    return {
        "streams": len(streams),
        "streams_refused": len(refused),
        "streams_ended_early": len(ended) - len(refused),
        "stream_errors": sorted(set(ended))[:5],
        "heartbeats_min": min(heartbeats),
        "traffic": traffic,
        "errors": traffic["total"]["failures"] + len(ended),
        "memory": {
            "before_streams_mib": round(memory.at(0), 1),
            "start_mib": round(memory.at(load_at), 1),
            "end_mib": round(during[-1][1], 1),
            "peak_mib": round(max(m for _, m in memory.samples), 1),
            "slope_mib_per_min": round(slope, 2),
            "samples": memory.samples,
            "streams_at_s": streams_at,
            "load_at_s": load_at,
            "end_at_s": end_at,
        },
        "rate": rate,
        "seconds": seconds,
    }, shoppers


def _wrk(url: str, owners: Path, connections: int, seconds: int) -> dict[str, float]:
    script = Path(__file__).with_name("load") / "owners.lua"
    command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url, "--", str(owners)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    errors = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    return {
        "per_s": round(result["requests"] / (result["duration_us"] / 1e6)),
        "p50_ms": round(result["p50_us"] / 1000, 1),
        "p99_ms": round(result["p99_us"] / 1000, 1),
        "errors": errors,
        "requests": result["requests"],
    }


def api_against_anchor(settings: Settings, shoppers: list[Shopper], seconds: int, home: Path) -> dict[str, Any]:
    base = f"http://127.0.0.1:{PORT}"
    owners = home / "owners.tsv"
    runs: dict[str, dict[str, Any]] = {"api": {}, "anchor": {}}
    serving = with_stream_cap(settings, home, STREAM_MAX_OPEN_LOAD)
    with web(serving, home / "web-api.log", PORT, SERVE_WORKERS, SERVE_THREADS):
        owners.write_text("".join(f"{s.reviewer}\t{s.cookie}\n" for s in shoppers))
        body = shoppers[0].open(f"/api/v1/recommendations/{shoppers[0].reviewer}").read().decode()
        runs["api"] = _wrk_runs(base, owners, seconds)
    with constant(settings, home / "web-anchor.log", ANCHOR_PORT, SERVE_WORKERS, SERVE_THREADS, body):
        runs["anchor"] = _wrk_runs(f"http://127.0.0.1:{ANCHOR_PORT}", owners, seconds)
    return runs


def _wrk_runs(url: str, owners: Path, seconds: int) -> dict[str, dict[str, Any]]:
    """One unmeasured run first (a new worker's first requests import, connect and fill its
    document cache; the anchor's warm up alike), then 16 and 64 connections."""
    _wrk(url, owners, 16, WARM_UP_S)
    return {f"c{connections}": _wrk(url, owners, connections, seconds) for connections in (16, 64)}


def _plot(load: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    memory = load["memory"]
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.plot([t for t, _ in memory["samples"]], [m for _, m in memory["samples"]], marker=".", label="gunicorn RSS")
    ax.axvline(memory["streams_at_s"], color="grey", linestyle=":", label=f"{load['streams']} streams open")
    ax.axvspan(
        memory["load_at_s"],
        memory["end_at_s"],
        color="orange",
        alpha=0.15,
        label=f"load (asked {load['rate']:g} req/s)",
    )
    ax.set(xlabel="seconds", ylabel="MiB (master + workers)", title="web app memory under load")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    fig.savefig(RESULTS / "load.png", dpi=90)


def _machine_load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) at the end"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s of load and 5 s per wrk run")
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=int, default=None, help="of load (default 60, 10 with --quick)")
    parser.add_argument("--wrk-seconds", type=int, default=None, help="per wrk run (default 20, 5 with --quick)")
    args = parser.parse_args()
    seconds = args.seconds or (10 if args.quick else 60)
    wrk_seconds = args.wrk_seconds or (5 if args.quick else 20)
    if shutil.which("wrk") is None:
        sys.exit("bench_load needs wrk: apt-get install wrk")
    base = get_settings()
    services.up(base)
    home = logs_folder("load")

    settings = isolated_settings(base, "load")
    reviewers = seed(settings, items=PRODUCTS, users=args.streams)
    _publish(settings, reviewers)
    load, shoppers = load_test(settings, reviewers, args.rate, seconds, home)
    runs = api_against_anchor(settings, shoppers[:64], wrk_seconds, home)
    machine = _machine_load()
    _plot(load)

    traffic, memory = load["traffic"], load["memory"]
    print(
        f"load: {load['errors']} errors ({load['streams_refused']} streams refused, {load['streams_ended_early']} "
        f"ended early, {traffic['total']['failures']} failed requests), {traffic['achieved_per_s']:.0f} req/s of "
        f"{args.rate:g}, p50 {traffic['total']['p50_ms']:g} ms, p99 {traffic['total']['p99_ms']:g} ms, "
        f"memory {memory['start_mib']:.0f} -> {memory['end_mib']:.0f} MiB ({memory['slope_mib_per_min']:+.1f} MiB/min)"
    )
    print(
        Figure(
            f"load test: {load['errors']} errors, {traffic['achieved_per_s']:.0f} of {args.rate:g} req/s, "
            f"p99 {traffic['total']['p99_ms']:g} ms, memory {memory['slope_mib_per_min']:+.1f} MiB/min",
            "-",
            "-",
            "0 errors, bounded memory",
            load["errors"] == 0,
        ).line()
    )
    api_rows = []
    for connections in ("c16", "c64"):
        api, anchor = runs["api"][connections], runs["anchor"][connections]
        rate_ratio, p99_ratio = api["per_s"] / anchor["per_s"], api["p99_ms"] / anchor["p99_ms"]
        print(
            Figure(
                f"API {connections[1:]} connections: {api['per_s']} req/s, p99 {api['p99_ms']} ms",
                f"constant route: {anchor['per_s']} req/s, p99 {anchor['p99_ms']} ms",
                f"{rate_ratio:.2f}x req/s, {p99_ratio:.2f}x p99",
                "≥ 0.8x req/s" + (", p99 ≤ 1.5x" if connections == "c64" else ""),
                rate_ratio >= 0.8 and (connections != "c64" or p99_ratio <= 1.5),
            ).line()
        )
        print(
            f"GET /api/v1/recommendations/<id> {connections}: {api['per_s']} req/s, p50 {api['p50_ms']} ms, "
            f"p99 {api['p99_ms']} ms | constant route {anchor['per_s']} req/s, p99 {anchor['p99_ms']} ms "
            f"| {rate_ratio:.2f}x req/s, {p99_ratio:.2f}x p99"
        )
        api_rows.append(
            f"| {connections[1:]} | {api['per_s']:,} | {api['p50_ms']} | {api['p99_ms']} | {api['errors']} "
            f"| {anchor['per_s']:,} | {anchor['p50_ms']} | {anchor['p99_ms']} | {rate_ratio:.2f}x | {p99_ratio:.2f}x |"
        )
    summary = {
        "load": {**load, "memory": {k: v for k, v in memory.items() if k != "samples"}},
        "api": runs,
        "machine": machine,
        "memory_samples": memory["samples"],
    }
    (RESULTS / "load.json").write_text(json.dumps(summary, indent=2))

    open_to_end = load["streams"] - load["streams_refused"] - load["streams_ended_early"]
    route_rows = [
        f"| `{name}` | {r['requests']:,} | {r['failures']} | {r['p50_ms']:g} | {r['p99_ms']:g} |"
        for name, r in sorted(traffic["routes"].items())
    ]
    what = (
        f"{load['streams']} open streams + {args.rate:g} req/s for {seconds} s; wrk {wrk_seconds} s per run; {machine}"
    )
    lines = [
        provenance(what),
        "",
        "| load test | figure | goal |",
        "|---|---:|---|",
        f"| errors (failed requests + refused or broken streams) | {load['errors']} | 0 |",
        f"| streams open to the end / opened | {open_to_end} / {load['streams']} | all |",
        f"| requests/s achieved (asked {args.rate:g}) | {traffic['achieved_per_s']:.0f} | {args.rate:g} |",
        f"| p50 / p99 ms, all routes | {traffic['total']['p50_ms']:g} / {traffic['total']['p99_ms']:g} | reported |",
        f"| gunicorn RSS MiB: before streams / load start / end / peak | {memory['before_streams_mib']:,} / "
        f"{memory['start_mib']:,} / {memory['end_mib']:,} / {memory['peak_mib']:,} | bounded |",
        f"| RSS slope over the load, MiB/min | {memory['slope_mib_per_min']:+.2f} | no growth trend |",
        "",
        "| route | requests | failed | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|",
        *route_rows,
        "",
        "![memory under load](benchmarks/results/load.png)",
        "",
        f"`GET /api/v1/recommendations/<id>`, random owners' ids, `recsys serve` defaults ({SERVE_WORKERS} worker x "
        f"{SERVE_THREADS} threads); anchor: a bare Flask route answering the same body, same gunicorn settings:",
        "",
        "| connections | req/s | p50 ms | p99 ms | errors | anchor req/s | anchor p50 ms | anchor p99 ms "
        "| ratio req/s (goal ≥ 0.8x) | ratio p99 (goal ≤ 1.5x at 64) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        *api_rows,
    ]
    write_section("load", lines, "## Load (`benchmarks/bench_load.py`)")


if __name__ == "__main__":
    main()

"""Throughput of the synthetic data generator, anchored to the naive way measured in the same run.

The anchor is a plain-Python loop that builds each review as a dict, `json.dumps` it and writes it to
gzip at the same compression level: what one would write without the generator's vectorisation. The
ratio between the two is the figure that survives a busy or slower machine.

    python benchmarks/bench_generate.py --reviews 1000000
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import random
import resource
import tempfile
import time
from pathlib import Path

from recsys_datagen import generate


def naive(path: Path, reviews: int, seed: int) -> None:
    """The same number of review lines, one dict and one `json.dumps` per line."""
    rnd = random.Random(seed)
    users = [f"A{rnd.getrandbits(64):013X}"[:14] for _ in range(max(1, reviews // 15))]
    items = [f"B{rnd.getrandbits(40):09X}"[:10] for _ in range(max(1, reviews // 30))]
    first = dt.date(2000, 1, 1).toordinal()
    with gzip.open(path, "wt", compresslevel=1, encoding="utf-8") as out:
        for _ in range(reviews):
            day = dt.date.fromordinal(first + rnd.randrange(6_800))
            review: dict[str, object] = {
                "overall": float(rnd.choice((1, 2, 3, 4, 5, 5, 5, 5, 5, 4))),
                "verified": rnd.random() < 0.9,
                "reviewTime": f"{day.month:02d} {day.day}, {day.year}",
                "reviewerID": rnd.choice(users),
                "asin": rnd.choice(items),
                "style": {"Size:": rnd.choice((" Small", " Medium", " Large"))},
                "reviewerName": rnd.choice(("Mary K.", "John B.", "Amazon Customer")),
                "reviewText": rnd.choice(("Works great. Would buy again.", "Cheaply made.", "It is okay.")),
                "summary": rnd.choice(("Five Stars", "One Star", "Okay")),
                "unixReviewTime": (day.toordinal() - dt.date(1970, 1, 1).toordinal()) * 86_400,
            }
            if rnd.random() < 0.15:
                review["vote"] = str(rnd.randrange(2, 100))
            out.write(json.dumps(review) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reviews", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, help="where to write (default: a temporary directory, removed after)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_generate_") as tmp:
        out = args.out or Path(tmp)
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        wall, cpu = time.perf_counter(), time.process_time()
        report = generate(out / "synthetic", args.reviews, seed=args.seed)
        gen_s, gen_cpu = time.perf_counter() - wall, time.process_time() - cpu
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the anchor runs
        size = sum(p.stat().st_size for p in report.review_files + report.meta_files) / 2**20

        wall, cpu = time.perf_counter(), time.process_time()
        naive(out / "naive.json.gz", args.reviews, args.seed)
        naive_s, naive_cpu = time.perf_counter() - wall, time.process_time() - cpu

    millions = args.reviews / 1e6
    print(
        f"generator {millions:.1f}M reviews in {gen_s:.1f} s ({args.reviews / gen_s:,.0f} rev/s), "
        f"naive json.dumps loop {naive_s:.1f} s -> {naive_s / gen_s:.1f}x faster; "
        f"peak RSS {peak_rss:.0f} MiB (at start {rss_before:.0f} MiB)"
    )
    print(
        f"  cpu time: generator {gen_cpu:.1f} s, naive {naive_cpu:.1f} s; "
        f"{report.users:,} users, {report.items:,} items, {report.duplicate_lines:,} duplicate lines, "
        f"{size:.0f} MiB written; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus"
    )


if __name__ == "__main__":
    main()

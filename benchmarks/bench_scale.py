"""The whole graph at growing sizes: time per stage, peak memory per process, the growth exponent,
and the blocked top-k against a bare numpy blocked top-k on the same factors (its anchor).

    python -m benchmarks.bench_scale --reviews 100000 1000000 5000000

Each size is generated with the ``amazon-5core`` shape into a folder and database of its own,
and runs in a process of its own; mongod's peak is reset before it (``reset_mongod_peak``), so its
peak is the most it held during that size (counted from what it already held: its allocator
keeps some memory of the smaller sizes before). Writes ``benchmarks/results/scale.json``,
``scale.png`` and the scale table of BENCHMARKS.md (between its markers). A size that fails is
a row of the table, with the stage it failed in; the sizes that ran are still reported, and the
exponent is fitted on them. A size that an earlier benchmark of the same suite run measured (the
model benchmark runs one size, ``measure_size``, in a process of its own, and with
``--also-scale-sizes`` smaller ones after it in the same process, *warm*) is taken from its result
file, not run again.

The scoring stage and its anchor are timed on the same seeded subset of reviewers (at most
``TOP_K_REVIEWERS``): the anchor is single-threaded numpy, and at 5M reviews its full run would
take longer than the whole graph. The ratio is per reviewer either way.

The gate is set to warn instead of blocking (a held-out minimum no run reaches), so every
stage runs whatever the model's quality: this measures cost; quality is the evaluation's job.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmarks.report import RESULTS, SUITE_RUN_KEY, Figure, provenance, suite_run, use_environment, write_section
from recsys_core.settings import PROJECT_ROOT, Settings, get_settings

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from recsys_assets.model.handles import ModelHandle
    from recsys_assets.model.training import TrainedModel

CATEGORY = "Synthetic_Electronics"
K = 5
TOP_K_REVIEWERS = 50_000
END_TO_END_GOAL_S = 30 * 60  # 5M reviews, ingest to published top 5 (issue 8)
PEAK_TOTAL_GOAL_MIB = 16 * 1024
PROCESSES = ("driver JVM", "Python", "mongod")
# The gate warns, so every stage runs; the sample is not capped, so the stages see every review (this
# benchmark is what the default cap, review_sample's MAX_REVIEWS, is chosen from). The validation search is
# off: it is a fixed time budget, not a cost that grows with the data, and it would bend the curve.
MODEL_OPS = {
    "model_evaluation": {"config": {"min_heldout_ratings": 10**12}},
    "review_sample": {"config": {"max_reviews": None}},
    "als_model": {"config": {"tuning": {"budget_s": 0}}},
}
STAGES = {
    "ingest": ("raw_reviews", "raw_products"),
    "sample + features": ("review_sample", "training_ratings"),
    "als_model": ("als_model",),
    "model_evaluation": ("model_evaluation",),
    "publish": ("user_recommendations", "popular_products", "item_factors"),
}


def _peak_mib(pid: int | None) -> float:
    """The peak resident memory of a process (VmHWM), in MiB."""
    if pid is None:
        return float("nan")
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_mongod_peak(settings: Settings) -> None:
    """Start the project's mongod's peak resident memory (VmHWM) again from its current size; a mongod of the
    user's own is not measured.

    Writing 5 to ``clear_refs`` does that (Linux 4.0+), so one mongod serves every size, where
    restarting it and Kafka for each size cost about 20 s a size.
    """
    from recsys_core.services.mongod import MongoService

    if (pid := MongoService(settings).process.pid) is not None:
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def _numpy_top_k(users: np.ndarray, items: np.ndarray, offset: np.ndarray, rated: list[np.ndarray]) -> float:
    """Seconds for the anchor: blocked matmul, rated items masked, argpartition, the k sorted."""
    started = time.perf_counter()
    block = max(1, (64 * 1024 * 1024) // (8 * items.shape[0]))
    for lo in range(0, users.shape[0], block):
        scores = users[lo : lo + block] @ items.T + offset
        for row, seen in enumerate(rated[lo : lo + block]):
            scores[row, seen] = -np.inf
        best = np.argpartition(-scores, K - 1, axis=1)[:, :K]
        np.take_along_axis(best, np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1), axis=1)
    return time.perf_counter() - started


def numpy_top_k_anchor(model: TrainedModel, ratings: DataFrame, reviewers: DataFrame) -> float:
    """Seconds for ``_numpy_top_k`` on ``model``'s ranking factors of ``reviewers``, every item of theirs in
    ``ratings`` excluded: what ``Ranker.recommend`` computes. The factors are collected first, untimed."""
    from recsys_assets.model.ranking import ItemFactorTable

    table = ItemFactorTable.collect(model.ranker.item_factors())
    position = {asin: i for i, asin in enumerate(table.asins)}
    users = model.ranker.user_factors().join(reviewers, "reviewerID").orderBy("reviewerID").collect()
    seen: dict[str, list[int]] = {}
    for row in ratings.join(reviewers, "reviewerID").select("reviewerID", "asin").collect():
        seen.setdefault(row["reviewerID"], []).append(position.get(row["asin"], -1))
    vectors = np.asarray([row["vector"] for row in users], dtype=np.float64)
    rated = [np.asarray([i for i in seen.get(row["reviewerID"], []) if i >= 0], dtype=np.int64) for row in users]
    return _numpy_top_k(vectors, table.vectors, table.offset, rated)


def use_size(reviews: int) -> Settings:
    """This process's settings switched to one size's folder, database and model store (``size_environment``)."""
    return use_environment(size_environment(reviews))


def size_environment(reviews: int) -> dict[str, str]:
    """The data folder, database and model store of one size: the environment its run reads its settings from."""
    bench = get_settings().state_dir / "bench" / f"scale-{reviews}"
    return {
        "RECSYS_DATA_DIR": str(bench / "data"),
        "RECSYS_MONGO_DB": f"bench_scale_{reviews}",
        "RECSYS_MODEL_STORE_URI": str(bench / "model"),
    }


def size_result_path(reviews: int) -> Path:
    return RESULTS / f"scale-{reviews}.json"


@dataclass(frozen=True)
class SizeRun:
    """One size's graph run, measured: the scale table's row, each asset's materialisation metadata, and the
    model it published, loaded, with the handle it was loaded from."""

    result: dict[str, Any]
    metadata: dict[str, dict[str, Any]]
    handle: ModelHandle
    model: TrainedModel


def measure_size(reviews: int, after_another_size: bool = False) -> SizeRun:
    """One size in this process, its settings in the environment (``use_size``) and mongod's peak reset:
    generate, run the graph, time the scoring stage and its anchor, write the result file. The Spark session
    stays up, for the caller's own use. A failed graph writes the size's failure instead, and exits.

    ``after_another_size``: this process ran another size's graph before, so the JVM is warm (the total
    leaves out its start) and the driver's and Python's peaks would be the earlier run's: the row says
    so (``warm``) and records no peaks.
    """
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from recsys_assets.definitions import build_resources
    from recsys_assets.model.handles import HANDLE, ModelHandle
    from recsys_assets.model.training import load_model
    from recsys_cli.pipeline import run_pipeline
    from recsys_core.connections import project_database
    from recsys_core.services.mongod import MongoService
    from recsys_datagen import generate

    settings = get_settings()
    assert settings.data_dir is not None
    if not any(settings.data_dir.glob("*.json.gz")):
        generate(settings.data_dir, reviews, categories=(CATEGORY,), seed=42, shape="amazon-5core")
    db = project_database(settings)
    db.client.drop_database(db.name)
    out = size_result_path(reviews)

    started = time.perf_counter()
    outcomes = run_pipeline(settings, model_ops=MODEL_OPS)
    total = time.perf_counter() - started
    if not all(o.success for o in outcomes):
        errors = [e for o in outcomes for e in o.errors]
        failure = f"after {total:.0f} s: {errors[0] if errors else 'no error was recorded'}"
        out.write_text(json.dumps({"reviews": reviews, "failed": failure}))
        raise SystemExit(f"the graph failed at {reviews:,} reviews: {errors}")
    metadata = {asset: meta for o in outcomes for asset, meta in o.metadata.items()}
    stages = {name: sum(metadata[a]["duration_s"] for a in assets) for name, assets in STAGES.items()}
    spark = SparkSession.getActiveSession()
    assert spark is not None
    jvm = spark.sparkContext._jvm
    peaks = (  # the graph's peaks, before the timing below collects anything
        None
        if after_another_size
        else {
            "driver JVM": round(_peak_mib(jvm.ProcessHandle.current().pid() if jvm else None)),
            "Python": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "mongod": round(_peak_mib(MongoService(settings).process.pid)),
        }
    )

    handle = ModelHandle.model_validate(metadata["als_model"][HANDLE])
    model = load_model(build_resources(settings)["model_store"], spark, handle.uri)
    ratings = spark.read.parquet(handle.ratings.uri).select("reviewerID", "asin", "split").cache()
    reviewers = (
        ratings.where(F.col("split") == "train")
        .select("reviewerID")
        .distinct()
        .orderBy(F.xxhash64("reviewerID"), "reviewerID")
        .limit(TOP_K_REVIEWERS)
        .cache()
    )
    reviewers.count()
    scoring_started = time.perf_counter()
    listed = model.ranker.recommend(reviewers, ratings, K).count()
    ours = time.perf_counter() - scoring_started

    anchor = numpy_top_k_anchor(model, ratings, reviewers)
    ratings.unpersist()
    reviewers.unpersist()

    result = {
        "reviews": reviews,
        "reviewers": model.ids.users.count(),
        "items": model.ids.items.count(),
        "total_s": round(total, 1),
        "stages_s": {name: round(seconds, 1) for name, seconds in stages.items()},
        "top_k_users": listed // K,
        "top_k_s": round(ours, 4),
        "numpy_top_k_s": round(anchor, 4),  # a few ms at the smallest sizes: 2 decimals rounded it to 0
        "peak_mib": peaks,
        "warm": after_another_size,
        SUITE_RUN_KEY: suite_run(),
    }
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return SizeRun(result, metadata, handle, model)


def measured_earlier_in_this_suite_run(reviews: int) -> dict[str, Any] | None:
    """The size's result if an earlier benchmark of the running suite measured it (the model benchmark runs
    the same graph on the same data with the same settings, in a process of its own), else None."""
    path = size_result_path(reviews)
    if suite_run() is None or not path.exists():
        return None
    result: dict[str, Any] = json.loads(path.read_text())
    return result if result.get(SUITE_RUN_KEY) == suite_run() else None  # a failure records no suite run


def _failure(result: dict[str, Any]) -> str:
    """A failed size's error on one line, short enough for a table cell."""
    return " ".join(result["failed"].replace("|", "/").split())[:300]


def _write_report(results: list[dict[str, Any]], exponent: float | None) -> None:
    columns = 10 + len(STAGES)
    rows = [
        "| reviews | reviewers | items | total s | "
        + " | ".join(f"{s} s" for s in STAGES)
        + " | peak driver JVM MiB | peak Python MiB | peak mongod MiB | sum of peaks MiB"
        + " | top-k reviewers | top-k s | numpy anchor s | ratio |",
        "|" + "---:|" * (columns + 2),
    ]
    for r in results:
        if "failed" in r:
            rows.append(f"| {r['reviews']:,} | **failed** {_failure(r)} |" + " |" * columns)
            continue
        ratio = _top_k_ratio(r)
        peaks = r["peak_mib"]
        peak_cells = [f"{peaks[p]:,}" for p in PROCESSES] + [f"{sum(peaks.values()):,}"] if peaks else ["—"] * 4
        rows.append(
            f"| {r['reviews']:,}{' (warm)' if r.get('warm') else ''} | {r['reviewers']:,} | {r['items']:,} | "
            f"{r['total_s']} | "
            + " | ".join([*(str(r["stages_s"][s]) for s in STAGES), *peak_cells])
            + f" | {r['top_k_users']:,} | {r['top_k_s']} | {r['numpy_top_k_s']} | {ratio:.1f}x |"
        )
    measured = [r for r in results if "failed" not in r]
    warm = [f"{r['reviews']:,}" for r in measured if r.get("warm")]
    sizes = ", ".join(f"{r['reviews']:,}" for r in measured)
    fit = (
        f"Growth exponent of total time against reviews, over {sizes}: **{exponent:.2f}** (goal ≤ 1.1)."
        if exponent is not None
        else f"No growth exponent: it needs two measured sizes (measured: {sizes or 'none'})."
    )
    lines = [
        provenance("`amazon-5core` shape, one category, `recsys run` defaults"),
        "",
        *rows,
        "",
        fit,
        *(
            [
                "",
                f"Warm: {', '.join(warm)} ran after a larger size's graph in the same process (`--quick`: in the "
                "model benchmark's), so its total leaves out the JVM's start, which the larger size paid: that "
                "overstates the exponent. Its driver and Python peaks would be the larger run's, so none is shown.",
            ]
            if warm
            else []
        ),
        "",
        "![scale](benchmarks/results/scale.png)",
    ]
    write_section("scale", lines, "## Scale (`benchmarks/bench_scale.py`)")


def _plot(results: list[dict[str, Any]], exponent: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    sizes = np.asarray([r["reviews"] for r in results], dtype=np.float64)
    fig = Figure(figsize=(12, 4.2))
    ax_time, ax_memory = fig.subplots(1, 2)
    ax_time.plot(sizes, [r["total_s"] for r in results], "o-", linewidth=2, label="total")
    for stage in STAGES:
        ax_time.plot(sizes, [r["stages_s"][stage] for r in results], ".--", label=stage)
    ax_time.plot(sizes, [r["numpy_top_k_s"] for r in results], "k:", label="numpy top-k anchor")
    ax_time.set(xscale="log", yscale="log", xlabel="reviews", ylabel="seconds")
    ax_time.set_title(f"time (total grows as reviews^{exponent:.2f})" if exponent else "time")
    ax_time.legend(fontsize="small")
    with_peaks = [r for r in results if r["peak_mib"]]
    for process in PROCESSES:
        peaks = [r["peak_mib"][process] for r in with_peaks]
        ax_memory.plot([r["reviews"] for r in with_peaks], peaks, "o-", label=process)
    ax_memory.set(xscale="log", xlabel="reviews", ylabel="peak resident MiB", title="peak memory per process")
    ax_memory.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(RESULTS / "scale.png", dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # internal: run one size, here
    args = parser.parse_args()
    if args.one:
        measure_size(args.reviews[0])
        return

    from recsys_core import services

    settings = get_settings()
    RESULTS.mkdir(parents=True, exist_ok=True)
    results = []
    for reviews in args.reviews:
        if (earlier := measured_earlier_in_this_suite_run(reviews)) is not None:
            print(f"{reviews:,} reviews: measured by an earlier benchmark of this suite run (same data and settings)")
            results.append(earlier)
            continue
        services.up(settings)
        reset_mongod_peak(settings)
        out = size_result_path(reviews)
        out.unlink(missing_ok=True)
        command = [sys.executable, "-m", "benchmarks.bench_scale", "--reviews", str(reviews), "--one"]
        env = {**os.environ, **size_environment(reviews)}
        returncode = subprocess.run(command, env=env, check=False, cwd=PROJECT_ROOT).returncode
        if returncode != 0 and not out.exists():
            out.write_text(json.dumps({"reviews": reviews, "failed": f"(exit {returncode}): see its output"}))
        results.append(json.loads(out.read_text()))
    measured = [r for r in results if "failed" not in r]
    exponent = None
    if len(measured) > 1:
        exponent = float(
            np.polyfit(np.log([r["reviews"] for r in measured]), np.log([r["total_s"] for r in measured]), 1)[0]
        )
    (RESULTS / "scale.json").write_text(json.dumps({"exponent": exponent, "sizes": results}, indent=2))
    if measured:
        _plot(measured, exponent)
    _write_report(results, exponent)
    for r in results:
        _print_figures(r)
    if exponent is not None:
        sizes = ", ".join(f"{r['reviews']:,}" for r in measured)
        print(
            Figure(
                f"growth exponent of total time over {sizes} reviews: {exponent:.2f}",
                "-",
                "-",
                "≤ 1.1",
                exponent <= 1.1,
            ).line()
        )
    if len(measured) < len(results):
        raise SystemExit(f"{len(results) - len(measured)} of {len(results)} sizes failed; see the scale table")


def _top_k_ratio(r: dict[str, Any]) -> float:
    """Our top-k's time over the numpy anchor's; NaN (a missed goal) if the anchor was too quick to time."""
    return float(r["top_k_s"] / r["numpy_top_k_s"]) if r["numpy_top_k_s"] else float("nan")


def _print_figures(r: dict[str, Any]) -> None:
    """One size's result lines: the scoring stage against its anchor, and from 5M up issue 8's end-to-end goal."""
    if "failed" in r:
        print(Figure(f"{r['reviews']:,} reviews: **failed** {_failure(r)}", "-", "-", "runs", False).line())
        return
    ratio = _top_k_ratio(r)
    print(
        Figure(
            f"{r['reviews']:,} reviews: blocked top-k of {r['top_k_users']:,} reviewers {r['top_k_s']:.2f} s",
            f"numpy blocked top-k on the same factors: {r['numpy_top_k_s']:.4f} s",
            f"{ratio:.1f}x",
            "≤ 3x",
            ratio <= 3,
        ).line()
    )
    if r["reviews"] >= 5_000_000 and r["peak_mib"]:
        peak = sum(r["peak_mib"].values())
        print(
            Figure(
                f"{r['reviews']:,} reviews, ingest to published top 5: {r['total_s'] / 60:.1f} min, "
                f"sum of peak memory {peak / 1024:.1f} GiB",
                "-",
                "-",
                "< 30 min, < 16 GiB",
                r["total_s"] < END_TO_END_GOAL_S and peak < PEAK_TOTAL_GOAL_MIB,
            ).line()
        )


if __name__ == "__main__":
    main()

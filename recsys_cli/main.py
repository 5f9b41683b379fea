"""Argument parsing for ``recsys``; each subcommand is a small function."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recsys_core import services
from recsys_core.connections import project_database
from recsys_core.locks import LockHeld
from recsys_core.settings import PROJECT_ROOT, Settings, get_settings
from recsys_datagen.shape import SHAPES

if TYPE_CHECKING:
    from recsys_assets.model.report import EvaluationReport
    from recsys_cli.pipeline import StepOutcome

DEMO_REVIEWS = 30_000
DEMO_ACCOUNTS = 3
DEMO_SAMPLE_FRACTION = 0.8
"""The demo draws a real sample (the default only caps big data), so its sample proof has something to prove."""


def _services(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "up":
        statuses = services.up(settings, spark=args.spark, updater=not args.no_updater)
    elif args.action == "down":
        stopped = services.down(settings)
        print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
        statuses = services.status(settings)
    else:
        statuses = services.status(settings)
    for status in statuses:
        print(status.line())
    if args.action == "up" and args.spark:
        print(f"run on it with RECSYS_SPARK_MASTER=spark://127.0.0.1:{settings.spark_cluster_port}")
    return 0 if args.action == "down" or all(s.reachable for s in statuses) else 1


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from recsys_datagen import generate

    out = Path(args.out) if args.out else settings.effective_data_dir
    report = generate(out, args.reviews, seed=args.seed, progress=True, shape=args.shape)
    print(f"wrote {report.lines:,} review lines ({report.duplicate_lines:,} exact duplicates), "
          f"{report.users:,} users, {report.items:,} items to {out}")  # fmt: skip
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from recsys_cli.pipeline import run_pipeline

    model_ops = _model_ops(args)
    services.up(settings)
    outcomes = run_pipeline(settings, args.category, model_ops)
    for outcome in outcomes:
        where = f"[{outcome.partition}]" if outcome.partition else ""
        print(f"{'ok  ' if outcome.success else 'FAIL'} {outcome.job}{where}")
        for cause in outcome.errors:
            print(f"     error: {cause}")
        for asset_key, metadata in outcome.metadata.items():
            shown = ", ".join(f"{k}={v}" for k, v in metadata.items() if _is_summary_value(k, v))
            print(f"     {asset_key}: {shown}")
    report = _evaluation_report(outcomes)
    if report is not None:
        print("\n" + report.table())
    if args.json:
        if report is None:
            print(
                f"recsys: no evaluation to write to {args.json}: model_evaluation did not materialise", file=sys.stderr
            )
            return 1
        _write_json(Path(args.json), report.model_dump(mode="json"))
        print(f"evaluation written to {args.json}")
    return 0 if all(o.success for o in outcomes) else 1


def _model_ops(args: argparse.Namespace) -> dict[str, Any]:
    """The model job's run config from the options: the sample, the split and the search's budget.

    Checks them before anything runs."""
    from recsys_assets.model.features import InvalidTestPairs, SplitMethod, read_test_pairs

    try:
        split = SplitMethod(args.split) if args.split else None
    except ValueError:
        raise SystemExit(f"recsys: --split must be one of {', '.join(m.value for m in SplitMethod)}") from None
    sample: dict[str, Any] = {}
    if args.sample_fraction is not None:
        sample["fraction"] = args.sample_fraction
    if args.max_reviews is not None:
        sample["max_reviews"] = args.max_reviews or None
    if args.json and not Path(args.json).resolve().parent.is_dir():
        raise SystemExit(f"recsys: --json {args.json}: no such folder {Path(args.json).resolve().parent}")
    ops: dict[str, Any] = {}
    if split == SplitMethod.FIXED:
        if not args.test_pairs:
            raise SystemExit("recsys: --split fixed needs --test-pairs FILE")
        if sample:
            raise SystemExit(
                "recsys: --split fixed uses every review (a sample would drop test pairs): "
                "drop --sample-fraction and --max-reviews"
            )
        path = Path(args.test_pairs).resolve()
        try:
            pairs = read_test_pairs(path)
        except InvalidTestPairs as exc:
            raise SystemExit(f"recsys: {exc}") from None
        print(f"fixed split: {len(pairs):,} distinct test pairs from {path}; the sample keeps every review")
        sample = {"fraction": 1.0, "max_reviews": None}
        ops["training_ratings"] = {"config": {"split": split.name, "test_pairs": str(path)}}  # Dagster enums go by name
    elif args.test_pairs:
        raise SystemExit("recsys: --test-pairs needs --split fixed")
    elif split is not None:
        ops["training_ratings"] = {"config": {"split": split.name}}
    if sample:
        ops["review_sample"] = {"config": sample}
    if args.tuning_budget is not None:
        if args.tuning_budget < 0:
            raise SystemExit("recsys: --tuning-budget must be 0 (no search) or more seconds")
        ops["als_model"] = {"config": {"tuning": {"budget_s": args.tuning_budget}}}
    return ops


def _evaluation_report(outcomes: list[StepOutcome]) -> EvaluationReport | None:
    """The report ``model_evaluation`` published in this run, or None when it did not materialise."""
    from recsys_assets.model.report import REPORT_KEY, EvaluationReport

    for outcome in outcomes:
        published = outcome.metadata.get("model_evaluation", {}).get(REPORT_KEY)
        if published is not None:
            return EvaluationReport.model_validate(published)
    return None


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write beside ``path`` and rename into place, so no reader sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def _is_summary_value(key: str, value: object) -> bool:
    """Counts, names and paths, and the gate's decision in full, but not each metric of each baseline
    (those are in the UI and the plots)."""
    if key == "gate_decision":
        return True
    shown = "/" not in key or key == "dagster/row_count"
    return shown and isinstance(value, int | float | str) and len(str(value)) < 100


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    """The main job end to end on embedded defaults: services, generated data, the whole graph."""
    print("1/4 starting MongoDB, Kafka and the online updater")
    for status in services.up(settings, updater=True):
        print("    " + status.line())
    data_dir = settings.effective_data_dir
    if settings.data_dir is None and not any(data_dir.glob("*.json*")):
        print(f"2/4 generating {args.reviews:,} synthetic reviews into {data_dir}")
        args.out, args.seed, args.shape = None, 42, "default"
        _generate(args, settings)
    else:
        print(f"2/4 using the data in {data_dir}")
    print(f"3/4 materialising the asset graph on a sample of {args.sample_fraction:.0%} of the reviews")
    exit_code = _run(args, settings)
    if exit_code != 0 or args.no_serve:
        return exit_code
    print("demo logins, each linked to a reviewer from the data (new passwords on every run):")
    for email, password, reviewer in _demo_logins(settings):
        print(f"    {email}  {password}  -> {reviewer}")
    print("4/4 serving the web app: register or log in, open a product, rate it, and watch your top 5 change live")
    return _serve(args, settings)


def _demo_logins(settings: Settings) -> list[tuple[str, str, str]]:
    from recsys_web import accounts

    db = project_database(settings)
    try:
        accounts.ensure_schema(db)
        return accounts.demo_logins(db, DEMO_ACCOUNTS, operator="recsys demo")
    finally:
        db.client.close()


def _users(args: argparse.Namespace, settings: Settings) -> int:
    """The operator's account changes: link an account to a reviewer from the data, grant or revoke a role."""
    from recsys_web import accounts, inputs

    services.up(settings)
    db = project_database(settings)
    try:
        accounts.ensure_schema(db)
        email = inputs.email(args.email)
        if args.action == "link":
            reviewer = inputs.reviewer_id(args.value)
            accounts.link(db, email, reviewer, operator=getpass.getuser())
            print(f"{email} now sees reviewer {reviewer}; its open sessions have ended")
        else:
            accounts.set_role(db, email, args.value, granted=args.action == "grant", operator=getpass.getuser())
            print(f"{email}: {args.value} {'granted' if args.action == 'grant' else 'revoked'}")
    except (accounts.AccountError, inputs.InvalidInput) as exc:
        print(f"recsys users: {exc.description if isinstance(exc, inputs.InvalidInput) else exc}", file=sys.stderr)
        return 1
    finally:
        db.client.close()
    return 0


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from recsys_web.server import cookie_setting_problem, serve

    problem = cookie_setting_problem(settings, args.host)
    if problem is not None:
        print(f"recsys: {problem}", file=sys.stderr)
        return 2
    services.up(settings, updater=True)
    print(f"recsys web app on http://{args.host}:{args.port}  (Ctrl-C stops it)")
    serve(host=args.host, port=args.port, workers=args.workers, threads=args.threads)
    return 0


def _updater(args: argparse.Namespace, settings: Settings) -> int:
    """The online updater in the foreground, until SIGTERM or Ctrl-C (``services up`` runs it detached)."""
    from recsys_online.updater import Updater

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    Updater(settings, ready_file=Path(args.ready_file) if args.ready_file else None).run(stop)
    return 0


def _ui(args: argparse.Namespace, settings: Settings) -> int:
    """The Dagster UI and daemon on the instance ``recsys run`` uses, with the services its runs need.

    The webserver, the daemon and their runs get this process's settings as ``RECSYS_*``
    variables (folders absolute), so they use exactly the data folder, database and model store
    that ``recsys run`` uses.
    """
    from recsys_cli.pipeline import use_project_instance

    services.up(settings)
    use_project_instance(settings)
    workspace = str(PROJECT_ROOT / "workspace.yaml")
    # This interpreter's dagster: `.venv/bin/recsys ui` works without the venv on PATH.
    command = [sys.executable, "-m", "dagster", "dev", "-w", workspace, "-h", args.host, "-p", str(args.port)]
    return subprocess.call(command, env={**os.environ, **settings.environment()})


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    """The benchmark suite (``benchmarks/suite.py``), run from the checkout: ``benchmarks`` is not an installed package.

    Each benchmark reads the settings from the environment, as this process does."""
    command = [sys.executable, "-m", "benchmarks.suite", *(["--quick"] if args.quick else [])]
    return subprocess.call(command, cwd=PROJECT_ROOT)


def _add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=16, help="per worker; each open live stream holds one")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recsys", description="recsys: real-time product recommendations.")
    sub = parser.add_subparsers(dest="command", required=True)

    svc = sub.add_parser("services", help="start, stop or report the local MongoDB and Kafka")
    svc.add_argument("action", choices=["up", "down", "status"])
    svc.add_argument("--spark", action="store_true", help="also a local Spark standalone cluster (master + workers)")
    svc.add_argument("--no-updater", action="store_true", help="up: leave the online updater stopped")
    svc.set_defaults(func=_services)

    gen = sub.add_parser("generate", help="write synthetic review and meta files in the Amazon 2018 format")
    gen.add_argument("--reviews", type=int, default=DEMO_REVIEWS)
    gen.add_argument("--out", help="folder (default: the configured data folder)")
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument(
        "--shape",
        choices=list(SHAPES),
        default="default",
        help="how reviews spread: amazon-5core has reviewers ~11%% and products ~2.5%% of the reviews",
    )
    gen.set_defaults(func=_generate)

    run = sub.add_parser("run", help="materialise the asset graph on the configured data folder")
    run.add_argument("--category", action="append", help="only this category (repeatable)")
    run.add_argument("--split", help="leave_k_out (default), random, time, or fixed (with --test-pairs)")
    run.add_argument(
        "--test-pairs",
        metavar="FILE",
        help="the fixed split's test (reviewerID, asin) pairs: JSON lines, or TSV of two columns "
        "(optional header); the rest train, and the sample keeps every review",
    )
    run.add_argument("--json", metavar="FILE", help="write the evaluation table (every method, metric and count)")
    run.add_argument("--sample-fraction", type=float, help="share of each (category, rating) stratum to keep")
    run.add_argument("--max-reviews", type=int, help="sample size cap (default 1,000,000; 0 = no cap)")
    run.add_argument(
        "--tuning-budget",
        type=float,
        metavar="SECONDS",
        help="wall-clock budget of the validation search for the ALS heads (default 600; 0 = the configured values)",
    )
    run.set_defaults(func=_run)

    demo = sub.add_parser("demo", help="everything end to end on generated data")
    demo.add_argument("--reviews", type=int, default=DEMO_REVIEWS)
    demo.add_argument("--no-serve", action="store_true", help="stop after the pipeline")
    demo.add_argument(
        "--sample-fraction", type=float, default=DEMO_SAMPLE_FRACTION, help="share of the reviews to sample"
    )
    _add_server_arguments(demo)
    demo.set_defaults(
        func=_demo, category=None, split=None, test_pairs=None, max_reviews=None, json=None, tuning_budget=None
    )

    serve = sub.add_parser("serve", help="the web app under gunicorn (gthread workers)")
    _add_server_arguments(serve)
    serve.set_defaults(func=_serve)

    upd = sub.add_parser("updater", help="the online updater in the foreground (services up runs it detached)")
    upd.add_argument("--ready-file", help="written once the updater has joined its consumer group")
    upd.set_defaults(func=_updater)

    users = sub.add_parser("users", help="the operator's account changes (link a reviewer, grant a role)")
    users_sub = users.add_subparsers(dest="action", required=True)
    link = users_sub.add_parser("link", help="let the account see a reviewer from the data as its own")
    link.add_argument("email")
    link.add_argument("value", metavar="REVIEWER_ID")
    for action in ("grant", "revoke"):
        role = users_sub.add_parser(action, help=f"{action} a role (analyst: read any reviewer's list, audited)")
        role.add_argument("email")
        role.add_argument("value", metavar="ROLE", choices=["analyst"])
    users.set_defaults(func=_users)

    bench = sub.add_parser("bench", help="every benchmark against its anchor; writes BENCHMARKS.md")
    bench.add_argument("--quick", action="store_true", help="small sizes: the whole suite in under 10 minutes")
    bench.set_defaults(func=_bench)

    ui = sub.add_parser("ui", help="the Dagster UI on the project's instance")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=_ui)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args, get_settings()))
    except (services.ServiceError, LockHeld) as exc:
        print(f"recsys: {exc}", file=sys.stderr)
        return 2

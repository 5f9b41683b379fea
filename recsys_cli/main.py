"""Argument parsing for ``recsys``; each subcommand is a small function."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from recsys_core import services
from recsys_core.connections import project_database
from recsys_core.locks import LockHeld
from recsys_core.settings import PROJECT_ROOT, Settings, get_settings
from recsys_datagen.shape import SHAPES

DEMO_REVIEWS = 30_000
DEMO_ACCOUNTS = 3


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

    services.up(settings)
    outcomes = run_pipeline(settings, args.category)
    for outcome in outcomes:
        where = f"[{outcome.partition}]" if outcome.partition else ""
        print(f"{'ok  ' if outcome.success else 'FAIL'} {outcome.job}{where}")
        for cause in outcome.errors:
            print(f"     error: {cause}")
        for asset_key, metadata in outcome.metadata.items():
            shown = {k: v for k, v in metadata.items() if _is_summary_value(k, v)}
            print(f"     {asset_key}: {shown}")
    return 0 if all(o.success for o in outcomes) else 1


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
    print("3/4 materialising the asset graph")
    args.category = None
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
    run.set_defaults(func=_run)

    demo = sub.add_parser("demo", help="everything end to end on generated data")
    demo.add_argument("--reviews", type=int, default=DEMO_REVIEWS)
    demo.add_argument("--no-serve", action="store_true", help="stop after the pipeline")
    _add_server_arguments(demo)
    demo.set_defaults(func=_demo)

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

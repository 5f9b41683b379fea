"""``recsys_web.server.serve``: the app under gunicorn's gthread workers, started from Python."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.web.conftest import ARTIFACTS, get_json, unused_port


def test_serve_runs_gunicorn_gthread(run_server) -> None:
    port = unused_port()
    base = run_server(["-c", f"from recsys_web.server import serve; serve(port={port}, threads=4)"], port)
    status, health = get_json(f"{base}/healthz")
    assert status == 200
    assert health["mongo"] == health["kafka"] == "up"
    with urllib.request.urlopen(f"{base}/auth/login", timeout=5) as page:  # noqa: S310 - a local http URL
        assert page.headers["Server"].startswith("gunicorn")
        assert b'name="csrf_token"' in page.read()
    assert "Using worker: gthread" in (ARTIFACTS / "server-test_serve_runs_gunicorn_gthread-0.log").read_text()


def test_the_web_app_imports_no_dagster() -> None:
    check = (
        "import sys, recsys_web.server; "
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] in {'dagster', 'pyspark'}); "
        "sys.exit(str(leaked) if leaked else 0)"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_a_deployment_config_in_the_instance_folder_overrides_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "config.py").write_text("STREAM_MAX_OPEN = 120\n")
    show = "from recsys_web import create_app; print(create_app().config['STREAM_MAX_OPEN'])"
    env = os.environ | {"RECSYS_STATE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "120"

"""``recsys_web.server.serve``: the app under gunicorn's gthread workers, started from Python."""

from __future__ import annotations

import urllib.request

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
    assert "Using worker: gthread" in (ARTIFACTS / f"gunicorn-{port}.log").read_text()

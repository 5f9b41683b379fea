"""Running the app under gunicorn, started from Python (``recsys serve``).

gthread workers: each request, and each open ``/stream``, gets a thread of a worker process,
so a long-lived event stream does not block other requests (up to ``threads`` per worker;
the app caps streams below that with STREAM_MAX_OPEN).
"""

from __future__ import annotations

import ipaddress
import signal
from types import FrameType
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from recsys_core.settings import Settings
from recsys_web import create_app


class GunicornApp(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's documented way to embed it: options in, the WSGI app from ``load()``."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # settings newer than the installed gunicorn are skipped
                self.cfg.set(key, value)

    def load(self) -> Flask:
        return self.application


def gunicorn_options(app: Flask, host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    def post_worker_init(worker: Any) -> None:
        # A graceful stop waits for open requests, and a stream never finishes on its own: on SIGTERM,
        # tell this worker's streams to end (recsys_web.stream), then stop as gunicorn would.
        stop = worker.handle_exit

        def end_streams_then_stop(signum: int, frame: FrameType | None) -> None:
            app.extensions["recsys"].streams.closing.set()
            stop(signum, frame)

        signal.signal(signal.SIGTERM, end_streams_then_stop)

    def worker_exit(_server: Any, _worker: Any) -> None:
        # Flush queued Kafka messages and close this worker's connections.
        app.extensions["recsys"].close()

    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        # Streams end at once on shutdown (post_worker_init); anything else gets 5 s, not 30.
        "graceful_timeout": 5,
        "post_worker_init": post_worker_init,
        "accesslog": "-",
        # gunicorn >= 25 would otherwise bind one control socket in $HOME, shared by every server.
        "control_socket_disable": True,
        "worker_exit": worker_exit,
    }


def cookie_setting_problem(settings: Settings, host: str) -> str | None:
    """Why the server must not start: session cookies without ``Secure`` are only for a server
    that nothing but this machine can reach."""
    if settings.web_cookie_secure or _is_loopback(host):
        return None
    return (
        f"RECSYS_WEB_COOKIE_SECURE=false is for plain-http localhost only, and {host} is not a loopback address "
        "(serve over HTTPS, or behind an HTTPS proxy, with Secure cookies)"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1, threads: int = 8) -> None:
    app = create_app()
    # Streams must not take every thread of a worker: keep two for pages (one if threads <= 2).
    app.config["STREAM_MAX_OPEN"] = min(app.config["STREAM_MAX_OPEN"], max(1, threads - 2))
    GunicornApp(app, gunicorn_options(app, host, port, workers, threads)).run()

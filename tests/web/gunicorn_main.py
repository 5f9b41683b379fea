"""Runs the app under the real gunicorn (gthread) for the browser test, with a test config:

python -m tests.web.gunicorn_main PORT '{"STREAM_HEARTBEAT_S": 0.5, ...}'
"""

from __future__ import annotations

import json
import sys

from recsys_web import create_app
from recsys_web.server import GunicornApp, gunicorn_options

if __name__ == "__main__":
    port, config = int(sys.argv[1]), json.loads(sys.argv[2])
    app = create_app(config)
    GunicornApp(app, gunicorn_options(app, "127.0.0.1", port, workers=1, threads=8)).run()

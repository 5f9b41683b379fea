"""The Flask web app: sign-in, a user's top 5, the popular fallback, product pages, a live stream, a JSON API.

It reads only what the pipeline and the online updater published in MongoDB
(recommendations, popular, products, similar_products), keeps its accounts in ``users``,
produces impressions and shoppers' interactions to Kafka, and streams the
``recommendations`` topic. It imports no Dagster.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from flask.logging import default_handler
from werkzeug.middleware.proxy_fix import ProxyFix

from recsys_core.settings import get_settings
from recsys_web import analyst, api, audit, auth, csrf, errors, inputs, pages, products, sessions, stream, throttle
from recsys_web.config import default_config, instance_secret_key
from recsys_web.resources import Resources

# Scripts and styles only from our own files, so even markup that slipped into a page cannot
# run; images may come from the product data's hosts.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' https: http: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    settings = get_settings()
    # instance_relative_config: the deployment's config.py is read from the instance folder.
    app = Flask(__name__, instance_path=str(settings.state_dir / "web"), instance_relative_config=True)
    app.config.from_mapping(default_config(settings))
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(Path(app.instance_path))

    if app.config["TRUSTED_PROXIES"]:
        # The client's address and scheme from the X-Forwarded-* headers the trusted proxies set;
        # without them these headers are ignored (anyone could send them).
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    if not audit.log.handlers:  # audit lines reach the server's log at INFO, whatever the root's level
        audit.log.addHandler(default_handler)
        audit.log.setLevel(logging.INFO)

    resources = Resources(app.config)
    app.extensions["recsys"] = resources
    sessions.init_app(app, resources)
    app.before_request(inputs.refuse_operator_names)
    csrf.init_app(app)
    throttle.init_app(app, resources)
    errors.init_app(app)
    app.after_request(_security_headers)
    app.add_template_filter(_when, "when")
    for blueprint in (auth.bp, pages.bp, products.bp, api.bp, stream.bp, analyst.bp):
        app.register_blueprint(blueprint)
    return app


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "static":
        # Pages, API answers and streams may be personal: no browser or proxy may keep a copy.
        response.headers["Cache-Control"] = "no-store"
    return response


def _when(value: datetime | None) -> str:
    return "unknown" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")

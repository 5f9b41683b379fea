"""Errors as the client expects them: JSON for the API and /healthz, a page for a browser.

MongoDB being unreachable is a 503 (the service is temporarily unavailable), not a 500; any
other unexpected exception is logged with its traceback and answered with a bare 500, so no
request can take the process down or leak internals.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from pymongo.errors import ConnectionFailure
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

log = logging.getLogger(__name__)

DB_DOWN = "The database is unavailable right now. Please try again in a minute."


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def http_error(exc: HTTPException) -> ResponseReturnValue:
    code = exc.code or 500
    if wants_json():
        return jsonify(error=exc.name, message=exc.description), code
    return render_template("error.html", error=exc), code


def mongo_down(exc: ConnectionFailure) -> ResponseReturnValue:
    log.warning("MongoDB unreachable serving %s: %s", request.path, exc)
    return http_error(ServiceUnavailable(DB_DOWN))


def unexpected(exc: Exception) -> ResponseReturnValue:
    log.exception("unexpected error serving %s", request.path, exc_info=exc)
    return http_error(InternalServerError())


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(ConnectionFailure, mongo_down)
    app.register_error_handler(Exception, unexpected)

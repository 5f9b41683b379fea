"""Errors as the client expects them: JSON for the API and /healthz, a page for a browser.

MongoDB being unreachable, or not answering within the client's operation timeout, is a 503
(the service is temporarily unavailable), not a 500 and never a hung thread; any other
unexpected exception (a published document that breaks the contract, say) is logged with its
traceback and answered with a bare 500, so no request can take the process down or leak
internals.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from pymongo.errors import ConnectionFailure, PyMongoError
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

log = logging.getLogger(__name__)

DB_DOWN = "The database is unavailable right now. Please try again in a minute."


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def http_error(exc: HTTPException) -> ResponseReturnValue:
    code = exc.code or 500
    # The error's own headers (Retry-After of a 429, Allow of a 405), not its HTML content type.
    headers = [(name, value) for name, value in exc.get_headers() if name != "Content-Type"]
    if wants_json():
        return jsonify(error=exc.name, message=exc.description), code, headers
    return render_template("error.html", error=exc), code, headers


def mongo_error(exc: PyMongoError) -> ResponseReturnValue:
    if isinstance(exc, ConnectionFailure) or exc.timeout:
        log.warning("MongoDB unreachable or too slow serving %s: %s", request.path, exc)
        return http_error(ServiceUnavailable(DB_DOWN))
    return unexpected(exc)


def unexpected(exc: Exception) -> ResponseReturnValue:
    log.exception("unexpected error serving %s", request.path, exc_info=exc)
    return http_error(InternalServerError())


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(PyMongoError, mongo_error)
    app.register_error_handler(Exception, unexpected)

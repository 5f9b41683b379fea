"""CSRF protection: one random token per session, required on every state-changing request.

Forms carry it in a hidden ``csrf_token`` field, scripts in an ``X-CSRF-Token`` header. A
forged site cannot read it (same-origin policy), so a request without the right token did not
come from our page and is refused with 400. SameSite=Lax cookies are a second fence.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, request, session
from werkzeug.exceptions import BadRequest

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token() -> str:
    token = session.get("csrf_token")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf_token"] = token
    return token


def check_csrf() -> None:
    if request.method in SAFE_METHODS:
        return
    expected = session.get("csrf_token")
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token")
    if not isinstance(expected, str) or not sent or not hmac.compare_digest(expected, sent):
        raise BadRequest("The form has expired or was not sent by this site (CSRF token missing or wrong).")


def init_app(app: Flask) -> None:
    app.before_request(check_csrf)
    app.jinja_env.globals["csrf_token"] = csrf_token

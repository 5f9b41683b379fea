"""Accounts: register (which gives the account its own reviewerID), log in, log out, and link the account
to another reviewerID.

Passwords are checked on the server against a slow hash (werkzeug's scrypt). The session
cookie holds only the user's id (signed, HttpOnly, SameSite=Lax); the user document is read
from MongoDB on each request that needs it, so a changed reviewerID shows at once.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from bson import ObjectId
from bson.errors import InvalidId
from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from pymongo.errors import DuplicateKeyError
from werkzeug.exceptions import Unauthorized
from werkzeug.security import check_password_hash, generate_password_hash

from recsys_core import mongo
from recsys_core.contract import WEB_REVIEWER_PREFIX
from recsys_web import inputs, throttle
from recsys_web.db import get_db
from recsys_web.errors import wants_json

bp = Blueprint("auth", __name__, url_prefix="/auth")

P = ParamSpec("P")
R = TypeVar("R")


def current_user() -> mongo.Document | None:
    """The logged-in user's document, read once per request."""
    if "user" not in g:
        user = None
        try:
            user_id = ObjectId(session["user_id"])
        except (KeyError, InvalidId, TypeError):
            user_id = None
        if user_id is not None:
            user = get_db()[mongo.USERS].find_one({"_id": user_id}, {"password_hash": 0})
            if user is None:  # the account is gone: forget the stale session
                session.clear()
        g.user = user
    found: mongo.Document | None = g.user
    return found


def login_required(view: Callable[P, R]) -> Callable[P, R | ResponseReturnValue]:
    """Pages send a stranger to the login form; the JSON API answers 401."""

    @functools.wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R | ResponseReturnValue:
        if current_user() is None:
            if wants_json():
                raise Unauthorized("log in first")
            return redirect(url_for("auth.login"))
        return view(*args, **kwargs)

    return wrapped


def logged_in_user() -> mongo.Document:
    """The current user inside a ``login_required`` view."""
    user = current_user()
    assert user is not None, "only for views behind login_required"
    return user


@bp.route("/register", methods=["GET", "POST"])
def register() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("auth/register.html")
    try:
        email = inputs.email(inputs.field("email"))
        password = inputs.password(inputs.field("password"))
        raw_reviewer = inputs.optional_field("reviewerID")
        reviewer = None if raw_reviewer is None else inputs.reviewer_id(raw_reviewer)
    except inputs.InvalidInput as exc:
        return _form_error("auth/register.html", exc.description, 400)
    user: mongo.Document = {
        "email": email,
        "password_hash": generate_password_hash(password),
        "created_at": datetime.now(UTC),
        # Its own reviewer identity from the first minute, so it can rate before any retrain.
        "reviewerID": reviewer if reviewer is not None else new_reviewer_id(),
    }
    try:
        get_db()[mongo.USERS].insert_one(user)
    except DuplicateKeyError as exc:
        return _form_error("auth/register.html", _duplicate_message(exc), 409)
    flash("Account created. Log in to see your recommendations.")
    return redirect(url_for("auth.login"))


def new_reviewer_id() -> str:
    """A reviewerID of the site's own, which no Amazon reviewerID can equal."""
    return WEB_REVIEWER_PREFIX + uuid.uuid4().hex[:16]


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("auth/login.html")
    try:
        email = inputs.email(inputs.field("email"))
        password = inputs.field("password")
    except inputs.InvalidInput as exc:
        return _form_error("auth/login.html", exc.description, 400)
    db = get_db()
    key = throttle.throttle_key(email, request.remote_addr)
    wait_s = throttle.retry_after_s(db, key, current_app.config["LOGIN_MAX_FAILURES"])
    if wait_s:
        response = current_app.make_response(
            _form_error("auth/login.html", f"Too many failed logins. Try again in {wait_s // 60 + 1} minutes.", 429)
        )
        response.headers["Retry-After"] = str(wait_s)
        return response
    user = db[mongo.USERS].find_one({"email": email})
    # Hash even for an unknown email, so that login timing does not tell which emails have accounts.
    # (Registration does tell, as it must refuse a duplicate; login should not add a second oracle.)
    stored_hash = user["password_hash"] if user is not None else _dummy_hash()
    password_ok = check_password_hash(stored_hash, password)
    if user is None or not password_ok:
        throttle.record_failure(db, key, current_app.config["LOGIN_LOCKOUT_S"])
        return _form_error("auth/login.html", "Wrong email or password.", 401)
    throttle.clear_failures(db, key)
    session.clear()  # a fresh session (and CSRF token) on login: no session fixation
    session.permanent = True
    session["user_id"] = str(user["_id"])
    return redirect(url_for("pages.result"))


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account() -> ResponseReturnValue:
    """Link the account to a reviewerID (replacing the one linked before)."""
    user = logged_in_user()
    if request.method == "GET":
        return render_template("auth/account.html", user=user)
    try:
        reviewer = inputs.reviewer_id(inputs.field("reviewerID"))
    except inputs.InvalidInput as exc:
        return _form_error("auth/account.html", exc.description, 400, user=user)
    try:
        get_db()[mongo.USERS].update_one({"_id": user["_id"]}, {"$set": {"reviewerID": reviewer}})
    except DuplicateKeyError as exc:
        return _form_error("auth/account.html", _duplicate_message(exc), 409, user=user)
    return redirect(url_for("pages.result"))


def _form_error(template: str, message: str | None, status: int, **context: Any) -> ResponseReturnValue:
    flash(message or "Invalid input.", "error")
    return render_template(template, **context), status


def _duplicate_message(exc: DuplicateKeyError) -> str:
    pattern = (exc.details or {}).get("keyPattern", {})
    if "reviewerID" in pattern:
        return "That reviewerID is already linked to another account."
    return "An account with that email already exists."


@functools.cache
def _dummy_hash() -> str:
    return generate_password_hash("not a real password")

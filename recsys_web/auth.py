"""Accounts in the browser: register, log in, log out, the account page and changing the password.

- Registration gives the account its own reviewer identity and nothing else: there is no way
  for a shopper to claim a reviewerID (``recsys users link`` is the operator's). Its answer is
  the same whether or not the email already had an account (same page, same status, same hash
  work), so registration tells nobody which emails have accounts; a login with a wrong
  password and one with an unknown email are refused alike too.
- Every password check is throttled per address (Flask-Limiter) and per account (exponential
  backoff, reserved before the hash is checked): see ``throttle``.
- Sessions are server-side (``sessions``). Login starts a new session id and records the
  login time and the account's ``session_epoch``; ``current_user`` ends a session past its
  absolute lifetime or whose epoch is no longer the account's (a password change, a link).
  Logging out deletes the session.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from bson import ObjectId
from bson.errors import InvalidId
from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import Forbidden, TooManyRequests, Unauthorized

from recsys_core import mongo
from recsys_web import accounts, inputs, passwords, sessions, throttle
from recsys_web.db import get_db
from recsys_web.errors import wants_json
from recsys_web.resources import resources

bp = Blueprint("auth", __name__, url_prefix="/auth")

P = ParamSpec("P")
R = TypeVar("R")

REGISTERED = (
    "Thank you. If this email had no account yet, it has one now: log in with it. "
    "If it had one already, nothing was changed."
)


def current_user() -> mongo.Document | None:
    """The logged-in user's document, read once per request; None for a stranger or an ended session."""
    if "user" not in g:
        g.user = _session_user()
    found: mongo.Document | None = g.user
    return found


def _session_user() -> mongo.Document | None:
    try:
        user_id = ObjectId(session["user_id"])
    except (KeyError, InvalidId, TypeError):
        return None
    user: mongo.Document | None = resources().cache.read(mongo.USERS, user_id, lambda: _find_user(user_id))
    absolute_s = current_app.config["SESSION_ABSOLUTE_LIFETIME"].total_seconds()
    expired = time.time() - float(session.get("login_at", 0)) > absolute_s
    if user is None or expired or session.get("epoch") != user.get("session_epoch", 0):
        session.clear()  # the account is gone, the session is too old, or its password changed
        return None
    return user


def _find_user(user_id: ObjectId) -> tuple[ObjectId, mongo.Document] | None:
    user = get_db()[mongo.USERS].find_one({"_id": user_id}, {"password_hash": 0})
    return None if user is None else (user_id, user)


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


def analyst_required(view: Callable[P, R]) -> Callable[P, R | ResponseReturnValue]:
    @login_required
    @functools.wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
        if not accounts.is_analyst(logged_in_user()):
            raise Forbidden("This page is for analysts.")
        return view(*args, **kwargs)

    return wrapped


def logged_in_user() -> mongo.Document:
    """The current user inside a ``login_required`` view."""
    user = current_user()
    assert user is not None, "only for views behind login_required"
    return user


@bp.route("/register", methods=["GET", "POST"])
@throttle.per_address("RATELIMIT_REGISTER")
def register() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("auth/register.html")
    try:
        email = inputs.email(inputs.field("email"))
        password = passwords.check_policy(inputs.field("password"))
    except inputs.InvalidInput as exc:
        return _form_error("auth/register.html", exc.description, 400)
    accounts.create(get_db(), email, password)  # taken or not, the same answer
    flash(REGISTERED)
    return redirect(url_for("auth.login"))


@bp.route("/login", methods=["GET", "POST"])
@throttle.per_address("RATELIMIT_LOGIN")
def login() -> ResponseReturnValue:
    if request.method == "GET":
        return render_template("auth/login.html")
    try:
        email = inputs.email(inputs.field("email"))
        password = inputs.field("password")
    except inputs.InvalidInput as exc:
        return _form_error("auth/login.html", exc.description, 400)
    db = get_db()
    key = throttle.account_key(email)
    _reserve_attempt(key)
    user = db[mongo.USERS].find_one({"email": email})
    # Hash even for an unknown email, so that login timing does not tell which emails have accounts.
    stored_hash = user["password_hash"] if user is not None else passwords.dummy_hash()
    if user is None or not passwords.verify(stored_hash, password):
        return _form_error("auth/login.html", "Wrong email or password.", 401)
    throttle.clear(db, key)
    if passwords.needs_rehash(stored_hash):  # scrypt (or older Argon2 parameters): upgrade now
        db[mongo.USERS].update_one({"_id": user["_id"]}, {"$set": {"password_hash": passwords.hash_password(password)}})
    _start_session(user["_id"], int(user.get("session_epoch", 0)))
    return redirect(url_for("pages.result"))


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    session.clear()
    flash("You are logged out.")
    sessions.regenerate()  # the old id's document is deleted: a copy of the cookie is worth nothing
    return redirect(url_for("auth.login"))


@bp.route("/account")
@login_required
def account() -> ResponseReturnValue:
    return render_template("auth/account.html", user=logged_in_user())


@bp.route("/password", methods=["GET", "POST"])
@throttle.per_address("RATELIMIT_PASSWORD_CHANGE")
@login_required
def password() -> ResponseReturnValue:
    """Change the password: the current one is checked (throttled as a login is), every other
    session of the account ends, and this one continues under a new id."""
    user = logged_in_user()
    if request.method == "GET":
        return render_template("auth/password.html", user=user)
    try:
        current = inputs.field("current_password")
        new = passwords.check_policy(inputs.field("new_password"))
    except inputs.InvalidInput as exc:
        return _form_error("auth/password.html", exc.description, 400, user=user)
    db = get_db()
    key = throttle.account_key(user["email"])
    _reserve_attempt(key)
    stored = db[mongo.USERS].find_one({"_id": user["_id"]}, {"password_hash": 1})
    if stored is None or not passwords.verify(stored["password_hash"], current):
        return _form_error("auth/password.html", "The current password is wrong.", 401, user=user)
    throttle.clear(db, key)
    epoch = accounts.set_password(db, user["_id"], new, end_sessions=True)
    resources().cache.forget(mongo.USERS, user["_id"])  # this worker ends the other sessions at once
    _start_session(user["_id"], epoch)
    flash("Your password is changed. Every other session of this account has ended.")
    return redirect(url_for("auth.account"), code=303)


def _reserve_attempt(key: str) -> None:
    wait_s = throttle.reserve(get_db(), key)
    if wait_s:
        raise TooManyRequests(
            f"Too many password attempts for this account. Try again in {wait_s} seconds.",
            retry_after=wait_s,
        )


def _start_session(user_id: ObjectId, epoch: int) -> None:
    """A new session id (no fixation) and a new CSRF token, bound to the account's current epoch."""
    session.clear()
    session["user_id"] = str(user_id)
    session["epoch"] = epoch
    session["login_at"] = time.time()
    sessions.regenerate()  # and the old id's document is deleted


def _form_error(template: str, message: str | None, status: int, **context: Any) -> ResponseReturnValue:
    flash(message or "Invalid input.", "error")
    return render_template(template, **context), status

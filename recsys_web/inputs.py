"""Every value a client sends passes through here before it reaches a query.

Only plain strings matching a strict pattern get through, which is what shuts out operator
injection: ``{"$ne": null}`` in a JSON body is not a string, and ``reviewerID[$ne]=x`` in a
form or query string is refused by name (Flask would otherwise just ignore it, and the
reviewerID would look "missing" — refusing it says what happened).
"""

from __future__ import annotations

import re
from typing import Any

from flask import request
from werkzeug.exceptions import BadRequest

from recsys_core.contract import ALL_CATEGORIES

REVIEWER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
ASIN = re.compile(r"[A-Za-z0-9_-]{1,64}")
STARS = ("1", "2", "3", "4", "5")
# The WHATWG (HTML5 <input type=email>) pattern; 254 is the longest address SMTP delivers.
EMAIL = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
EMAIL_MAX = 254
PASSWORD_MIN, PASSWORD_MAX = 8, 256
# Amazon category names: "Clothing, Shoes and Jewelry", "Arts, Crafts & Sewing", "__all__".
CATEGORY = re.compile(r"[\w ,&'.()-]{1,100}")


class InvalidInput(BadRequest):
    """A 400 whose description is safe and useful to show to the user."""


def refuse_operator_names() -> None:
    """Refuse query or form fields named like Mongo operators or nested keys (before_request)."""
    for name in (*request.args.keys(), *request.form.keys()):
        if "$" in name or "[" in name:
            raise InvalidInput(f"field name {name[:40]!r} is not accepted")


def field(name: str) -> str:
    """A required field, from a form or a JSON object body, as a plain string."""
    value = optional_field(name)
    if value is None:
        raise InvalidInput(f"{name} is required")
    return value


def optional_field(name: str) -> str | None:
    """An optional field as a plain string; None when absent or empty."""
    source: Any = request.get_json() if request.is_json else request.form
    if not isinstance(source, dict):  # a form's MultiDict is a dict too
        raise InvalidInput("the request body must be a JSON object")
    value = source.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a plain string")
    return value


def reviewer_id(value: str | None) -> str:
    value = None if value is None else value.strip()
    if value is None or not REVIEWER_ID.fullmatch(value):
        raise InvalidInput("a reviewerID is 1 to 64 letters, digits, '_' or '-'")
    return value


def asin(value: str | None) -> str:
    if value is None or not ASIN.fullmatch(value):
        raise InvalidInput("an asin is 1 to 64 letters, digits, '_' or '-'")
    return value


def stars(value: str | None) -> float:
    """A rating as the forms send it: one of the digits 1 to 5."""
    if value not in STARS:
        raise InvalidInput("a rating is a whole number of stars from 1 to 5")
    return float(value)


def email(value: str | None) -> str:
    value = None if value is None else value.strip()
    if value is None or len(value) > EMAIL_MAX or not EMAIL.fullmatch(value):
        raise InvalidInput("enter a valid email address")
    return value.lower()


def password(value: str | None) -> str:
    if value is None or not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
        raise InvalidInput(f"a password is {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    return value


def category(value: str | None) -> str:
    if value is None:
        return ALL_CATEGORIES
    if not CATEGORY.fullmatch(value):
        raise InvalidInput("a category is 1 to 100 letters, digits, spaces or ,&'.()-_")
    return value

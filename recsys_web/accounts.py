"""The ``users`` collection's operations, shared by the web views and the operator's ``recsys users``.

An account document: ``{email, password_hash, reviewerID, roles, session_epoch, created_at}``.

- ``reviewerID`` is the reviewer identity the account owns. Registration gives it one of its
  own (``web-`` + 16 hex, which no Amazon reviewerID can equal); only the operator can point an
  account at a reviewer from the data (``link``), and a reviewerID belongs to one account at
  most (unique index).
- ``roles`` may hold ``analyst``: read-only access to any reviewer's recommendations, each view
  audited.
- ``session_epoch`` is copied into a session at login; changing the password (or the operator's
  ``link``) increments it, which ends every other session of the account at its next request.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Literal

from bson import ObjectId
from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from recsys_core import mongo
from recsys_core.contract import WEB_REVIEWER_PREFIX, Recommendations
from recsys_web import audit, passwords

Role = Literal["analyst"]
ROLES: tuple[Role, ...] = ("analyst",)


class AccountError(ValueError):
    """An operator's command that cannot be carried out, with why (shown to the operator only)."""


def new_reviewer_id() -> str:
    """A reviewerID of the site's own, which no Amazon reviewerID can equal."""
    return WEB_REVIEWER_PREFIX + uuid.uuid4().hex[:16]


def create(db: Database[mongo.Document], email: str, password: str) -> bool:
    """A new account with its own reviewer identity; False (and nothing written) if the email is taken.

    The hash is computed either way, so the two outcomes take the same time.
    """
    user: mongo.Document = {
        "email": email,
        "password_hash": passwords.hash_password(password),
        "created_at": datetime.now(UTC),
        "reviewerID": new_reviewer_id(),
        "roles": [],
        "session_epoch": 0,
    }
    try:
        db[mongo.USERS].insert_one(user)
    except DuplicateKeyError:
        return False
    return True


def ensure_schema(db: Database[mongo.Document]) -> None:
    for name in mongo.WEB_COLLECTIONS:
        mongo.ensure_collection(db, name)


def set_password(db: Database[mongo.Document], user_id: ObjectId, password: str, *, end_sessions: bool) -> int:
    """Store a new hash of ``password``; with ``end_sessions`` every session of the account ends.
    Returns the account's session epoch afterwards."""
    update: mongo.Document = {"$set": {"password_hash": passwords.hash_password(password)}}
    if end_sessions:
        update["$inc"] = {"session_epoch": 1}
    found = db[mongo.USERS].find_one_and_update(
        {"_id": user_id}, update, projection={"session_epoch": 1}, return_document=ReturnDocument.AFTER
    )
    if found is None:
        raise AccountError("the account no longer exists")
    return int(found.get("session_epoch", 0))


def by_email(db: Database[mongo.Document], email: str) -> mongo.Document:
    user = db[mongo.USERS].find_one({"email": email}, {"password_hash": 0})
    if user is None:
        raise AccountError(f"no account has the email {email}")
    return user


def link(db: Database[mongo.Document], email: str, reviewer: str, operator: str) -> None:
    """Point the account at a reviewer from the data (the operator's action), ending its sessions."""
    user = by_email(db, email)
    known = db[mongo.REVIEWS].find_one({"reviewerID": reviewer}, {"_id": 1}) or db[Recommendations.collection].find_one(
        {"_id": reviewer}, {"_id": 1}
    )
    if known is None:
        raise AccountError(f"no reviewer {reviewer} in the reviews or the published recommendations")
    holder = db[mongo.USERS].find_one({"reviewerID": reviewer, "_id": {"$ne": user["_id"]}}, {"email": 1})
    if holder is not None:
        raise AccountError(f"{reviewer} is already linked to {holder['email']}")
    try:
        db[mongo.USERS].update_one(
            {"_id": user["_id"]}, {"$set": {"reviewerID": reviewer}, "$inc": {"session_epoch": 1}}
        )
    except DuplicateKeyError as exc:  # linked to another account in between
        raise AccountError(f"{reviewer} is already linked to another account") from exc
    audit.record(db, f"operator:{operator}", "link", reviewer, target_email=email)


def set_role(db: Database[mongo.Document], email: str, role: Role, granted: bool, operator: str) -> None:
    user = by_email(db, email)
    change = {"$addToSet": {"roles": role}} if granted else {"$pull": {"roles": role}}
    db[mongo.USERS].update_one({"_id": user["_id"]}, change)
    audit.record(db, f"operator:{operator}", "grant" if granted else "revoke", None, target_email=email, role=role)


def demo_logins(db: Database[mongo.Document], count: int, operator: str) -> list[tuple[str, str, str]]:
    """``count`` accounts ``demo<N>@example.com``, each with a new random password and linked to a
    reviewer with a published list; returns (email, password, reviewerID). Run again, it gives
    the same accounts new passwords (and ends their sessions)."""
    logins = []
    taken = db[mongo.USERS].distinct("reviewerID", {"email": {"$not": {"$regex": r"^demo\d+@example\.com$"}}})
    reviewers = db[Recommendations.collection].find(
        {"_id": {"$nin": taken, "$not": {"$regex": f"^{WEB_REVIEWER_PREFIX}"}}}, {"_id": 1}
    )
    for number, doc in enumerate(reviewers.sort("_id").limit(count), start=1):
        email, password = f"demo{number}@example.com", secrets.token_urlsafe(12)
        if not create(db, email, password):
            set_password(db, by_email(db, email)["_id"], password, end_sessions=True)
        link(db, email, doc["_id"], operator)
        logins.append((email, password, str(doc["_id"])))
    return logins


def is_analyst(user: mongo.Document) -> bool:
    roles = user.get("roles")
    return isinstance(roles, list) and "analyst" in roles

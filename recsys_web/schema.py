"""What the web app owns in MongoDB, beyond the contract's ``users`` with its unique email.

Created on first use by each process (idempotent), so a fresh database needs no set-up step.
"""

from __future__ import annotations

from pymongo import ASCENDING, IndexModel
from pymongo.database import Database
from pymongo.errors import CollectionInvalid

from recsys_core import mongo

# Failed logins per email+IP; documents expire through a TTL index on expires_at.
LOGIN_FAILURES = "login_failures"

# Beyond the contract's unique email: a reviewerID belongs to at most one account, so that no
# account can read the recommendations of a reviewerID another account has linked.
USERS_REVIEWER_INDEX = IndexModel(
    [("reviewerID", ASCENDING)],
    name="reviewerID_unique",
    unique=True,
    partialFilterExpression={"reviewerID": {"$type": "string"}},
)
LOGIN_FAILURES_TTL_INDEX = IndexModel([("expires_at", ASCENDING)], name="expires_at_ttl", expireAfterSeconds=0)


def ensure_schema(db: Database[mongo.Document]) -> None:
    try:
        mongo.ensure_collection(db, mongo.USERS)
    except CollectionInvalid:  # another worker created it between the check and the create
        mongo.ensure_collection(db, mongo.USERS)
    db[mongo.USERS].create_indexes([USERS_REVIEWER_INDEX])
    db[LOGIN_FAILURES].create_indexes([LOGIN_FAILURES_TTL_INDEX])

"""The MongoDB layout: collection names and their indexes, and sharding on a cluster.

Writers (the Dagster assets) and readers (the web app, the online updater) both go through
these names, so a collection is renamed in one place only. The shapes of the documents
that cross processes are the classes of ``recsys_core.contract``; connecting is
``recsys_core.connections``.
"""

from __future__ import annotations

import contextlib
from typing import Any

from pymongo import ASCENDING, DESCENDING, HASHED, IndexModel
from pymongo.database import Database
from pymongo.errors import CollectionInvalid, OperationFailure

Document = dict[str, Any]

REVIEWS = "reviews"
PRODUCTS = "products"
PRODUCT_LISTINGS = "product_listings"
QUARANTINE = "quarantine"
RECOMMENDATIONS = "recommendations"
POPULAR = "popular"
ITEM_FACTORS = "item_factors"
SIMILAR_PRODUCTS = "similar_products"
INTERACTIONS = "interactions"
USERS = "users"
LOGIN_BACKOFF = "login_backoff"
SESSIONS = "sessions"
AUDIT = "audit"
RATE_LIMIT_COUNTERS = "rate_limit_counters"
RATE_LIMIT_WINDOWS = "rate_limit_windows"
LOCKS = "locks"

INDEXES: dict[str, list[IndexModel]] = {
    # asin is the partition key: hashed, so that a sharded cluster spreads it evenly.
    REVIEWS: [
        IndexModel([("asin", HASHED)], name="asin_hashed"),
        IndexModel([("reviewerID", ASCENDING)], name="reviewerID"),
        IndexModel([("category", ASCENDING)], name="category"),
    ],
    PRODUCTS: [
        IndexModel([("asin", HASHED)], name="asin_hashed"),
        IndexModel([("source_category", ASCENDING)], name="source_category"),
    ],
    # Which categories' files list each product, so a product one category drops stays while another lists it.
    PRODUCT_LISTINGS: [
        IndexModel([("listed", ASCENDING)], name="listed"),
        IndexModel([("source_category", ASCENDING)], name="source_category"),
    ],
    QUARANTINE: [
        IndexModel([("category", ASCENDING), ("reason", ASCENDING)], name="category_reason"),
        IndexModel([("source_file", ASCENDING), ("line_number", ASCENDING)], name="source_line"),
    ],
    POPULAR: [IndexModel([("category", ASCENDING), ("rank", ASCENDING)], name="category_rank")],
    INTERACTIONS: [IndexModel([("reviewerID", ASCENDING), ("ts", DESCENDING)], name="reviewer_ts")],
    USERS: [
        IndexModel([("email", ASCENDING)], name="email_unique", unique=True),
        # A reviewerID belongs to at most one account, so no account reads another's recommendations.
        IndexModel(
            [("reviewerID", ASCENDING)],
            name="reviewerID_unique",
            unique=True,
            partialFilterExpression={"reviewerID": {"$type": "string"}},
        ),
    ],
    # Password attempts per account, for the exponential backoff; forgotten through the TTL index.
    LOGIN_BACKOFF: [IndexModel([("expires_at", ASCENDING)], name="expires_at_ttl", expireAfterSeconds=0)],
    # Flask-Session's documents {id, val, expiration}: looked up by id (Flask-Session creates no index
    # for that), deleted by MongoDB once idle past their expiration.
    SESSIONS: [
        IndexModel([("id", ASCENDING)], name="id_unique", unique=True),
        IndexModel([("expiration", ASCENDING)], name="expiration_ttl", expireAfterSeconds=0),
    ],
    # Who viewed which reviewer's data, or changed which account (append-only).
    AUDIT: [
        IndexModel([("at", DESCENDING)], name="at"),
        IndexModel([("reviewerID", ASCENDING), ("at", DESCENDING)], name="reviewer_at"),
    ],
}

# The web app's own collections (accounts, sessions, their throttling and audit), made by the
# web app and by ``recsys users``. (Flask-Limiter's rate_limit_* collections are made by ``limits``.)
WEB_COLLECTIONS = (USERS, LOGIN_BACKOFF, SESSIONS, AUDIT)

# Collections sharded on hashed asin when the target is a sharded cluster.
SHARDED_ON_ASIN = (REVIEWS, PRODUCTS)


def ensure_collection(db: Database[Document], name: str) -> None:
    """Create ``name`` with its contract indexes, and shard it on hashed asin on a sharded cluster."""
    if name not in db.list_collection_names():
        with contextlib.suppress(CollectionInvalid):  # another process created it in between
            db.create_collection(name)
    if INDEXES.get(name):
        db[name].create_indexes(INDEXES[name])
    if name in SHARDED_ON_ASIN and is_sharded_cluster(db):
        admin = db.client.admin
        try:
            admin.command("enableSharding", db.name)
        except OperationFailure as exc:
            if exc.code != 23:  # AlreadyInitialized
                raise
        admin.command("shardCollection", f"{db.name}.{name}", key={"asin": "hashed"})


def is_sharded_cluster(db: Database[Document]) -> bool:
    """A mongos answers hello with msg == 'isdbgrid'."""
    return db.client.admin.command("hello").get("msg") == "isdbgrid"

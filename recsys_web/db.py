"""The request's MongoDB handle, cached in ``g`` as in Flask's tutorial.

The client behind it is the app's one pooled MongoClient (see resources), not a connection
per request: pymongo pools and is thread-safe, so one client per process is the right size.
"""

from __future__ import annotations

from flask import g
from pymongo.database import Database

from recsys_core import mongo
from recsys_web.resources import resources


def get_db() -> Database[mongo.Document]:
    if "db" not in g:
        g.db = resources().database()
    db: Database[mongo.Document] = g.db
    return db

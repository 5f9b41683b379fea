"""The audit trail: who looked at which reviewer's data, and which account an operator changed.

Each entry goes to MongoDB ``audit`` (append-only, for the record) and to the app log (logger
``recsys_web.audit``, for whoever watches the logs), so an analyst's reading is never silent.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database

from recsys_core import mongo

log = logging.getLogger(__name__)


def record(db: Database[mongo.Document], actor: str, action: str, reviewer: str | None, **details: Any) -> None:
    db[mongo.AUDIT].insert_one(
        {"at": datetime.now(UTC), "actor": actor, "action": action, "reviewerID": reviewer, **details}
    )
    log.info("audit: %s %s reviewerID=%s %s", actor, action, reviewer, details)

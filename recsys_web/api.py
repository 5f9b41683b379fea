"""The JSON API and the health check.

Access rule, the same as the pages': a reviewer's recommendations are that reviewer's data,
so ``/api/v1/recommendations/<reviewerID>`` needs a login and answers only for the reviewerID
linked to the caller's account (401 without a login, 403 for any other reviewerID, whether it
exists or not). An analyst may read any reviewer's, read-only: no impression is produced, and
the view is audited. The popular lists and ``/healthz`` hold nothing personal and are public.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, request
from flask.typing import ResponseReturnValue
from pymongo.errors import PyMongoError
from werkzeug.exceptions import Forbidden, NotFound

from recsys_core.contract import ALL_CATEGORIES
from recsys_web import accounts, audit, inputs
from recsys_web.auth import logged_in_user, login_required
from recsys_web.db import get_db
from recsys_web.recommendations import impression, load_popular, load_recommendations
from recsys_web.resources import resources

bp = Blueprint("api", __name__)


@bp.route("/api/v1/recommendations/<reviewer_id>")
@login_required
def recommendations(reviewer_id: str) -> ResponseReturnValue:
    reviewer = inputs.reviewer_id(reviewer_id)
    user = logged_in_user()
    db = get_db()
    own = reviewer == user.get("reviewerID")
    if not own:
        if not accounts.is_analyst(user):
            raise Forbidden("You can read only the recommendations of the reviewerID linked to your account.")
        audit.record(db, user["email"], "view", reviewer, surface="api")
    res = resources()
    publisher = res.publisher()
    top = load_recommendations(db, res.cache, reviewer)
    if top is not None:
        if own:
            publisher.publish(impression(reviewer, top, "api"))
        return {**top.model_dump(mode="json"), "fallback": False}
    popular = load_popular(db, ALL_CATEGORIES)
    if popular is None:
        return {"items": [], "model_version": None, "updated_at": None, "reviewerID": reviewer, "fallback": True}
    if own:
        publisher.publish(impression(reviewer, popular, "api"))
    return {**popular.to_json(), "reviewerID": reviewer, "fallback": True}


@bp.route("/api/v1/popular")
def popular() -> ResponseReturnValue:
    category = inputs.category(request.args.get("category"))
    found = load_popular(get_db(), category)
    if found is None:
        raise NotFound(f"No popular list is published for category {category!r}.")
    return found.to_json()


@bp.route("/healthz")
def healthz() -> ResponseReturnValue:
    """Reachability of MongoDB and Kafka (503 unless both answer), and the app's counters.

    The counters are those of the worker process that answers (each gunicorn worker has its
    own producer, streams and document cache).
    """
    res = resources()
    timeout_s = current_app.config["KAFKA_TIMEOUT_S"]
    try:
        get_db().client.admin.command("ping")
        mongo_up = True
    except PyMongoError:
        mongo_up = False
    body: dict[str, Any] = {
        "mongo": "up" if mongo_up else "down",
        "kafka": "up" if res.publisher().reachable(timeout_s) else "down",
        "kafka_messages": {
            "impressions": res.publisher().counts(),
            "interactions": res.interactions().counts(),
            "ratings": res.ratings().counts(),
        },
        "streams": {"open": res.streams.current, "opened_total": res.streams.total},
        "cache": res.cache.stats(),
    }
    healthy = body["mongo"] == body["kafka"] == "up"
    body["status"] = "ok" if healthy else "degraded"
    return body, 200 if healthy else 503

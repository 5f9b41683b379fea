"""``/analyst``: an analyst reads any reviewer's recommendations, read-only and on the record.

Read-only: the page produces no impression, offers no rating, and opens no live stream, so
the reviewer's data and signals are untouched. Every view is audited (``audit``). For a
reviewer without a list, whether they exist or not, the page says only that no personal list
is published for that reviewerID.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request
from flask.typing import ResponseReturnValue

from recsys_web import audit, inputs
from recsys_web.auth import analyst_required, logged_in_user
from recsys_web.db import get_db
from recsys_web.recommendations import load_recommendations
from recsys_web.resources import resources

bp = Blueprint("analyst", __name__)


@bp.route("/analyst")
@analyst_required
def view() -> ResponseReturnValue:
    raw = request.args.get("reviewerID")
    if not raw:
        return render_template("pages/analyst.html", reviewer=None, top=None)
    reviewer = inputs.reviewer_id(raw)
    db = get_db()
    audit.record(db, logged_in_user()["email"], "view", reviewer, surface="page")
    top = load_recommendations(db, resources().cache, reviewer)
    return render_template("pages/analyst.html", reviewer=reviewer, top=top)

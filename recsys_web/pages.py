"""The browser pages: the user's top 5 (/result) and the popular lists (/popular)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from recsys_core.contract import ALL_CATEGORIES, Recommendations
from recsys_web.auth import logged_in_user, login_required
from recsys_web.db import get_db
from recsys_web.recommendations import PopularList, impression, load_popular, load_recommendations
from recsys_web.resources import resources

bp = Blueprint("pages", __name__)


@bp.route("/")
def index() -> ResponseReturnValue:
    return redirect(url_for("pages.result"))


@bp.route("/result")
@login_required
def result() -> ResponseReturnValue:
    """The reviewer's own list, or, until they have one, the popular list; either is replaced live."""
    reviewer = logged_in_user().get("reviewerID")
    if not isinstance(reviewer, str):
        flash("Your account has no reviewer identity; the operator can link one (recsys users link).")
        return redirect(url_for("auth.account"))
    db = get_db()
    res = resources()
    top: Recommendations | PopularList | None = load_recommendations(db, res.cache, reviewer)
    top = top or load_popular(db, ALL_CATEGORIES)
    if top is not None:
        res.publisher().publish(impression(reviewer, top, "page"))
    return render_template("pages/result.html", reviewer=reviewer, top=top)


@bp.route("/popular")
@login_required
def popular() -> ResponseReturnValue:
    return render_template("pages/popular.html", popular=load_popular(get_db(), ALL_CATEGORIES))

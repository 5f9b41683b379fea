"""The product page, and what a shopper does there: rate it, open it from a recommendation, or just view it.

Every action is an ``Interaction`` on the ``interactions`` topic, keyed by the shopper's
reviewerID, for the online updater. A rating is a form POST (with its CSRF token) whose
delivery the broker confirms before the page says it is recorded. A click or a view is
reported by the page's script with a beacon (a POST, with the token), never by the GET that
renders the page, so a prefetch or a crawler records nothing.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import Conflict, NotFound

from recsys_core.contract import InteractionKind, Product
from recsys_web import inputs
from recsys_web.auth import logged_in_user, login_required
from recsys_web.db import get_db
from recsys_web.recommendations import interaction, load_product, load_similar
from recsys_web.resources import resources

bp = Blueprint("products", __name__)

FROM_RECOMMENDATION = "rec"
"""``?via=rec`` on a product link says the shopper came from a recommendation: their opening it is a click."""


@bp.route("/product/<asin>")
@login_required
def product(asin: str) -> ResponseReturnValue:
    found = _product(asin)
    similar = load_similar(get_db(), found.asin)
    kind = "click" if request.args.get("via") == FROM_RECOMMENDATION else "view"
    return render_template("pages/product.html", product=found, similar=similar.items if similar else [], kind=kind)


@bp.route("/product/<asin>/rate", methods=["POST"])
@login_required
def rate(asin: str) -> ResponseReturnValue:
    found = _product(asin)
    try:
        rating = inputs.stars(inputs.optional_field("rating"))
    except inputs.InvalidInput as exc:
        flash(exc.description or "Invalid rating.", "error")
        return redirect(url_for("products.product", asin=found.asin), code=303)
    event = interaction(_own_reviewer(), found.asin, "rate", rating)
    if not resources().ratings().deliver(event):
        flash("Your rating could not be recorded just now. Please try again in a moment.", "error")
        return render_template("pages/product.html", product=found, similar=[], kind=None), 503
    flash(f"Your {rating:.0f}-star rating of {found.name} is recorded. Your recommendations follow it in a moment.")
    return redirect(url_for("products.product", asin=found.asin), code=303)


@bp.route("/product/<asin>/seen", methods=["POST"])
@login_required
def seen(asin: str) -> ResponseReturnValue:
    """The page's beacon: the shopper opened this product, from a recommendation (click) or not (view)."""
    found = _product(asin)
    sent = inputs.field("kind")
    if sent not in ("click", "view"):
        raise inputs.InvalidInput("kind is click or view")
    kind: InteractionKind = "click" if sent == "click" else "view"
    resources().interactions().publish(interaction(_own_reviewer(), found.asin, kind))
    return "", 204


def _product(asin: str) -> Product:
    found = load_product(get_db(), inputs.asin(asin))
    if found is None:
        raise NotFound("There is no such product.")
    return found


def _own_reviewer() -> str:
    reviewer = logged_in_user().get("reviewerID")
    if not isinstance(reviewer, str):
        raise Conflict("Your account has no reviewer identity yet.")
    return reviewer

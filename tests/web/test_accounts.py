"""Ownership: an account owns only its own reviewer identity; the operator links accounts to
reviewers from the data and grants the analyst role; an analyst's every view is audited; and a
second account, tried as an attacker would, reaches none of the first account's data."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pymongo.database import Database

from recsys_cli.main import main
from recsys_core import mongo
from recsys_core.contract import Interaction
from recsys_core.settings import Settings
from recsys_web import accounts
from tests.web.conftest import (
    Catalog,
    SSEReader,
    TopicReader,
    csrf_token,
    event_for,
    forwarded_until,
    login,
    open_stream,
    register,
)


def account(db: Database[mongo.Document], email: str) -> mongo.Document:
    found = db[mongo.USERS].find_one({"email": email})
    assert found is not None
    return found


def test_a_shopper_cannot_claim_a_reviewer_id(client: FlaskClient, db: Database[mongo.Document], catalog: Catalog):
    form = {"csrf_token": csrf_token(client, "/auth/register"), "email": "claim@example.org"}
    form |= {"password": "correct horse battery", "reviewerID": catalog.reviewer}
    assert client.post("/auth/register", data=form).status_code == 302
    own = account(db, "claim@example.org")["reviewerID"]
    assert own.startswith("web-")
    assert own != catalog.reviewer
    login(client, "claim@example.org")
    token = csrf_token(client, "/auth/account")
    assert client.post("/auth/account", data={"csrf_token": token, "reviewerID": catalog.reviewer}).status_code == 405
    assert account(db, "claim@example.org")["reviewerID"] == own
    assert catalog.titles[0] not in client.get("/result").get_data(as_text=True)


def test_the_operator_links_an_account_to_a_reviewer_from_the_data(
    app: Flask, db: Database[mongo.Document], catalog: Catalog, capsys: pytest.CaptureFixture[str]
) -> None:
    client, other = app.test_client(), app.test_client()
    register(client, "op@example.org")
    register(other, "holder@example.org")
    login(client, "op@example.org")
    assert main(["users", "link", "op@example.org", catalog.reviewer]) == 0
    assert account(db, "op@example.org")["reviewerID"] == catalog.reviewer
    assert client.get("/result").location.endswith("/auth/login")  # the link ended its sessions
    login(client, "op@example.org")
    assert catalog.titles[0] in client.get("/result").get_data(as_text=True)
    entry = db[mongo.AUDIT].find_one({"action": "link"})
    assert entry is not None
    assert (entry["reviewerID"], entry["target_email"]) == (catalog.reviewer, "op@example.org")
    assert entry["actor"].startswith("operator:")

    capsys.readouterr()
    assert main(["users", "link", "holder@example.org", catalog.reviewer]) == 1  # one account per reviewer
    assert f"{catalog.reviewer} is already linked to op@example.org" in capsys.readouterr().err
    assert main(["users", "link", "holder@example.org", "NOSUCHREVIEWER"]) == 1  # only reviewers in the data
    assert "no reviewer NOSUCHREVIEWER" in capsys.readouterr().err
    assert main(["users", "link", "nobody@example.org", catalog.reviewer]) == 1
    assert main(["users", "link", "holder@example.org", "a b"]) == 1
    assert account(db, "holder@example.org")["reviewerID"].startswith("web-")


def test_an_analyst_reads_any_reviewers_list_read_only_and_every_view_is_audited(
    app: Flask,
    db: Database[mongo.Document],
    catalog: Catalog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = app.test_client()
    register(client, "ana@example.org")
    login(client, "ana@example.org")
    assert client.get(f"/api/v1/recommendations/{catalog.reviewer}").status_code == 403
    assert client.get(f"/analyst?reviewerID={catalog.reviewer}").status_code == 403
    assert main(["users", "grant", "ana@example.org", "analyst"]) == 0

    caplog.set_level(logging.INFO, logger="recsys_web.audit")
    api = client.get(f"/api/v1/recommendations/{catalog.reviewer}")
    assert api.status_code == 200
    assert [item["title"] for item in api.get_json()["items"]] == catalog.titles
    page = client.get(f"/analyst?reviewerID={catalog.reviewer}").get_data(as_text=True)
    assert "Product 1" in page
    assert "/rate" not in page  # read-only: nothing to act with
    unknown = client.get("/analyst?reviewerID=NOSUCHREVIEWER").get_data(as_text=True)
    assert "No personal list is published for NOSUCHREVIEWER." in unknown
    views = list(db[mongo.AUDIT].find({"action": "view"}, sort=[("at", 1)]))
    assert [(v["actor"], v["reviewerID"], v["surface"]) for v in views] == [
        ("ana@example.org", catalog.reviewer, "api"),
        ("ana@example.org", catalog.reviewer, "page"),
        ("ana@example.org", "NOSUCHREVIEWER", "page"),
    ]
    logged = [r.getMessage() for r in caplog.records if r.name == "recsys_web.audit" and " view " in r.getMessage()]
    assert logged == [
        f"audit: ana@example.org view reviewerID={reviewer} {{'surface': '{surface}'}}"
        for reviewer, surface in ((catalog.reviewer, "api"), (catalog.reviewer, "page"), ("NOSUCHREVIEWER", "page"))
    ]

    assert main(["users", "revoke", "ana@example.org", "analyst"]) == 0
    assert client.get(f"/api/v1/recommendations/{catalog.reviewer}").status_code == 403
    assert db[mongo.AUDIT].count_documents({"action": {"$in": ["grant", "revoke"]}}) == 2


def test_demo_logins_are_linked_to_reviewers_with_lists(app: Flask, db: Database[mongo.Document], catalog: Catalog):
    accounts.ensure_schema(db)
    [(email, password, reviewer)] = accounts.demo_logins(db, 3, operator="test")  # the catalog has one list
    assert (email, reviewer) == ("demo1@example.com", catalog.reviewer)
    client = app.test_client()
    assert login(client, email, password).status_code == 302
    assert catalog.titles[0] in client.get("/result").get_data(as_text=True)
    [(_, again, _)] = accounts.demo_logins(db, 3, operator="test")  # run again: a new password
    assert login(app.test_client(), email, password).status_code == 401
    assert login(app.test_client(), email, again).status_code == 302


def test_a_second_account_reaches_none_of_the_first_accounts_data(
    app: Flask,
    db: Database[mongo.Document],
    catalog: Catalog,
    publish,
    running_services: Settings,
) -> None:
    victim, attacker = app.test_client(), app.test_client()
    register(victim, "victim@example.org")
    assert main(["users", "link", "victim@example.org", catalog.reviewer]) == 0
    login(victim, "victim@example.org")
    register(attacker, "mallory@example.org")
    login(attacker, "mallory@example.org")
    own = account(db, "mallory@example.org")["reviewerID"]

    # Pages: only the attacker's own list (the popular one), never the victim's.
    result = attacker.get("/result").get_data(as_text=True)
    assert own in result
    assert catalog.reviewer not in result
    assert catalog.titles[0] not in result
    # API: the victim's reviewerID and one that exists nowhere get the same refusal.
    taken = attacker.get(f"/api/v1/recommendations/{catalog.reviewer}")
    nowhere = attacker.get("/api/v1/recommendations/NOSUCHREVIEWER")
    assert taken.status_code == nowhere.status_code == 403
    assert taken.get_json() == nowhere.get_json()
    assert attacker.get(f"/analyst?reviewerID={catalog.reviewer}").status_code == 403
    # Claiming the reviewerID: no form or field takes it.
    token = csrf_token(attacker, "/auth/account")
    assert attacker.post("/auth/account", data={"csrf_token": token, "reviewerID": catalog.reviewer}).status_code == 405
    assert account(db, "mallory@example.org")["reviewerID"] == own
    # A planted session id, or the victim's id in a forged cookie value, is no session.
    forged = app.test_client()
    forged.set_cookie("recsys_session", "guess" + "A" * 38)
    assert forged.get("/result").location.endswith("/auth/login")

    # Ratings: a rating names no reviewer; it is the attacker's own, whatever the form says.
    reader = TopicReader(running_services, running_services.topic_interactions)
    token = csrf_token(attacker, "/product/B000000002")
    rated = attacker.post(
        "/product/B000000002/rate", data={"csrf_token": token, "rating": "1", "reviewerID": catalog.reviewer}
    )
    assert rated.status_code == 303
    event = Interaction.decode(reader.find(own).value() or b"")
    assert event.reviewerID == own
    reader.consumer.close()

    # Stream: the victim's event reaches the victim's stream and not the attacker's.
    streams: dict[str, SSEReader] = {catalog.reviewer: open_stream(victim), own: open_stream(attacker)}
    for stream in streams.values():
        stream.until(lambda b: b.event == "status")
    produced = [publish(event_for(who, title=f"for {who}")) for who in (catalog.reviewer, own)]
    for who, stream in streams.items():
        received = [event["reviewerID"] for event in forwarded_until(stream, produced)]
        assert received == [who], json.dumps(received)
        stream.close()

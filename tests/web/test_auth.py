"""Accounts: register, log in, log out, throttling, CSRF, session cookie settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from pymongo.database import Database

from recsys_core import mongo
from tests.web.conftest import PASSWORD, csrf_token, login, make_app, new_reviewer, register


def test_register_login_logout(client: FlaskClient, db: Database[mongo.Document]) -> None:
    reviewer = new_reviewer("REG")
    response = register(client, "Ann@Example.org", reviewer)
    assert response.status_code == 302
    assert response.location.endswith("/auth/login")
    user = db[mongo.USERS].find_one({"email": "ann@example.org"})
    assert user is not None
    assert user["reviewerID"] == reviewer
    assert user["password_hash"].startswith("scrypt:")
    assert PASSWORD not in user["password_hash"]

    response = login(client, "ann@example.org")
    assert response.status_code == 302
    assert response.location.endswith("/result")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert client.get("/auth/account").status_code == 200

    response = client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/auth/account")})
    assert response.status_code == 302
    assert client.get("/auth/account").location.endswith("/auth/login")


def test_wrong_password_and_unknown_email_are_refused_alike(client: FlaskClient) -> None:
    register(client, "bob@example.org")
    wrong = login(client, "bob@example.org", "not the password")
    unknown = login(client, "nobody@example.org", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.get_data(as_text=True)
    assert "Wrong email or password." in unknown.get_data(as_text=True)
    assert client.get("/result").location.endswith("/auth/login")


def test_registration_validates_input(client: FlaskClient) -> None:
    assert register(client, "not-an-email").status_code == 400
    assert register(client, "a" * 250 + "@example.org").status_code == 400
    assert register(client, "short@example.org", password="2short").status_code == 400
    assert register(client, "odd@example.org", reviewer="A B<>").status_code == 400
    assert register(client, "ok@example.org").status_code == 302
    duplicate = register(client, "OK@example.org")
    assert duplicate.status_code == 409
    assert "already exists" in duplicate.get_data(as_text=True)


def test_a_reviewer_id_belongs_to_one_account(client: FlaskClient, user_client) -> None:
    reviewer = new_reviewer("TAKEN")
    user_client(reviewer)
    response = register(client, "second@example.org", reviewer)
    assert response.status_code == 409
    assert "already linked" in response.get_data(as_text=True)
    other = user_client(None)
    response = other.post(
        "/auth/account", data={"csrf_token": csrf_token(other, "/auth/account"), "reviewerID": reviewer}
    )
    assert response.status_code == 409


def test_repeated_failures_are_throttled_per_email_and_ip(client: FlaskClient, app, db) -> None:
    register(client, "carol@example.org")
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert login(client, "carol@example.org", "wrong password!").status_code == 401
    locked = login(client, "carol@example.org")  # even the right password now waits
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) > 0
    other_ip = app.test_client()
    assert login(other_ip, "carol@example.org", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 302

    # The window ends: MongoDB's TTL monitor deletes the count (it runs once a minute; the
    # check does not wait for it). Move the window into the past instead of sleeping.
    failures = db[mongo.LOGIN_FAILURES]
    assert failures.index_information()["expires_at_ttl"]["expireAfterSeconds"] == 0
    failures.update_many({}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}})
    assert login(client, "carol@example.org").status_code == 302
    assert failures.count_documents({}) == 0  # a success clears the count


def test_forms_refuse_missing_or_forged_csrf_tokens(client: FlaskClient, db: Database[mongo.Document]) -> None:
    form = {"email": "eve@example.org", "password": PASSWORD}
    assert client.post("/auth/register", data=form).status_code == 400
    csrf_token(client)  # the session has a token now; a forged one still fails
    assert client.post("/auth/register", data={**form, "csrf_token": "forged"}).status_code == 400
    assert client.post("/auth/register", json=form, headers={"X-CSRF-Token": "forged"}).status_code == 400
    assert db[mongo.USERS].count_documents({}) == 0


def test_json_bodies_and_forms_reject_operator_injection(client: FlaskClient) -> None:
    register(client, "dan@example.org")
    token = csrf_token(client)
    injected = client.post(
        "/auth/login", json={"email": "dan@example.org", "password": {"$ne": None}}, headers={"X-CSRF-Token": token}
    )
    assert injected.status_code == 400
    assert "plain string" in injected.get_data(as_text=True)
    bracket = client.post("/auth/login", data={"csrf_token": token, "email[$ne]": "x", "password": "x"})
    assert bracket.status_code == 400
    json_login = {"email": "dan@example.org", "password": PASSWORD}
    ok = client.post("/auth/login", json=json_login, headers={"X-CSRF-Token": token})
    assert ok.status_code == 302


def test_secure_cookies_can_be_required(db) -> None:
    with make_app(SESSION_COOKIE_SECURE=True) as app:
        client = app.test_client()
        register(client, "sec@example.org")
        cookie = login(client, "sec@example.org").headers["Set-Cookie"]
        assert "Secure" in cookie

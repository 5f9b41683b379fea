"""Accounts: registration, login, logout, server-side sessions and their timeouts, the password
policy and hashes, the change-password form, throttling per account and per address, CSRF,
cookie flags and caching."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from pymongo.database import Database
from werkzeug.security import generate_password_hash

from recsys_core import mongo
from recsys_core.settings import Settings
from recsys_web import passwords
from recsys_web.server import cookie_setting_problem
from tests.web.conftest import PASSWORD, csrf_token, login, make_app, register, wait_until

NEW_PASSWORD = "a brand new passphrase"
COOKIE = "recsys_session"


def session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def set_session_expiration(client: FlaskClient, db: Database[mongo.Document], expiration: datetime) -> None:
    """Move the stored expiry as another worker's write would, and wait until this app's document
    cache has seen it (the change stream's delay: an app reads a session it keeps from memory)."""
    sid = session_cookie(client)
    db[mongo.SESSIONS].update_one({"id": sid}, {"$set": {"expiration": expiration}})
    cache = client.application.extensions["recsys"].cache
    wait_until(lambda: not cache.holds(mongo.SESSIONS, sid), "the app's cache to drop the changed session")


def change_password(client: FlaskClient, current: str, new: str, **kwargs: Any) -> Any:
    form = {"csrf_token": csrf_token(client, "/auth/password"), "current_password": current, "new_password": new}
    return client.post("/auth/password", data=form, **kwargs)


def test_register_login_logout(client: FlaskClient, db: Database[mongo.Document]) -> None:
    response = register(client, "Ann@Example.org")
    assert response.status_code == 302
    assert response.location.endswith("/auth/login")
    user = db[mongo.USERS].find_one({"email": "ann@example.org"})
    assert user is not None
    assert user["reviewerID"].startswith("web-")
    # Argon2id at OWASP's first setting: 19 MiB, 2 iterations, 1 lane.
    assert user["password_hash"].startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in user["password_hash"]

    response = login(client, "ann@example.org")
    assert response.status_code == 302
    assert response.location.endswith("/result")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for flag in ("HttpOnly", "SameSite=Lax", "Secure"):  # Secure by default
        assert flag in cookie
    assert client.get("/auth/account").status_code == 200

    response = client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/auth/account")})
    assert response.status_code == 302
    assert client.get("/auth/account").location.endswith("/auth/login")


def test_the_session_lives_on_the_server_and_logout_ends_it_for_a_copied_cookie(
    app: Flask, client: FlaskClient, db: Database[mongo.Document]
) -> None:
    register(client, "copy@example.org")
    login(client, "copy@example.org")
    stolen = session_cookie(client)
    assert db[mongo.SESSIONS].count_documents({"id": stolen}) == 1  # the cookie is only an id
    assert len(stolen) == 43  # 32 random bytes, URL-safe base64
    thief = app.test_client()
    thief.set_cookie(COOKIE, stolen)
    assert thief.get("/auth/account").status_code == 200

    client.post("/auth/logout", data={"csrf_token": csrf_token(client, "/auth/account")})
    assert db[mongo.SESSIONS].count_documents({"id": stolen}) == 0
    assert thief.get("/auth/account").location.endswith("/auth/login")


def test_login_rotates_the_session_id(app: Flask, client: FlaskClient, db: Database[mongo.Document]) -> None:
    register(client, "fix@example.org")
    csrf_token(client)  # a visitor's session (with its CSRF token) exists before login
    before = session_cookie(client)
    planted = app.test_client()  # an attacker who planted that id in the victim's browser
    planted.set_cookie(COOKIE, before)
    login(client, "fix@example.org")
    after = session_cookie(client)
    assert after != before
    assert db[mongo.SESSIONS].count_documents({"id": before}) == 0
    assert planted.get("/auth/account").location.endswith("/auth/login")
    assert client.get("/auth/account").status_code == 200


def test_an_idle_session_ends(client: FlaskClient, db: Database[mongo.Document]) -> None:
    register(client, "idle@example.org")
    login(client, "idle@example.org")
    sid = session_cookie(client)
    stored = db[mongo.SESSIONS].find_one({"id": sid})
    assert stored is not None
    # Each request moves the expiry PERMANENT_SESSION_LIFETIME (30 min) on; MongoDB's TTL index deletes it after.
    assert timedelta(minutes=29) < stored["expiration"] - datetime.now(UTC) <= timedelta(minutes=30)
    assert db[mongo.SESSIONS].index_information()["expiration_ttl"]["expireAfterSeconds"] == 0
    # Idle for longer than that (moved, not slept): the TTL monitor has not run yet, and it is still over.
    set_session_expiration(client, db, datetime.now(UTC) - timedelta(seconds=1))
    assert client.get("/auth/account").location.endswith("/auth/login")


def test_an_unchanged_session_is_written_back_only_once_its_refresh_is_a_minute_old(
    client: FlaskClient, db: Database[mongo.Document]
) -> None:
    register(client, "refresh@example.org")
    login(client, "refresh@example.org")
    client.get("/auth/account")  # its form's CSRF token: a change, stored at once
    sid = session_cookie(client)
    # Refreshed 30 s ago: requests neither write the session nor re-set its cookie.
    thirty_s_ago = datetime.now(UTC) + timedelta(minutes=30) - timedelta(seconds=30)
    set_session_expiration(client, db, thirty_s_ago)
    answer = client.get("/auth/account")
    assert answer.status_code == 200
    assert "Set-Cookie" not in answer.headers
    stored = db[mongo.SESSIONS].find_one({"id": sid})
    assert stored is not None
    assert abs(stored["expiration"] - thirty_s_ago) < timedelta(milliseconds=1)
    # Refreshed 2 minutes ago: the next request moves the expiry a full idle lifetime on again.
    set_session_expiration(client, db, thirty_s_ago - timedelta(minutes=2))
    answer = client.get("/auth/account")
    assert answer.status_code == 200
    assert "Set-Cookie" in answer.headers
    stored = db[mongo.SESSIONS].find_one({"id": sid})
    assert stored is not None
    assert timedelta(minutes=29) < stored["expiration"] - datetime.now(UTC) <= timedelta(minutes=30)


def test_a_session_ends_at_its_absolute_lifetime(db: Database[mongo.Document]) -> None:
    with make_app(SESSION_ABSOLUTE_LIFETIME=timedelta(0)) as app:
        client = app.test_client()
        register(client, "abs@example.org")
        assert login(client, "abs@example.org").status_code == 302
        assert client.get("/auth/account").location.endswith("/auth/login")  # over at once, however active
    with make_app() as app:  # the default: 12 hours
        client = app.test_client()
        login(client, "abs@example.org")
        assert client.get("/auth/account").status_code == 200


def test_registration_gives_one_answer_whether_or_not_the_email_is_taken(
    client: FlaskClient, db: Database[mongo.Document]
) -> None:
    first = register(client, "taken@example.org")
    first_page = client.get(first.location).get_data(as_text=True)
    again = register(client, "TAKEN@example.org", password="somebody else's password")
    again_page = client.get(again.location).get_data(as_text=True)
    assert (first.status_code, first.location) == (again.status_code, again.location) == (302, "/auth/login")

    def without_token(page: str) -> str:
        return page.split('name="csrf_token" value="')[0]

    assert without_token(first_page) == without_token(again_page)
    assert "If it had one already, nothing was changed." in first_page
    assert db[mongo.USERS].count_documents({}) == 1
    assert login(client, "taken@example.org").status_code == 302  # the owner's password still works


def test_wrong_password_and_unknown_email_are_refused_alike(client: FlaskClient) -> None:
    register(client, "bob@example.org")
    wrong = login(client, "bob@example.org", "not the password")
    unknown = login(client, "nobody@example.org", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.get_data(as_text=True)
    assert "Wrong email or password." in unknown.get_data(as_text=True)
    assert client.get("/result").location.endswith("/auth/login")


def test_the_password_policy(client: FlaskClient, db: Database[mongo.Document]) -> None:
    assert register(client, "not-an-email").status_code == 400
    assert register(client, "a" * 250 + "@example.org").status_code == 400
    assert register(client, "short@example.org", password="elevenchars").status_code == 400
    assert register(client, "long@example.org", password="x" * 129).status_code == 400
    common = register(client, "common@example.org", password="Qwerty123456")  # in the list, in any case
    assert common.status_code == 400
    assert "most common" in common.get_data(as_text=True)
    assert db[mongo.USERS].count_documents({}) == 0
    assert register(client, "twelve@example.org", password="plum-orbit-4").status_code == 302
    assert register(client, "max@example.org", password="é" * 128).status_code == 302
    assert login(client, "max@example.org", "é" * 128).status_code == 302
    assert db[mongo.USERS].count_documents({}) == 2


def test_the_common_password_list_is_packaged() -> None:
    common = passwords.common_passwords()
    assert len(common) > 19_000
    assert {"password", "123456", "qwerty123456", "1qaz2wsx3edc"} <= common


def test_a_legacy_scrypt_hash_is_upgraded_at_the_next_login(client: FlaskClient, db: Database[mongo.Document]) -> None:
    register(client, "old@example.org")
    legacy = generate_password_hash(PASSWORD, method="scrypt")  # werkzeug's, as accounts were made before
    db[mongo.USERS].update_one({"email": "old@example.org"}, {"$set": {"password_hash": legacy}})
    assert login(client, "old@example.org", "wrong password here").status_code == 401
    assert db[mongo.USERS].find_one({"email": "old@example.org"})["password_hash"] == legacy  # type: ignore[index]
    assert login(client, "old@example.org").status_code == 302
    upgraded = db[mongo.USERS].find_one({"email": "old@example.org"})["password_hash"]  # type: ignore[index]
    assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert login(client, "old@example.org").status_code == 302  # and verifies from now on


def test_changing_the_password_ends_the_other_sessions(app: Flask, db: Database[mongo.Document]) -> None:
    phone, laptop = app.test_client(), app.test_client()
    register(phone, "pat@example.org")
    login(phone, "pat@example.org")
    login(laptop, "pat@example.org")
    assert laptop.get("/auth/account").status_code == 200

    assert change_password(phone, "not the password", NEW_PASSWORD).status_code == 401
    assert change_password(phone, PASSWORD, "password1234").status_code == 400  # common
    assert change_password(phone, PASSWORD, "short").status_code == 400
    form = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert phone.post("/auth/password", data=form).status_code == 400  # no CSRF token
    before = session_cookie(phone)
    changed = change_password(phone, PASSWORD, NEW_PASSWORD)
    assert changed.status_code == 303
    assert session_cookie(phone) != before  # this session goes on, under a new id
    assert phone.get("/auth/account").status_code == 200
    assert laptop.get("/auth/account").location.endswith("/auth/login")  # the other one has ended
    assert login(app.test_client(), "pat@example.org").status_code == 401
    assert login(app.test_client(), "pat@example.org", NEW_PASSWORD).status_code == 302


def test_password_attempts_back_off_exponentially_per_account(
    db: Database[mongo.Document],
) -> None:
    with make_app(LOGIN_FREE_ATTEMPTS=2, LOGIN_BACKOFF_BASE_S=2.0, LOGIN_BACKOFF_MAX_S=5.0) as app:
        client = app.test_client()
        register(client, "carol@example.org")
        backoff = db[mongo.LOGIN_BACKOFF]

        def wrong(address: str = "127.0.0.1") -> Any:
            return login(client, "carol@example.org", "wrong password!", environ_base={"REMOTE_ADDR": address})

        def wait_is_over() -> None:  # moved, not slept
            backoff.update_one({}, {"$set": {"next_at": datetime.now(UTC) - timedelta(seconds=1)}})

        assert wrong().status_code == 401
        assert wrong().status_code == 401  # the free attempts
        assert wrong().status_code == 401  # goes through, and the next must wait 2 s
        refused = login(client, "carol@example.org")  # even with the right password
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 2
        assert wrong("10.9.9.9").status_code == 429  # per account: another address waits too
        assert backoff.find_one()["count"] == 3  # type: ignore[index]  # refused attempts are not counted
        wait_is_over()
        assert wrong().status_code == 401
        assert 3 <= int(wrong().headers["Retry-After"]) <= 4  # doubled
        wait_is_over()
        assert wrong().status_code == 401
        assert 4 <= int(wrong().headers["Retry-After"]) <= 5  # capped at LOGIN_BACKOFF_MAX_S: a delay, not a lock
        wait_is_over()
        assert login(client, "carol@example.org").status_code == 302
        assert backoff.count_documents({}) == 0  # a success starts afresh
        # Unknown emails back off the same way, so the throttle tells nothing about which exist.
        for _ in range(3):
            assert login(client, "ghost@example.org", "wrong password!").status_code == 401
        assert login(client, "ghost@example.org", "wrong password!").status_code == 429
        assert backoff.index_information()["expires_at_ttl"]["expireAfterSeconds"] == 0


def test_concurrent_attempts_cannot_race_past_the_count(db: Database[mongo.Document]) -> None:
    """The attempt is reserved atomically before the slow hash is checked."""
    with make_app(LOGIN_FREE_ATTEMPTS=3, RATELIMIT_LOGIN="1000 per minute") as app:
        register(app.test_client(), "race@example.org")
        clients = [app.test_client() for _ in range(12)]
        tokens = [csrf_token(c) for c in clients]
        start = threading.Barrier(len(clients))
        statuses: list[int] = []

        def attempt(client: FlaskClient, token: str) -> None:
            form = {"csrf_token": token, "email": "race@example.org", "password": "wrong password!"}
            start.wait()
            statuses.append(client.post("/auth/login", data=form).status_code)

        threads = [threading.Thread(target=attempt, args=pair) for pair in zip(clients, tokens, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert len(statuses) == 12
    # The 3 free attempts and the one that starts the wait reached the hash; the rest were refused before it.
    assert sorted(statuses) == [401] * 4 + [429] * 8


def test_each_address_is_limited_across_accounts(db: Database[mongo.Document]) -> None:
    with make_app(RATELIMIT_LOGIN="3 per minute", RATELIMIT_REGISTER="2 per hour") as app:
        client = app.test_client()
        assert register(client, "r1@example.org").status_code == 302
        assert register(client, "r2@example.org").status_code == 302
        assert register(client, "r3@example.org").status_code == 429  # registration is limited too
        for n in range(3):  # credential stuffing: one guess each at many accounts
            assert login(client, f"user{n}@example.org", "guess number one").status_code == 401
        limited = login(client, "user3@example.org", "guess number one")
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) > 0
        assert login(client, "r1@example.org", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 302
        assert db[mongo.RATE_LIMIT_WINDOWS].count_documents({}) > 0  # kept in MongoDB, for every worker


def test_password_changes_are_limited_per_address(db: Database[mongo.Document]) -> None:
    with make_app(RATELIMIT_PASSWORD_CHANGE="2 per hour") as app:
        client = app.test_client()
        register(client, "chg@example.org")
        login(client, "chg@example.org")
        assert change_password(client, "wrong guess one", NEW_PASSWORD).status_code == 401
        assert change_password(client, "wrong guess two", NEW_PASSWORD).status_code == 401
        assert change_password(client, PASSWORD, NEW_PASSWORD).status_code == 429


@pytest.mark.parametrize("trusted", [0, 1])
def test_forwarded_addresses_count_only_behind_a_trusted_proxy(db: Database[mongo.Document], trusted: int) -> None:
    with make_app(RATELIMIT_LOGIN="2 per minute", TRUSTED_PROXIES=trusted) as app:
        client = app.test_client()
        answers = [
            login(client, "x@example.org", "guess number one", headers={"X-Forwarded-For": f"203.0.113.{n}"})
            for n in range(4)
        ]
    if trusted:  # four clients behind the proxy, each with a limit of its own
        assert [a.status_code for a in answers] == [401, 401, 401, 401]
    else:  # a forged header is ignored: one address, limited
        assert [a.status_code for a in answers] == [401, 401, 429, 429]


def test_forms_refuse_missing_or_forged_csrf_tokens(client: FlaskClient, db: Database[mongo.Document]) -> None:
    form = {"email": "eve@example.org", "password": PASSWORD}
    assert client.post("/auth/register", data=form).status_code == 400
    csrf_token(client)  # the session has a token now; a forged one still fails
    assert client.post("/auth/register", data={**form, "csrf_token": "forged"}).status_code == 400
    assert client.post("/auth/register", json=form, headers={"X-CSRF-Token": "forged"}).status_code == 400
    assert client.post("/auth/logout").status_code == 400
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


def test_personal_answers_are_never_cached(client: FlaskClient, catalog: Any) -> None:
    register(client, "cache@example.org", catalog.reviewer)
    login(client, "cache@example.org")
    for path in ("/result", "/auth/account", "/auth/password", f"/api/v1/recommendations/{catalog.reviewer}"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path
    assert "no-store" not in client.get("/static/style.css").headers.get("Cache-Control", "")


def test_cookies_without_secure_only_for_a_loopback_server() -> None:
    insecure = Settings(web_cookie_secure=False)
    assert cookie_setting_problem(insecure, "127.0.0.1") is None
    assert cookie_setting_problem(insecure, "localhost") is None
    assert cookie_setting_problem(insecure, "::1") is None
    assert "loopback" in (cookie_setting_problem(insecure, "0.0.0.0") or "")  # noqa: S104 - the refused case
    assert "loopback" in (cookie_setting_problem(insecure, "192.0.2.10") or "")
    assert cookie_setting_problem(Settings(), "0.0.0.0") is None  # noqa: S104 - Secure cookies: any address


def test_insecure_cookies_are_an_explicit_setting(db: Database[mongo.Document]) -> None:
    with make_app(SESSION_COOKIE_SECURE=False) as app:
        client = app.test_client()
        register(client, "plain@example.org")
        cookie = login(client, "plain@example.org").headers["Set-Cookie"]
        assert "Secure" not in cookie
        assert "HttpOnly" in cookie

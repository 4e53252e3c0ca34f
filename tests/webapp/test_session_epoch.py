"""Sign-out and a new password end every session: cookies copied before and API tokens alike.

Each user has a session epoch that both carry; sign-out and password change bump it.
"""

from __future__ import annotations

import shutil
import sqlite3

import requests
from flask import Flask

from tests.clients.webapp_api import ALICE, BOB, PASSWORD
from tests.servers import free_port, start_webapp
from tests.webapp.conftest import CSRF_RE, app_config, csrf_token, login, sign_in
from webapp import create_app
from webapp.accounts.passwords import set_password as change_password
from webapp.accounts.tokens import _serializer
from webapp.broadcasting.unit_of_work import commit
from webapp.extensions import db
from webapp.orders.models import User
from webapp.seed import seed_database

SESSION_COOKIE = "session"


def set_password(app: Flask, email: str, password: str) -> None:
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == email))
        commit(change_password(user, password))


def test_a_cookie_copied_before_sign_out_no_longer_works(tmp_path):
    """Against a running server, as the attack was made: a copy of the cookie taken while
    signed in must not outlive the sign-out."""
    webapp = start_webapp(free_port(), tmp_path / "web.sqlite3")
    try:
        browser = requests.Session()
        page = browser.get(f"{webapp.url}/login")
        token = CSRF_RE.search(page.text).group(1)
        signed_in = browser.post(f"{webapp.url}/login", allow_redirects=False, data={
            "email": ALICE, "password": PASSWORD, "csrf_token": token})
        assert signed_in.status_code == 302
        copy = {SESSION_COOKIE: browser.cookies[SESSION_COOKIE]}
        assert requests.get(f"{webapp.url}/orders", cookies=copy,
                            allow_redirects=False).status_code == 200
        assert browser.post(f"{webapp.url}/logout", data={"csrf_token": token},
                            allow_redirects=False).status_code == 302
        assert requests.get(f"{webapp.url}/orders", cookies=copy,
                            allow_redirects=False).status_code == 302  # to the sign-in page
        assert requests.get(f"{webapp.url}/api/orders", cookies=copy).status_code == 401
    finally:
        webapp.stop()


def test_sign_out_in_the_browser_revokes_api_tokens(client):
    bearer = login(client, ALICE)
    assert client.get("/api/orders", headers=bearer).status_code == 200
    token = sign_in(client, ALICE)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    answer = client.get("/api/orders", headers=bearer)
    assert answer.status_code == 401
    assert "revoked" in answer.json["error"]


def test_api_logout_revokes_the_token_and_sessions_of_that_user_only(app, client):
    alice, bob = login(client, ALICE), login(client, BOB)
    browser = app.test_client()
    sign_in(browser, ALICE)
    assert client.post("/api/logout", headers=alice).status_code == 204
    assert client.get("/api/orders", headers=alice).status_code == 401
    assert browser.get("/orders").status_code == 302
    assert client.get("/api/orders", headers=bob).status_code == 200
    assert client.get("/api/orders", headers=login(client, ALICE)).status_code == 200


def test_api_logout_needs_a_caller(client):
    assert client.post("/api/logout").status_code == 401


def test_a_new_password_ends_sessions_and_tokens(app, client):
    bearer = login(client, ALICE)
    sign_in(client, ALICE)
    set_password(app, ALICE, "a new password")
    assert client.get("/api/orders", headers=bearer).status_code == 401
    assert client.get("/orders").status_code == 302
    answer = client.post("/api/login", json={"email": ALICE, "password": "a new password"})
    assert answer.status_code == 200


def test_a_token_without_an_epoch_is_refused(app, client):
    with app.app_context():
        legacy = _serializer().dumps({"uid": 2})
    answer = client.get("/api/orders", headers={"Authorization": f"Bearer {legacy}"})
    assert answer.status_code == 401


def test_seed_adds_the_column_to_a_database_made_before_it(seeded_template, tmp_path):
    path = tmp_path / "old.sqlite3"
    shutil.copy(seeded_template, path)
    with sqlite3.connect(path) as old:
        old.execute("ALTER TABLE users DROP COLUMN session_epoch")
        old.execute("DROP TABLE alembic_version")  # made by db.create_all(), before migrations
    app = create_app(app_config(path))
    with app.app_context():
        seed_database()
        db.engine.dispose()
    client = app.test_client()
    bearer = login(client, ALICE)
    assert client.get("/api/orders", headers=bearer).status_code == 200
    answer = client.post("/login", data={"email": BOB, "password": PASSWORD,
                                         "csrf_token": csrf_token(client)})
    assert answer.status_code == 302


def test_an_order_read_with_its_caller_answers_as_the_caller_is(app, client):
    """The order endpoints read a token's user and the order in one query: a revoked token is
    a 401 even for an order that exists, another customer's order a 404 like none, and a
    cookie's caller (loaded by Flask-Login) sees her own."""
    alice, bob = login(client, ALICE), login(client, BOB)
    placed = client.post("/api/orders", headers=alice,
                         json={"items": [{"product_id": 1, "quantity": 1}]})
    order_id = placed.json["order"]["id"]
    order = f"/api/orders/{order_id}"
    answer = client.get(order, headers=bob)
    assert answer.status_code == 404
    assert answer.json == {"error": f"order {order_id} does not exist"}
    assert client.post(f"{order}/transition", headers=bob,
                       json={"status": "cancelled"}).status_code == 404
    browser = app.test_client()
    sign_in(browser, ALICE)
    assert browser.get(order).json["order"]["status"] == "pending"
    set_password(app, ALICE, "a new password")
    for answer in (client.get(order, headers=alice),
                   client.post(f"{order}/transition", headers=alice, json={"status": "cancelled"})):
        assert answer.status_code == 401 and "revoked" in answer.json["error"]
    assert browser.get(order).status_code == 401

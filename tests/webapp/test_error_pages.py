"""Errors on pages come in the app's layout (templates/error.html) with a way back; the JSON
API and /broadcasting keep JSON; a 500 never shows a traceback. HTML pages are not stored by
caches (Back shows the page fetched again), static files keep their caching."""

from __future__ import annotations

from html import unescape

import pytest
from flask import Flask, abort

from tests.webapp.conftest import ADMIN, ALICE, PASSWORD, csrf_token, sign_in
from webapp.web.errors import CSRF_MESSAGE, SERVER_ERROR_MESSAGE

LAYOUT = '<a class="brand" href="/">'  # base.html's header


def error_page(answer, code: int) -> str:
    assert answer.status_code == code
    assert answer.mimetype == "text/html"
    html = unescape(answer.get_data(as_text=True))
    assert LAYOUT in html
    assert f'data-code="{code}"' in html
    assert '<a href="/" id="error-back">' in html
    return html


@pytest.fixture
def failing_app(make_app) -> Flask:
    """An app with pages that fail on purpose: a bug (500), a 409 and a 413."""
    app = make_app()

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret detail: db password is hunter2")

    @app.get("/conflict")
    def conflict():
        abort(409, description="order 6 changed meanwhile; reload it and try again")

    @app.post("/big")
    def big():
        abort(413, description="that upload is too large; send at most 1 MB")

    @app.get("/api/boom")
    def api_boom():
        raise RuntimeError("secret detail")

    return app


def test_404_page_is_in_the_layout_with_a_way_back(client):
    html = error_page(client.get("/no-such-page"), 404)
    assert "Page not found" in html
    assert ">Sign in</a>" in html  # signed out: the way back is the sign-in page


def test_403_page_for_a_customer_on_the_dashboard(client):
    sign_in(client, ALICE)
    html = error_page(client.get("/admin/orders"), 403)
    assert "the orders dashboard is for admins" in html
    assert "Back to your orders</a>" in html


def test_405_page_keeps_allow(client):
    answer = client.get("/logout")
    error_page(answer, 405)
    assert "POST" in answer.headers["Allow"]


def test_a_form_without_its_csrf_token_gets_a_400_page_saying_what_to_do(client):
    answer = client.post("/login", data={"email": ADMIN, "password": PASSWORD})
    html = error_page(answer, 400)
    assert CSRF_MESSAGE in html


def test_400_page_for_a_bad_dashboard_filter(client):
    sign_in(client, ADMIN)
    html = error_page(client.get("/admin/orders?status=lost"), 400)
    assert "unknown status" in html


def test_409_and_413_pages(failing_app):
    client = failing_app.test_client()
    assert "changed meanwhile" in error_page(client.get("/conflict"), 409)
    assert "send at most 1 MB" in error_page(client.post("/big", data={
        "csrf_token": csrf_token(client)}), 413)


def test_429_page_after_too_many_failed_sign_ins(make_app):
    client = make_app(LOGIN_LIMIT_PER_ACCOUNT="1 per hour").test_client()
    data = {"email": ALICE, "password": "wrong", "csrf_token": csrf_token(client)}
    assert client.post("/login", data=data).status_code == 401
    answer = client.post("/login", data=data)
    assert "too many failed sign-ins" in error_page(answer, 429)
    assert int(answer.headers["Retry-After"]) >= 1


def test_500_page_hides_the_traceback_and_the_cause(failing_app):
    failing_app.testing = False  # as in production: the handler, not the exception, answers
    client = failing_app.test_client()
    html = error_page(client.get("/boom"), 500)
    assert SERVER_ERROR_MESSAGE in html
    assert "hunter2" not in html and "Traceback" not in html and "RuntimeError" not in html
    api = client.get("/api/boom")
    assert api.status_code == 500
    assert api.json == {"error": "internal error; see the server log"}


@pytest.mark.parametrize(("method", "path", "code"), [
    ("get", "/api/orders/999", 401), ("get", "/api/nope", 404),
    ("post", "/broadcasting/auth", 403), ("get", "/vendor/nope.js", 404),
])
def test_api_and_broadcasting_keep_json_errors(client, method, path, code):
    answer = getattr(client, method)(path)
    assert answer.status_code == code
    assert answer.mimetype == "application/json"
    assert isinstance(answer.json["error"], str) and answer.json["error"]


@pytest.mark.parametrize("path", ["/login", "/admin/orders", "/orders/5", "/no-such-page"])
def test_html_pages_are_no_store(client, path):
    sign_in(client, ADMIN)
    answer = client.get(path)
    assert answer.mimetype == "text/html"
    assert answer.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/static/app.css", "/vendor/echo.js"])
def test_static_files_keep_their_caching(client, path):
    answer = client.get(path)
    assert answer.status_code == 200
    assert "no-store" not in answer.headers.get("Cache-Control", "")
    answer.close()

"""Signing in goes back to where the user was (``?next=``, local paths only, never another
site); a signed-in user opening /login goes home; HEAD works on every page GET serves."""

from __future__ import annotations

import pytest

from tests.webapp.conftest import ADMIN, ALICE, PASSWORD, csrf_token, sign_in
from webapp.web.safe_redirect import local_path

# "///evil.example/path" has no host for urlsplit, but browsers read it as //evil.example/path.
HOSTILE = ["//evil.example", "///evil.example/path", "////evil.example",
           "https://evil.example/", "/\\evil.example", "\\\\evil.example",
           "javascript:alert(1)", "/\t/evil.example", "http:/evil.example", "evil.example",
           " /orders", "/orders\n", ""]


def sign_in_with(client, email: str, next_path: str | None, via_form: bool = True):
    """POST the login form as the page has it after ``/login?next=next_path``."""
    query = {} if next_path is None else {"next": next_path}
    page = client.get("/login", query_string=query).get_data(as_text=True)
    data = {"email": email, "password": PASSWORD, "csrf_token": csrf_token(client)}
    if via_form and next_path is not None:
        data["next"] = next_path
    return client.post("/login", data=data), page


@pytest.mark.parametrize("path", ["/orders/5", "/admin/orders?status=paid&q=ali", "/orders"])
def test_local_next_is_honoured_after_sign_in(client, path):
    answer, page = sign_in_with(client, ADMIN, path)
    assert 'name="next" type="hidden" value="' in page
    assert answer.status_code == 302
    assert answer.headers["Location"] == path


def test_login_page_keeps_next_in_a_hidden_field(client):
    page = client.get("/login?next=/orders/5").get_data(as_text=True)
    assert '<input id="next" name="next" type="hidden" value="/orders/5">' in page


@pytest.mark.parametrize("target", HOSTILE)
def test_next_never_leaves_the_site(client, target):
    assert local_path(target) is None
    answer, page = sign_in_with(client, ADMIN, target)
    assert answer.headers["Location"] == "/admin/orders"
    assert 'name="next" type="hidden" value=""' in page  # not carried into the form


def test_a_wrong_password_keeps_next_for_the_second_try(client):
    data = {"email": ALICE, "password": "wrong", "csrf_token": csrf_token(client),
            "next": "/orders/6"}
    page = client.post("/login", data=data).get_data(as_text=True)
    assert 'name="next" type="hidden" value="/orders/6"' in page
    answer = client.post("/login", data={**data, "password": PASSWORD})
    assert answer.headers["Location"] == "/orders/6"


def test_a_protected_page_sends_to_login_with_next_and_back(client):
    sent = client.get("/orders/6")
    assert sent.status_code == 302
    assert sent.headers["Location"] == "/login?next=%2Forders%2F6"
    page = client.get(sent.headers["Location"]).get_data(as_text=True)
    assert 'value="/orders/6"' in page


@pytest.mark.parametrize(("next_path", "home"), [(None, "/admin/orders"),
                                                  ("/orders/5", "/orders/5"),
                                                  ("//evil.example", "/admin/orders"),
                                                  ("///evil.example/x", "/admin/orders")])
def test_a_signed_in_user_opening_login_is_redirected(client, next_path, home):
    sign_in(client, ADMIN)
    answer = client.get("/login", query_string={} if next_path is None else {"next": next_path})
    assert answer.status_code == 302
    assert answer.headers["Location"] == home


def test_head_login_is_200_like_get(client):
    head, get = client.head("/login"), client.get("/login")
    assert (head.status_code, get.status_code) == (200, 200)
    assert head.data == b""
    assert head.headers["Content-Type"] == get.headers["Content-Type"]


@pytest.mark.parametrize("path", ["/", "/login", "/admin/orders", "/orders", "/orders/5",
                                  "/vendor/echo.js", "/static/app.css", "/api/orders",
                                  "/api/products", "/api/orders/5", "/api/activity",
                                  "/admin/orders?status=paid", "/orders/999"])
def test_head_answers_as_get_on_every_page(client, path):
    sign_in(client, ADMIN)
    head, get = client.head(path), client.get(path)
    assert head.status_code == get.status_code
    assert head.data == b""
    assert head.headers.get("Location") == get.headers.get("Location")

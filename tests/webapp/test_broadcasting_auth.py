"""POST /broadcasting/auth and /broadcasting/user-auth: signatures, denials, cookie and bearer."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from shared.payloads import loads
from shared.signatures import verify_channel, verify_user
from tests.servers import APP_KEY, APP_SECRET
from tests.webapp.conftest import ALICE, sign_in

SOCKET = "1234.5678"


def auth(client: FlaskClient, headers: dict | None, channel: str, socket_id: str = SOCKET):
    return client.post("/broadcasting/auth", headers=headers,
                       data={"socket_id": socket_id, "channel_name": channel})


def test_customer_gets_a_valid_signature_for_their_own_channel(client, alice):
    channel = "private-user.2.orders"  # alice is the second seeded user
    answer = auth(client, alice, channel)
    assert answer.status_code == 200, answer.json
    assert set(answer.json) == {"auth"}
    assert verify_channel(answer.json["auth"], APP_KEY, APP_SECRET, SOCKET, channel)


@pytest.mark.parametrize("channel", ["private-user.3.orders", "private-admin.orders",
                                     "private-nothing.registered", "presence-orders.1.viewers"])
def test_customer_is_refused_other_channels_with_403(client, alice, channel):
    # Order 1 is bob's: alice may not join its viewers.
    answer = auth(client, alice, channel)
    assert answer.status_code == 403
    assert "may not subscribe" in answer.json["error"]


def test_admin_gets_admin_orders(client, admin):
    answer = auth(client, admin, "private-admin.orders")
    assert answer.status_code == 200
    assert verify_channel(answer.json["auth"], APP_KEY, APP_SECRET, SOCKET,
                          "private-admin.orders")


def test_presence_answer_carries_signed_channel_data(client, admin):
    channel = "presence-orders.1.viewers"
    answer = auth(client, admin, channel)
    assert answer.status_code == 200
    channel_data = answer.json["channel_data"]
    assert loads(channel_data) == {"user_id": "1", "user_info": {"id": 1, "name": "Ada Admin"}}
    assert verify_channel(answer.json["auth"], APP_KEY, APP_SECRET, SOCKET, channel,
                          channel_data)


def test_signed_in_user_data(client, alice):
    answer = client.post("/broadcasting/user-auth", headers=alice, data={"socket_id": SOCKET})
    assert answer.status_code == 200
    user_data = answer.json["user_data"]
    assert loads(user_data) == {"id": "2", "user_info": {"name": "Alice Customer"}}
    assert verify_user(answer.json["auth"], APP_KEY, APP_SECRET, SOCKET, user_data)


@pytest.mark.parametrize("path", ["/broadcasting/auth", "/broadcasting/user-auth"])
def test_anonymous_callers_are_refused_with_403(client, path):
    answer = client.post(path, data={"socket_id": SOCKET, "channel_name": "private-admin.orders"})
    assert answer.status_code == 403
    assert "sign in" in answer.json["error"]


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer not-a-token"},
                                     {"Authorization": "Basic abc"}])
def test_bad_bearer_tokens_are_401(client, headers):
    answer = auth(client, headers, "private-admin.orders")
    assert answer.status_code == 401
    assert answer.json["error"]


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({"channel_name": "private-admin.orders"}, "socket_id is required"),
        ({"socket_id": "abc", "channel_name": "private-admin.orders"}, "socket_id must look"),
        ({"socket_id": "1.2.3", "channel_name": "private-admin.orders"}, "socket_id must look"),
        ({"socket_id": "1" * 21 + ".2", "channel_name": "private-admin.orders"},
         "socket_id must look"),
        ({"socket_id": SOCKET}, "channel_name is required"),
        ({"socket_id": SOCKET, "channel_name": "private-bad name"}, "channel name may contain"),
        ({"socket_id": SOCKET, "channel_name": "private-" + "x" * 200}, "longer than 200"),
        ({"socket_id": SOCKET, "channel_name": "admin.orders"}, "public channel"),
    ],
)
def test_malformed_requests_are_400_with_a_reason(client, admin, form, reason):
    answer = client.post("/broadcasting/auth", headers=admin, data=form)
    assert answer.status_code == 400
    assert reason in answer.json["error"]


def test_encrypted_channels_are_refused(client, admin):
    answer = auth(client, admin, "private-encrypted-admin.orders")
    assert answer.status_code == 403
    assert "encrypted" in answer.json["error"]


def test_json_bodies_are_accepted_too(client, admin):
    answer = client.post("/broadcasting/auth", headers=admin,
                         json={"socket_id": SOCKET, "channel_name": "private-admin.orders"})
    assert answer.status_code == 200


def test_session_cookie_works_with_the_csrf_header(client):
    token = sign_in(client, ALICE)
    answer = auth(client, {"X-CSRF-TOKEN": token}, "private-user.2.orders")
    assert answer.status_code == 200
    assert verify_channel(answer.json["auth"], APP_KEY, APP_SECRET, SOCKET,
                          "private-user.2.orders")


def test_session_cookie_without_csrf_header_is_refused(client):
    sign_in(client, ALICE)
    answer = auth(client, None, "private-user.2.orders")
    assert answer.status_code == 400
    assert "CSRF" in answer.json["error"]


def test_out_of_range_ids_in_channel_names_are_refused_not_500(client, admin):
    answer = auth(client, admin, f"presence-orders.{10**22}.viewers")
    assert answer.status_code == 403


def test_a_json_body_that_is_not_an_object_is_400(client, admin):
    answer = client.post("/broadcasting/auth", headers=admin, data="[1]",
                         content_type="application/json")
    assert answer.status_code == 400
    assert answer.json == {"error": "request body must be a JSON object"}

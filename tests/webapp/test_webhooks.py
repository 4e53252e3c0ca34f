"""The webhook endpoint of a running webapp: signed webhooks (posted by the test, as the
broadcaster will send them) set who is online and who views which order; the admins' channel
gets each change; duplicate, stale and unsigned webhooks change nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import inspect, text

from shared.signatures import sign_webhook
from tests.clients.webapp_api import ADMIN, ALICE, BOB, WebappApi
from tests.pusher_socket import PusherSocket
from tests.sdk import sdk_for
from tests.servers import APP_KEY, APP_SECRET, Broadcaster, Webapp, start_webapp
from tests.webapp.conftest import Databases
from tests.webapp.webhooks import (
    body_of,
    member_added,
    member_removed,
    now_ms,
    occupied,
    post_body,
    post_webhook,
    vacated,
)
from webapp.extensions import db
from webapp.schema import upgrade_schema

ADMIN_CHANNEL = "private-admin.orders"


@pytest.fixture
def webapp(server: Broadcaster, database: Databases) -> Iterator[Webapp]:
    web = start_webapp(server.port, database.seeded())
    yield web
    web.stop()


@pytest.fixture
def api(webapp: Webapp) -> WebappApi:
    return WebappApi(webapp.url)


@pytest.fixture
def admin_token(api: WebappApi) -> str:
    return api.login(ADMIN)[0]


@pytest.fixture
def admin_socket(sockets) -> PusherSocket:
    """An admin's socket on private-admin.orders, where the view's changes are broadcast."""
    socket = sockets()
    socket.joined(ADMIN_CHANNEL)
    return socket


def person(user: dict) -> dict:
    return {"id": user["id"], "name": user["name"]}


def user_channel(user: dict) -> str:
    return f"private-user.{user['id']}.orders"


def viewers_channel(order: dict) -> str:
    return f"presence-orders.{order['id']}.viewers"


def next_view(socket: PusherSocket) -> dict:
    """The next activity.updated on the admins' channel (order events there are skipped)."""
    event = socket.next_message(wanted=lambda message: message["event"] == "activity.updated")
    assert event is not None, "no activity.updated reached the admins' channel"
    assert event["channel"] == ADMIN_CHANNEL, event
    return json.loads(event["data"])


def no_view_then(socket: PusherSocket, server: Broadcaster) -> None:
    """No activity.updated came: the next such event or marker, sent now, is the marker."""
    sdk_for(server).trigger(ADMIN_CHANNEL, "marker", "{}")
    event = socket.next_message(wanted=lambda m: m["event"] in ("activity.updated", "marker"))
    assert event is not None and event["event"] == "marker", event


@pytest.mark.not_about_the_database
@pytest.mark.parametrize("headers", [
    {"X-Pusher-Key": APP_KEY, "X-Pusher-Signature": sign_webhook("wrong-secret", b"")},
    {"X-Pusher-Key": "unknown-key"},
    {"X-Pusher-Signature": "0" * 64},
    {},
], ids=["wrong signature", "unknown key", "no key", "neither header"])
def test_an_unsigned_or_wrongly_signed_webhook_is_refused_with_401(webapp, api, admin_token,
                                                                   headers):
    alice = api.login(ALICE)[1]
    body = body_of([occupied(user_channel(alice))], now_ms())
    if "X-Pusher-Key" in headers and "X-Pusher-Signature" not in headers:
        headers = {**headers, "X-Pusher-Signature": sign_webhook(APP_SECRET, body)}
    status, answer = post_body(webapp.url, body, headers)
    assert status == 401
    assert "X-Pusher-Signature" in answer["error"]
    assert api.request("GET", "/api/activity", admin_token)["online"] == []


@pytest.mark.not_about_the_database
def test_a_changed_body_is_refused(webapp, api, admin_token):
    alice = api.login(ALICE)[1]
    signed = body_of([vacated(user_channel(alice))], now_ms())
    sent = signed.replace(b"channel_vacated", b"channel_occupied")
    headers = {"X-Pusher-Key": APP_KEY, "X-Pusher-Signature": sign_webhook(APP_SECRET, signed)}
    status, _ = post_body(webapp.url, sent, headers)
    assert status == 401
    assert api.request("GET", "/api/activity", admin_token)["online"] == []


@pytest.mark.not_about_the_database
def test_a_signed_body_that_is_not_a_webhook_is_a_400(webapp):
    for body in (b"not json", b"[]", b'{"time_ms": "1", "events": []}', b'{"time_ms": 1}'):
        status, answer = post_body(webapp.url, body, {
            "X-Pusher-Key": APP_KEY, "X-Pusher-Signature": sign_webhook(APP_SECRET, body)})
        assert status == 400, body
        assert "time_ms" in answer["error"]


def test_occupancy_shows_a_customer_online_and_vacancy_offline(webapp, api, admin_token,
                                                               admin_socket):
    alice, bob = api.login(ALICE)[1], api.login(BOB)[1]
    start = now_ms()
    assert post_webhook(webapp.url, [occupied(user_channel(alice))], start)["changed"] == 1
    assert next_view(admin_socket) == {"online": [person(alice)], "viewing": []}

    post_webhook(webapp.url, [occupied(user_channel(bob))], start + 1)
    both = {"online": [person(alice), person(bob)], "viewing": []}
    assert next_view(admin_socket) == both
    assert api.request("GET", "/api/activity", admin_token) == both

    post_webhook(webapp.url, [vacated(user_channel(alice))], start + 2)
    assert next_view(admin_socket) == {"online": [person(bob)], "viewing": []}


def test_members_of_an_order_page_show_who_views_which_order(webapp, api, admin_socket):
    alice_token, alice = api.login(ALICE)
    admin = api.login(ADMIN)[1]
    order = api.place_order(alice_token, [1])
    channel = viewers_channel(order)
    start = now_ms()

    post_webhook(webapp.url, [member_added(channel, alice["id"])], start)
    alice_views = {"user": person(alice), "order_id": order["id"],
                   "order_number": order["order_number"]}
    assert next_view(admin_socket) == {"online": [], "viewing": [alice_views]}

    post_webhook(webapp.url, [member_added(channel, admin["id"])], start + 1)
    admin_views = {**alice_views, "user": person(admin)}
    assert next_view(admin_socket) == {"online": [], "viewing": [admin_views, alice_views]}

    post_webhook(webapp.url, [member_removed(channel, alice["id"])], start + 2)
    assert next_view(admin_socket) == {"online": [], "viewing": [admin_views]}


def test_duplicate_and_out_of_order_webhooks_change_nothing(webapp, api, admin_token, server,
                                                            admin_socket):
    alice_token, alice = api.login(ALICE)
    order = api.place_order(alice_token, [1])
    start = now_ms()
    online = [occupied(user_channel(alice)), member_added(viewers_channel(order), alice["id"])]
    post_webhook(webapp.url, online, start)
    view = next_view(admin_socket)
    assert view["online"] == [person(alice)] and len(view["viewing"]) == 1

    # The same webhook again, and the offline ones stamped before it (arriving late).
    assert post_webhook(webapp.url, online, start)["changed"] == 0
    offline = [vacated(user_channel(alice)), member_removed(viewers_channel(order), alice["id"])]
    assert post_webhook(webapp.url, offline, start - 1)["changed"] == 0
    no_view_then(admin_socket, server)
    assert api.request("GET", "/api/activity", admin_token) == view

    # Newer than anything seen: applied, and then its own late duplicate is not.
    assert post_webhook(webapp.url, offline, start + 1)["changed"] == 2
    assert next_view(admin_socket) == {"online": [], "viewing": []}
    assert post_webhook(webapp.url, online, start)["changed"] == 0
    no_view_then(admin_socket, server)
    assert api.request("GET", "/api/activity", admin_token) == {"online": [], "viewing": []}


def test_within_one_body_the_last_event_about_a_channel_wins(webapp, api, admin_socket):
    alice = api.login(ALICE)[1]
    channel = user_channel(alice)
    answer = post_webhook(webapp.url, [vacated(channel), occupied(channel)])
    assert answer == {"events": 2, "changed": 1}
    assert next_view(admin_socket)["online"] == [person(alice)]


def test_other_events_and_channels_are_accepted_and_ignored(webapp, api, admin_token, server,
                                                            admin_socket):
    alice = api.login(ALICE)[1]
    ignored = [
        occupied("private-admin.orders"),
        occupied("presence-orders.1.viewers"),
        member_added(user_channel(alice), alice["id"]),
        {"name": "client_event", "channel": "private-user.2.orders", "event": "client-x",
         "data": "{}", "socket_id": "1.1"},
        {"name": "cache_miss", "channel": "cache-x"},
    ]
    assert post_webhook(webapp.url, ignored) == {"events": len(ignored), "changed": 0}
    no_view_then(admin_socket, server)
    assert api.request("GET", "/api/activity", admin_token) == {"online": [], "viewing": []}


def test_seeding_adds_the_table_to_a_database_made_before_it(make_app):
    app = make_app()
    with app.app_context():
        # as db.create_all() made it before the table and the migrations
        db.session.execute(text("DROP TABLE live_presence"))
        db.session.execute(text("DROP TABLE alembic_version"))
        db.session.commit()
        upgrade_schema()  # what flask --app webapp seed (and so scripts/run.sh) runs
        assert "live_presence" in inspect(db.engine).get_table_names()
    body = body_of([occupied("private-user.2.orders")], now_ms())
    answer = app.test_client().post("/broadcasting/webhooks", data=body, headers={
        "X-Pusher-Key": APP_KEY, "X-Pusher-Signature": sign_webhook(APP_SECRET, body)})
    assert answer.json == {"events": 1, "changed": 1}

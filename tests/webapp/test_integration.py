"""The webapp against a real broadcaster, with a ``websockets`` client subscribed through the
webapp's /broadcasting/auth: payloads, refusals, toOthers, and no event lost while it is down."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from tests.clients.webapp_api import WebappApi
from tests.pusher_socket import Authorizer, PusherSocket
from tests.sdk import assert_nothing_then
from tests.servers import Broadcaster, Webapp, start_webapp, start_worker
from tests.waiting import eventually
from tests.webapp.conftest import ADMIN, ALICE, BOB, Databases, login
from webapp.broadcasting.delivery import deliver_now
from webapp.broadcasting.outbox import OutboxEvent
from webapp.extensions import db

ALICE_CHANNEL, BOB_CHANNEL, ADMIN_CHANNEL = (
    "private-user.2.orders", "private-user.3.orders", "private-admin.orders")


@pytest.fixture
def live_app(make_app, broadcaster: Broadcaster) -> Flask:
    """The app, delivering to the broadcaster right after each commit."""
    return make_app(REVERB_PORT=broadcaster.port, OUTBOX_DELIVER_ON_COMMIT=True)


@pytest.fixture
def live(live_app: Flask) -> Iterator[FlaskClient]:
    with live_app.test_client() as client:
        yield client


@pytest.fixture
def server(broadcaster: Broadcaster) -> Broadcaster:
    """Here ``sockets`` open on the test's own broadcaster, which it may stop and start."""
    return broadcaster


def authorizer(client: FlaskClient, headers: dict[str, str]) -> Authorizer:
    def authorize(channel: str, socket_id: str) -> tuple[int, dict]:
        answer = client.post("/broadcasting/auth", headers=headers,
                             data={"socket_id": socket_id, "channel_name": channel})
        return answer.status_code, answer.json

    return authorize


def subscribed(sock: PusherSocket, channel: str, authorize: Authorizer) -> PusherSocket:
    answer = sock.subscribe_via(channel, authorize)
    assert answer["event"] == "pusher_internal:subscription_succeeded", answer
    return sock


def test_admin_transition_reaches_customer_and_admin_with_the_exact_payload(
        broadcaster, live, sockets):
    admin, alice, bob = login(live, ADMIN), login(live, ALICE), login(live, BOB)
    alice_ws = subscribed(sockets(), ALICE_CHANNEL,
                          authorizer(live, alice))
    admin_ws = subscribed(sockets(), ADMIN_CHANNEL,
                          authorizer(live, admin))
    bob_ws = subscribed(sockets(), BOB_CHANNEL, authorizer(live, bob))

    answer = live.post("/api/orders/6/transition", headers=admin, json={"status": "paid"})
    assert answer.status_code == 200
    expected = {
        "order_id": 6,
        "order_number": answer.json["order"]["order_number"],
        "current_status": "paid",
        "current_status_label": "Paid",
        "previous_status": "pending",
        "changed_by": "Ada Admin",
        "total": "103.99",
        "updated_at": answer.json["order"]["updated_at"],
        "created_at": answer.json["order"]["created_at"],
        "user": {"id": 2, "name": "Alice Customer", "email": ALICE},
        "items_count": 2,
        "items_summary": [{"product_name": "Wireless Mouse", "quantity": 1},
                          {"product_name": "USB-C Hub", "quantity": 2}],
    }
    assert expected["order_number"].endswith("-000006")
    for sock, channel in ((alice_ws, ALICE_CHANNEL), (admin_ws, ADMIN_CHANNEL)):
        event = sock.next_event()
        assert event is not None, f"nothing arrived on {channel}"
        assert (event["event"], event["channel"]) == ("order.status.updated", channel)
        assert json.loads(event["data"]) == expected
    assert_nothing_then(bob_ws, broadcaster, BOB_CHANNEL)


def test_placing_an_order_reaches_both_channels(broadcaster, live, sockets):
    admin, alice = login(live, ADMIN), login(live, ALICE)
    alice_ws = subscribed(sockets(), ALICE_CHANNEL,
                          authorizer(live, alice))
    admin_ws = subscribed(sockets(), ADMIN_CHANNEL,
                          authorizer(live, admin))
    answer = live.post("/api/orders", headers=alice,
                       json={"items": [{"product_id": 5, "quantity": 2}]})
    assert answer.status_code == 201
    for sock, channel in ((alice_ws, ALICE_CHANNEL), (admin_ws, ADMIN_CHANNEL)):
        event = sock.next_event()
        assert (event["event"], event["channel"]) == ("order.created", channel)
        data = json.loads(event["data"])
        assert (data["order_id"], data["current_status"], data["total"],
                data["previous_status"]) == (answer.json["order"]["id"], "pending", "90.00", None)


@pytest.mark.parametrize("channel", [BOB_CHANNEL, ADMIN_CHANNEL])
def test_customer_cannot_subscribe_to_another_users_channel_or_admin_orders(
        broadcaster, live, sockets, channel):
    admin, alice, bob = login(live, ADMIN), login(live, ALICE), login(live, BOB)
    alice_ws = sockets()
    status, answer = authorizer(live, alice)(channel, alice_ws.socket_id)
    assert status == 403, answer
    # A signature for her own channel does not open someone else's.
    _, own = authorizer(live, alice)(ALICE_CHANNEL, alice_ws.socket_id)
    alice_ws.subscribe(channel, auth=own["auth"])
    refused = alice_ws.outcome(channel)
    assert refused["event"] == "pusher:error", refused
    assert refused["data"]["code"] == 4009
    # The event really goes out (the rightful subscriber gets it), but never to alice.
    owner = authorizer(live, bob if channel == BOB_CHANNEL else admin)
    owner_ws = subscribed(sockets(), channel, owner)
    assert live.post("/api/orders/3/transition", headers=admin,  # bob's shipped order
                     json={"status": "delivered"}).status_code == 200
    assert owner_ws.next_event()["event"] == "order.status.updated"
    assert alice_ws.next_event(0.3) is None


def test_x_socket_id_excludes_the_requesting_socket(broadcaster, live, sockets):
    admin, alice = login(live, ADMIN), login(live, ALICE)
    alice_ws = subscribed(sockets(), ALICE_CHANNEL,
                          authorizer(live, alice))
    admin_ws = subscribed(sockets(), ADMIN_CHANNEL,
                          authorizer(live, admin))
    headers = {**admin, "X-Socket-ID": admin_ws.socket_id}
    assert live.post("/api/orders/6/transition", headers=headers,
                     json={"status": "cancelled"}).status_code == 200
    assert alice_ws.next_event()["event"] == "order.status.updated"
    assert admin_ws.next_event(0.3) is None


def test_an_event_the_broadcaster_refuses_for_good_is_skipped_not_blocking(
        broadcaster, make_app, sockets):
    app = make_app(REVERB_PORT=broadcaster.port)  # delivery only when asked
    client = app.test_client()
    admin = login(client, ADMIN)
    admin_ws = subscribed(sockets(), ADMIN_CHANNEL,
                          authorizer(client, admin))
    with app.app_context():
        db.session.add(OutboxEvent(name="too.big", channels=json.dumps([ADMIN_CHANNEL]),
                                   data=json.dumps({"blob": "x" * 20_000})))
        db.session.commit()
    assert client.post("/api/orders/6/transition", headers=admin,
                       json={"status": "paid"}).status_code == 200

    result = deliver_now(app)

    assert (result.delivered, result.skipped, result.error) == (1, 1, None)
    assert admin_ws.next_event()["event"] == "order.status.updated"
    with app.app_context():
        big = db.session.scalar(db.select(OutboxEvent).where(OutboxEvent.name == "too.big"))
        assert big.failed_at is not None and big.delivered_at is None
        assert "413" in big.last_error


def test_a_refused_signature_is_retried_not_skipped(broadcaster, make_app):
    app = make_app(REVERB_PORT=broadcaster.port, REVERB_APP_SECRET="not-the-secret")
    client = app.test_client()
    assert client.post("/api/orders/6/transition", headers=login(client, ADMIN),
                       json={"status": "paid"}).status_code == 200
    result = deliver_now(app)
    assert (result.delivered, result.skipped) == (0, 0)
    assert "401" in result.error
    with app.app_context():
        row = db.session.scalar(db.select(OutboxEvent))
        assert (row.delivered_at, row.failed_at, row.attempts) == (None, None, 1)


# --- real processes: the web process, the worker, and a broadcaster that goes away ----------


def broadcasting_post(webapp: Webapp, token: str, path: str, form: str) -> tuple[int, dict]:
    """POST ``form`` to the webapp's ``/broadcasting/<path>`` as the token's user."""
    request = urllib.request.Request(
        f"{webapp.url}/broadcasting/{path}", method="POST", data=form.encode(),
        headers={"Authorization": f"Bearer {token}",
                 "Content-Type": "application/x-www-form-urlencoded"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.load(response)


def http_authorizer(webapp: Webapp, token: str) -> Authorizer:
    def authorize(channel: str, socket_id: str) -> tuple[int, dict]:
        return broadcasting_post(webapp, token, "auth",
                                 f"socket_id={socket_id}&channel_name={channel}")

    return authorize


def walk_concurrently(webapp: Webapp, token: str, paths: dict[int, list[str]]) -> None:
    """Move each order through its statuses, one thread per order, all at once."""

    def walk(order_id: int) -> None:
        for status in paths[order_id]:
            transition(webapp, token, order_id, status)

    threads = [threading.Thread(target=walk, args=(order_id,)) for order_id in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def token_of(webapp: Webapp, email: str) -> str:
    return WebappApi(webapp.url).login(email)[0]


def transition(webapp: Webapp, token: str, order_id: int, status: str) -> None:
    WebappApi(webapp.url).transition(token, order_id, status)


@pytest.fixture
def webapp(broadcaster: Broadcaster, database: Databases) -> Iterator[Webapp]:
    app = start_webapp(broadcaster.port, database.seeded())
    yield app
    app.stop()


@pytest.mark.slow
def test_events_made_while_the_broadcaster_is_down_arrive_in_order_once_it_is_back(
        broadcaster, webapp, sockets):
    admin = token_of(webapp, ADMIN)
    broadcaster.stop()
    path = ["paid", "processing", "shipped"]
    for status in path:  # the web process tries at once, fails, and keeps them
        transition(webapp, admin, 6, status)

    down = start_worker(webapp, ["--once"])
    assert down.wait() == 1  # nothing could be delivered

    broadcaster.start()  # a new process on the SAME port
    alice_ws = subscribed(sockets(), ALICE_CHANNEL,
                          http_authorizer(webapp, token_of(webapp, ALICE)))
    assert start_worker(webapp, ["--once"]).wait() == 0

    received = [alice_ws.next_event() for _ in path]
    assert [json.loads(e["data"])["current_status"] for e in received if e] == path
    assert [json.loads(e["data"])["previous_status"] for e in received] == [
        "pending", "paid", "processing"]
    # Delivered means delivered once: another pass sends nothing again.
    assert start_worker(webapp, ["--once"]).wait() == 0
    assert_nothing_then(alice_ws, broadcaster, ALICE_CHANNEL)


def outbox_state(database: Path | str) -> list[tuple[int, bool]]:
    """(attempts, delivered) of each outbox row, read straight from the database (a SQLite
    file, or a URL)."""
    engine = create_engine(database if isinstance(database, str) else f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT attempts, delivered_at IS NOT NULL FROM outbox_events ORDER BY id"))
            return [(attempts, bool(done)) for attempts, done in rows]
    finally:
        engine.dispose()


@pytest.mark.slow
def test_running_worker_retries_with_backoff_until_the_broadcaster_is_back(
        broadcaster, database, sockets):
    url = database.seeded()
    webapp = start_webapp(broadcaster.port, url, {"OUTBOX_DELIVER_ON_COMMIT": "0"})
    worker = start_worker(webapp)
    try:
        admin = token_of(webapp, ADMIN)
        broadcaster.stop()
        transition(webapp, admin, 6, "cancelled")
        transition(webapp, admin, 5, "processing")
        # The worker keeps retrying the head event (batched with the next), and does not skip
        # past it.
        eventually(lambda: outbox_state(url)[0][0] >= 3, 15.0, "three delivery attempts")
        assert [done for _, done in outbox_state(url)] == [False, False]

        broadcaster.start()
        eventually(lambda: all(done for _, done in outbox_state(url)), 15.0,
                   "delivery of every event")

        admin_ws = subscribed(sockets(), ADMIN_CHANNEL,
                              http_authorizer(webapp, admin))
        transition(webapp, admin, 5, "shipped")
        event = admin_ws.next_event(10.0)
        assert event is not None, "the running worker did not deliver a new event"
        assert json.loads(event["data"])["current_status"] == "shipped"
        assert worker.proc.poll() is None
        worker.stop()
        assert worker.proc.returncode == 0  # SIGTERM ends it between passes, cleanly
    finally:
        worker.stop()
        webapp.stop()


def test_web_and_worker_racing_send_each_event_once_in_per_order_order(
        broadcaster, webapp, sockets):
    paths = {  # seeded orders and the rest of their lives
        6: ["paid", "processing", "shipped", "delivered", "refunded"],
        5: ["processing", "shipped", "delivered", "refunded"],
        4: ["shipped", "delivered", "refunded"],
        3: ["delivered", "refunded"],
    }
    admin = token_of(webapp, ADMIN)
    admin_ws = subscribed(sockets(), ADMIN_CHANNEL,
                          http_authorizer(webapp, admin))
    worker = start_worker(webapp)
    try:
        walk_concurrently(webapp, admin, paths)
        expected = sum(len(path) for path in paths.values())
        received = [admin_ws.next_event(10.0) for _ in range(expected)]
        assert None not in received, "some events never arrived"
        assert admin_ws.next_event(1.0) is None, "an event arrived twice"
    finally:
        worker.stop()
    seen: dict[int, list[str]] = {order_id: [] for order_id in paths}
    for event in received:
        data = json.loads(event["data"])
        seen[data["order_id"]].append(data["current_status"])
    assert seen == paths

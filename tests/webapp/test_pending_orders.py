"""One customer cannot hold the stock: a pending order holds it for ``PENDING_ORDER_TTL`` (then
the worker cancels it with a reason, gives the stock back and broadcasts the change), and a
customer has at most ``PENDING_ORDERS_PER_CUSTOMER`` pending orders (the next is 422 with the
reason, on the API and the form), however many she sends at once."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event

from tests.clients.webapp_api import ADMIN, ALICE, BOB, WebappApi
from tests.pusher_socket import PusherSocket
from tests.servers import Broadcaster, Webapp, start_webapp, start_worker
from tests.webapp.conftest import Databases, login, sign_in
from webapp.config import ConfigError, load
from webapp.extensions import db
from webapp.orders.models import Order, User
from webapp.orders.status import OrderStatus

CAP = 5  # the default, as test_the_defaults checks
ONE_MOUSE = {"items": [{"product_id": 1, "quantity": 1}]}
RACE_TIMEOUT = 30.0  # seconds; the racers reach their counts within a fraction of it


def test_the_defaults():
    values = load({}, None)
    assert values["PENDING_ORDER_TTL"] == 30 * 60
    assert values["PENDING_ORDERS_PER_CUSTOMER"] == CAP


@pytest.mark.parametrize("setting", [{"PENDING_ORDER_TTL": "0"}, {"PENDING_ORDER_TTL": "-5"},
                                     {"PENDING_ORDERS_PER_CUSTOMER": "0"},
                                     {"PENDING_ORDER_TTL": "nan"}])
def test_a_ttl_or_cap_below_one_stops_the_app_with_the_reason(setting):
    (key, value), = setting.items()
    with pytest.raises(ConfigError, match=rf"^{key}=.*: set a (whole )?number above 0"):
        load(setting, None)


def pending_count(app, email: str) -> int:
    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == email))
        return db.session.scalar(db.select(db.func.count(Order.id)).where(
            Order.user_id == user.id, Order.status == OrderStatus.PENDING))


def test_the_json_api_refuses_the_order_past_the_cap_with_a_reason(make_app):
    app = make_app(PENDING_ORDERS_PER_CUSTOMER=CAP)
    client = app.test_client()
    alice, bob, admin = login(client, ALICE), login(client, BOB), login(client, ADMIN)
    free = CAP - pending_count(app, ALICE)  # the seed gives her one
    placed = [client.post("/api/orders", json=ONE_MOUSE, headers={**alice, "Idempotency-Key":
                                                                    f"fill-{n}"})
              for n in range(free)]
    assert [answer.status_code for answer in placed] == [201] * free
    refused = client.post("/api/orders", json=ONE_MOUSE, headers=alice)
    assert refused.status_code == 422
    assert refused.json == {"error": (
        f"you have {CAP} unpaid orders, the most one customer may have at once ({CAP}); pay "
        "or cancel one first (an unpaid order is cancelled after 30 minutes)")}
    assert pending_count(app, ALICE) == CAP
    # A resent request (same key) still gets its first answer; other customers are not held.
    again = client.post("/api/orders", json=ONE_MOUSE, headers={**alice, "Idempotency-Key":
                                                                  "fill-0"})
    assert (again.status_code, again.json) == (201, placed[0].json)
    assert client.post("/api/orders", json=ONE_MOUSE, headers=bob).status_code == 201
    # Paying one frees a place.
    paid = client.post(f"/api/orders/{placed[0].json['order']['id']}/transition",
                       json={"status": "paid"}, headers=admin)
    assert paid.status_code == 200
    assert client.post("/api/orders", json=ONE_MOUSE, headers=alice).status_code == 201
    assert client.post("/api/orders", json=ONE_MOUSE, headers=alice).status_code == 422


def test_the_form_shows_why_the_order_was_not_placed(make_app):
    app = make_app(PENDING_ORDERS_PER_CUSTOMER=CAP)
    client = app.test_client()
    token = sign_in(client, ALICE)
    free = CAP - pending_count(app, ALICE)

    def place() -> str:
        answer = client.post("/orders", data={"csrf_token": token, "product_id": "1",
                                              "quantity": "1"}, follow_redirects=True)
        assert answer.status_code == 200
        return answer.get_data(as_text=True)

    for _ in range(free):
        assert "placed." in place()
    page = place()
    assert (f"you have {CAP} unpaid orders, the most one customer may have at once ({CAP}); "
            "pay or cancel one first") in page
    assert pending_count(app, ALICE) == CAP


def test_concurrent_orders_of_one_customer_never_pass_the_cap(make_app):
    """Bob (no pending order in the seed) sends more orders at once than the cap allows. Each
    racer, once it has counted Bob's pending orders, waits until every other racer has sent its
    lock or its count: without the lock they would all count 0 and all place."""
    racers = CAP + 3
    app = make_app(PENDING_ORDERS_PER_CUSTOMER=CAP)
    bob = login(app.test_client(), BOB)
    arrived: set[int] = set()
    everyone = threading.Condition()

    def arrive(_connection, _cursor, statement: str, *_args) -> None:
        if statement.startswith(("UPDATE users SET session_epoch", "SELECT count(orders.id)")):
            with everyone:
                arrived.add(threading.get_ident())
                everyone.notify_all()

    def after_the_count(_connection, _cursor, statement: str, *_args) -> None:
        if statement.startswith("SELECT count(orders.id)"):
            with everyone:
                assert everyone.wait_for(lambda: len(arrived) == racers, RACE_TIMEOUT), \
                    f"only {len(arrived)} of {racers} racers reached the cap's check"

    def place(_: int) -> int:
        with app.test_client() as racer:
            return racer.post("/api/orders", json=ONE_MOUSE, headers=bob).status_code

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", arrive)
    event.listen(engine, "after_cursor_execute", after_the_count)
    try:
        with ThreadPoolExecutor(racers) as pool:
            codes = sorted(pool.map(place, range(racers)))
    finally:
        event.remove(engine, "before_cursor_execute", arrive)
        event.remove(engine, "after_cursor_execute", after_the_count)
    assert codes == [201] * CAP + [422] * (racers - CAP)
    assert pending_count(app, BOB) == CAP


def stock_of(client, headers) -> dict[int, int]:
    return {p["id"]: p["stock"] for p in client.get("/api/products", headers=headers).json[
        "products"]}


@pytest.mark.parametrize("path", [["cancelled"], ["paid", "processing", "cancelled"]])
def test_a_cancelled_order_gives_its_items_back_to_stock(client, path):
    admin, alice = login(client, ADMIN), login(client, ALICE)
    before = stock_of(client, admin)
    items = [{"product_id": 2, "quantity": 3}, {"product_id": 1, "quantity": 2}]
    order = client.post("/api/orders", json={"items": items}, headers=alice).json["order"]
    assert stock_of(client, admin) == {**before, 1: before[1] - 2, 2: before[2] - 3}
    for status in path:
        moved = client.post(f"/api/orders/{order['id']}/transition", json={"status": status},
                            headers=admin)
        assert moved.status_code == 200, moved.json
    assert stock_of(client, admin) == before


ADMIN_CHANNEL = "private-admin.orders"


@pytest.fixture
def expiring(server: Broadcaster, database: Databases) -> Iterator[Webapp]:
    """The webapp whose pending orders expire after a second, with no worker yet."""
    web = start_webapp(server.port, database.seeded(), {"PENDING_ORDER_TTL": "1"})
    yield web
    web.stop()


def test_the_worker_cancels_an_expired_order_and_gives_its_stock_back(expiring, sockets):
    api = WebappApi(expiring.url)
    alice_token, _ = api.login(ALICE)
    admin_token, _ = api.login(ADMIN)
    admin_socket: PusherSocket = sockets()
    admin_socket.joined(ADMIN_CHANNEL)
    stock = {p["id"]: p["stock"] for p in api.request("GET", "/api/products", admin_token)[
        "products"]}
    order = api.place_order(alice_token, [2, 1])
    created = admin_socket.next_message(wanted=lambda m: m["event"] == "order.created")
    assert json.loads(created["data"])["order_id"] == order["id"]
    taken = {p["id"]: p["stock"] for p in api.request("GET", "/api/products", admin_token)[
        "products"]}
    assert (taken[1], taken[2]) == (stock[1] - 2, stock[2] - 1)

    worker = start_worker(expiring)
    try:
        def cancelled(message) -> bool:
            return message["event"] == "order.status.updated" and \
                json.loads(message["data"])["order_id"] == order["id"]

        # a worker process starting on a loaded machine: allow it time (waits for the event)
        update = admin_socket.next_message(timeout=60, wanted=cancelled)
    finally:
        worker.stop()
    assert update is not None, "the worker broadcast no cancellation of the expired order"
    payload = json.loads(update["data"])
    assert (payload["previous_status"], payload["current_status"]) == ("pending", "cancelled")
    assert payload["changed_by"] is None
    now = api.request("GET", f"/api/orders/{order['id']}", admin_token)["order"]
    assert now["status"] == "cancelled"
    assert now["history"][-1] == {**now["history"][-1], "from": "pending", "to": "cancelled",
                                  "changed_by": None,
                                  "notes": "not paid within 1 second: cancelled, its items "
                                           "back in stock"}
    back = {p["id"]: p["stock"] for p in api.request("GET", "/api/products", admin_token)[
        "products"]}
    # The seed's pending order (alice's, of products 1 and 3) expired too and gave its own back.
    assert (back[1], back[2]) == (stock[1] + 1, stock[2])

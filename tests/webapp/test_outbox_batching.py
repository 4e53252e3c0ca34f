"""Batches and the kept-alive connection, against a real broadcaster.

Some tests put a forwarder between the webapp and the broadcaster: not one of our components,
but a small HTTP/1.1 server made in the test that records each request (the client's port, the
path, the body) and passes it on to the real broadcaster, answering with its answer.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple

import pytest
from flask import Flask

from tests.pusher_socket import PusherSocket
from tests.sdk import assert_nothing_then
from tests.servers import APP_ID, HOST, Broadcaster
from tests.waiting import eventually
from tests.webapp.conftest import app_config, login
from tests.webapp.test_integration import ADMIN, ADMIN_CHANNEL, authorizer, subscribed
from tests.webapp.test_outbox import rows
from webapp import create_app
from webapp.broadcasting.delivery import ReverbClient, deliver_pending
from webapp.broadcasting.outbox import OutboxEvent, idempotency_key
from webapp.config import ConfigError
from webapp.extensions import db


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps the client's connection open between requests
    server: Forwarder

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        forwarder = self.server
        forwarder.requests.append(Forwarded(self.client_address[1], self.path.split("?")[0],
                                            json.loads(body),
                                            self.headers.get("Idempotency-Key")))
        upstream = http.client.HTTPConnection(HOST, forwarder.target_port, timeout=10)
        try:
            upstream.request("POST", self.path, body=body, headers={
                name: value for name, value in self.headers.items()
                if name.lower() in ("content-type", "idempotency-key")})
            answer = upstream.getresponse()
            status, payload = answer.status, answer.read()
        finally:
            upstream.close()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        """Quiet: the tests assert on ``requests``."""


class Forwarded(NamedTuple):
    """One request the forwarder passed on."""

    port: int  # the client's: one per connection
    path: str
    body: dict
    key: str | None  # the Idempotency-Key header

    def keys(self) -> list[str | None]:
        """The idempotency key of each event the request carries."""
        if "batch" in self.body:
            return [item.get("idempotency_key") for item in self.body["batch"]]
        return [self.key]


class Forwarder(ThreadingHTTPServer):
    """Passes every POST on to the broadcaster on ``target_port``; records each in
    ``requests``."""

    daemon_threads = True

    def __init__(self, target_port: int) -> None:
        super().__init__((HOST, 0), _Forward)
        self.target_port = target_port
        self.requests: list[Forwarded] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]


@pytest.fixture
def server(broadcaster: Broadcaster) -> Broadcaster:
    """``sockets`` open on the test's own broadcaster, which a test may restart."""
    return broadcaster


@pytest.fixture
def forwarder(broadcaster: Broadcaster) -> Iterator[Forwarder]:
    started = Forwarder(broadcaster.port)
    yield started
    started.shutdown()
    started.server_close()


def add_events(app: Flask, numbers: range, name: str = "bench.ping",
               size: int = 0) -> None:
    """Pending events ``{"n": n}`` (padded to ``size`` bytes) on the admins' channel."""
    with app.app_context():
        for n in numbers:
            data = json.dumps({"n": n, "pad": "x" * size})
            db.session.add(OutboxEvent(name=name, channels=json.dumps([ADMIN_CHANNEL]),
                                       data=data))
        db.session.commit()


def admin_socket(app: Flask, sockets) -> PusherSocket:
    client = app.test_client()
    return subscribed(sockets(), ADMIN_CHANNEL, authorizer(client, login(client, ADMIN)))


def numbers_received(sock: PusherSocket, count: int) -> list[int]:
    events = [sock.next_event() for _ in range(count)]
    assert None not in events, f"fewer than {count} events arrived"
    return [json.loads(event["data"])["n"] for event in events]


def deliver(app: Flask, client: ReverbClient, batch_size: int):
    with app.app_context():
        try:
            return deliver_pending(client, lease_seconds=30, batch_size=batch_size)
        finally:
            db.session.remove()


def test_pending_events_go_in_batches_on_one_connection_across_passes(
        make_app, forwarder, broadcaster, sockets):
    app = make_app(REVERB_PORT=forwarder.port)
    admin_ws = admin_socket(app, sockets)
    client = ReverbClient.from_config(app.config)
    add_events(app, range(23))
    first = deliver(app, client, batch_size=10)
    add_events(app, range(23, 25))
    second = deliver(app, client, batch_size=10)
    client.close()

    assert (first.delivered, first.requests, second.delivered, second.requests) == (23, 3, 2, 1)
    assert [(r.path, len(r.body["batch"])) for r in forwarder.requests] == [
        (f"/apps/{APP_ID}/batch_events", size) for size in (10, 10, 3, 2)]
    assert len({r.port for r in forwarder.requests}) == 1  # one connection throughout
    # Each batch item carries its own row's idempotency key.
    keys = [key for request in forwarder.requests for key in request.keys()]
    assert keys == [idempotency_key(row.id, row.created_at) for row in rows(app)]
    assert numbers_received(admin_ws, 25) == list(range(25))
    assert_nothing_then(admin_ws, broadcaster, ADMIN_CHANNEL)


def test_without_keep_alive_each_request_has_a_connection_of_its_own(
        make_app, forwarder):
    app = make_app(REVERB_PORT=forwarder.port, OUTBOX_KEEP_ALIVE=False)
    client = ReverbClient.from_config(app.config)
    add_events(app, range(3))
    assert deliver(app, client, batch_size=1).requests == 3
    assert [r.path for r in forwarder.requests] == [f"/apps/{APP_ID}/events"] * 3
    assert len({r.port for r in forwarder.requests}) == 3
    assert [r.key for r in forwarder.requests] == [idempotency_key(row.id, row.created_at)
                                                   for row in rows(app)]


def test_a_broadcaster_restart_between_passes_costs_no_failed_attempt(
        make_app, broadcaster, sockets):
    app = make_app(REVERB_PORT=broadcaster.port)
    client = ReverbClient.from_config(app.config)
    add_events(app, range(1))
    assert deliver(app, client, batch_size=10).delivered == 1
    broadcaster.stop()
    broadcaster.start()  # the kept connection now leads nowhere
    admin_ws = admin_socket(app, sockets)
    add_events(app, range(1, 3))
    result = deliver(app, client, batch_size=10)
    client.close()

    assert (result.delivered, result.error) == (2, None)
    assert [(row.attempts, row.last_error) for row in rows(app)] == [(1, None)] * 3
    assert client.connections_opened == 2
    assert numbers_received(admin_ws, 2) == [1, 2]
    assert_nothing_then(admin_ws, broadcaster, ADMIN_CHANNEL)


def test_a_refused_batch_is_sent_row_by_row_and_only_the_bad_row_is_skipped(
        make_app, forwarder, broadcaster, sockets, caplog):
    app = make_app(REVERB_PORT=forwarder.port)
    admin_ws = admin_socket(app, sockets)
    add_events(app, range(2))
    add_events(app, range(2, 3), size=20_000)  # larger than the broadcaster takes: 413
    add_events(app, range(3, 5))
    client = ReverbClient.from_config(app.config)
    with caplog.at_level(logging.WARNING, logger="webapp.broadcasting.delivery"):
        result = deliver(app, client, batch_size=10)
    client.close()

    assert (result.delivered, result.skipped, result.error) == (4, 1, None)
    assert [(r.path.rsplit("/", 1)[1], len(r.keys())) for r in forwarder.requests] == [
        ("batch_events", 5), *[("events", 1)] * 5]
    assert numbers_received(admin_ws, 4) == [0, 1, 3, 4]
    assert_nothing_then(admin_ws, broadcaster, ADMIN_CHANNEL)
    found = rows(app)
    assert [row.failed_at is not None for row in found] == [False, False, True, False, False]
    assert "413" in found[2].last_error
    assert any("outbox rows 1..5 (5 events) refused" in r.getMessage()
               and "one at a time" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("size", [0, 11, "ten"])
def test_a_batch_size_outside_1_to_10_is_refused_with_what_to_set(tmp_path, size):
    with pytest.raises(ConfigError, match="OUTBOX_BATCH_SIZE=.*from 1 .* to 10"):
        create_app(app_config(tmp_path / "x.sqlite3", OUTBOX_BATCH_SIZE=size))


def test_the_web_process_delivers_after_each_commit_on_one_kept_connection(
        make_app, forwarder, broadcaster, sockets):
    app = make_app(REVERB_PORT=forwarder.port, OUTBOX_DELIVER_ON_COMMIT=True)
    admin_ws = admin_socket(app, sockets)
    client = app.test_client()
    headers = login(client, ADMIN)
    for order_id, status in ((6, "paid"), (5, "processing"), (4, "shipped")):
        assert client.post(f"/api/orders/{order_id}/transition", headers=headers,
                           json={"status": status}).status_code == 200
        event = admin_ws.next_event()  # delivered by the web process: no worker runs
        assert event is not None and json.loads(event["data"])["order_id"] == order_id
    eventually(lambda: all(row.delivered_at is not None for row in rows(app)), 10.0,
               "the web process recording its deliveries")
    assert len(forwarder.requests) == 3
    assert len({r.port for r in forwarder.requests}) == 1

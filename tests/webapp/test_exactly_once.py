"""Exactly once, end to end: the webapp against a real broadcaster behind a stalling stand-in.

The stand-in is not one of our components: a small HTTP server made in the test that forwards
each request to the real broadcaster, then holds the answer back for a while (the first
``stalled`` requests only), as a broadcaster that stalls after doing the work would.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import create_engine, text

from tests.sdk import assert_nothing_then
from tests.servers import HOST, Broadcaster, Webapp, start_webapp, start_worker
from tests.waiting import eventually
from tests.webapp.test_integration import (
    ADMIN,
    ADMIN_CHANNEL,
    ALICE,
    ALICE_CHANNEL,
    http_authorizer,
    outbox_state,
    subscribed,
    token_of,
    transition,
)
from webapp.broadcasting.delivery import lease_seconds
from webapp.config import DEFAULTS


class _ForwardingHandler(BaseHTTPRequestHandler):
    server: StallingStandIn

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        stand_in = self.server
        forwarded = {name: value for name, value in self.headers.items()
                     if name.lower() in ("content-type", "idempotency-key")}
        upstream = http.client.HTTPConnection(HOST, stand_in.target_port, timeout=10)
        try:
            upstream.request("POST", self.path, body=body, headers=forwarded)
            answer = upstream.getresponse()
            status, payload = answer.status, answer.read()
        finally:
            upstream.close()
        with stand_in.lock:
            stand_in.keys.append(self.headers.get("Idempotency-Key"))
            stall = len(stand_in.keys) <= stand_in.stalled
        stand_in.forwarded.set()
        if stall:
            stand_in.released.wait(stand_in.stall_seconds)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the webapp gave up waiting, as it should

    def log_message(self, *args: object) -> None:
        """Quiet: the test asserts on ``keys``."""


class StallingStandIn(ThreadingHTTPServer):
    """Forwards every POST to the broadcaster on ``target_port`` and records its
    ``Idempotency-Key`` in ``keys``; answers the first ``stalled`` ones only after
    ``stall_seconds`` (or once ``released``)."""

    daemon_threads = True

    def __init__(self, target_port: int, stalled: int, stall_seconds: float) -> None:
        super().__init__((HOST, 0), _ForwardingHandler)
        self.target_port, self.stalled, self.stall_seconds = target_port, stalled, stall_seconds
        self.keys: list[str | None] = []
        self.lock = threading.Lock()
        self.forwarded, self.released = threading.Event(), threading.Event()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def stop(self) -> None:
        self.released.set()
        self.shutdown()
        self.server_close()


@pytest.fixture
def server(broadcaster: Broadcaster) -> Broadcaster:
    """``sockets`` open on the real broadcaster, behind the stand-in."""
    return broadcaster


@pytest.fixture
def stand_ins() -> Iterator[list[StallingStandIn]]:
    started: list[StallingStandIn] = []
    yield started
    for stand_in in started:
        stand_in.stop()


def lease_until(url: str) -> float | None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT lease_until FROM outbox_events")).scalar_one()
    finally:
        engine.dispose()


def test_a_broadcaster_answering_after_the_http_timeout_does_not_deliver_twice(
        broadcaster, stand_ins, database, sockets):
    timeout = 0.5
    stand_in = StallingStandIn(broadcaster.port, stalled=1, stall_seconds=timeout * 4)
    stand_ins.append(stand_in)
    url = database.seeded()
    webapp = start_webapp(stand_in.port, url, {"OUTBOX_HTTP_TIMEOUT": str(timeout)})
    worker = start_worker(webapp)
    try:
        alice_ws = subscribed(sockets(), ALICE_CHANNEL,
                              http_authorizer(webapp, token_of(webapp, ALICE)))
        transition(webapp, token_of(webapp, ADMIN), 6, "paid")
        eventually(lambda: outbox_state(url) == [(len(stand_in.keys), True)], 20.0,
                   "delivery of the event, recorded")
    finally:
        worker.stop()
        webapp.stop()
    # It was sent again after the timeout, with the same key both times ...
    assert len(stand_in.keys) >= 2
    assert len(set(stand_in.keys)) == 1 and stand_in.keys[0] is not None
    # ... and the customer saw it once.
    event = alice_ws.next_event()
    assert json.loads(event["data"])["current_status"] == "paid"
    assert_nothing_then(alice_ws, broadcaster, ALICE_CHANNEL)


@pytest.mark.slow
def test_the_lease_lasts_one_send_so_a_web_process_killed_mid_send_is_taken_over(
        broadcaster, stand_ins, database, sockets):
    assert lease_seconds(DEFAULTS) < 10  # a few seconds, from OUTBOX_HTTP_TIMEOUT
    timeout = 3.0
    stand_in = StallingStandIn(broadcaster.port, stalled=1, stall_seconds=600)
    stand_ins.append(stand_in)
    url = database.seeded()
    webapp = start_webapp(stand_in.port, url, {"OUTBOX_HTTP_TIMEOUT": str(timeout)})
    try:
        alice_ws = subscribed(sockets(), ALICE_CHANNEL,
                              http_authorizer(webapp, token_of(webapp, ALICE)))
        admin = token_of(webapp, ADMIN)
        before = time.time()
        transition(webapp, admin, 6, "paid")
        assert stand_in.forwarded.wait(10), "the web process never sent the event"
        webapp.proc.kill()  # while it waits for the answer, holding the lease
        webapp.proc.wait()
    finally:
        webapp.stop()
    held_until = lease_until(url)
    assert held_until is not None, "the web process let go of the lease before it was killed"
    assert held_until - before <= timeout + 5  # the lease, claimed after `before`, is short
    # Another deliverer, with a broadcaster that answers, takes the row over.
    direct = Webapp(port=webapp.port, env={**webapp.env, "REVERB_PORT": str(broadcaster.port)})
    worker = start_worker(direct)
    try:
        eventually(lambda: outbox_state(url) == [(2, True)], 30.0,
                   "the worker delivering the dead web process's event")
    finally:
        worker.stop()
    event = alice_ws.next_event()  # the web process's send got through before it died ...
    assert json.loads(event["data"])["current_status"] == "paid"
    assert_nothing_then(alice_ws, broadcaster, ALICE_CHANNEL)  # ... and was not repeated


@pytest.mark.slow
def test_a_batch_resent_by_a_takeover_with_more_rows_delivers_each_event_once_in_order(
        broadcaster, stand_ins, tmp_path, sockets):
    """A worker sends a batch and is killed before it records it; more rows arrive; the next
    worker's batch holds the old rows and the new: only the new ones are delivered again."""
    stand_in = StallingStandIn(broadcaster.port, stalled=1, stall_seconds=600)
    stand_ins.append(stand_in)
    database = tmp_path / "web.sqlite3"
    webapp = start_webapp(stand_in.port, database, {"OUTBOX_HTTP_TIMEOUT": "3",
                                                    "OUTBOX_DELIVER_ON_COMMIT": "0"})
    try:
        admin = token_of(webapp, ADMIN)
        admin_ws = subscribed(sockets(), ADMIN_CHANNEL, http_authorizer(webapp, admin))
        first = [(6, "paid"), (5, "processing"), (4, "shipped")]
        for order_id, status in first:
            transition(webapp, admin, order_id, status)
        dying = start_worker(webapp)
        assert stand_in.forwarded.wait(10), "the worker never sent the batch"
        dying.proc.kill()  # the broadcaster published the batch; the worker recorded nothing
        dying.proc.wait()
        assert outbox_state(database) == [(1, False)] * 3
        more = [(6, "processing"), (5, "shipped")]
        for order_id, status in more:
            transition(webapp, admin, order_id, status)
        direct = Webapp(port=webapp.port,
                        env={**webapp.env, "REVERB_PORT": str(broadcaster.port)})
        taking_over = start_worker(direct)
        try:
            eventually(lambda: outbox_state(database) == [(2, True)] * 3 + [(1, True)] * 2,
                       30.0, "the takeover delivering all five rows in one batch")
        finally:
            taking_over.stop()
    finally:
        webapp.stop()
    received = [admin_ws.next_event() for _ in first + more]
    assert None not in received, "an event was lost"
    assert [(json.loads(e["data"])["order_id"], json.loads(e["data"])["current_status"])
            for e in received] == first + more
    assert_nothing_then(admin_ws, broadcaster, ADMIN_CHANNEL)

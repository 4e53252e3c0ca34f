"""The long-running worker: a database error ends one pass, never the worker; its waits back off
exponentially, capped, and start over after a success."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import text

from shared.payloads import dumps, loads
from tests.pusher_socket import PusherSocket
from tests.servers import Broadcaster, free_port, start_broadcaster
from tests.waiting import eventually
from tests.webapp.conftest import ADMIN, ALICE, Databases, app_config, login
from tests.webapp.test_outbox_batching import Forwarder
from webapp import create_app
from webapp.broadcasting.outbox import OutboxEvent
from webapp.broadcasting.wakeup import (
    NOTIFY_CHANNEL,
    PASS_GAP_SECONDS,
    ListenWakeup,
    SleepWakeup,
)
from webapp.broadcasting.worker import run_worker
from webapp.extensions import db


@pytest.mark.sqlite_only("it waits for SQLite's words for the missing table, 'no such table'")
def test_a_database_error_is_logged_and_retried_until_delivery(
        database: Databases, caplog: pytest.LogCaptureFixture):
    broadcaster = start_broadcaster()
    app = create_app(app_config(database.empty(), REVERB_PORT=broadcaster.port))
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(app, 0.05, 0.05, 0.1, stop), daemon=True)
    try:
        with caplog.at_level(logging.ERROR, logger="webapp.broadcasting.worker"):
            worker.start()
            def logged_database_error() -> bool:
                assert worker.is_alive(), "the worker died on a missing table"
                return any("no such table" in r.exc_text for r in caplog.records if r.exc_text)

            eventually(logged_database_error, 10.0, "a logged database error")
        assert worker.is_alive()
        with app.app_context():
            db.create_all()
            db.session.add(OutboxEvent(name="ping", channels=dumps(["orders"]), data="{}"))
            db.session.commit()
            def delivered() -> bool:
                db.session.rollback()  # see the worker's commits
                return db.session.scalar(db.select(OutboxEvent.delivered_at)) is not None

            eventually(delivered, 10.0, "delivery of the event")
    finally:
        stop.set()
        worker.join(5)
        broadcaster.stop()
        with app.app_context():
            db.engine.dispose()
    assert not worker.is_alive()


class ScriptedStop(threading.Event):
    """The worker's stop event with its sleep injected (its idle waits too, with
    :class:`SleepWakeup`): each wait is recorded and returns at once.

    ``during[n]`` runs inside the n-th wait (from 0), as the world changing while the worker
    sleeps; the event sets itself at wait number ``waits_until_stop``.
    """

    def __init__(self, during: dict[int, Callable[[], None]], waits_until_stop: int) -> None:
        super().__init__()
        self.during = during
        self.waits_until_stop = waits_until_stop
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        self.during.get(len(self.waits) - 1, lambda: None)()
        if len(self.waits) >= self.waits_until_stop:
            self.set()
        return self.is_set()


IDLE, INITIAL, CAP = 30.0, 0.1, 1.0
# Six failed passes, one success (then the idle wait), one failure again.
EXPECTED_WAITS = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, IDLE, 0.1]


def enqueue_one(app) -> None:
    with app.app_context():
        db.session.add(OutboxEvent(name="ping", channels=dumps(["orders"]), data="{}"))
        db.session.commit()


def test_backoff_while_the_broadcaster_is_down_is_capped_and_resets(database: Databases):
    port = free_port()  # nothing listens until the sixth wait
    app = create_app(app_config(database.empty(), REVERB_PORT=port))
    with app.app_context():
        db.create_all()
    enqueue_one(app)
    running: list[Broadcaster] = []

    def outage_again() -> None:
        running.pop().stop()
        enqueue_one(app)

    stop = ScriptedStop({5: lambda: running.append(start_broadcaster(port=port)),
                         6: outage_again}, len(EXPECTED_WAITS))
    try:
        run_worker(app, IDLE, INITIAL, CAP, stop, SleepWakeup())
    finally:
        for broadcaster in running:
            broadcaster.stop()
        with app.app_context():
            db.engine.dispose()
    assert stop.waits == pytest.approx(EXPECTED_WAITS)


def test_backoff_on_database_errors_is_capped_and_resets(database: Databases):
    app = create_app(app_config(database.empty()))  # no tables until the sixth wait

    def in_app(action: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            with app.app_context():
                action()
        return run

    stop = ScriptedStop({5: in_app(db.create_all), 6: in_app(db.drop_all)},
                        len(EXPECTED_WAITS))
    try:
        run_worker(app, IDLE, INITIAL, CAP, stop, SleepWakeup())
    finally:
        with app.app_context():
            db.engine.dispose()
    assert stop.waits == pytest.approx(EXPECTED_WAITS)


def test_the_worker_keeps_one_connection_across_passes(tmp_path: Path):
    broadcaster = start_broadcaster()
    forwarder = Forwarder(broadcaster.port)
    app = create_app(app_config(tmp_path / "w.sqlite3", REVERB_PORT=forwarder.port))
    with app.app_context():
        db.create_all()
    enqueue_one(app)
    # Idle waits: a new event each time, so each pass sends one request.
    stop = ScriptedStop({0: lambda: enqueue_one(app), 1: lambda: enqueue_one(app)}, 3)
    try:
        run_worker(app, IDLE, INITIAL, CAP, stop, SleepWakeup())
    finally:
        forwarder.shutdown()
        forwarder.server_close()
        broadcaster.stop()
        with app.app_context():
            db.engine.dispose()
    assert stop.waits == [IDLE] * 3
    assert len(forwarder.requests) == 3
    assert len({r.port for r in forwarder.requests}) == 1


def test_a_worker_woken_at_once_still_starts_its_passes_a_pass_gap_apart(tmp_path: Path):
    """Idle waits that return at once, as wake-ups by a burst of commits would: the passes
    still start ``PASS_GAP_SECONDS`` apart at least, so a busy desk's events go in batches
    rather than one pass (and its claim) per commit."""
    app = create_app(app_config(tmp_path / "w.sqlite3", REVERB_PORT=free_port()))
    with app.app_context():
        db.create_all()
    passes = 10
    stop = ScriptedStop({}, passes)
    began = time.monotonic()
    try:
        run_worker(app, 0.0, INITIAL, CAP, stop, SleepWakeup())
    finally:
        with app.app_context():
            db.engine.dispose()
    assert stop.waits == [0.0] * passes  # each pass found nothing and waited
    assert time.monotonic() - began >= (passes - 1) * PASS_GAP_SECONDS


AN_HOUR = 3600.0  # the worker's idle wait: far longer than any test waits for an event


def test_an_idle_worker_is_woken_by_each_commit_that_writes_events(database: Databases):
    """The worker, idle for an hour between its polls, delivers each transition as it is
    committed (NOTIFY on PostgreSQL, SQLite's data version): without the wake-up it sleeps
    through the second one at the latest."""
    broadcaster = start_broadcaster()
    app = create_app(app_config(database.seeded(), REVERB_PORT=broadcaster.port,
                                PENDING_ORDER_TTL=AN_HOUR))  # the chores cancel no order
    admin_socket = PusherSocket.to(broadcaster)
    admin_socket.joined("private-admin.orders")
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(app, AN_HOUR, 0.05, 0.1, stop),
                              daemon=True)
    try:
        worker.start()
        client = app.test_client()
        placed = client.post("/api/orders", json={"items": [{"product_id": 1, "quantity": 1}]},
                             headers=login(client, ALICE))
        assert placed.status_code == 201, placed.json
        order_id = placed.json["order"]["id"]
        assert _next_status(admin_socket, order_id) == "pending"
        headers = login(client, ADMIN)
        for status in ("paid", "processing", "shipped"):
            moved = client.post(f"/api/orders/{order_id}/transition", json={"status": status},
                                headers=headers)
            assert moved.status_code == 200, moved.json
            assert _next_status(admin_socket, order_id) == status
    finally:
        stop.set()
        worker.join(5)
        admin_socket.close()
        broadcaster.stop()
        with app.app_context():
            db.engine.dispose()
    assert not worker.is_alive()


def _next_status(socket: PusherSocket, order_id: int) -> str | None:
    """The status the next event on the socket announces for ``order_id`` (None: no event)."""
    event = socket.next_event()
    if event is None:
        return None
    data = loads(event["data"])
    assert data["order_id"] == order_id, data
    return data["current_status"]


def _listening(database: Databases) -> tuple[Flask, ListenWakeup]:
    app = create_app(app_config(database.seeded()))
    with app.app_context():
        return app, ListenWakeup(db.engine)


def _notify(app: Flask) -> None:
    with app.app_context(), db.engine.begin() as connection:
        connection.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


@pytest.mark.postgresql_only
def test_a_stopping_worker_leaves_its_listen_wait_promptly(database: Databases):
    """Stop set during an hour's LISTEN wait ends it at once, not at the next NOTIFY (the
    worker joined in 5 s by a test, or stopped by SIGTERM, hung there before)."""
    app, wakeup = _listening(database)
    stop = threading.Event()
    waiting = threading.Thread(target=wakeup.wait, args=(AN_HOUR, stop), daemon=True)
    try:
        waiting.start()
        stop.set()
        waiting.join(5)
        assert not waiting.is_alive()
    finally:
        wakeup.close()
        with app.app_context():
            db.engine.dispose()


@pytest.mark.postgresql_only
def test_a_listen_connection_the_server_dropped_is_opened_again(database: Databases, caplog):
    """The server ends the worker's LISTEN connection (a restart, an admin): the wait logs it
    and returns instead of raising out of the worker, and the next wait hears a NOTIFY again."""
    app, wakeup = _listening(database)
    stop = threading.Event()
    try:
        with app.app_context(), db.engine.begin() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"),
                               {"pid": wakeup.connection.info.backend_pid})
        with caplog.at_level(logging.WARNING, logger="webapp.broadcasting.wakeup"):
            wakeup.wait(0.5, stop)
        assert "LISTEN connection to the database failed" in caplog.text
        heard = threading.Thread(target=wakeup.wait, args=(AN_HOUR, stop), daemon=True)
        heard.start()
        eventually(lambda: wakeup.connection is not None, what="the LISTEN connection again")
        _notify(app)
        heard.join(10)
        assert not heard.is_alive()
    finally:
        stop.set()
        wakeup.close()
        with app.app_context():
            db.engine.dispose()

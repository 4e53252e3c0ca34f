"""The outbox claim under concurrency, on SQLite and on PostgreSQL: several deliverers and
several writers at once, against a real broadcaster behind a recording forwarder.

Every event must be sent exactly once (not only delivered once: the broadcaster's idempotency
keys would hide a row two deliverers both sent, so the forwarder counts what was sent), and each
writer's events must arrive in the order it committed them.

Each test runs on a database of its own, on SQLite and on the suite's PostgreSQL server.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.sdk import assert_nothing_then
from tests.webapp.conftest import Databases, app_config
from tests.webapp.test_integration import ADMIN_CHANNEL
from tests.webapp.test_outbox_batching import Forwarder, admin_socket, deliver
from webapp import create_app
from webapp.broadcasting.delivery import ReverbClient
from webapp.broadcasting.outbox import OutboxEvent
from webapp.extensions import db
from webapp.seed import seed_database

WRITERS, EVENTS_PER_WRITER, DELIVERERS = 4, 30, 3


@pytest.fixture
def database_url(database: Databases) -> str:
    """An empty database of the test's kind (SQLite, then PostgreSQL)."""
    return database.empty()


@pytest.fixture
def forwarder(server) -> Iterator[Forwarder]:
    started = Forwarder(server.port)
    yield started
    started.shutdown()
    started.server_close()


def write_events(app: Flask, writer: int) -> None:
    """``EVENTS_PER_WRITER`` events, one transaction each, as a request thread writes them."""
    with app.app_context():
        try:
            for n in range(EVENTS_PER_WRITER):
                db.session.add(OutboxEvent(name="ping", channels=json.dumps([ADMIN_CHANNEL]),
                                           data=json.dumps({"writer": writer, "n": n})))
                db.session.commit()
        finally:
            db.session.remove()


def deliver_until(app: Flask, done: threading.Event, errors: list[BaseException]) -> None:
    """One deliverer: passes on its own kept connection until ``done``."""
    client = ReverbClient.from_config(app.config)
    try:
        while not done.is_set():
            if not deliver(app, client, app.config["OUTBOX_BATCH_SIZE"]).delivered:
                done.wait(0.01)
    except BaseException as exc:  # reported by the test
        errors.append(exc)
    finally:
        client.close()


def pending(app: Flask) -> int:
    with app.app_context():
        try:
            return db.session.scalar(db.select(db.func.count()).select_from(OutboxEvent)
                                     .where(OutboxEvent.delivered_at.is_(None)))
        finally:
            db.session.remove()


@pytest.mark.parametrize("batch_size", [1, 10])
def test_deliverers_and_writers_at_once_send_each_row_once_in_each_writers_order(
        database_url, server, forwarder, sockets, batch_size):
    app = create_app(app_config(Path("unused"), DATABASE_URL=database_url,
                                REVERB_PORT=forwarder.port, OUTBOX_BATCH_SIZE=batch_size))
    with app.app_context():
        seed_database()
        db.session.remove()
    admin_ws = admin_socket(app, sockets)
    done, errors = threading.Event(), []
    deliverers = [threading.Thread(target=deliver_until, args=(app, done, errors))
                  for _ in range(DELIVERERS)]
    writers = [threading.Thread(target=write_events, args=(app, w)) for w in range(WRITERS)]
    for thread in deliverers + writers:
        thread.start()
    for thread in writers:
        thread.join(60)
    total = WRITERS * EVENTS_PER_WRITER
    events = [admin_ws.next_event(10.0) for _ in range(total)]
    done.set()
    for thread in deliverers:
        thread.join(30)
    with app.app_context():
        db.engine.dispose()

    assert errors == []
    assert None not in events, "an event never arrived"
    assert_nothing_then(admin_ws, server, ADMIN_CHANNEL)  # no event arrived twice
    sent = Counter(key for request in forwarder.requests for key in request.keys())
    assert len(sent) == total and set(sent.values()) == {1}, "a row was sent twice"
    received = [json.loads(event["data"]) for event in events]
    for writer in range(WRITERS):
        assert [e["n"] for e in received if e["writer"] == writer] == list(
            range(EVENTS_PER_WRITER))
    assert pending(app) == 0

"""The long-running worker: a database error ends one pass, never the worker."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from shared.payloads import dumps
from tests.servers import start_broadcaster
from tests.webapp.conftest import app_config
from webapp import create_app
from webapp.extensions import db
from webapp.outbox import OutboxEvent
from webapp.worker import run_worker


def test_a_database_error_is_logged_and_retried_until_delivery(
        tmp_path: Path, caplog: pytest.LogCaptureFixture):
    broadcaster = start_broadcaster()
    app = create_app(app_config(tmp_path / "empty.sqlite3", REVERB_PORT=broadcaster.port))
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(app, 0.05, 0.05, 0.1, stop), daemon=True)
    try:
        with caplog.at_level(logging.ERROR, logger="webapp.worker"):
            worker.start()
            deadline = time.monotonic() + 10
            while not any("no such table" in r.exc_text for r in caplog.records if r.exc_text):
                assert worker.is_alive(), "the worker died on a missing table"
                assert time.monotonic() < deadline, "no logged database error"
                time.sleep(0.05)
        assert worker.is_alive()
        with app.app_context():
            db.create_all()
            db.session.add(OutboxEvent(name="ping", channels=dumps(["orders"]), data="{}"))
            db.session.commit()
            deadline = time.monotonic() + 10
            while db.session.scalar(db.select(OutboxEvent.delivered_at)) is None:
                assert time.monotonic() < deadline, "the worker never delivered the event"
                time.sleep(0.05)
                db.session.rollback()
    finally:
        stop.set()
        worker.join(5)
        broadcaster.stop()
        with app.app_context():
            db.engine.dispose()
    assert not worker.is_alive()

"""The long-running worker: a database error ends one pass, never the worker."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from shared.payloads import dumps
from tests.servers import start_broadcaster
from tests.waiting import eventually
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

"""How the outbox worker hears of new rows as they are committed, instead of at its next poll.

- **PostgreSQL**: a transaction that writes outbox rows sends ``NOTIFY resound_outbox``
  (:func:`notify_worker`), which PostgreSQL delivers when, and only if, it commits; the worker
  ``LISTEN``s on a connection of its own (:class:`ListenWakeup`).
- **SQLite** has no notifications between processes: the worker reads ``PRAGMA data_version``
  on a connection of its own every :data:`POLL_SECONDS` (:class:`DataVersionWakeup`). The
  number changes when any other connection commits; reading it touches no table and no disk.

Either way the worker also wakes after ``OUTBOX_IDLE_SECONDS`` with no news, so a missed wake-up
only delays delivery (the chores run then too).
"""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.engine import Engine

from ..extensions import db

NOTIFY_CHANNEL = "resound_outbox"
POLL_SECONDS = 0.002  # SQLite: between two reads of PRAGMA data_version while waiting


def notify_worker() -> None:
    """On PostgreSQL, have the current transaction wake the worker when it commits (PostgreSQL
    folds the repeats of one transaction into one notification). Nothing on SQLite."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


class Wakeup(Protocol):
    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Return when rows may have been committed, after ``timeout`` s, or once ``stop``
        is set, whichever comes first."""

    def close(self) -> None: ...


class ListenWakeup:
    """PostgreSQL: ``LISTEN`` on an autocommit connection of the worker's own."""

    def __init__(self, engine: Engine) -> None:
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        self.connection: Any = engine.dialect.loaded_dbapi.connect(*args, **kwargs,
                                                                   autocommit=True)
        self.connection.execute(f"LISTEN {NOTIFY_CHANNEL}")

    def wait(self, timeout: float, stop: threading.Event) -> None:
        if stop.is_set():
            return
        for _ in self.connection.notifies(timeout=timeout, stop_after=1):
            break
        for _ in self.connection.notifies(timeout=0):  # the ones queued meanwhile: one pass
            pass

    def close(self) -> None:
        self.connection.close()


class DataVersionWakeup:
    """SQLite: ``PRAGMA data_version`` on a connection of the worker's own, polled."""

    def __init__(self, engine: Engine) -> None:
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        self.connection: Any = engine.dialect.loaded_dbapi.connect(*args, **kwargs)
        self.version = self._read()

    def _read(self) -> int:
        return self.connection.execute("PRAGMA data_version").fetchone()[0]

    def wait(self, timeout: float, stop: threading.Event) -> None:
        deadline = time.monotonic() + timeout
        while not stop.is_set():
            version = self._read()
            if version != self.version:
                self.version = version
                return
            left = deadline - time.monotonic()
            if left <= 0:
                return
            stop.wait(min(POLL_SECONDS, left))

    def close(self) -> None:
        self.connection.close()


class SleepWakeup:
    """Any other database (an in-memory SQLite has no other writers): sleep ``timeout``."""

    def wait(self, timeout: float, stop: threading.Event) -> None:
        stop.wait(timeout)

    def close(self) -> None:
        pass


def worker_wakeup(engine: Engine) -> Wakeup:
    """The way the worker on ``engine``'s database waits for new outbox rows."""
    if engine.dialect.name == "postgresql":
        return ListenWakeup(engine)
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        return DataVersionWakeup(engine)
    return SleepWakeup()

"""How the outbox worker hears of new rows as they are committed, instead of at its next poll.

- **PostgreSQL**: after a commit that wrote outbox rows, the process sends ``NOTIFY
  resound_outbox`` on a connection of its own, outside the transaction (:func:`notify_worker`);
  the worker ``LISTEN``s on a connection of its own (:class:`ListenWakeup`). Not inside the
  transaction: PostgreSQL serializes the commits of notifying transactions on one lock, held
  through the log flush, which took away its group commit (the end-to-end bench fell from 83 to
  65 transitions/s). A process that dies between its commit and its NOTIFY loses no event: the
  worker finds it at its next look, ``OUTBOX_IDLE_SECONDS`` later at most.
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

NOTIFY_CHANNEL = "resound_outbox"
POLL_SECONDS = 0.002  # SQLite: between two reads of PRAGMA data_version while waiting


def notify_worker(engine: Engine) -> None:
    """On PostgreSQL, wake the worker (call after a commit that wrote outbox rows): one NOTIFY
    in a transaction of its own, on a pooled connection. Nothing on SQLite."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                text(f"NOTIFY {NOTIFY_CHANNEL}"))


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

"""How the outbox worker hears of new rows as they are committed, instead of at its next poll,
when it delivers alone (``OUTBOX_DELIVER_ON_COMMIT`` off). With it on, each web process
delivers its own commits right after them, and the worker only looks every
``OUTBOX_IDLE_SECONDS`` for what they left (a process that died, a broadcaster that was down).

- **PostgreSQL**: a commit that wrote outbox rows kicks the process's :class:`Notifier`, a
  thread that sends ``NOTIFY resound_outbox`` in a transaction of its own, without waiting for
  the log flush (its own commit needs no durability); commits during one NOTIFY share the next.
  The worker ``LISTEN``s on a connection of its own (:class:`ListenWakeup`). Not inside the
  request's transaction, nor in the request: PostgreSQL serializes the commits of notifying
  transactions on one lock held through their log flush (a NOTIFY takes a transaction id), which
  took away its group commit (the end-to-end bench fell from 83 to 65 transitions/s). A process
  that dies between its commit and its NOTIFY loses no event: the worker finds it at its next
  look, ``OUTBOX_IDLE_SECONDS`` later at most.
- **SQLite** has no notifications between processes: the worker reads ``PRAGMA data_version``
  on a connection of its own every :data:`POLL_SECONDS` (:class:`DataVersionWakeup`). The
  number changes when any other connection commits; reading it touches no table and no disk.

Either way the worker also wakes after ``OUTBOX_IDLE_SECONDS`` with no news, so a missed wake-up
only delays delivery (the chores run then too).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Any, Protocol

from sqlalchemy import text
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "resound_outbox"
POLL_SECONDS = 0.002  # SQLite: between two reads of PRAGMA data_version while waiting
PASS_GAP_SECONDS = 0.02  # shortest time from one pass's start to the next's (see KickedThread)
STOP_CHECK_SECONDS = 0.25  # PostgreSQL: longest LISTEN wait before looking at the stop flag


class KickedThread:
    """One daemon thread per process (started by the first :meth:`kick` in each process, so a
    forked gunicorn worker gets its own) that runs :meth:`run_pass` after kicks; kicks during a
    pass make one more pass, started :data:`PASS_GAP_SECONDS` after the last one started at the
    earliest: under load a pass then takes the commits of those milliseconds together (one
    delivery of a batch, one NOTIFY) instead of one each. Subclasses set ``name`` and
    ``failure`` (logged when a pass raises) and may :meth:`open` and :meth:`close` what their
    passes use."""

    name = "kicked"
    failure = "a background pass failed"

    def __init__(self) -> None:
        self._pid: int | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def open(self) -> None:
        """Before the first pass, in the thread."""

    def run_pass(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """After the last pass, in the thread."""

    def kick(self) -> None:
        with self._lock:  # two first kicks at once still start one thread
            if self._pid != os.getpid():  # first kick in this process (or a forked worker)
                self._pid, self._wake = os.getpid(), threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._wake,),
                                                name=self.name, daemon=True)
                self._thread.start()
        self._wake.set()

    def stop(self, timeout: float) -> None:
        """End the thread once its pass in flight is over (an app torn down, in tests)."""
        self._stopped = True
        self._wake.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout)

    def _run(self, wake: threading.Event) -> None:
        self.open()
        started = -PASS_GAP_SECONDS
        try:
            while True:
                wake.wait()
                time.sleep(max(0.0, started + PASS_GAP_SECONDS - time.monotonic()))
                wake.clear()
                if self._stopped:
                    return
                started = time.monotonic()
                try:
                    self.run_pass()
                except Exception:  # the worker is the guarantee; a pass only saves time
                    log.exception(self.failure)
        finally:
            self.close()


class Notifier(KickedThread):
    """PostgreSQL: the process's NOTIFY to the worker, after the commits that wrote outbox rows
    (see the module's docstring)."""

    name = "outbox-notify"
    failure = "could not wake the worker (NOTIFY); it finds the events at its next look"

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self.engine = engine

    def run_pass(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(text("SET LOCAL synchronous_commit TO OFF"))
            connection.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


class Wakeup(Protocol):
    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Return when rows may have been committed, after ``timeout`` s, or once ``stop``
        is set, whichever comes first."""

    def close(self) -> None: ...


class ListenWakeup:
    """PostgreSQL: ``LISTEN`` on an autocommit connection of the worker's own. It waits in
    slices of :data:`STOP_CHECK_SECONDS`, so a stopping worker ends promptly; a connection the
    server dropped (a restart, a failover) is opened again at the next wait."""

    def __init__(self, engine: Engine) -> None:
        self._args = engine.dialect.create_connect_args(engine.url)
        self._dbapi: Any = engine.dialect.loaded_dbapi
        self.connection: Any = self._listen()

    def _listen(self) -> Any:
        args, kwargs = self._args
        connection = self._dbapi.connect(*args, **kwargs, autocommit=True)
        connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
        return connection

    def wait(self, timeout: float, stop: threading.Event) -> None:
        deadline = time.monotonic() + timeout
        try:
            if self.connection is None:
                self.connection = self._listen()
            while not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                heard = list(self.connection.notifies(timeout=min(STOP_CHECK_SECONDS, left),
                                                      stop_after=1))
                if heard:
                    for _ in self.connection.notifies(timeout=0):  # queued meanwhile: one pass
                        pass
                    return
        except self._dbapi.Error as exc:
            log.warning("the worker's LISTEN connection to the database failed (%s); it "
                        "listens again at its next wait", exc)
            self.close()
            self.connection = None
            stop.wait(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(self._dbapi.Error):
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
    """Sleep ``timeout``: for a worker behind web processes that deliver their own commits, or
    a database that cannot tell (an in-memory SQLite has no other writers)."""

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

"""``broadcaster start --workers N``: N worker processes serve one port, watched by the parent.

How the port is shared: the parent binds it, once per worker, as N listening sockets on the same
address with ``SO_REUSEPORT``, and each worker serves the socket it inherits. The kernel spreads
new connections over the N sockets by a hash of the client's address, so the load is even (N
processes racing to ``accept()`` on one shared socket are not). The parent keeps every socket
open: connections queued on a dead worker's socket wait for its replacement instead of being
refused. The same user starting a second ``--workers`` server on the same port would join the
group, so don't.

Each worker is a fresh interpreter (multiprocessing's ``spawn``: no event loop, Redis connection
or thread is forked) and a cluster node of its own, with a random ``node_id``; workers share
state through Redis, hence ``REVERB_SCALING_ENABLED`` (checked in :mod:`broadcaster.config`).

The parent pings each worker over a pipe every :data:`PING_INTERVAL`. A worker answers from its
event loop, so a worker that exits, or whose loop is stuck for :data:`UNRESPONSIVE_TIMEOUT`, is
killed and started again, with a log line. With metrics on, the answer is a snapshot of the
worker's counters, and the parent serves the sum of its workers' last snapshots at ``/metrics``
(a restarted worker counts from zero again). SIGTERM or SIGINT to the parent sends SIGTERM to every
worker: each closes its sockets with 4200 (:meth:`Server.shutdown`) and exits; the parent waits
:data:`STOP_TIMEOUT` at most, kills what is left, and exits 0. A worker whose parent dies (its
pipe closes) drains and exits the same way.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING

from ..config import ServerConfig
from ..metrics.snapshot import Snapshot, take, total
from .factory import serve_metrics

if TYPE_CHECKING:
    from .listener import Server

logger = logging.getLogger("broadcaster")

PING_INTERVAL = 1.0  # seconds between two pings of a worker
UNRESPONSIVE_TIMEOUT = 10.0  # seconds a serving worker may leave a ping unanswered
STARTUP_TIMEOUT = 60.0  # seconds a worker may take to import, reach Redis and serve
STOP_TIMEOUT = 10.0  # seconds workers get to close their sockets before they are killed
PIPE_CLOSED_GRACE = 1.0  # seconds a worker that closed its pipe gets to finish exiting
BACKLOG = 100  # connections the kernel queues on each worker's socket (asyncio's default)

PING, PONG, READY = "ping", "pong", "ready"

_spawn = multiprocessing.get_context("spawn")


@dataclass
class Link:
    """What a worker process gets from its parent: its config (with its ``node_id``), the
    listening socket it serves, and its end of the pipe."""

    config: ServerConfig
    sock: socket.socket
    pipe: Connection

    def started(self, server: Server) -> None:
        """Call once the worker serves: tell the parent, then answer its pings from the loop."""
        logger.debug("worker pid %d serves as node %s", os.getpid(), self.config.node_id)
        self.pipe.send(READY)
        server.loop.add_reader(self.pipe.fileno(), self._answer_ping, server)

    def _answer_ping(self, server: Server) -> None:
        try:
            self.pipe.recv()
            self.pipe.send(PONG if self.config.metrics_port is None else take(server))
        except (EOFError, OSError):
            logger.debug("worker pid %d: the supervisor is gone; shutting down", os.getpid())
            server.loop.remove_reader(self.pipe.fileno())
            os.kill(os.getpid(), signal.SIGTERM)


# The body of a worker process: ``target(*args, link)``; it serves until SIGTERM and returns
# the process's exit status.
WorkerTarget = Callable[..., int]


def _worker_main(target: WorkerTarget, args: tuple[object, ...], link: Link) -> None:
    # A terminal's Ctrl-C reaches every worker too: until its server takes SIGINT over, leave
    # it to the parent, which stops the workers with SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(target(*args, link))


class _StopSignal:
    """Whether SIGTERM or SIGINT arrived, while installed (``with``).

    :meth:`wait` sleeps in short steps: a signal handler must not take a lock that the main
    thread may hold, as ``threading.Event.set`` would.
    """

    STEP = 0.05  # seconds

    def __init__(self) -> None:
        self.received = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopSignal:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _handle(self, signum: int, frame: object) -> None:
        self.received = True

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` s, less if a signal comes; whether one came."""
        deadline = time.monotonic() + timeout
        while not self.received and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(self.STEP, left))
        return self.received


class _Worker:
    """One worker slot in the parent: its socket stays, its process is replaced when it dies."""

    def __init__(self, index: int, config: ServerConfig, sock: socket.socket,
                 target: WorkerTarget, args: tuple[object, ...]) -> None:
        self.index, self.config, self.sock = index, config, sock
        self.target, self.args = target, args
        self.process: multiprocessing.process.BaseProcess | None = None
        self.pipe: Connection | None = None
        self.started_at = self.answered_at = 0.0  # time.monotonic() of start, of last answer
        self.ready = self.awaiting_pong = False
        self.snapshot: Snapshot = {}  # the worker's metrics, as its last answer carried them

    def start(self) -> None:
        self.pipe, child_end = _spawn.Pipe()
        link = Link(replace(self.config, node_id=secrets.token_hex(8)), self.sock, child_end)
        self.process = _spawn.Process(target=_worker_main, args=(self.target, self.args, link),
                                      name=f"broadcaster-worker-{self.index}")
        self.process.start()
        child_end.close()
        self.started_at = self.answered_at = time.monotonic()
        self.ready = self.awaiting_pong = False
        self.snapshot = {}
        logger.debug("worker %d started (pid %d)", self.index, self.process.pid)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def problem(self, now: float) -> str | None:
        """Why this worker must be replaced, or None; pings it when it is due for one."""
        assert self.process is not None and self.pipe is not None
        pipe_open = True
        try:
            while self.pipe.poll():
                message = self.pipe.recv()
                if message == READY:
                    self.ready = True
                elif isinstance(message, dict):
                    self.snapshot = message
                self.answered_at, self.awaiting_pong = now, False
            if self.ready and not self.awaiting_pong:
                self.pipe.send(PING)
                self.awaiting_pong = True
        except (EOFError, OSError):
            pipe_open = False
            self.process.join(PIPE_CLOSED_GRACE)  # a closed pipe is most often an exit
        if not self.process.is_alive():
            return f"exited with status {self.process.exitcode}"
        if not pipe_open:
            return "closed its pipe"
        if not self.ready and now - self.started_at > STARTUP_TIMEOUT:
            return f"did not start serving within {STARTUP_TIMEOUT:g} s"
        if self.ready and now - self.answered_at > UNRESPONSIVE_TIMEOUT:
            return f"did not answer pings for {UNRESPONSIVE_TIMEOUT:g} s"
        return None

    def restart(self, reason: str) -> None:
        logger.warning("worker %d (pid %s) %s; starting a new one", self.index, self.pid, reason)
        self.kill()
        self.start()

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.is_alive():
            os.kill(self.process.pid, signum)  # type: ignore[arg-type]

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.join()
        if self.pipe is not None:
            self.pipe.close()


def bind(config: ServerConfig, count: int) -> list[socket.socket]:
    """``count`` listening sockets on ``config``'s address, sharing it with SO_REUSEPORT.

    Port 0 means a free port, the same for all. Raises OSError when the address is taken.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        config.host, config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
            address = sock.getsockname()  # port 0 is now the port chosen
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def supervise(config: ServerConfig, target: WorkerTarget, args: tuple[object, ...],
              announce: Callable[[int], None]) -> int:
    """Run ``config.workers`` workers until SIGTERM or SIGINT; the exit status.

    Each worker process runs ``target(*args, link)`` (a module-level function, so that it can be
    spawned), which must call ``link.started(server)`` once it serves ``link.sock``.
    ``announce(port)`` is called once every worker serves. Raises OSError if the port is taken.
    """
    sockets = bind(config, config.workers)
    workers = [_Worker(index, config, sock, target, args) for index, sock in enumerate(sockets)]
    try:
        serve_metrics(config, lambda: total(worker.snapshot for worker in workers))
        with _StopSignal() as stop:
            for worker in workers:
                worker.start()
            status = _start_up(workers, stop)
            if status == 0 and not stop.received:
                announce(sockets[0].getsockname()[1])
                _watch(workers, stop)
            _stop(workers)
        return status
    finally:
        for sock in sockets:
            sock.close()


def _start_up(workers: list[_Worker], stop: _StopSignal) -> int:
    """0 once every worker serves (or on a signal); 1 when one failed to start."""
    while not stop.received and not all(worker.ready for worker in workers):
        for worker in workers:
            problem = worker.problem(time.monotonic())
            if problem is not None:
                logger.error("worker %d (pid %s) %s at start-up; stopping",
                             worker.index, worker.pid, problem)
                return 1
        stop.wait(_StopSignal.STEP)
    return 0


def _watch(workers: list[_Worker], stop: _StopSignal) -> None:
    while not stop.wait(PING_INTERVAL):
        for worker in workers:
            problem = worker.problem(time.monotonic())
            if problem is not None:
                worker.restart(problem)


def _stop(workers: list[_Worker]) -> None:
    """SIGTERM every worker, wait for them to drain, kill those still running."""
    logger.info("stopping %d workers", len(workers))
    for worker in workers:
        worker.signal(signal.SIGTERM)
    allowed = STOP_TIMEOUT + (workers[0].config.drain_seconds if workers else 0.0)
    deadline = time.monotonic() + allowed
    for worker in workers:
        if worker.process is not None:
            worker.process.join(max(0.0, deadline - time.monotonic()))
        if worker.process is not None and worker.process.is_alive():
            logger.warning("worker %d (pid %s) did not stop within %g s; killing it",
                           worker.index, worker.pid, allowed)
        worker.kill()

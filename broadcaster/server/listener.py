"""The listener: apps, the one port, the periodic sweep, publishing, signals and shutdown.

Also the surface the HTTP API uses (:class:`~broadcaster.api.host.ApiHost`): look up apps,
:meth:`Server.publish`, :meth:`Server.unavailable`; and :meth:`Server.run_query` for the
answers that need cluster state.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections import Counter
from collections.abc import Callable, Sequence

from ..api.http import HttpResponse
from ..api.queries import Query
from ..cluster.base import Bus, ClusterState
from ..cluster.local import LocalBus, LocalState
from ..config import ServerConfig
from ..protocol.fanout import deliver
from ..protocol.messages import GENERIC_RECONNECT
from ..protocol.publication import Publication
from ..protocol.requests import Answer
from ..protocol.session import Session
from ..protocol.state import AppState
from .connection import Connection

logger = logging.getLogger("broadcaster")

SHUTDOWN_GRACE = 2.0  # seconds sockets get to finish their closing handshake at shutdown


class Server:
    """Every app's state and every open connection of this process."""

    def __init__(self, config: ServerConfig, bus: Bus | None = None,
                 state: ClusterState | None = None) -> None:
        self.config = config
        self.apps: dict[str, AppState] = {app.id: AppState(app) for app in config.apps}
        self._apps_by_key = {state.key: state for state in self.apps.values()}
        self.connections: set[Connection] = set()
        self.ws_prefix = f"{config.path}/app/"
        self.bus = bus or LocalBus()
        self.bus.attach(self.deliver)
        self.state = state or LocalState()
        self.state.attach(self.apps, self.bus.publish)
        self.loop = asyncio.get_running_loop()  # build the server inside the loop it serves
        self.clock = self.loop.time
        self._listener: asyncio.Server | None = None
        self._sweep_timer: asyncio.TimerHandle | None = None
        self._write_queue: list[Connection] = []
        shortest = min([config.http_idle_timeout, *(app.ping_interval for app in config.apps)])
        self.sweep_interval = min(1.0, max(0.05, shortest / 4))
        # Metrics: plain counters the connections bump; broadcaster.metrics reads them.
        self.closes: Counter[int] = Counter()  # WebSockets the server closed, by close code
        self.http_answers: Counter[int] = Counter()  # HTTP answers, by status
        self.http_bytes_in = self.http_bytes_out = 0  # HTTP request and response body bytes

    # --- what the HTTP API uses ------------------------------------------------------------

    def app_by_id(self, app_id: str) -> AppState | None:
        return self.apps.get(app_id)

    def app_by_key(self, key: str) -> AppState | None:
        return self._apps_by_key.get(key)

    def publish(self, publication: Publication) -> None:
        """Carry out ``publication`` on every process's sockets, through the bus."""
        self.bus.publish(publication)

    def unavailable(self) -> str | None:
        """Why a publication could not reach every process now, or None."""
        return self.bus.unavailable()

    def run_query(self, query: Query, done: Callable[[Sequence[Answer]], None]) -> None:
        """Ask the cluster state each of ``query``'s requests; call ``done`` with the answers,
        in request order, once all have come (at once on the local state)."""
        answers: list[Answer | None] = [None] * len(query.requests)
        remaining = [len(query.requests)]

        def collect(index: int, answer: Answer) -> None:
            answers[index] = answer
            remaining[0] -= 1
            if remaining[0] == 0:
                done(answers)  # type: ignore[arg-type]  # every slot is filled by now

        for index, request in enumerate(query.requests):
            self.state.submit(request, lambda answer, index=index: collect(index, answer))

    # --- counting (what connections call) -------------------------------------------------

    def answered(self, response: HttpResponse) -> None:
        """Count an HTTP answer about to be written."""
        self.http_answers[response.status] += 1
        self.http_bytes_out += len(response.body)

    def sent(self, session: Session | None, size: int) -> None:
        """Count a message of ``size`` bytes sent to one socket of ``session``'s app, if any."""
        if session is not None:
            session.app.sent(size)

    # --- delivery (what the bus calls) -----------------------------------------------------

    def deliver(self, publication: Publication) -> None:
        """Carry out a publication on this process's sockets of its app."""
        app = self.apps.get(publication.app_id)
        if app is None:
            logger.warning("dropped a publication for unknown app %s", publication.app_id)
            return
        deliver(app, publication)

    def queue_write(self, connection: Connection) -> None:
        """Have ``connection``'s queued frames written at the end of this loop pass."""
        if not self._write_queue:
            self.loop.call_soon(self._write_queued)
        self._write_queue.append(connection)

    def _write_queued(self) -> None:
        queue, self._write_queue = self._write_queue, []
        for connection in queue:
            connection.write_pending()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, sock: socket.socket | None = None) -> None:
        """Bind the port (or serve ``sock``, bound by a supervisor) and start the sweep."""
        await self.bus.start()
        await self.state.start()
        where = {"sock": sock} if sock else {
            "host": self.config.host, "port": self.config.port, "reuse_address": True}
        self._listener = await self.loop.create_server(lambda: Connection(self), **where)
        self._schedule_sweep()

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        assert self._listener is not None
        return self._listener.sockets[0].getsockname()[1]

    def _schedule_sweep(self) -> None:
        self._sweep_timer = self.loop.call_later(self.sweep_interval, self._sweep)

    def _sweep(self) -> None:
        now = self.clock()
        for connection in list(self.connections):
            try:
                connection.sweep(now, self.config.http_idle_timeout)
            except Exception:
                logger.exception("sweep failed on a connection; closing it")
                connection.transport.abort()
        for app in self.apps.values():
            app.prune_cache()
        self._schedule_sweep()

    async def shutdown(self) -> None:
        """Stop accepting, close every socket with 4200, and wait briefly for them to go."""
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
        if self._listener is not None:
            self._listener.close()
        for connection in list(self.connections):
            connection.close_with_error(GENERIC_RECONNECT, "server shutting down; reconnect")
        deadline = self.clock() + SHUTDOWN_GRACE
        while self.connections and self.clock() < deadline:
            await asyncio.sleep(0.02)
        for connection in list(self.connections):
            connection.transport.abort()
        await self.state.stop()
        await self.bus.stop()

    async def serve_until_signalled(self) -> None:
        """After :meth:`start`: serve until SIGTERM or SIGINT, then shut down cleanly."""
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        logger.info("shutting down")
        await self.shutdown()

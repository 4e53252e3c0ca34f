"""The listener: apps, the one port, the periodic sweep, publishing, signals and shutdown.

Also the surface the HTTP API uses (:class:`~broadcaster.api.host.ApiHost`): look up apps,
:meth:`Server.publish`, :meth:`Server.unavailable`; and :meth:`Server.run_query` for the
answers that need cluster state, the idempotency store or the API limits store.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import signal
import socket
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from typing import Protocol

from ..api.http import HttpResponse
from ..api.queries import Query
from ..cluster.api_limits import ApiLimits, LocalApiLimits
from ..cluster.base import Bus, ClusterState
from ..cluster.idempotency import Idempotency, LocalIdempotency
from ..cluster.local import LocalBus, LocalState
from ..config import HistoryRule, ServerConfig, tls_context
from ..protocol.fanout import deliver
from ..protocol.messages import GENERIC_RECONNECT
from ..protocol.publication import Publication
from ..protocol.requests import Answer, ClaimKeys, CountApiCall, Listen, Request
from ..protocol.session import Session
from ..protocol.state import AppState
from ..protocol.subscription_count import SubscriptionCounts
from .connection import Connection
from .http_connection import CLOSE_TIMEOUT
from .stream import Stream
from .tls import PendingHandshake, TlsAcceptor, bind

logger = logging.getLogger("broadcaster")

SHUTDOWN_GRACE = 2.0  # seconds sockets get to finish their closing handshake at shutdown
TRIM_AFTER = 8_000_000  # bytes held at once past which memory is given back once all is sent


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``: freed heap goes back to the OS (None elsewhere, e.g. musl)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


MALLOC_TRIM = _malloc_trim()


class Service(Protocol):
    """Something the server starts and stops with itself (the webhooks)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def metrics(self) -> dict[str, float]:
        """Its counters and gauges now, by snapshot name (:mod:`broadcaster.metrics`)."""
        ...


class Server:
    """Every app's state and every open connection of this process."""

    def __init__(self, config: ServerConfig, bus: Bus | None = None,
                 state: ClusterState | None = None,
                 idempotency: Idempotency | None = None,
                 api_limits: ApiLimits | None = None) -> None:
        self.config = config
        self.apps: dict[str, AppState] = {app.id: AppState(app) for app in config.apps}
        self._apps_by_key = {state.key: state for state in self.apps.values()}
        self.connections: set[Connection] = set()
        self.ws_prefix = f"{config.path}/app/"
        self.bus = bus or LocalBus()
        self.bus.attach(self.deliver, self.history_rule)
        for app in self.apps.values():
            app.routes = self.bus.routes(app.id)
        self.state = state or LocalState()
        self.state.attach(self.apps, self.bus.publish)
        self.idempotency = idempotency or LocalIdempotency(config.idempotency_window)
        self.services: list[Service] = []  # started after the cluster state, stopped before
        self.loop = asyncio.get_running_loop()  # build the server inside the loop it serves
        self.clock = self.loop.time
        self.api_limits = api_limits or LocalApiLimits(self.clock)
        self.draining = False  # set by shutdown(): /ready answers 503
        self._listener: asyncio.Server | None = None
        self._acceptor: TlsAcceptor | None = None  # on a TLS port, instead of _listener
        self._sweep_timer: asyncio.TimerHandle | None = None
        self._write_queue: list[Connection] = []
        # Hardening: sockets not (yet) WebSockets, oldest first (the HTTP cap closes the first),
        # from accept (TLS handshakes included); sockets holding bytes their client has not
        # read, and how many bytes all hold.
        self.http_connections: dict[Connection | PendingHandshake, None] = {}
        self.holding: set[Stream] = set()
        self.held_bytes = 0
        self.refused: Counter[str] = Counter()  # clients refused or shed, by reason
        self._unlogged: dict[str, int] = {}  # refusals since the last log line, by reason
        self._shedding = False
        self._trim_due = False  # much was held: give the memory back once nothing is
        self._last_held_at = 0.0
        shortest = min([config.http_idle_timeout, config.http_head_timeout,
                        *(app.ping_interval for app in config.apps)])
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

    def submit(self, request: Request, reply: Callable[[Answer], None]) -> None:
        """Run a session's request: a :class:`Listen` on the bus, the rest on the cluster
        state; ``reply`` gets the answer (at once on the local twins)."""
        if isinstance(request, Listen):
            self.bus.listen(request.app_id, request.channel, reply)
        else:
            self.state.submit(request, reply)

    def run_query(self, query: Query, done: Callable[[Sequence[Answer]], None]) -> None:
        """Ask the cluster state (for a :class:`ClaimKeys`, the idempotency store; for a
        :class:`CountApiCall`, the API limits store) each of ``query``'s requests; call
        ``done`` with the answers, in request order, once all have come (at once on the local
        twins)."""
        answers: list[Answer | None] = [None] * len(query.requests)
        remaining = [len(query.requests)]

        def collect(index: int, answer: Answer) -> None:
            answers[index] = answer
            remaining[0] -= 1
            if remaining[0] == 0:
                done(answers)  # type: ignore[arg-type]  # every slot is filled by now

        for index, request in enumerate(query.requests):
            if isinstance(request, ClaimKeys):
                self.idempotency.submit(request, partial(collect, index))
            elif isinstance(request, CountApiCall):
                self.api_limits.submit(request, partial(collect, index))
            else:
                self.state.submit(request, partial(collect, index))

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

    def deliver(self, publication: Publication,
                position: tuple[int, str] | None = None) -> None:
        """Carry out a publication on this process's sockets of its app (``position``: a
        history channel's serial and epoch, from the cluster)."""
        app = self.apps.get(publication.app_id)
        if app is None:
            logger.warning("dropped a publication for unknown app %s", publication.app_id)
            return
        deliver(app, publication, position)

    def history_rule(self, app_id: str, channel: str) -> HistoryRule | None:
        """The history rule of ``channel`` in app ``app_id``, or None (for the bus)."""
        app = self.apps.get(app_id)
        return app.history.of(channel) if app is not None and app.history is not None else None

    def queue_write(self, connection: Connection) -> None:
        """Have ``connection``'s queued frames written at the end of this loop pass."""
        if not self._write_queue:
            self.loop.call_soon(self._write_queued)
        self._write_queue.append(connection)

    def _write_queued(self) -> None:
        queue, self._write_queue = self._write_queue, []
        for connection in queue:
            connection.write_pending()

    # --- hardening: caps on what clients may hold ----------------------------------------

    def admit_http(self, connection: Connection | PendingHandshake) -> None:
        """Count a new connection in the HTTP phase (or its TLS handshake); past the cap,
        close the oldest one."""
        connections = self.http_connections
        if len(connections) >= self.config.max_http_connections:
            oldest = next(iter(connections))
            del connections[oldest]
            self.refuse("too many HTTP connections", f"closed the oldest of "
                        f"{self.config.max_http_connections} (RESOUND_MAX_HTTP_CONNECTIONS)")
            oldest.evict()
            self._trim_due = True  # a flood: give its memory back once it has stopped
            self._last_held_at = self.clock()
        connections[connection] = None

    def held(self, size: int) -> None:
        """``size`` more bytes wait for a slow socket; past the budget, shed the worst."""
        self.held_bytes += size
        if self.held_bytes > TRIM_AFTER:
            self._trim_due = True
            self._last_held_at = self.clock()
        if self.held_bytes > self.config.write_buffer_total and not self._shedding:
            self._shedding = True
            try:
                target = self.config.write_buffer_total * 3 // 4
                for stream in sorted(self.holding, key=lambda s: s.held_size, reverse=True):
                    if self.held_bytes <= target:
                        break
                    self.refuse("slow sockets hold too much", f"shed one holding "
                                f"{stream.held_size} bytes (RESOUND_WRITE_BUFFER_TOTAL)")
                    stream.overflow()
            finally:
                self._shedding = False

    def released(self, size: int) -> None:
        """``size`` held bytes went to the transport or were dropped."""
        self.held_bytes -= size

    def refuse(self, reason: str, detail: str) -> None:
        """Count a refusal in :attr:`refused`; log the first of each reason per sweep, then
        how many more came (an attack must not flood the log)."""
        self.refused[reason] += 1
        if reason in self._unlogged:
            self._unlogged[reason] += 1
        else:
            self._unlogged[reason] = 0
            logger.warning("refused a client: %s: %s", reason, detail)

    def _give_back_memory(self, now: float) -> None:
        """Once slow sockets that held megabytes are gone, or a flood of connections past the
        HTTP cap has stopped, give the memory back to the OS.

        A closed socket's objects form cycles (connection, session, transport) that only the
        cyclic collector frees, and glibc keeps freed heap unless trimmed: without both, 500
        shed slow consumers left the RSS at twice the idle figure, and a flood of silent TLS
        connections left it at three times. Once per such episode, when nothing is held and
        the shed sockets are gone (aborted within ``CLOSE_TIMEOUT``).
        """
        if self._trim_due and not self.holding and now - self._last_held_at > 2 * CLOSE_TIMEOUT:
            self._trim_due = False
            gc.collect()
            if MALLOC_TRIM is not None:
                MALLOC_TRIM(0)

    def _log_refusals(self) -> None:
        for reason, count in self._unlogged.items():
            if count:
                logger.warning("refused %d more clients: %s", count, reason)
        self._unlogged.clear()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, sock: socket.socket | None = None) -> None:
        """Bind the port (or serve ``sock``, bound by a supervisor) and start the sweep.

        With a certificate and key (``RESOUND_TLS_CERT``/``RESOUND_TLS_KEY``) the port speaks
        TLS: wss and https, in every worker. Raises ConfigError if they are unusable.
        """
        context = tls_context(self.config.tls_cert, self.config.tls_key)
        if context is not None:
            sock = sock or bind(self.config.host, self.config.port)
        await self.bus.start()
        await self.state.start()
        await self.idempotency.start()
        await self.api_limits.start()
        for service in self.services:
            await service.start()
        if context is not None:  # see .tls: handshakes are counted from accept
            self._acceptor = TlsAcceptor(self, sock, context)
            self._acceptor.start()
        else:
            where = {"sock": sock} if sock else {
                "host": self.config.host, "port": self.config.port, "reuse_address": True}
            self._listener = await self.loop.create_server(lambda: Connection(self), **where)
        self._schedule_sweep()

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        if self._acceptor is not None:
            return self._acceptor.sock.getsockname()[1]
        assert self._listener is not None
        return self._listener.sockets[0].getsockname()[1]

    def _schedule_sweep(self) -> None:
        self._sweep_timer = self.loop.call_later(self.sweep_interval, self._sweep)

    def _sweep(self) -> None:
        now = self.clock()
        for connection in list(self.connections):
            try:
                connection.sweep(now)
            except Exception:
                logger.exception("sweep failed on a connection; closing it")
                connection.transport.abort()
        for app in self.apps.values():
            app.prune_cache()
            if app.subscription_counts is not None:
                self._subscription_counts(app.subscription_counts, now)
        self._log_refusals()
        self._give_back_memory(now)
        self._schedule_sweep()

    def _subscription_counts(self, counts: SubscriptionCounts, now: float) -> None:
        """Send the counts the throttle held back; in a cluster, poll the cluster-wide ones."""
        counts.flush(now)
        request = counts.poll()
        if request is not None:
            self.state.submit(request, lambda answer: counts.counted(answer, self.clock()))

    async def shutdown(self) -> None:
        """Stop accepting, close every socket with 4200, and wait briefly for them to go."""
        self.draining = True
        if self._sweep_timer is not None:
            self._sweep_timer.cancel()
        if self._listener is not None:
            self._listener.close()
        if self._acceptor is not None:
            self._acceptor.close()
        for connection in list(self.connections):
            connection.close_with_error(GENERIC_RECONNECT, "server shutting down; reconnect")
        deadline = self.clock() + SHUTDOWN_GRACE
        while self.connections and self.clock() < deadline:
            await asyncio.sleep(0.02)
        for connection in list(self.connections):
            connection.transport.abort()
        for service in self.services:
            await service.stop()
        await self.api_limits.stop()
        await self.idempotency.stop()
        await self.state.stop()
        await self.bus.stop()

    async def serve_until_signalled(self) -> None:
        """After :meth:`start`: serve until SIGTERM or SIGINT, then shut down cleanly.

        With ``drain_seconds``, the node first keeps serving that long while ``/ready`` answers
        503, so a load balancer sends new clients elsewhere before the sockets close.
        """
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            self.loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        self.draining = True
        if self.config.drain_seconds:
            logger.info("draining: /ready answers 503 for %g s, then shutting down",
                        self.config.drain_seconds)
            await asyncio.sleep(self.config.drain_seconds)
        logger.info("shutting down")
        await self.shutdown()

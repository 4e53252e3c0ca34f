"""TLS on the one port, with connections counted from accept.

With ``create_server(ssl=...)`` a connection would reach us only once its handshake was over,
and asyncio gives a handshake 60 s: a flood of silent connections, never counted against the
HTTP connection cap, held every descriptor until each real client was refused. So on a TLS
port we accept ourselves. Each accepted socket is a :class:`PendingHandshake`, counted against
``RESOUND_MAX_HTTP_CONNECTIONS`` at once (the oldest unfinished connection goes past it, a
pending handshake included), and handed to ``loop.connect_accepted_socket`` with TLS and a
deadline of ``RESOUND_TLS_HANDSHAKE_TIMEOUT``: the loop's own TLS (uvloop's or asyncio's) shakes
hands, then calls :meth:`Connection.connection_made <.http_connection.HttpConnection>` with
the TLS transport, as before.

One short task per connection while it shakes hands (asyncio's own TLS server runs one too);
none once it is done. Before the handshake, the task peeks at the client's first byte: a client
speaking plain HTTP (http:// or ws:// to a TLS port) gets a 400 saying to use https or wss,
where the handshake would have failed with nothing said.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import TYPE_CHECKING

from ..api.http import error_response, serialize_response
from .connection import Connection

if TYPE_CHECKING:
    from .listener import Server

logger = logging.getLogger("broadcaster")

ACCEPT_BATCH = 100  # sockets accepted per wake-up at most (asyncio's default backlog)
ACCEPT_RETRY = 1.0  # seconds without accepting after the process ran out of descriptors
TLS_HANDSHAKE_RECORD = 0x16  # a TLS client's first byte: its ClientHello's record type
PLAIN_HTTP_READ = 65_536  # bytes of a plain HTTP request read before it is answered
PLAIN_HTTP_ANSWER = serialize_response(error_response(
    400, "this port speaks TLS only: use https:// for the HTTP API and wss:// for WebSockets"),
    keep_alive=False)


class PendingHandshake:
    """An accepted socket still in its TLS handshake, as the HTTP cap counts it."""

    __slots__ = ("sock", "closing")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.closing = False

    def evict(self) -> None:
        """Make the handshake fail at once: the loop then closes the socket."""
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed (the loop detaches the socket when it closes it)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``, as ``loop.create_server`` would bind it."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                  flags=socket.AI_PASSIVE)[0]
    return socket.create_server(address, family=family, backlog=ACCEPT_BATCH)


class TlsAcceptor:
    """Accepts on ``sock`` and shakes hands with each client under ``server``'s HTTP cap."""

    def __init__(self, server: Server, sock: socket.socket, context: ssl.SSLContext) -> None:
        self.server = server
        self.sock = sock
        self.context = context
        self._handshakes: set[asyncio.Task[None]] = set()
        self._retry: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self.sock.setblocking(False)
        self.server.loop.add_reader(self.sock.fileno(), self._accept)

    def close(self) -> None:
        """Stop accepting; end the handshakes under way."""
        if self._retry is not None:
            self._retry.cancel()
        self.server.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        for pending in [p for p in self.server.http_connections
                        if isinstance(p, PendingHandshake)]:
            pending.evict()

    def _accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                sock, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # nothing more (another worker may have taken it), or gone already
            except OSError as exc:  # out of descriptors or buffers: back off, as asyncio does
                self.server.refuse("cannot accept", f"{exc.strerror}; not accepting for "
                                   f"{ACCEPT_RETRY:g} s (lower RESOUND_MAX_HTTP_CONNECTIONS "
                                   "or raise the descriptor limit)")
                self.server.loop.remove_reader(self.sock.fileno())
                self._retry = self.server.loop.call_later(ACCEPT_RETRY, self.start)
                return
            pending = PendingHandshake(sock)
            self.server.admit_http(pending)
            task = self.server.loop.create_task(self._handshake(pending))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, pending: PendingHandshake) -> None:
        """Shake hands within the deadline; the connection then speaks HTTP, counted on."""
        server = self.server
        timeout = server.config.tls_handshake_timeout
        started = server.clock()
        try:
            first = await self._first_byte(pending.sock, timeout)
            if first is None or first[:1] != bytes([TLS_HANDSHAKE_RECORD]):
                self._turn_away(pending, first, timeout)
                return
            await server.loop.connect_accepted_socket(
                lambda: Connection(server), pending.sock, ssl=self.context,
                ssl_handshake_timeout=max(timeout - (server.clock() - started), 0.001))
        except OSError:  # ssl.SSLError, a reset, an eviction, the deadline: the loop closes it
            if not pending.closing and server.clock() - started >= timeout:
                self._too_slow(timeout)
        except Exception:
            logger.exception("a TLS handshake failed unexpectedly; closed the connection")
            pending.sock.close()
        finally:
            # Once done, the connection counts itself (connection_made), until it upgrades.
            server.http_connections.pop(pending, None)

    def _too_slow(self, timeout: float) -> None:
        self.server.refuse("TLS handshake too slow", f"not done within {timeout:g} s "
                           "(RESOUND_TLS_HANDSHAKE_TIMEOUT); closed")

    async def _first_byte(self, sock: socket.socket, timeout: float) -> bytes | None:
        """The client's first byte, left in the socket for the handshake; b"" if the client
        closed (or was evicted), None if it sent nothing within ``timeout`` seconds."""
        sock.setblocking(False)  # as accepted, it blocks: a silent client would hold the loop
        try:
            return sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            pass
        except OSError:
            return b""
        loop = self.server.loop
        readable = loop.create_future()

        def wake() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(sock.fileno(), wake)
        timer = loop.call_later(timeout, wake)
        try:
            await readable
        finally:
            timer.cancel()
            loop.remove_reader(sock.fileno())
        try:
            return sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def _turn_away(self, pending: PendingHandshake, first: bytes | None,
                   timeout: float) -> None:
        """Close a connection that will not shake hands: one that sent nothing in time, that
        closed, or that speaks something else (answered 400: plain HTTP, most likely)."""
        sock = pending.sock
        if first is None:
            self._too_slow(timeout)
        elif first:
            self.server.refuse("plain HTTP on the TLS port", "answered 400: use https:// and "
                               "wss:// on this port")
            try:
                sock.recv(PLAIN_HTTP_READ)  # read, so that closing does not reset the answer
                sock.send(PLAIN_HTTP_ANSWER)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the client has gone already
        sock.close()

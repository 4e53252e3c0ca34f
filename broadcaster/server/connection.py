"""One asyncio.Protocol per socket: HTTP requests to the API, or a Pusher WebSocket.

HTTP is :class:`~broadcaster.server.http_connection.HttpConnection`'s. A WebSocket upgrade to
``{path}/app/{key}`` hands the raw bytes to websockets' Sans-I/O ``Protocol`` for the handshake
and framing, and the frames to a :class:`~broadcaster.protocol.session.Session`. No task per
connection: the loop calls us back, and the server's sweep does timeouts.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import httptools
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as HandshakeRequest
from websockets.http11 import Response
from websockets.protocol import OPEN, SERVER, Protocol
from websockets.server import ServerProtocol

from shared.payloads import dumpb

from ..protocol.frames import text_frame
from ..protocol.messages import (
    GENERIC_RECONNECT,
    OVER_QUOTA,
    PONG_TIMEOUT,
    SLOW_CONSUMER,
    UNAUTHORIZED,
    UNKNOWN_APP,
)
from ..protocol.origins import origin_error
from ..protocol.replies import PING, error_message, new_socket_id
from ..protocol.requests import Request
from ..protocol.session import Session
from .http_connection import CLOSE_TIMEOUT, HttpConnection

if TYPE_CHECKING:
    from .listener import Server

logger = logging.getLogger("broadcaster.connection")
ws_logger = logging.getLogger("broadcaster.websockets")

MAX_FRAGMENTS = 1_000  # frames one message may be split into (empty ones cost memory too)
INVALID_DATA = 1007  # RFC 6455 close code: a text message that is not UTF-8
# The request headers websockets reads to accept a handshake (others it ignores).
HANDSHAKE_HEADERS = (
    "connection", "upgrade", "sec-websocket-key", "sec-websocket-version",
    "sec-websocket-extensions", "sec-websocket-protocol",
)
# websockets' handshake check, shared by every socket: accept() keeps nothing a later call
# needs, and each socket then holds only a frame-level Protocol (no handshake state).
HANDSHAKE_CHECK = ServerProtocol(logger=ws_logger)


def _as_json_error(response: Response) -> None:
    """Turn websockets' plain-text handshake refusal into our ``{"error": ...}`` JSON."""
    response.body = dumpb({"error": bytes(response.body).decode().strip()})
    for name in ("Content-Type", "Content-Length"):
        del response.headers[name]
    response.headers["Content-Type"] = "application/json"
    response.headers["Content-Length"] = str(len(response.body))


class Connection(HttpConnection):
    """A socket on the one port: first HTTP, and a WebSocket once upgraded."""

    __slots__ = ("socket_id", "session", "ws", "pinged_at", "fragments", "pending")

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        self.socket_id = ""
        self.session: Session | None = None
        self.ws: Protocol | None = None
        self.pinged_at: float | None = None
        self.fragments: list[bytes] | None = None
        self.pending: bytes | list[bytes] | None = None  # frames queued for this loop pass

    def data_received(self, data: bytes) -> None:
        self.last_seen = self.server.clock()
        self.pinged_at = None
        if self.ws is not None:
            self._websocket_data(data)
        else:
            self.http_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.ws is not None:
            level = logging.INFO if self.server.config.log_connections else logging.DEBUG
            if logger.isEnabledFor(level):
                close = self.ws.close_sent or self.ws.close_rcvd
                logger.log(level, "closed %s from %s: code %s", self.socket_id, self._peer(),
                           close.code if close else "none (the connection dropped)")
        self._end_session()

    # --- WebSocket -------------------------------------------------------------------------

    def upgrade(self, early_frames: bytes) -> None:
        try:
            request = self.request()
        except httptools.HttpParserInvalidURLError:
            request = None  # the API's answer below says what was wrong
        prefix = self.server.ws_prefix
        key = request.path[len(prefix):] if request and request.path.startswith(prefix) else ""
        if not self.first or not key or "/" in key:
            self._answer_and_close(self.api_response())
            return
        app = self.server.app_by_key(key)
        max_size = app.config.max_message_size if app is not None else 10_000
        # httptools has parsed the head: websockets checks the handshake from those headers.
        headers = self.headers
        response = HANDSHAKE_CHECK.accept(HandshakeRequest(
            self.url.decode("latin-1"),
            Headers([(name, headers[name]) for name in HANDSHAKE_HEADERS if name in headers]),
            request.method,
            f"HTTP/{self.parser.get_http_version()}",
        ))
        self.parser = self.headers = self.body = None
        self.url = b""
        if response.status_code != 101:
            _as_json_error(response)
            self.write(response.serialize())
            self.closing = True
            self.transport.close()
            return
        self.ws = Protocol(SERVER, state=OPEN, max_size=max_size, logger=ws_logger)
        self.server.http_connections.pop(self, None)  # the HTTP cap counts it no more
        self.send_frame(response.serialize())  # the 101 goes out with the greeting, in one write
        self.socket_id = new_socket_id()
        if app is None:
            self._refuse(UNKNOWN_APP, f"no app has key {key!r}; check REVERB_APP_KEY", headers)
        elif refused := origin_error(headers.get("origin"), app.config.allowed_origins):
            self._refuse(UNAUTHORIZED, refused, headers)
        elif app.is_full():
            self._refuse(OVER_QUOTA, f"app {app.id} is at its connection limit", headers)
        else:
            self.session = Session(app, self, self.server.clock, self.server.publish, self._ask,
                                   max_subscriptions=self.server.config.max_subscriptions)
            self.session.open()
            if early_frames:
                self._websocket_data(early_frames)

    def _ask(self, request: Request) -> None:
        """The session's ``ask``: run ``request`` on the cluster state, answer the session."""
        session = self.session  # the answer goes to this session, even once the socket closed
        if session is not None:
            self.server.submit(request, lambda answer: session.answer(request, answer))

    def _peer(self, headers: dict[str, str] | None = None) -> str:
        """The client's address, and the one a proxy says it forwards for, if any."""
        peer = self.transport.get_extra_info("peername")
        text = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        forwarded = headers and (headers.get("x-forwarded-for") or headers.get("x-real-ip"))
        return f"{text} (forwarded for {forwarded})" if forwarded else text

    def _refuse(self, code: int, message: str, headers: dict[str, str]) -> None:
        logger.info("refused %s from %s: %d %s", self.socket_id, self._peer(headers), code,
                    message)
        self.send(error_message(code, message))
        self.close(code, message)

    def _websocket_data(self, data: bytes) -> None:
        self.ws.receive_data(data)
        self._flush()
        self._frames(self.ws.events_received())
        self._flush()

    def _frames(self, events: list) -> None:
        for frame in events:
            if not isinstance(frame, Frame) or self.session is None:
                continue
            opcode = frame.opcode
            if opcode is Opcode.TEXT:
                if frame.fin:
                    self._text(frame.data)
                else:
                    self.fragments = [frame.data]
            elif opcode is Opcode.CONT and self.fragments is not None:
                self.fragments.append(frame.data)
                if len(self.fragments) > MAX_FRAGMENTS:
                    self.close(1009, f"a message may come in at most {MAX_FRAGMENTS} fragments")
                    return
                if frame.fin:
                    data, self.fragments = b"".join(self.fragments), None
                    self._text(data)
            elif opcode is Opcode.BINARY:
                self.send(error_message(GENERIC_RECONNECT, "binary frames are not supported; "
                                        "send Pusher messages as JSON text"))

    def _text(self, data: bytes) -> None:
        if self.debug:
            logger.debug("< %s %s", self.socket_id, data[:2000].decode(errors="replace"))
        try:
            data.decode()
        except UnicodeDecodeError:  # RFC 6455 section 8.1: fail the connection
            self.close(INVALID_DATA, "a text message must be valid UTF-8")
            return
        self.session.app.received(len(data))
        try:
            self.session.handle_text(data)
        except Exception:
            logger.exception("handling a message from %s failed", self.socket_id)
            self.send(error_message(GENERIC_RECONNECT, "internal error; see the server log"))

    def _flush(self) -> None:
        """Write what websockets has queued; its empty bytes mean 'close the TCP connection'."""
        if self.pending:
            self.write_pending()  # queued frames go first, in the order they were sent
        for data in self.ws.data_to_send():  # automatic pongs too: they count as held bytes
            if data:
                self.write(data)
            else:
                self.after_drain(self.transport.close)
        if self.ws.close_expected() and self.abort_timer is None:
            self.abort_timer = self.server.loop.call_later(CLOSE_TIMEOUT, self.transport.abort)

    # --- the Client interface the session and the state use -------------------------------

    def send(self, message: bytes) -> None:
        if self.debug:
            logger.debug("> %s %s", self.socket_id, message[:2000].decode(errors="replace"))
        self.server.sent(self.session, len(message))
        self.send_frame(text_frame(message))

    def send_frame(self, frame: bytes) -> None:
        """The fan-out hot path: queue the frame; the server writes queues once per loop pass.

        Frames for one socket that pile up within a pass go out in one write (one syscall).
        """
        if self.closing:
            return
        pending = self.pending
        if pending is None:
            # One frame stays plain bytes: no list per delivery, so fan-out creates nothing
            # the garbage collector tracks, and it does not trigger collections.
            self.pending = frame
            self.server.queue_write(self)
        elif type(pending) is bytes:
            self.pending = [pending, frame]
        else:
            pending.append(frame)

    def write_pending(self) -> None:
        """Write the queued frames; one that does not keep up is shed (:meth:`overflow`)."""
        frames, self.pending = self.pending, None
        if not frames or self.closing:
            return
        self.write(frames if type(frames) is bytes else b"".join(frames))

    def overflow(self) -> None:
        """Close a socket that reads too slowly with 4100; the close frame goes out ahead of
        the backlog, which is dropped, and the socket is aborted if it has not closed within
        :data:`CLOSE_TIMEOUT`."""
        if self.ws is None:
            super().overflow()
            return
        self.drop_held()
        self.pending = None
        if not self.closing:
            self.server.refuse("slow consumer", f"closing {self.socket_id} with 4100")
            self.close(SLOW_CONSUMER, "slow consumer: the write buffer is full; reconnect later")

    def close(self, code: int, reason: str) -> None:
        """Close the WebSocket with ``code``; the socket gets no more frames after this."""
        if self.closing:
            return
        self.server.closes[code] += 1
        if self.pending:
            self.write_pending()  # what the socket was sent before the close goes first
        self.closing = True
        # Leave the channels on the next loop pass, not in the middle of someone's broadcast.
        self.server.loop.call_soon(self._end_session)
        if self.ws is None or self.ws.state is not OPEN:
            self.transport.close()
            return
        # A close reason may hold 123 bytes of UTF-8 at most.
        self.ws.send_close(code, reason.encode()[:123].decode(errors="ignore"))
        self._flush()

    # --- timers and shutdown (called by the server's sweep) --------------------------------

    def sweep(self, now: float) -> None:
        """Ping a silent socket, close one that stayed silent; HTTP deadlines and idleness."""
        if self.session is None:
            if self.ws is None:
                self.sweep_http(now)
            return
        if self.session.unauthorized(now):
            self.close_with_error(UNAUTHORIZED, "authorized connections only: sign in, or "
                                  "subscribe to a private or presence channel, in time")
            return
        interval = self.session.app.config.ping_interval
        if self.pinged_at is not None:
            if now - self.pinged_at >= interval:
                self.close_with_error(PONG_TIMEOUT, "pong reply not received in time; reconnect")
        elif now - self.last_seen >= interval:
            self.pinged_at = now
            self.send(PING)

    def close_with_error(self, code: int, message: str) -> None:
        """Tell the client why (``pusher:error``), then close with the same code."""
        if self.session is not None and not self.closing:
            self.send(error_message(code, message))
        self.close(code, message)

    def _end_session(self) -> None:
        session = self.session
        if session is not None:
            session.close()  # its presence leaves are asked through _ask, which needs the session
            self.session = None

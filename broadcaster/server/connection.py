"""One asyncio.Protocol per socket: HTTP requests to the API, or a Pusher WebSocket.

The request head is parsed with httptools. A WebSocket upgrade to ``{path}/app/{key}`` hands
the raw bytes to websockets' Sans-I/O ``ServerProtocol`` for the handshake and framing, and the
frames to a :class:`~broadcaster.protocol.session.Session`. Anything else becomes an
:class:`~broadcaster.api.http.HttpRequest` for ``router.handle``. No task per connection: the loop
calls us back, and the server's sweep does timeouts.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote

import httptools
from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as HandshakeRequest
from websockets.http11 import Response
from websockets.protocol import OPEN, SERVER, Protocol
from websockets.server import ServerProtocol

from shared.payloads import dumpb

from ..api import router
from ..api.http import HttpRequest, HttpResponse, error_response, serialize_response
from ..api.queries import Query, render
from ..protocol.frames import text_frame
from ..protocol.messages import (
    GENERIC_RECONNECT,
    OVER_QUOTA,
    PONG_TIMEOUT,
    SLOW_CONSUMER,
    UNAUTHORIZED,
    UNKNOWN_APP,
)
from ..protocol.origins import origin_allowed
from ..protocol.requests import Answer, Request
from ..protocol.session import PING, Session, error_message, new_socket_id

if TYPE_CHECKING:
    from .listener import Server

logger = logging.getLogger("broadcaster.connection")
ws_logger = logging.getLogger("broadcaster.websockets")

CLOSE_TIMEOUT = 2.0  # seconds a closing socket gets to answer our close frame
MAX_HEAD_SIZE = 32_768  # bytes of request line and headers
MAX_FRAGMENTS = 1_000  # frames one message may be split into (empty ones cost memory too)
MAX_PIPELINED = 16  # HTTP requests of one connection waiting for their answers; then reading pauses
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


class _StopParsing(Exception):
    """Raised from an httptools callback after the connection has been answered and closed."""


class _Reply:
    """One HTTP request's place in its connection's answer order; its response once ready."""

    __slots__ = ("response", "keep_alive", "head_only", "url", "linger")

    def __init__(self, keep_alive: bool, head_only: bool, url: bytes, linger: bool) -> None:
        self.response: HttpResponse | None = None
        self.keep_alive = keep_alive
        self.head_only = head_only
        self.url = url
        self.linger = linger  # the last answer: half-close after it (see _answer_and_close)


class Connection(asyncio.Protocol):
    """A socket on the one port: first HTTP, and a WebSocket once upgraded."""

    __slots__ = (
        "server", "transport", "socket_id", "session", "ws", "parser", "first", "url", "headers",
        "body", "head_size", "last_seen", "pinged_at", "fragments", "pending", "closing",
        "abort_timer", "debug", "replies", "paused",
    )

    def __init__(self, server: Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.socket_id = ""
        self.session: Session | None = None
        self.ws: Protocol | None = None
        self.parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self.first = True  # still on the first request, the only one that may upgrade
        self.url = b""
        # Made per request (on_message_begin) and dropped on upgrade: a socket keeps neither.
        self.headers: dict[str, str] | None = None
        self.body: bytearray | None = None
        self.head_size = 0
        self.last_seen = 0.0
        self.pinged_at: float | None = None
        self.fragments: list[bytes] | None = None
        self.pending: bytes | list[bytes] | None = None  # frames queued for this loop pass
        self.closing = False
        self.abort_timer: asyncio.TimerHandle | None = None
        self.debug = logger.isEnabledFor(logging.DEBUG)
        self.replies: deque[_Reply] = deque()  # HTTP answers not yet written, in request order
        self.paused = False  # reading paused: too many answers outstanding

    # --- asyncio callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self.last_seen = self.server.clock()
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.last_seen = self.server.clock()
        self.pinged_at = None
        if self.ws is not None:
            self._websocket_data(data)
            return
        if self.closing:
            return  # answered and half-closed: discard the rest
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            # Where the request head ends in this chunk; frames may follow it.
            self._upgrade(data[upgrade.args[0]:])
        except httptools.HttpParserCallbackError:
            if not self.closing:
                raise
        except httptools.HttpParserError as exc:
            self._answer_and_close(error_response(400, f"malformed HTTP request: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._end_session()
        if self.abort_timer is not None:
            self.abort_timer.cancel()
        self.server.connections.discard(self)

    # --- HTTP (httptools callbacks) --------------------------------------------------------

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}
        self.body = bytearray()
        self.head_size = 0

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value))
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def _count_head(self, size: int) -> None:
        self.head_size += size
        if self.head_size > MAX_HEAD_SIZE:
            self._answer_and_close(error_response(
                431, f"request line and headers are larger than {MAX_HEAD_SIZE} bytes"
            ))
            raise _StopParsing

    def on_headers_complete(self) -> None:
        length = self.headers.get("content-length", "0")
        if length.isdigit() and int(length) > self.server.config.max_request_size:
            self._too_large()

    def on_body(self, body: bytes) -> None:
        if len(self.body) + len(body) > self.server.config.max_request_size:
            self._too_large()
        self.body += body

    def on_message_complete(self) -> None:
        if self.parser.should_upgrade():
            return  # feed_data raises HttpParserUpgrade next; _upgrade takes over
        if self.closing or self.transport.is_closing():
            return  # pipelined after a "Connection: close" request: not answered
        self.first = False  # an upgrade must be a connection's first request
        self.server.http_bytes_in += len(self.body)
        self._respond(self._api_response(), self.parser.should_keep_alive())

    def _too_large(self) -> None:
        limit = self.server.config.max_request_size
        self._answer_and_close(error_response(
            413, f"request body is larger than {limit} bytes; send smaller batches"
        ))
        raise _StopParsing

    def _request(self) -> HttpRequest:
        url = httptools.parse_url(self.url)
        return HttpRequest(
            method=self.parser.get_method().decode("latin-1"),
            path=unquote(url.path.decode("latin-1")),
            query=(url.query or b"").decode("latin-1"),
            headers=self.headers,
            body=bytes(self.body),
        )

    def _api_response(self) -> HttpResponse | Query:
        try:
            request = self._request()
        except httptools.HttpParserInvalidURLError:
            return error_response(400, "malformed request target")
        try:
            return router.handle(self.server, request)
        except Exception:
            logger.exception("the HTTP API failed on %s %s", request.method, request.path)
            return error_response(500, "internal error while handling the request; see the log")

    def _respond(self, result: HttpResponse | Query, keep_alive: bool,
                 linger: bool = False) -> None:
        """Answer the request just parsed, after every earlier one: a ready response waits its
        turn, a query's once the cluster state has answered (see :meth:`_write_replies`)."""
        head_only = self.parser is not None and self.parser.get_method() == b"HEAD"
        reply = _Reply(keep_alive and not linger, head_only, self.url, linger)
        self.replies.append(reply)
        if isinstance(result, Query):
            self.server.run_query(result, lambda answers: self._answered_query(
                reply, result, answers))
        else:
            reply.response = result
        self._write_replies()
        if len(self.replies) >= MAX_PIPELINED and not self.paused and not self.closing:
            self.paused = True
            self.transport.pause_reading()  # resumed once the answers are written

    def _answered_query(self, reply: _Reply, query: Query, answers: Sequence[Answer]) -> None:
        try:
            reply.response = render(query, answers)
        except Exception:
            logger.exception("rendering the answer to %s failed", reply.url.decode("latin-1"))
            reply.response = error_response(500, "internal error while answering; see the log")
        self._write_replies()

    def _write_replies(self) -> None:
        """Write the answers that are ready, in request order; stop at the first still open."""
        replies = self.replies
        while replies and replies[0].response is not None:
            reply = replies.popleft()
            if self.transport.is_closing():
                replies.clear()
                return
            response = reply.response
            self.server.answered(response)
            self.transport.write(serialize_response(response, reply.keep_alive,
                                                    reply.head_only))
            if self.debug:
                logger.debug("HTTP %s -> %d %s", reply.url.decode("latin-1"), response.status,
                             response.body[:500])
            if reply.linger or not reply.keep_alive:
                replies.clear()
                if reply.linger:
                    self._linger()
                else:
                    self._close_http()
                return
        if self.paused and len(replies) < MAX_PIPELINED:
            self.paused = False
            self.transport.resume_reading()

    def _close_http(self) -> None:
        self.closing = True
        self.transport.close()

    def _answer_and_close(self, response: HttpResponse | Query) -> None:
        """Answer, then linger: half-close and discard what the client still sends for a moment.

        Closing outright with unread bytes makes the kernel reset the connection, and the
        client may lose the answer (e.g. a 413 sent while it is still uploading).
        """
        self._respond(response, keep_alive=False, linger=True)
        self.closing = True  # parse nothing more; the answer goes out after earlier ones

    def _linger(self) -> None:
        self.closing = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.abort_timer = self.server.loop.call_later(CLOSE_TIMEOUT, self.transport.close)
        else:
            self.transport.close()

    # --- WebSocket -------------------------------------------------------------------------

    def _upgrade(self, early_frames: bytes) -> None:
        try:
            request = self._request()
        except httptools.HttpParserInvalidURLError:
            request = None  # the API's answer below says what was wrong
        prefix = self.server.ws_prefix
        key = request.path[len(prefix):] if request and request.path.startswith(prefix) else ""
        if not self.first or not key or "/" in key:
            self._answer_and_close(self._api_response())
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
            self.transport.write(response.serialize())
            self.closing = True
            self.transport.close()
            return
        self.ws = Protocol(SERVER, state=OPEN, max_size=max_size, logger=ws_logger)
        self.send_frame(response.serialize())  # the 101 goes out with the greeting, in one write
        self.socket_id = new_socket_id()
        if app is None:
            self._refuse(UNKNOWN_APP, f"no app has key {key!r}; check REVERB_APP_KEY")
        elif not origin_allowed(request.headers.get("origin"), app.config.allowed_origins):
            self._refuse(UNAUTHORIZED, "origin not allowed; add it to REVERB_ALLOWED_ORIGINS")
        elif app.is_full():
            self._refuse(OVER_QUOTA, f"app {app.id} is at its connection limit")
        else:
            self.session = Session(app, self, self.server.clock, self.server.publish, self._ask)
            self.session.open()
            if early_frames:
                self._websocket_data(early_frames)

    def _ask(self, request: Request) -> None:
        """The session's ``ask``: run ``request`` on the cluster state, answer the session."""
        session = self.session  # the answer goes to this session, even once the socket closed
        if session is not None:
            self.server.state.submit(request, lambda answer: session.answer(request, answer))

    def _refuse(self, code: int, message: str) -> None:
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
            logger.debug("< %s %s", self.socket_id, data[:2000])
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
        for data in self.ws.data_to_send():
            if data:
                self.transport.write(data)
            else:
                self.transport.close()
        if self.ws.close_expected() and self.abort_timer is None:
            self.abort_timer = self.server.loop.call_later(CLOSE_TIMEOUT, self.transport.abort)

    # --- the Client interface the session and the state use -------------------------------

    def send(self, message: bytes) -> None:
        if self.debug:
            logger.debug("> %s %s", self.socket_id, message[:2000])
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
        """Write the queued frames, then check this socket keeps up."""
        frames, self.pending = self.pending, None
        if not frames or self.closing:
            return
        transport = self.transport
        transport.write(frames if type(frames) is bytes else b"".join(frames))
        if transport.get_write_buffer_size() > self.server.config.write_buffer_limit:
            logger.info("closing %s: it reads too slowly", self.socket_id)
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

    def sweep(self, now: float, http_idle_timeout: float) -> None:
        """Ping a silent socket, close one that stayed silent, drop idle HTTP connections."""
        if self.session is None:
            if self.ws is None and now - self.last_seen > http_idle_timeout:
                self.transport.close()
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

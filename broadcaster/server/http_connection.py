"""The HTTP side of a connection: requests parsed with httptools, answered in request order.

Every request becomes an :class:`~broadcaster.api.http.HttpRequest` for ``router.handle``.
What a client may make the server hold is bounded: a request's head and its whole body have
deadlines (the listener's sweep enforces them), a body is read only once the head shows a route,
an app and a valid signature (``router.check_head``), at most :data:`MAX_PIPELINED` answers wait,
and reading pauses while the transport has more to send than the client reads (see
:mod:`~broadcaster.server.stream`); a client that still makes us hold more is disconnected.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import unquote

import httptools

from ..api import router
from ..api.http import HttpRequest, HttpResponse, error_response, said, serialize_response
from ..api.queries import Query, render
from ..protocol.requests import Answer
from .stream import Stream

if TYPE_CHECKING:
    from .listener import Server

logger = logging.getLogger("broadcaster.connection")

CLOSE_TIMEOUT = 2.0  # seconds a closing socket gets to read our last answer or close frame
MAX_HEAD_SIZE = 32_768  # bytes of request line and headers
MAX_PIPELINED = 16  # HTTP requests of one connection waiting for their answers; then reading pauses


class StopParsing(Exception):
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


class HttpConnection(Stream):
    """A socket while it speaks HTTP (every socket does until it upgrades)."""

    __slots__ = ("parser", "first", "url", "headers", "body", "head_size", "last_seen",
                 "deadline", "due_head", "abort_timer", "debug", "replies", "reading_paused",
                 "signed")

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        self.parser: httptools.HttpRequestParser | None = httptools.HttpRequestParser(self)
        self.first = True  # still on the first request, the only one that may upgrade
        self.url = b""
        # Made per request (on_message_begin) and dropped on upgrade: a socket keeps neither.
        self.headers: dict[str, str] | None = None
        self.body: bytearray | None = None
        self.signed: router.SignedHead | None = None  # the request's head, verified
        self.head_size = 0
        self.last_seen = 0.0
        self.deadline: float | None = None  # when the request being received must be complete
        self.due_head = True  # the deadline is the head's (else the whole request's)
        self.abort_timer: asyncio.TimerHandle | None = None
        self.debug = logger.isEnabledFor(logging.DEBUG)
        # HTTP answers not yet written, in request order; made on the first answer (a
        # WebSocket, upgraded on its first request, never holds one: ~700 bytes a socket)
        self.replies: deque[_Reply] | None = None
        self.reading_paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self.last_seen = self.server.clock()
        # The first request's head is due from the moment the client connects.
        self.deadline = self.last_seen + self.server.config.http_head_timeout
        self.server.connections.add(self)
        self.server.admit_http(self)

    def evict(self) -> None:
        """Close at once: the HTTP connection cap needs the room (see ``Server.admit_http``)."""
        self.closing = True
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.drop_held()
        self.writing_paused = False  # nothing is held for a closed socket any more
        if self.abort_timer is not None:
            self.abort_timer.cancel()
        self.server.connections.discard(self)
        self.server.http_connections.pop(self, None)

    def http_data(self, data: bytes) -> None:
        """Parse ``data``; an upgrade hands the bytes after the head to :meth:`upgrade`."""
        if self.closing:
            return  # answered and half-closed: discard the rest
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            # Where the request head ends in this chunk; frames may follow it.
            self.upgrade(data[upgrade.args[0]:])
        except httptools.HttpParserCallbackError:
            if not self.closing:
                raise
        except httptools.HttpParserError as exc:
            self._answer_and_close(error_response(400, f"malformed HTTP request: {exc}"))

    def upgrade(self, early_frames: bytes) -> None:
        """Take over after an upgrade request's head; the subclass speaks WebSocket."""
        raise NotImplementedError

    # --- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = {}
        self.body = bytearray()
        self.signed = None
        self.head_size = 0
        self.deadline = self.server.clock() + self.server.config.http_head_timeout
        self.due_head = True

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
            raise StopParsing

    def on_headers_complete(self) -> None:
        config = self.server.config
        self.deadline += config.http_body_timeout - config.http_head_timeout
        self.due_head = False
        headers = self.headers
        length = headers.get("content-length", "0")
        if length.isdigit() and int(length) > config.max_request_size:
            self._too_large()
        if length != "0" or "transfer-encoding" in headers:
            self._check_head()

    def _check_head(self) -> None:
        """Before a body is read: answer now if the head shows the request will fail; else
        keep the verified head, so that only ``body_md5`` is left to check."""
        try:
            url = httptools.parse_url(self.url)
        except httptools.HttpParserInvalidURLError:
            return  # answered 400 once the request is complete
        head = router.check_head(
            self.server, self.parser.get_method().decode("latin-1"),
            unquote(url.path.decode("latin-1")), (url.query or b"").decode("latin-1"), True)
        if isinstance(head, HttpResponse):
            self.server.refuse("refused on its head", said(head))
            self._answer_and_close(head)
            raise StopParsing
        self.signed = head

    def on_body(self, body: bytes) -> None:
        if len(self.body) + len(body) > self.server.config.max_request_size:
            self._too_large()
        self.body += body

    def on_message_complete(self) -> None:
        self.deadline = None  # idle until the next request: http_idle_timeout applies
        if self.parser.should_upgrade():
            return  # feed_data raises HttpParserUpgrade next; upgrade takes over
        if self.closing or self.transport.is_closing():
            return  # pipelined after a "Connection: close" request: not answered
        self.first = False  # an upgrade must be a connection's first request
        self.server.http_bytes_in += len(self.body)
        self._respond(self.api_response(), self.parser.should_keep_alive(),
                      head_only=self.parser.get_method() == b"HEAD")

    def _too_large(self) -> None:
        limit = self.server.config.max_request_size
        self._answer_and_close(error_response(
            413, f"request body is larger than {limit} bytes; send smaller batches"
        ))
        raise StopParsing

    def request(self) -> HttpRequest:
        """The request just parsed; raises ``HttpParserInvalidURLError`` for a bad target."""
        url = httptools.parse_url(self.url)
        return HttpRequest(
            method=self.parser.get_method().decode("latin-1"),
            path=unquote(url.path.decode("latin-1")),
            query=(url.query or b"").decode("latin-1"),
            headers=self.headers,
            body=bytes(self.body),
        )

    def api_response(self) -> HttpResponse | Query:
        try:
            request = self.request()
        except httptools.HttpParserInvalidURLError:
            return error_response(400, "malformed request target")
        try:
            return router.handle(self.server, request, self.signed)
        except Exception:
            logger.exception("the HTTP API failed on %s %s", request.method, request.path)
            return error_response(500, "internal error while handling the request; see the log")

    # --- answers, in request order ---------------------------------------------------------

    def _respond(self, result: HttpResponse | Query, keep_alive: bool, linger: bool = False,
                 head_only: bool = False) -> None:
        """Answer the request just parsed, after every earlier one: a ready response waits its
        turn, a query's once the cluster state has answered (see :meth:`_write_replies`).

        ``head_only`` for a complete HEAD request only: a refusal of a request cut short (a
        parse error after "HEAD", a 413) keeps its body, since the method may not be HEAD.
        """
        method = self.parser.get_method() if self.parser is not None else b"GET"
        reply = _Reply(keep_alive and not linger, head_only, method + b" " + self.url, linger)
        if self.replies is None:
            self.replies = deque()
        self.replies.append(reply)
        if isinstance(result, Query):
            self.server.run_query(result, lambda answers: self._answered_query(
                reply, result, answers))
        else:
            reply.response = result
        self._write_replies()

    def _answered_query(self, reply: _Reply, query: Query, answers: Sequence[Answer]) -> None:
        try:
            result = render(query, answers)
        except Exception:
            logger.exception("rendering the answer to %s failed", reply.url.decode("latin-1"))
            result = error_response(500, "internal error while answering; see the log")
        if isinstance(result, Query):  # the next query of the same request (see Query)
            self.server.run_query(result, lambda answers: self._answered_query(
                reply, result, answers))
            return
        reply.response = result
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
            self.write(serialize_response(response, reply.keep_alive, reply.head_only))
            if self.debug:
                logger.debug("HTTP %s -> %d %s", reply.url.decode("latin-1"), response.status,
                             response.body[:500].decode(errors="replace"))
            if reply.linger or not reply.keep_alive:
                replies.clear()
                if reply.linger:
                    self._linger()
                else:
                    self._close_http()
                return
        self._pace_reading()

    def _pace_reading(self) -> None:
        """Read while fewer than :data:`MAX_PIPELINED` answers wait and the client reads them."""
        if self.parser is None or self.closing:
            return
        pause = self.writing_paused or len(self.replies or ()) >= MAX_PIPELINED
        if pause != self.reading_paused:
            self.reading_paused = pause
            if pause:
                self.transport.pause_reading()
            else:
                self.transport.resume_reading()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._pace_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._pace_reading()

    def overflow(self) -> None:
        """An HTTP client that sent more than it reads: held answers past the limit."""
        self.server.refuse("HTTP client reads too slowly",
                           f"{self.held_size} bytes of answers unread; disconnected")
        self.drop_held()
        self.closing = True
        self.transport.abort()

    def _close_http(self) -> None:
        self.closing = True
        self.after_drain(self.transport.close)

    def _answer_and_close(self, response: HttpResponse | Query) -> None:
        """Answer, then linger: half-close and discard what the client still sends for a moment.

        Closing outright with unread bytes makes the kernel reset the connection, and the
        client may lose the answer (e.g. a 413 sent while it is still uploading).
        """
        self._respond(response, keep_alive=False, linger=True)
        self.closing = True  # parse nothing more; the answer goes out after earlier ones

    def _linger(self) -> None:
        self.closing = True
        # A client that does not read its answer either would keep the socket for ever.
        self.abort_timer = self.server.loop.call_later(CLOSE_TIMEOUT, self.transport.abort)
        self.after_drain(self._half_close)

    def _half_close(self) -> None:
        if self.transport.can_write_eof():
            self.transport.write_eof()
        else:
            self.transport.close()

    def sweep_http(self, now: float) -> None:
        """Refuse a request past its deadline (408); close a connection idle too long."""
        if self.deadline is not None and now > self.deadline and not self.closing:
            config = self.server.config
            due = (f"its line and headers within {config.http_head_timeout:g} s"
                   if self.due_head else f"all of it within {config.http_body_timeout:g} s")
            self.deadline = None
            self.server.refuse("HTTP request too slow", f"{due} of its first byte: 408")
            self._answer_and_close(error_response(
                408, f"the request did not arrive in time: send {due} of its first byte"))
        elif now - self.last_seen > self.server.config.http_idle_timeout:
            # close() would wait for ever for a client that does not read what we wrote
            (self.transport.abort if self.writing_paused else self.transport.close)()

"""Hypothesis: arbitrary HTTP heads and bodies never crash the listener or make it misbehave.

Whatever a client sends on the HTTP side (pipelined, chunked, lying about its length, refused
on its head, cut short), the listener answers with well-formed HTTP responses, never a 5xx, or
closes; and it goes on serving other clients.
"""

from __future__ import annotations

import http.client
import io
import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.broadcaster.inprocess import InProcessServer
from tests.servers import APP_ID, APP_KEY, HOST
from tests.waiting import eventually

METHODS = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]
TARGETS = [
    "/up", "/nowhere", "/", "*", f"/apps/{APP_ID}/events", f"/apps/{APP_ID}/batch_events",
    f"/apps/{APP_ID}/events?auth_key={APP_KEY}", f"/apps/{APP_ID}/events?auth_key=x",
    f"/apps/{APP_ID}/channels?auth_key={APP_KEY}&info=user_count", "/apps/999/events",
    f"/apps/{APP_ID}/channels/presence-a/users", "/users/u/terminate_connections",
    f"/app/{APP_KEY}", "/%zz", "/apps/%2e%2e/events",
]
HEADERS = ["Content-Length", "Transfer-Encoding", "Connection", "Content-Type", "Upgrade",
           "Host", "Expect"]
VALUES = ["0", "5", "100", "999999999999", "-1", "chunked", "gzip, chunked", "close",
          "keep-alive", "websocket", "application/json", "100-continue", ""]
tokens = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)
header_lines = st.lists(st.tuples(st.sampled_from(HEADERS) | tokens,
                                  st.sampled_from(VALUES) | st.text(max_size=20)), max_size=5)
bodies = st.binary(max_size=300) | st.sampled_from([b'{"name":"e","channel":"c","data":"x"}'])


@st.composite
def requests(draw) -> bytes:
    method = draw(st.sampled_from(METHODS) | tokens.filter(lambda token: token != "HEAD"))
    target = draw(st.sampled_from(TARGETS) | st.text(max_size=30).map(lambda t: "/" + t))
    head = f"{method} {target} HTTP/1.1\r\n".encode("utf-8", "surrogateescape")
    for name, value in draw(header_lines):
        head += f"{name}: {value}\r\n".encode("utf-8", "surrogateescape")
    body = draw(bodies)
    if draw(st.booleans()):
        head += f"Content-Length: {len(body)}\r\n".encode()
    return head + b"\r\n" + body


streams = st.lists(requests(), min_size=1, max_size=3).map(b"".join) | st.binary(max_size=400)


class _Unclosable(io.BytesIO):
    def close(self) -> None:
        """``http.client`` closes its stream after a last response; we read on."""


class _Replayed:
    """What ``http.client`` reads responses from: the bytes the server sent."""

    def __init__(self, data: bytes) -> None:
        self.stream = _Unclosable(data)

    def makefile(self, mode: str) -> io.BytesIO:
        return self.stream


def check_well_formed(reply: bytes) -> None:
    """Every response in ``reply`` parses, and none is a server error."""
    replayed = _Replayed(reply)
    while replayed.stream.tell() < len(reply):
        response = http.client.HTTPResponse(replayed)  # type: ignore[arg-type]
        response.begin()
        response.read()
        assert 100 <= response.status < 500 or response.status == 503, response.status
        if response.status >= 400:
            assert response.getheader("Content-Type") == "application/json"


@pytest.fixture(scope="module")
def listener():
    server = InProcessServer(max_request_size=1_000, http_head_timeout=2, http_body_timeout=2,
                             write_buffer_limit=20_000)
    yield server
    server.stop()


def exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection((HOST, port), timeout=10) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused on the head and closed while we were still sending
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(streams)
def test_arbitrary_http_gets_well_formed_answers_or_a_close(listener, data):
    reply = exchange(listener.port, data)
    if reply and not reply.startswith(b"HTTP/1.1 101"):
        check_well_formed(reply)
    assert exchange(listener.port, b"GET /up HTTP/1.1\r\nConnection: close\r\n\r\n") \
        .startswith(b"HTTP/1.1 200")


def test_the_listener_forgets_every_fuzzed_connection(listener):
    eventually(lambda: not listener.server.connections and listener.server.held_bytes == 0,
               what="every connection closed and nothing held")


def test_a_malformed_request_after_head_gets_its_400_with_a_body(listener):
    """Found by the fuzz target: the parser had read "HEAD" of "HEADGET" before failing, and
    the 400 went out without the body its Content-Length announced."""
    reply = exchange(listener.port, b"GET /up HTTP/1.1\r\n\r\nHEADGET /up HTTP/1.1\r\n\r\n")
    check_well_formed(reply)
    assert reply.endswith(b'"}') and b"HTTP/1.1 400" in reply

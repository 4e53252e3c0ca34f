"""Unauthenticated clients cannot make the listener hold memory or sockets without bound.

Each test sets small limits on an in-process listener, attacks it over a real socket, and
asserts on behaviour: refused, closed, bounded.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from urllib.parse import urlencode

import pytest

from shared.signatures import sign_request
from tests.broadcaster.inprocess import InProcessServer
from tests.servers import APP_ID, APP_KEY, APP_SECRET, HOST
from tests.waiting import eventually

HANDSHAKE = (b"GET /app/test-key?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             b"Sec-WebSocket-Version: 13\r\n\r\n")
SMALL_BUFFER = 4096  # kernel socket buffer for a client that reads slowly or not at all


@pytest.fixture
def make_server():
    servers = []

    def make(**settings) -> InProcessServer:
        servers.append(InProcessServer(**settings))
        return servers[-1]

    yield make
    for server in servers:
        server.stop()


def connect(port: int, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(5)
    sock.connect((HOST, port))
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def masked(opcode: int, payload: bytes) -> bytes:
    """A client frame (masked with a zero key), ``payload`` at most 125 bytes."""
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


def server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """The (opcode, payload) of each complete unmasked frame in ``data``."""
    frames, at = [], 0
    while at + 2 <= len(data):
        length, start = data[at + 1] & 0x7F, at + 2
        if length == 126:
            length, start = int.from_bytes(data[at + 2:at + 4], "big"), at + 4
        elif length == 127:
            length, start = int.from_bytes(data[at + 2:at + 10], "big"), at + 10
        if start + length > len(data):
            break
        frames.append((data[at] & 0x0F, data[start:start + length]))
        at = start + length
    return frames


def open_websocket(port: int, receive_buffer: int | None = None) -> socket.socket:
    """A raw WebSocket past its greeting, subscribed to ``news``."""
    sock = connect(port, receive_buffer)
    sock.sendall(HANDSHAKE)
    reply = b""
    while b"connection_established" not in reply:
        reply += sock.recv(65536)
    subscribe = json.dumps({"event": "pusher:subscribe", "data": {"channel": "news"}}).encode()
    sock.sendall(masked(1, subscribe))
    while b"subscription_succeeded" not in reply:
        reply += sock.recv(65536)
    return sock


def shrink_send_buffers(server: InProcessServer) -> None:
    """Make the kernel hold little for the server's sockets, so our own queues come into play
    (loopback buffers otherwise grow to megabytes)."""
    server.call(lambda: [connection.transport.get_extra_info("socket").setsockopt(
        socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        for connection in server.server.connections])


def send_until_refused(sock: socket.socket, data: bytes, refused, rounds: int = 2000) -> None:
    """Send ``data`` over and over without reading, until ``refused()`` or the peer is gone."""
    sock.settimeout(0.05)
    for _ in range(rounds):
        if refused():
            return
        try:
            sock.send(data)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return


# --- item 1: HTTP output is bounded ---------------------------------------------------------

def test_pipelined_requests_from_a_client_that_never_reads_are_cut_off(make_server):
    server = make_server(write_buffer_limit=20_000, http_head_timeout=2)
    sock = connect(server.port, receive_buffer=SMALL_BUFFER)
    requests = b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n" * 2000

    def refused() -> int:
        # Cut off for holding too much, or, once reading paused mid-request, for not
        # finishing that request in time: either way it holds nothing and is gone.
        refusals = server.server.refused
        return refusals["HTTP client reads too slowly"] + refusals["HTTP request too slow"]

    send_until_refused(sock, requests, refused)
    eventually(refused, 15.0, "the non-reading HTTP client was disconnected")
    eventually(lambda: not server.server.connections, what="its connection was closed")
    assert server.server.held_bytes == 0
    sock.close()


# --- item 2: deadlines, refusal on the head, the HTTP connection cap -------------------------

def test_a_head_trickled_byte_by_byte_gets_408(make_server):
    server = make_server(http_head_timeout=0.3)
    sock = connect(server.port)
    sock.sendall(b"GET /up HTTP/1.1\r\nHost: x\r\n")
    sock.settimeout(0.1)
    reply = b""
    for _ in range(200):  # one byte every 0.1 s: never idle, never done
        try:
            sock.sendall(b"X")
            reply += sock.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
        if b"\r\n\r\n" in reply:
            break
    assert reply.startswith(b"HTTP/1.1 408")
    assert b"line and headers within 0.3 s" in reply
    assert server.server.refused["HTTP request too slow"] == 1


def test_a_body_trickled_byte_by_byte_gets_408(make_server):
    server = make_server(http_head_timeout=5, http_body_timeout=0.3)
    sock = connect(server.port)
    path = f"/apps/{APP_ID}/events"  # signed: only a request whose head verifies is read on
    query = urlencode(sign_request(APP_KEY, APP_SECRET, "POST", path, body=b"{" * 10000))
    sock.sendall(f"POST {path}?{query} HTTP/1.1\r\nHost: x\r\n"
                 "Content-Length: 10000\r\n\r\n".encode())
    sock.settimeout(0.1)
    reply = b""
    for _ in range(200):
        try:
            sock.sendall(b"{")
            reply += sock.recv(65536)
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
        if b"\r\n\r\n" in reply:
            break
    assert reply.startswith(b"HTTP/1.1 408")
    assert b"all of it within 0.3 s" in reply


@pytest.mark.parametrize("target, status", [
    ("/nowhere", 404),
    (f"/apps/{APP_ID}/events", 401),  # no auth_key
    (f"/apps/{APP_ID}/events?auth_key=wrong", 401),
    ("/apps/999/events?auth_key=test-key", 404),  # no such app
    (f"/apps/{APP_ID}/channels?auth_key=test-key", 405),  # GET only
])
def test_a_request_refused_on_its_head_is_answered_before_its_body(make_server, target, status,
                                                                   caplog):
    caplog.set_level(logging.WARNING, "broadcaster")
    server = make_server()
    with connect(server.port) as sock:
        sock.sendall(f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n"
                     .encode())
        reply = sock.recv(65536)  # no body sent: it is answered on the head alone
    assert reply.startswith(f"HTTP/1.1 {status}".encode())
    assert server.server.refused["refused on its head"] == 1
    [line] = [record.getMessage() for record in caplog.records if "on its head" in record.msg
              or "on its head" in record.getMessage()]
    # a sentence: the status and the reason, no bytes repr of the JSON body
    assert re.fullmatch(rf"refused a client: refused on its head: {status}: [^{{}}\\]+", line)
    assert "b'" not in line, line


def test_past_the_http_connection_cap_the_oldest_unfinished_one_is_closed(make_server):
    server = make_server(max_http_connections=5)
    idle = [connect(server.port) for _ in range(5)]
    for sock in idle:
        sock.sendall(b"GET /up HTTP/1.1\r\n")  # a head that never ends
    eventually(lambda: len(server.server.http_connections) == 5, what="5 connections")
    with connect(server.port) as normal:
        normal.sendall(b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_until_closed(normal).startswith(b"HTTP/1.1 200")
    assert read_until_closed(idle[0]) == b""  # closed, unanswered
    assert server.server.refused["too many HTTP connections"] == 1
    assert len(server.server.http_connections) <= 5
    for sock in idle:
        sock.close()


# --- items 3, 5, 7, 8: WebSocket pongs, the listener budget, UTF-8, the 4100 close -----------

def test_a_ping_flood_from_a_socket_that_never_reads_gets_4100(make_server):
    server = make_server(write_buffer_limit=20_000)
    sock = open_websocket(server.port, receive_buffer=SMALL_BUFFER)
    pings = masked(9, b"p" * 125) * 500
    refused = lambda: server.server.refused["slow consumer"]  # noqa: E731
    send_until_refused(sock, pings, refused)
    eventually(refused, what="the pinging socket was closed as a slow consumer")
    eventually(lambda: server.app.connection_count == 0, what="its session ended")
    sock.close()


def test_invalid_utf8_in_a_text_frame_fails_the_connection_with_1007(make_server):
    server = make_server()
    sock = open_websocket(server.port)
    sock.sendall(masked(1, b'{"event":"pusher:ping","data":"\xff\xfe"}'))
    frames = server_frames(read_until_closed(sock))
    closes = [payload for opcode, payload in frames if opcode == 8]
    assert closes and int.from_bytes(closes[0][:2], "big") == 1007
    assert b"pusher:pong" not in b"".join(payload for _, payload in frames)
    sock.close()


def test_a_slow_consumer_reads_its_4100_close_ahead_of_the_backlog(make_server):
    limit = 1_000_000
    server = make_server(write_buffer_limit=limit)
    sock = open_websocket(server.port, receive_buffer=SMALL_BUFFER)
    shrink_send_buffers(server)
    message = json.dumps({"text": "x" * 10_000})
    for _ in range(300):  # 3 MB, one loop pass each, to a socket that does not read
        if server.app.connection_count == 0:
            break
        server.publish(["news"], "big", message)
    eventually(lambda: server.app.connection_count == 0, what="the slow consumer was closed")
    frames = server_frames(read_until_closed(sock))  # now it reads, at full speed
    closes = [index for index, (opcode, _) in enumerate(frames) if opcode == 8]
    assert closes, "no close frame reached the client"
    assert int.from_bytes(frames[closes[0]][1][:2], "big") == 4100
    backlog = sum(len(payload) for _, payload in frames[:closes[0]])
    assert backlog < limit / 4, f"{backlog} bytes came before the close frame"
    sock.close()


def test_slow_sockets_together_hold_at_most_the_listener_budget(make_server):
    total = 300_000
    server = make_server(write_buffer_limit=1_000_000, write_buffer_total=total)
    sockets = [open_websocket(server.port, receive_buffer=SMALL_BUFFER) for _ in range(5)]
    shrink_send_buffers(server)
    message = json.dumps({"text": "x" * 10_000})
    held = []
    for _ in range(200):
        server.publish(["news"], "big", message)
        held.append(server.call(lambda: server.server.held_bytes))
    assert max(held) <= total + len(message) * 2
    assert server.server.refused["slow sockets hold too much"] >= 1
    for sock in sockets:
        sock.close()

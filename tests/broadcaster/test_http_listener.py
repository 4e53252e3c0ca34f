"""The HTTP side of the one port: keep-alive, pipelining, size limit, malformed requests."""

import http.client
import socket
import time
from urllib.parse import urlencode

import pytest
from websockets.frames import Frame, Opcode

from shared.signatures import sign_request
from tests.servers import APP_ID, APP_KEY, APP_SECRET, HOST


def raw_exchange(port, data, timeout=5.0):
    """Send raw bytes, read until the server closes; everything it sent."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def test_keep_alive_serves_several_requests_on_one_connection(server):
    connection = http.client.HTTPConnection(HOST, server.port, timeout=5)
    for _ in range(3):
        connection.request("GET", "/up")
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "application/json"
        assert response.read() == b'{"health":"OK"}'
    connection.close()


def test_pipelined_requests_are_answered_in_order(server):
    request = b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reply = raw_exchange(server.port, request * 3 + last)
    assert reply.count(b"HTTP/1.1 200 OK") == 3
    assert reply.index(b"HTTP/1.1 404") > reply.rindex(b"HTTP/1.1 200")
    assert reply.endswith(b'"}')


def test_oversized_body_gets_413_before_the_body_is_sent(server):
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        sock.sendall(b"POST /apps/123456/events HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 5000000\r\n\r\n")
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413")
    assert b'{"error":"request body is larger than 1000000 bytes' in reply


def test_oversized_chunked_body_gets_413(server):
    chunk = b"%x\r\n%s\r\n" % (600_000, b"x" * 600_000)
    # Signed, so that the head passes and the body is read.
    query = urlencode(sign_request(APP_KEY, APP_SECRET, "POST", f"/apps/{APP_ID}/events",
                                   body=b"x" * 1_200_000))
    head = (f"POST /apps/{APP_ID}/events?{query} HTTP/1.1\r\nHost: x\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    reply = raw_exchange(server.port, head + chunk * 2 + b"0\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 413")


@pytest.mark.parametrize("data", [
    b"NONSENSE\r\n\r\n",
    b"GET /up HTTP/1.1\r\nBad Header Line\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello on the plain port
])
def test_malformed_http_gets_400_and_close(server, data):
    reply = raw_exchange(server.port, data)
    assert reply.startswith(b"HTTP/1.1 400")
    assert b'"error":"malformed HTTP request' in reply


def test_plain_get_on_the_websocket_path_is_refused_cleanly(server):
    connection = http.client.HTTPConnection(HOST, server.port, timeout=5)
    connection.request("GET", "/app/test-key")
    assert connection.getresponse().status == 404
    connection.close()


def test_upgrade_after_a_request_on_the_same_connection_is_refused(server):
    upgrade = (b"GET /app/test-key HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Sec-WebSocket-Version: 13\r\n\r\n")
    reply = raw_exchange(server.port, b"GET /up HTTP/1.1\r\nHost: x\r\n\r\n" + upgrade)
    assert reply.startswith(b"HTTP/1.1 200")
    assert b"101 Switching Protocols" not in reply
    assert b"HTTP/1.1 404" in reply


def test_bad_websocket_handshake_gets_an_http_error(server):
    bad = (b"GET /app/test-key HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
    reply = raw_exchange(server.port, bad)
    assert reply.startswith(b"HTTP/1.1 400")
    assert b"Content-Type: application/json" in reply
    assert b'{"error":"Failed to open a WebSocket connection: missing Sec-WebSocket-Key' in reply


def test_idle_connection_that_sends_nothing_does_not_block_others(server):
    with socket.create_connection((HOST, server.port), timeout=5):
        connection = http.client.HTTPConnection(HOST, server.port, timeout=5)
        connection.request("GET", "/up")
        assert connection.getresponse().status == 200
        connection.close()


def test_head_request_gets_headers_without_a_body(server):
    reply = raw_exchange(server.port, b"HEAD /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200")
    assert reply.endswith(b"\r\n\r\n") and b"Content-Length: 15" in reply


def test_requests_pipelined_after_connection_close_are_not_answered(server):
    close = b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    reply = raw_exchange(server.port, close + b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.count(b"HTTP/1.1") == 1


def test_http_10_upgrade_is_refused_and_the_server_keeps_serving(server):
    upgrade = (b"GET /app/test-key HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\n"
               b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               b"Sec-WebSocket-Version: 13\r\n\r\n")
    reply = raw_exchange(server.port, upgrade)
    assert b"101" not in reply
    assert raw_exchange(server.port, b"GET /up HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200")


HANDSHAKE = (b"GET /app/test-key?protocol=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             b"Sec-WebSocket-Version: 13\r\n\r\n")


def close_code_in(reply):
    """The code of the close frame at the end of ``reply`` (a server frame: unmasked)."""
    index = reply.rfind(b"\x88")
    assert index >= 0, reply
    return int.from_bytes(reply[index + 2:index + 4], "big")


@pytest.mark.parametrize("frame, code", [
    (b"\x81\x05hello", 1002),  # client frames must be masked
    (b"\x83\x80\x00\x00\x00\x00", 1002),  # reserved opcode
    (b"\x80\x80\x00\x00\x00\x00", 1002),  # continuation with nothing to continue
    (b"\x89\xfe\x00\x80" + b"\x00" * 132, 1002),  # control frame longer than 125 bytes
])
def test_broken_frames_close_that_socket_only(server, frame, code):
    reply = raw_exchange(server.port, HANDSHAKE + frame)
    assert b"101 Switching Protocols" in reply and b"connection_established" in reply
    assert close_code_in(reply) == code
    assert raw_exchange(server.port, b"GET /up HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200")


def test_endless_headers_get_431_and_close(server):
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        sock.sendall(b"GET /up HTTP/1.1\r\nHost: x\r\n")
        reply = b""
        for _ in range(100):  # bounded: 100 x 1 KB of headers at most
            try:
                sock.sendall(b"X-Filler: " + b"y" * 1000 + b"\r\n")
            except (BrokenPipeError, ConnectionResetError):
                break
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 431")
    assert b"larger than 32768 bytes" in reply


def test_frames_in_the_packet_that_ends_a_split_handshake_are_read(server):
    ping = Frame(Opcode.TEXT, b'{"event":"pusher:ping","data":{}}').serialize(
        mask=True, extensions=[])
    with socket.create_connection((HOST, server.port), timeout=5) as sock:
        sock.sendall(HANDSHAKE[:30])
        time.sleep(0.05)  # two TCP segments: the head ends in the second, a frame follows it
        sock.sendall(HANDSHAKE[30:] + ping)
        reply = b""
        while b"pusher:pong" not in reply:
            chunk = sock.recv(65536)
            assert chunk, reply
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 101") and b"connection_established" in reply


def test_upgrade_with_a_malformed_target_gets_400_and_the_server_keeps_serving(server):
    upgrade = (b"GET http:// HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    reply = raw_exchange(server.port, upgrade)
    assert reply.startswith(b"HTTP/1.1 400")
    assert b"malformed request target" in reply
    assert raw_exchange(server.port, b"GET /up HTTP/1.1\r\nConnection: close\r\n\r\n").startswith(
        b"HTTP/1.1 200")

"""Issue 24, item 3: the HTTP API refuses on the request head whatever the head can refuse.

The app's key is public, and the signature, the timestamp and ``body_md5`` travel in the query
string: a request that will be refused is answered before its body is read, so nobody can
make the server buffer megabytes without the app's secret.
"""

from __future__ import annotations

import json
import select
import socket
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from shared.signatures import sign_request
from tests.broadcaster.inprocess import InProcessServer
from tests.servers import APP_ID, APP_KEY, APP_SECRET, HOST, start_broadcaster

PATH = f"/apps/{APP_ID}/events"
BODY = json.dumps({"name": "shipped", "channel": "orders", "data": "{}"}).encode()


def signed(body: bytes = BODY, **changes: str) -> str:
    """The query string of a correctly signed ``POST events`` with ``body``, then ``changes``
    (made after signing, so they break the signature unless they are the signature)."""
    params = sign_request(APP_KEY, APP_SECRET, "POST", PATH, body=body)
    params.update(changes)
    return urlencode(params)


def stale() -> str:
    """Signed correctly, an hour ago."""
    return urlencode(sign_request(APP_KEY, APP_SECRET, "POST", PATH, body=BODY,
                                  timestamp=int(time.time()) - 3600))


def head(query: str, length: int) -> bytes:
    return (f"POST {PATH}?{query} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


@pytest.fixture(scope="module")
def listener():
    server = InProcessServer()
    yield server
    server.stop()


@pytest.mark.parametrize("query, reason", [
    (signed(auth_signature="0" * 64), b"auth_signature does not match"),
    (stale(), b"auth_timestamp is more than 600 s"),
    (signed(auth_version="2.0"), b"auth_version must be 1.0"),
    (urlencode({k: v for k, v in sign_request(APP_KEY, APP_SECRET, "POST", PATH).items()}),
     b"body_md5 is missing"),  # signed for no body, then sent with one
    (signed(body_md5="0" * 32), b"auth_signature does not match"),  # body_md5 is signed
], ids=["bad signature", "stale timestamp", "auth_version", "no body_md5", "body_md5 changed"])
def test_a_request_whose_head_fails_verification_is_refused_before_its_body(listener, query,
                                                                              reason):
    with socket.create_connection((HOST, listener.port), timeout=10) as sock:
        sock.sendall(head(query, 900_000))  # none of the body is sent
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 401"), reply
    assert reason in reply


def test_a_request_whose_head_verifies_but_whose_body_does_not_match_body_md5_gets_401(
        listener):
    other = json.dumps({"name": "shipped", "channel": "orders", "data": "{\"x\":1}"}).encode()
    with socket.create_connection((HOST, listener.port), timeout=10) as sock:
        sock.sendall(head(signed(), len(other)) + other)  # signed for BODY, sends another
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 401"), reply
    assert b"body_md5 does not match the request body" in reply


def test_a_verified_request_is_answered_after_its_body(listener):
    with socket.create_connection((HOST, listener.port), timeout=10) as sock:
        sock.sendall(head(signed(), len(BODY)) + BODY)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


# --- the attack of the issue, measured on a real process --------------------------------------

ATTACKERS = 100
BODY_SIZE = 1_000_000  # announced and sent by each attacker: 100 MB in all
CHUNK = 64 * 1024
# What the attack may add to the server's peak RSS: a tenth of the bodies. A server that refuses
# on the head never holds a body; what it still reads (up to CLOSE_TIMEOUT while it lingers) it
# drops read by read (at most 256 KiB each), so it needs per connection a few kB of state, not
# the megabyte the body is. One that buffered the bodies would need all 100 MB at once, since
# every body is sent a chunk at a time, round robin, so all are in flight together.
GROWTH_BOUND = ATTACKERS * BODY_SIZE // 10


def status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (the peak since the last reset) of ``pid``, in bytes."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


def test_big_bodies_with_a_bad_signature_are_refused_on_the_head_without_memory(tmp_path):
    server = start_broadcaster()
    sockets: list[socket.socket] = []
    try:
        pid = server.proc.pid
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS from here on
        before = status(pid)["VmRSS"]
        query = signed(auth_signature="0" * 64)
        for _ in range(ATTACKERS):
            sock = socket.create_connection((HOST, server.port), timeout=10)
            sock.sendall(head(query, BODY_SIZE))
            sockets.append(sock)
        # Each is answered from its head: wait for every reply, without sending any body.
        replies = {sock: b"" for sock in sockets}
        deadline = time.monotonic() + 30
        while any(b"\r\n\r\n" not in reply for reply in replies.values()):
            waiting = [sock for sock, reply in replies.items() if b"\r\n\r\n" not in reply]
            left = deadline - time.monotonic()
            assert left > 0, f"{len(waiting)} of {ATTACKERS} were not answered before the body"
            for sock in select.select(waiting, [], [], left)[0]:
                replies[sock] += sock.recv(65536) or b"\r\n\r\n(closed)"
        assert all(reply.startswith(b"HTTP/1.1 401") for reply in replies.values()), \
            {reply[:40] for reply in replies.values()}
        # Then every body, slowly: a chunk to each socket in turn, until the server stops
        # taking them (it half-closed after answering, and aborts after a moment).
        sent = dict.fromkeys(sockets, 0)
        for sock in sockets:
            sock.setblocking(False)
        while sent:
            for sock in list(sent):
                try:
                    sent[sock] += sock.send(b"x" * min(CHUNK, BODY_SIZE - sent[sock]))
                except BlockingIOError:
                    continue
                except OSError:
                    del sent[sock]  # reset: the server is done with it
                    continue
                if sent[sock] >= BODY_SIZE:
                    del sent[sock]
        after = status(pid)
        growth = after["VmHWM"] - before
        assert growth < GROWTH_BOUND, f"the peak RSS grew by {growth / 1e6:.0f} MB"
    finally:
        for sock in sockets:
            sock.close()
        server.stop()

"""Pipelined HTTP requests on one connection are answered in request order, even when an
earlier one waits for cluster state and a later one (a trigger) is answered at once."""

import email.parser
import json
import socket
from urllib.parse import urlencode

import pytest

from shared.signatures import sign_request
from tests.pusher_socket import PusherSocket, member
from tests.servers import HOST, Broadcaster, start_broadcaster


@pytest.fixture(scope="module", params=["local", "redis"])
def node(request, redis_url):
    env = {"REVERB_SCALING_ENABLED": "true", "REDIS_URL": redis_url} \
        if request.param == "redis" else {}
    server = start_broadcaster(env)
    yield server
    server.stop()


def raw_request(server: Broadcaster, method: str, path: str, params: dict | None = None,
                body: bytes = b"") -> bytes:
    query = urlencode(sign_request(server.key, server.secret, method, path, params, body))
    head = (f"{method} {path}?{query} HTTP/1.1\r\nHost: {HOST}\r\n"
            f"Content-Length: {len(body)}\r\n")
    if body:
        head += "Content-Type: application/json\r\n"
    return (head + "\r\n").encode() + body


def read_responses(connection: socket.socket, count: int) -> list[tuple[int, dict]]:
    """``count`` responses read off one connection, in the order they came."""
    reader = connection.makefile("rb")
    answers = []
    for _ in range(count):
        status = int(reader.readline().split()[1])
        headers = email.parser.BytesHeaderParser().parsebytes(
            b"".join(iter(reader.readline, b"\r\n")))
        answers.append((status, json.loads(reader.read(int(headers["Content-Length"])))))
    return answers


def test_a_query_then_a_trigger_in_one_write_are_answered_in_order(node):
    watcher = PusherSocket.to(node)
    try:
        watcher.joined("presence-pipe", member("ann"))
        trigger = json.dumps({"name": "e", "data": "{}", "channel": "presence-pipe"}).encode()
        requests = [
            raw_request(node, "GET", f"/apps/{node.app_id}/channels/presence-pipe",
                        {"info": "user_count"}),
            raw_request(node, "POST", f"/apps/{node.app_id}/events", body=trigger),
            raw_request(node, "GET", f"/apps/{node.app_id}/channels/presence-pipe/users"),
        ]
        with socket.create_connection((HOST, node.port), timeout=10) as connection:
            connection.sendall(b"".join(requests))
            answers = read_responses(connection, 3)
        assert answers == [
            (200, {"occupied": True, "user_count": 1}),
            (200, {}),
            (200, {"users": [{"id": "ann"}]}),
        ]
        assert watcher.next_event()["event"] == "e"
    finally:
        watcher.close()

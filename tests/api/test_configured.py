"""A broadcaster with non-default settings: ``REVERB_SERVER_PATH`` puts the API under a prefix
(the signature covers the full path); the data and request size limits are configurable."""

import http.client
import json
import socket
import urllib.request
from urllib.parse import urlencode

import pytest

from shared.signatures import sign_request
from tests.api.wire import post_json, signed_request
from tests.servers import HOST, start_broadcaster

PREFIX = "/realtime"
MAX_DATA = 64
MAX_REQUEST = 4096


@pytest.fixture(scope="module")
def prefixed():
    broadcaster = start_broadcaster({
        "REVERB_SERVER_PATH": PREFIX,
        "REVERB_APP_MAX_MESSAGE_SIZE": str(MAX_DATA),
        "RESOUND_MAX_REQUEST_SIZE": str(MAX_REQUEST),
    })
    yield broadcaster
    broadcaster.stop()


def test_api_answers_under_the_prefix_only(prefixed):
    path = f"/apps/{prefixed.app_id}/channels"
    assert signed_request(prefixed, "GET", PREFIX + path) == (200, {"channels": {}})
    status, body = signed_request(prefixed, "GET", path)
    assert status == 404
    assert "no route" in body["error"]


def test_signature_with_or_without_the_prefix_is_accepted(prefixed):
    """Issue 12: SDKs with a path option sign ``/apps/...`` and send ``/prefix/apps/...``."""
    path = f"/apps/{prefixed.app_id}/connections"
    assert signed_request(prefixed, "GET", PREFIX + path) == (200, {"connections": 0})
    query = sign_request(prefixed.key, prefixed.secret, "GET", path)
    assert signed_request(prefixed, "GET", PREFIX + path, change=query) == (
        200, {"connections": 0})
    other = sign_request(prefixed.key, prefixed.secret, "GET", f"/other{path}")
    status, body = signed_request(prefixed, "GET", PREFIX + path, change=other)
    assert status == 401
    assert "auth_signature" in body["error"]


@pytest.mark.parametrize("path", ["/up", f"{PREFIX}/up"])
def test_health_answers_with_and_without_the_prefix(prefixed, path):
    with urllib.request.urlopen(f"{prefixed.http_url}{path}", timeout=5) as response:
        assert json.loads(response.read()) == {"health": "OK"}


def test_data_limit_follows_reverb_app_max_message_size(prefixed):
    path = f"{PREFIX}/apps/{prefixed.app_id}/events"
    event = {"name": "e", "channel": "limited", "data": "x" * MAX_DATA}
    assert post_json(prefixed, path, event) == (200, {})
    status, body = post_json(prefixed, path, {**event, "data": "x" * (MAX_DATA + 1)})
    assert status == 413
    assert f"larger than {MAX_DATA} bytes" in body["error"]


def test_chunked_body_over_the_request_limit_is_413(prefixed):
    """Without a Content-Length the listener counts the body as it arrives (the head is signed:
    without a valid signature the request is refused on its head)."""
    chunk = b"3e8\r\n" + b"x" * 1000 + b"\r\n"
    path = f"/apps/{prefixed.app_id}/events"
    query = urlencode(sign_request(prefixed.key, prefixed.secret, "POST", path,
                                   body=b"x" * 5000))
    request = (
        f"POST {PREFIX}{path}?{query} HTTP/1.1\r\n"
        f"Host: {HOST}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode() + chunk * 5 + b"0\r\n\r\n"
    # One write, so the whole request is on its way before the server answers and closes.
    with socket.create_connection((HOST, prefixed.port), timeout=5) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 413
        assert f"larger than {MAX_REQUEST} bytes" in json.loads(response.read())["error"]

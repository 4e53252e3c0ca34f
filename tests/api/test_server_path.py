"""``REVERB_SERVER_PATH`` puts the whole API under a prefix; the signature covers the full path."""

import json
import urllib.request

import pytest

from shared.signatures import sign_request
from tests.api.wire import signed_request
from tests.servers import start_broadcaster

PREFIX = "/realtime"


@pytest.fixture(scope="module")
def prefixed():
    broadcaster = start_broadcaster({"REVERB_SERVER_PATH": PREFIX})
    yield broadcaster
    broadcaster.stop()


def test_api_answers_under_the_prefix_only(prefixed):
    path = f"/apps/{prefixed.app_id}/channels"
    assert signed_request(prefixed, "GET", PREFIX + path) == (200, {"channels": {}})
    status, body = signed_request(prefixed, "GET", path)
    assert status == 404
    assert "no route" in body["error"]


def test_signature_without_the_prefix_is_refused(prefixed):
    path = f"/apps/{prefixed.app_id}/connections"
    assert signed_request(prefixed, "GET", PREFIX + path) == (200, {"connections": 0})
    query = sign_request(prefixed.key, prefixed.secret, "GET", path)
    status, body = signed_request(prefixed, "GET", PREFIX + path, change=query)
    assert status == 401
    assert "auth_signature" in body["error"]


@pytest.mark.parametrize("path", ["/up", f"{PREFIX}/up"])
def test_health_answers_with_and_without_the_prefix(prefixed, path):
    with urllib.request.urlopen(f"{prefixed.http_url}{path}", timeout=5) as response:
        assert json.loads(response.read()) == {"health": "OK"}

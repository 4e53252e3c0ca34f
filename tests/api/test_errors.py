"""Every refusal of the HTTP API, sent as raw hand-signed requests: status and a reason that says
which check failed. Refused triggers deliver nothing, checked by a real subscriber."""

import http.client
import json
import time

import pytest

from shared.signatures import sign_request
from tests.api.wire import TIMEOUT, post_json, signed_request
from tests.sdk import assert_nothing_then
from tests.servers import HOST


def events_path(server):
    return f"/apps/{server.app_id}/events"


GOOD_EVENT = {"name": "e", "data": "{}", "channel": "err-ok"}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"auth_key": "not-the-key"}, "auth_key"),
        ({"auth_signature": "0" * 64}, "auth_signature"),
        ({"auth_timestamp": str(int(time.time()) - 601)}, "auth_timestamp"),
        ({"auth_timestamp": "yesterday"}, "auth_timestamp"),
        ({"body_md5": "0" * 32}, "auth_signature"),  # signed: refused on the head
        ({"auth_version": "2.0"}, "auth_version"),
    ],
)
def test_failed_authentication_is_401_naming_the_check(server, change, reason):
    status, body = post_json(server, events_path(server), GOOD_EVENT, change=change)
    assert status == 401
    assert reason in body["error"]


@pytest.mark.parametrize("skew", [-601, 601])
def test_a_correctly_signed_request_601_s_off_is_401(server, sockets, skew):
    """Signed with the skewed timestamp, so the timestamp is the only thing wrong."""
    watcher = sockets()
    watcher.joined("err-ok")
    path = events_path(server)
    body = json.dumps(GOOD_EVENT).encode()
    skewed = sign_request(server.key, server.secret, "POST", path, body=body,
                          timestamp=int(time.time()) + skew)
    status, answer = signed_request(server, "POST", path, body, change=skewed)
    assert status == 401
    assert "auth_timestamp" in answer["error"]
    assert_nothing_then(watcher, server, "err-ok")


def test_signature_covers_the_query(server):
    """A parameter added after signing breaks the signature."""
    status, body = signed_request(server, "GET", f"/apps/{server.app_id}/channels",
                                  change={"filter_by_prefix": "x"})
    assert (status, "auth_signature" in body["error"]) == (401, True)


def test_unknown_app_is_404(server):
    status, body = post_json(server, "/apps/999999/events", GOOD_EVENT)
    assert status == 404
    assert "999999" in body["error"]


def test_sdk_terminate_path_with_unknown_key_is_401(server):
    status, body = signed_request(server, "POST", "/users/u1/terminate_connections",
                                  body=b"{}", change={"auth_key": "nobody"})
    assert status == 401
    assert "auth_key" in body["error"]


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", "events"), ("PUT", "events"), ("POST", "channels"), ("DELETE", "connections"),
     ("GET", "users/u1/terminate_connections")],
)
def test_wrong_method_is_405(server, method, suffix):
    status, body = signed_request(server, method, f"/apps/{server.app_id}/{suffix}")
    assert status == 405
    assert method in body["error"]


def test_unknown_route_is_404(server):
    status, body = signed_request(server, "GET", f"/apps/{server.app_id}/nothing-here")
    assert status == 404
    assert "no route" in body["error"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"data": "{}", "channel": "a"}).encode(), "event name"),
        (json.dumps({"name": "e", "channel": "a"}).encode(), "'data' is required"),
        (json.dumps({"name": "e", "data": {"a": 1}, "channel": "a"}).encode(), "string"),
        (json.dumps({"name": "e", "data": "x"}).encode(), "channel"),
        (json.dumps({"name": "e", "data": "x", "channels": [f"c{i}" for i in range(101)]})
         .encode(), "at most 100"),
        (json.dumps({**GOOD_EVENT, "socket_id": "nope"}).encode(), "socket_id"),
        (json.dumps({**GOOD_EVENT, "socket_id": "1" * 21 + ".2"}).encode(), "socket_id"),
        (json.dumps({**GOOD_EVENT, "info": "everything"}).encode(), "unknown attribute"),
    ],
)
def test_bad_trigger_body_is_400(server, body, reason):
    status, answer = signed_request(server, "POST", events_path(server), body)
    assert status == 400
    assert reason in answer["error"]


def test_exactly_100_channels_are_accepted_and_each_gets_the_event(server, sockets):
    """The limit itself is allowed: only the 101st channel is refused (above)."""
    channels = [f"limit-{i}" for i in range(100)]
    first, last = sockets(), sockets()
    first.joined(channels[0])
    last.joined(channels[-1])
    status, answer = post_json(server, events_path(server),
                               {"name": "e", "data": "{}", "channels": channels})
    assert (status, answer) == (200, {})
    for socket, channel in ((first, channels[0]), (last, channels[-1])):
        assert socket.next_event() == {"event": "e", "channel": channel, "data": "{}"}


def test_oversized_data_is_413(server):
    event = {**GOOD_EVENT, "data": "x" * 10_001}
    status, body = post_json(server, events_path(server), event)
    assert status == 413
    assert "10000 bytes" in body["error"]


@pytest.mark.parametrize(
    ("path_suffix", "body"),
    [
        ("events", {"name": "e", "data": "x", "channels": ["err-watch", "bad channel!"]}),
        ("events", {"name": "pusher:fake", "data": "x", "channel": "err-watch"}),
        ("batch_events", {"batch": [
            {"name": "e", "data": "x", "channel": "err-watch"},
            {"name": "e", "data": "x", "channel": "c" * 201},
        ]}),
        ("batch_events", {"batch": [
            {"name": "e", "data": "x", "channel": "err-watch"},
            {"name": "e", "data": "x" * 10_001, "channel": "err-watch"},
        ]}),
        ("batch_events", {"batch": [{"name": "e", "data": "x", "channel": "err-watch"}] * 11}),
    ],
)
def test_refused_request_delivers_nothing(server, sockets, path_suffix, body):
    watcher = sockets()
    watcher.joined("err-watch")
    status, answer = post_json(server, f"/apps/{server.app_id}/{path_suffix}", body)
    assert status in (400, 413), answer
    assert answer["error"]
    assert_nothing_then(watcher, server, "err-watch")


def test_query_info_rules(server):
    base = f"/apps/{server.app_id}/channels"
    cases = [
        (base, {"info": "user_count"}, "filter_by_prefix=presence-"),
        (base, {"info": "user_count", "filter_by_prefix": "private-"}, "presence"),
        (f"{base}/public-room", {"info": "user_count"}, "presence channels only"),
        (f"{base}/private-room", {"info": "cache"}, "cache channels only"),
        (f"{base}/private-room/users", None, "presence channels only"),
        (f"{base}/bad!name", None, "bad channel"),
    ]
    for path, params, reason in cases:
        status, body = signed_request(server, "GET", path, params=params)
        assert (path, status) == (path, 400)
        assert reason in body["error"], (path, body)


def test_repeated_query_parameter_is_400(server):
    path = f"/apps/{server.app_id}/channels"
    conn = http.client.HTTPConnection(HOST, server.port, timeout=TIMEOUT)
    conn.request("GET", f"{path}?auth_key={server.key}&auth_key={server.key}")
    response = conn.getresponse()
    assert response.status == 400
    assert "more than once" in json.loads(response.read())["error"]
    conn.close()


def test_body_over_the_request_limit_is_413_before_it_is_sent(server):
    """The listener answers from the headers alone; the client never sends the body."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=TIMEOUT)
    conn.putrequest("POST", events_path(server))
    conn.putheader("Content-Length", str(50_000_000))
    conn.putheader("Content-Type", "application/json")
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"]
    conn.close()


def test_keep_alive_serves_many_requests_on_one_connection(server):
    conn = http.client.HTTPConnection(HOST, server.port, timeout=TIMEOUT)
    conn.connect()
    sock = conn.sock
    path = f"/apps/{server.app_id}/channels"
    for _ in range(3):
        assert signed_request(server, "GET", path, connection=conn)[0] == 200
        assert post_json(server, events_path(server), GOOD_EVENT, connection=conn) == (200, {})
        assert post_json(server, events_path(server), {"bad": 1}, connection=conn)[0] == 400
    assert conn.sock is sock
    conn.close()


def test_up_is_unsigned(server):
    conn = http.client.HTTPConnection(HOST, server.port, timeout=TIMEOUT)
    conn.request("GET", "/up")
    response = conn.getresponse()
    assert (response.status, json.loads(response.read())) == (200, {"health": "OK"})
    conn.close()

"""Issue 12, against real broadcaster processes: log lines, readiness, the API rate limit,
Reverb's message rate limit and request size under Reverb's names, REVERB_SERVER_PATH with the
official SDK, and settings that stop start-up with one line."""

from __future__ import annotations

import email.parser
import json
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pusher
import pytest
import requests

from shared.signatures import sign_request
from tests.api.redis_server import redis_server
from tests.api.wire import signed_request
from tests.operations.logs import wait_for_log
from tests.pusher_socket import PusherSocket, error
from tests.sdk import sdk_for
from tests.servers import APP_ID, APP_KEY, APP_SECRET, HOST, Broadcaster, start_broadcaster
from tests.waiting import eventually


@pytest.fixture
def log_file(tmp_path) -> Iterator[Path]:
    path = tmp_path / "broadcaster.log"
    with path.open("wb") as out:
        yield path, out


def logged(log_file, env: dict[str, str] | None = None,
           args: list[str] | None = None) -> Broadcaster:
    path, out = log_file
    return start_broadcaster(env, args, stderr=out)


def get(server: Broadcaster, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{server.http_url}{path}", timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as refused:
        return refused.code, json.load(refused)


# --- logs ------------------------------------------------------------------------------------

def test_refused_connections_are_logged_at_info_with_peer_and_reason(log_file):
    server = logged(log_file, {"REVERB_APP_MAX_CONNECTIONS": "1",
                               "REVERB_ALLOWED_ORIGINS": "app.example.com"})
    sockets = []
    try:
        unknown = PusherSocket(f"ws://{HOST}:{server.port}/app/nope?protocol=7",
                               additional_headers={"X-Forwarded-For": "203.0.113.9"})
        assert error(unknown.greeting)[0] == 4001
        line = wait_for_log(log_file, "INFO", "refused", "4001 no app has key 'nope'")
        assert f"from {HOST}:" in line and "(forwarded for 203.0.113.9)" in line
        evil = PusherSocket(server.ws_url, origin="http://evil.test")
        assert error(evil.greeting)[0] == 4009
        wait_for_log(log_file, "INFO", f"from {HOST}:", "4009 origin http://evil.test is not "
                     "allowed; add its host to REVERB_ALLOWED_ORIGINS")
        anonymous = PusherSocket(server.ws_url, origin=None)
        assert error(anonymous.greeting) == (4009, "this client sent no Origin header; with "
                                             "REVERB_ALLOWED_ORIGINS set, only browsers on those "
                                             "hosts may connect ('*' allows any client)")
        wait_for_log(log_file, "INFO", f"from {HOST}:", "4009 this client sent no Origin header")
        sockets = [PusherSocket.to(server, origin="https://app.example.com")]
        full = PusherSocket(server.ws_url, origin="https://app.example.com")
        assert error(full.greeting)[0] == 4004
        wait_for_log(log_file, "INFO", f"from {HOST}:", "4004 app 123456 is at its connection")
        sockets += [unknown, evil, anonymous, full]
    finally:
        for open_socket in sockets:
            open_socket.close()
        server.stop()


def test_closed_connections_are_logged_at_info_behind_the_flag(log_file):
    server = logged(log_file, args=["--log-connections"])
    try:
        client = PusherSocket.to(server)
        client.close()
        line = wait_for_log(log_file, "INFO", f"closed {client.socket_id} from {HOST}:")
        assert line.endswith("code 1000")
    finally:
        server.stop()


def test_debug_logs_frames_as_text_and_api_requests_with_their_method(log_file):
    server = logged(log_file, args=["--debug"])
    try:
        client = PusherSocket.to(server)
        client.joined("orders")
        sdk_for(server).trigger("orders", "shipped", {"id": 7})
        assert client.next_event()["event"] == "shipped"
        client.close()
        wait_for_log(log_file, f"< {client.socket_id} ", '"event": "pusher:subscribe"')
        wait_for_log(log_file, f"> {client.socket_id} ", '"event":"pusher_internal:')
        wait_for_log(log_file, "HTTP POST /apps/123456/events?", "-> 200 {}")
        wait_for_log(log_file, "DEBUG", f"closed {client.socket_id}")
        path, _ = log_file
        assert "b'" not in path.read_text() and 'b"' not in path.read_text()
    finally:
        server.stop()


# --- readiness -------------------------------------------------------------------------------

def test_ready_fails_while_draining_while_up_stays_alive():
    server = start_broadcaster({"RESOUND_DRAIN_SECONDS": "60"})
    try:
        assert get(server, "/ready") == (200, {"ready": True})
        client = PusherSocket.to(server)
        server.proc.send_signal(signal.SIGTERM)
        eventually(lambda: get(server, "/ready")[0] == 503, what="/ready answering 503")
        assert "shutting down" in get(server, "/ready")[1]["error"]
        assert get(server, "/up") == (200, {"health": "OK"})
        client.joined("orders")  # sockets are still served while the node drains
        client.close()
    finally:
        server.proc.kill()
        server.proc.wait()


def test_ready_fails_while_redis_is_unreachable_with_scaling():
    with redis_server() as url:
        server = start_broadcaster({"REVERB_SCALING_ENABLED": "true", "REDIS_URL": url})
        try:
            assert get(server, "/ready") == (200, {"ready": True})
        except BaseException:
            server.stop()
            raise
    try:
        eventually(lambda: get(server, "/ready")[0] == 503, what="/ready answering 503")
        assert get(server, "/ready")[1]["error"].startswith("not ready: ")
        assert get(server, "/up") == (200, {"health": "OK"})
    finally:
        server.stop()


# --- the HTTP API's rate limit -----------------------------------------------------------------

def pipelined(server: Broadcaster, count: int) -> list[tuple[int, dict[str, str], dict]]:
    """``count`` signed ``GET channels`` in one write; (status, headers, body) of each."""
    path = f"/apps/{server.app_id}/channels"
    one = (f"GET {path}?{urlencode(sign_request(server.key, server.secret, 'GET', path))} "
           f"HTTP/1.1\r\nHost: {HOST}\r\n\r\n").encode()
    answers = []
    with socket.create_connection((HOST, server.port), timeout=10) as connection:
        connection.sendall(one * count)
        reader = connection.makefile("rb")
        for _ in range(count):
            status = int(reader.readline().split()[1])
            headers = email.parser.BytesHeaderParser().parsebytes(
                b"".join(iter(reader.readline, b"\r\n")))
            body = json.loads(reader.read(int(headers["Content-Length"])))
            answers.append((status, dict(headers), body))
    return answers


def test_api_calls_past_the_apps_limit_get_429_with_retry_after():
    server = start_broadcaster({"RESOUND_APP_API_RATE_LIMIT": "1"})
    try:
        (first, _, _), (second, headers, body) = pipelined(server, 2)
        assert (first, second) == (200, 429)
        assert headers["Retry-After"] == "1"
        assert "may make 1 HTTP API calls per second" in body["error"]
    finally:
        server.stop()


def test_the_api_has_no_rate_limit_by_default():
    server = start_broadcaster()
    try:
        assert [status for status, _, _ in pipelined(server, 20)] == [200] * 20
    finally:
        server.stop()


# --- Reverb's names ----------------------------------------------------------------------------

def test_reverb_message_rate_limit_with_terminate_closes_the_socket_with_4301():
    server = start_broadcaster({
        "REVERB_APP_RATE_LIMITING_ENABLED": "true", "REVERB_APP_RATE_LIMIT_MAX_ATTEMPTS": "3",
        "REVERB_APP_RATE_LIMIT_DECAY_SECONDS": "60", "REVERB_APP_RATE_LIMIT_TERMINATE": "true",
    })
    try:
        client = PusherSocket.to(server)
        for _ in range(4):
            client.send({"event": "pusher:ping", "data": {}})
        assert [client.recv()["event"] for _ in range(3)] == ["pusher:pong"] * 3
        code, message = error(client.recv())
        assert code == 4301 and "at most 3 messages per 60 s" in message
        assert client.closed_code() == 4301
    finally:
        server.stop()


def test_reverb_max_request_size_is_the_http_body_limit():
    server = start_broadcaster({"REVERB_MAX_REQUEST_SIZE": "1000"})
    try:
        body = json.dumps({"name": "e", "channel": "orders", "data": "x" * 2000}).encode()
        status, answer = signed_request(server, "POST", f"/apps/{server.app_id}/events", body)
        assert status == 413 and "larger than 1000 bytes" in answer["error"]
    finally:
        server.stop()


class PrefixingSession(requests.Session):
    """What pusher-http-php's ``path`` option does, for the Python SDK: every request goes under
    ``prefix``, while the SDK signs ``/apps/...`` as always."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        parts = urlsplit(url)
        return super().request(method, parts._replace(path=self.prefix + parts.path).geturl(),
                               *args, **kwargs)


def test_the_official_sdk_works_against_reverb_server_path():
    server = start_broadcaster({"REVERB_SERVER_PATH": "/ws"})
    try:
        client = PusherSocket(f"ws://{HOST}:{server.port}/ws/app/{APP_KEY}?protocol=7")
        client.joined("orders")
        sdk = pusher.Pusher(app_id=APP_ID, key=APP_KEY, secret=APP_SECRET, host=HOST,
                            port=server.port, ssl=False)
        sdk._pusher_client.http.session = PrefixingSession("/ws")
        sdk.trigger("orders", "shipped", {"id": 7})
        assert client.next_event()["event"] == "shipped"
        assert sdk.channels_info() == {"channels": {"orders": {}}}
        # A signature over the whole path (prefix included) is accepted too.
        assert signed_request(server, "GET", f"/ws/apps/{APP_ID}/channels")[0] == 200
        client.close()
    finally:
        server.stop()


# --- settings that stop start-up -----------------------------------------------------------------

@pytest.mark.parametrize("env, message", [
    ({"REVERB_SERVER_PORT": "99999"}, "REVERB_SERVER_PORT must be at most 65535, got '99999'"),
    ({"REVERB_APP_ACTIVITY_TIMEOUT": "inf"}, "REVERB_APP_ACTIVITY_TIMEOUT must be a number"),
    ({"REVERB_APP_PING_INTERVAL": "nan"}, "REVERB_APP_PING_INTERVAL must be a finite number"),
    ({"RESOUND_TLS_CERT": "{broken}", "RESOUND_TLS_KEY": "{broken}"},
     "are not a usable PEM certificate and matching key"),
])
def test_a_refused_setting_stops_start_up_with_one_line(tmp_path, env, message):
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    env = {name: value.format(broken=broken) for name, value in env.items()}
    done = subprocess.run([sys.executable, "-m", "broadcaster", "start", "--host", HOST],
                          env={"REVERB_APP_ID": "1", "REVERB_APP_KEY": "k",
                               "REVERB_APP_SECRET": "s", **env},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr, done.stderr
    assert done.stderr.startswith("broadcaster: bad configuration: ")

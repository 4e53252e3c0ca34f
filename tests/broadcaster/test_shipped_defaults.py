"""Issue 24, "Guards without a test": the protective defaults as shipped.

Every other hardening test sets its limits explicitly, so loosening a default (a deadline, a
cap, a buffer limit) left the suite green. Here the defaults are read the way users get them,
from a configuration built from an empty environment and from the dataclasses' own defaults,
and compared with the values README.md's settings table documents; the cheap ones are also
observed on a real process started with no settings at all.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from broadcaster.config import AppConfig, ServerConfig, load_config
from tests.pusher_socket import PusherSocket
from tests.servers import HOST, ROOT, free_port, terminate, wait_for_http

# README setting -> the ServerConfig (or AppConfig, "app.") field it sets.
PROTECTIVE = {
    "RESOUND_HTTP_HEAD_TIMEOUT": "http_head_timeout",
    "RESOUND_HTTP_BODY_TIMEOUT": "http_body_timeout",
    "RESOUND_HTTP_IDLE_TIMEOUT": "http_idle_timeout",
    "RESOUND_TLS_HANDSHAKE_TIMEOUT": "tls_handshake_timeout",
    "RESOUND_MAX_HTTP_CONNECTIONS": "max_http_connections",
    "RESOUND_MAX_SUBSCRIPTIONS": "max_subscriptions",
    "RESOUND_WRITE_BUFFER_LIMIT": "write_buffer_limit",
    "RESOUND_WRITE_BUFFER_TOTAL": "write_buffer_total",
    "RESOUND_MAX_REQUEST_SIZE": "max_request_size",
    "REVERB_APP_MAX_MESSAGE_SIZE": "app.max_message_size",
    "REVERB_APP_MAX_PRESENCE_MEMBERS": "app.max_presence_members",
}


def documented() -> dict[str, float]:
    """Each protective setting's default as README.md's settings table gives it."""
    values = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        found = re.match(r"\| `(\w+)` \| (\d+)(?: s| bytes)? \|", line)
        if found and found[1] in PROTECTIVE:
            values[found[1]] = float(found[2])
    missing = sorted(set(PROTECTIVE) - set(values))
    assert not missing, f"README.md's settings table does not give a default for {missing}"
    return values


def value(config: ServerConfig, app: AppConfig, field: str) -> float:
    return getattr(app, field[4:]) if field.startswith("app.") else getattr(config, field)


def test_the_defaults_of_a_configuration_from_an_empty_environment_are_the_documented_ones():
    config = load_config(env={})
    shipped = {name: value(config, config.apps[0], field) for name, field in PROTECTIVE.items()}
    assert shipped == documented()


def test_the_dataclass_defaults_are_the_documented_ones():
    """What a server built in code (the tests' in-process listener) gets."""
    config = ServerConfig()
    app = AppConfig(id="1", key="k", secret="s")
    shipped = {name: value(config, app, field) for name, field in PROTECTIVE.items()}
    assert shipped == documented()


# --- observed on a real process started with no settings ---------------------------------------

@dataclass
class Bare:
    port: int
    key: str  # the random development app's

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/app/{self.key}?protocol=7"


@pytest.fixture(scope="module")
def bare(tmp_path_factory) -> Iterator[Bare]:
    """``broadcaster start`` with no REVERB_*/RESOUND_* variable: a random development app."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("REVERB_", "RESOUND_", "REDIS_"))}
    log = tmp_path_factory.mktemp("bare") / "broadcaster.log"
    port = free_port()
    with open(log, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "broadcaster", "start", "--host", HOST,
                                 "--port", str(port)], env=env, stderr=stderr)
    try:
        wait_for_http(f"http://{HOST}:{port}/up", proc=proc)
        key = re.search(r"REVERB_APP_KEY=(\S+)", Path(log).read_text())
        assert key, Path(log).read_text()
        yield Bare(port, key[1])
    finally:
        terminate(proc)


def head_answer(port: int, length: int) -> bytes:
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.sendall(f"POST /apps/1/events HTTP/1.1\r\nHost: x\r\nContent-Length: {length}"
                     "\r\n\r\n".encode())
        return sock.recv(65536)


def test_a_body_one_byte_over_the_documented_size_is_413_and_one_at_it_is_not(bare):
    limit = int(documented()["RESOUND_MAX_REQUEST_SIZE"])
    assert head_answer(bare.port, limit + 1).startswith(b"HTTP/1.1 413")
    assert not head_answer(bare.port, limit).startswith(b"HTTP/1.1 413")


def test_a_socket_may_be_on_the_documented_number_of_channels_and_no_more(bare):
    limit = int(documented()["RESOUND_MAX_SUBSCRIPTIONS"])
    client = PusherSocket(bare.ws_url)
    try:
        for number in range(limit + 1):
            client.send({"event": "pusher:subscribe", "data": {"channel": f"c{number}"}})
        answers = [client.recv() for _ in range(limit + 1)]
        assert [a["event"] for a in answers[:limit]] == \
            ["pusher_internal:subscription_succeeded"] * limit
        assert answers[limit]["event"] == "pusher:error"
        assert answers[limit]["data"]["code"] == 4302
    finally:
        client.close()


def test_past_the_documented_number_of_unfinished_connections_the_oldest_is_closed(bare):
    limit = int(documented()["RESOUND_MAX_HTTP_CONNECTIONS"])
    opened: list[socket.socket] = []
    try:
        for _ in range(limit + 1):
            sock = socket.create_connection((HOST, bare.port), timeout=10)
            sock.sendall(b"GET /up HTTP/1.1\r\n")  # a head that never ends
            opened.append(sock)
        assert opened[0].recv(1) == b""  # closed, unanswered, once the one past the cap came
    finally:
        for sock in opened:
            sock.close()

"""Issue 12: the nginx recipe of docs/broadcaster.md, run as written (ports aside) in front of a
broadcaster: a WebSocket and a signed API call go through it, and the client address reaches
the log."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clients.conftest import missing
from tests.operations.logs import wait_for_log
from tests.pusher_socket import PusherSocket, error
from tests.sdk import sdk_for
from tests.servers import HOST, Broadcaster, free_port, start_broadcaster, wait_for_http

RECIPE = Path(__file__).resolve().parents[2] / "docs" / "broadcaster.md"


def recipe(upstream: int, port: int) -> str:
    """The recipe's ``nginx`` block, listening on ``port`` and proxying to ``upstream``."""
    [block] = re.findall(r"```nginx\n(.*?)```", RECIPE.read_text(), re.S)
    assert "listen 80;" in block and "127.0.0.1:8080" in block, "the recipe changed shape"
    return (block.replace("listen 80;", f"listen {HOST}:{port};")
            .replace("127.0.0.1:8080", f"{HOST}:{upstream}"))


@pytest.fixture
def nginx_binary() -> str:
    path = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if path is None:
        missing("nginx is not installed (scripts/setup.sh test installs Debian's)")
    return path


@pytest.fixture
def proxied(nginx_binary, tmp_path) -> Iterator[tuple[Broadcaster, int, tuple]]:
    """A logged broadcaster and nginx in front of it: (broadcaster, nginx port, log file)."""
    log_path = tmp_path / "broadcaster.log"
    port = free_port()
    with log_path.open("wb") as out:
        server = start_broadcaster(stderr=out)
        conf = tmp_path / "nginx.conf"
        conf.write_text(f"""
            worker_processes 1;
            pid {tmp_path}/nginx.pid;
            error_log {tmp_path}/error.log;
            events {{ worker_connections 64; }}
            http {{
                access_log {tmp_path}/access.log;
                client_body_temp_path {tmp_path}/body;
                proxy_temp_path {tmp_path}/proxy;
                fastcgi_temp_path {tmp_path}/fastcgi;
                uwsgi_temp_path {tmp_path}/uwsgi;
                scgi_temp_path {tmp_path}/scgi;
                {recipe(server.port, port)}
            }}
        """)
        nginx = subprocess.Popen([nginx_binary, "-p", str(tmp_path), "-c", str(conf),
                                  "-e", str(tmp_path / "error.log"), "-g", "daemon off;"])
        try:
            wait_for_http(f"http://{HOST}:{port}/up", proc=nginx)
            yield server, port, (log_path, out)
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
            server.stop()


def test_a_websocket_and_an_api_call_go_through_nginx(proxied):
    server, port, _ = proxied
    client = PusherSocket(f"ws://{HOST}:{port}/app/{server.key}?protocol=7")
    try:
        assert client.socket_id, client.greeting
        client.joined("orders")
        through_nginx = Broadcaster(port=port, env={})  # the SDK's address: nginx
        assert sdk_for(through_nginx).trigger("orders", "shipped", {"id": 7}) == {}
        assert client.next_event()["event"] == "shipped"
    finally:
        client.close()


def test_the_client_address_nginx_passes_on_reaches_the_log(proxied):
    server, port, log_file = proxied
    refused = PusherSocket(f"ws://{HOST}:{port}/app/nope?protocol=7")
    try:
        assert error(refused.greeting)[0] == 4001
    finally:
        refused.close()
    line = wait_for_log(log_file, "refused", "4001 no app has key 'nope'")
    assert f"(forwarded for {HOST})" in line

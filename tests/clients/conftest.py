"""Fixtures for the real-client suites: node, the client driver, a broadcaster, the HTTP API."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pusher
import pytest

from tests.clients.auth_endpoint import AuthEndpoint
from tests.clients.driver import ROOT, NodeDriver
from tests.clients.webapp_api import WebappApi
from tests.servers import HOST, Broadcaster, free_port, start_broadcaster, wait_for_http

NODE_PACKAGES = ("pusher-js", "laravel-echo", "playwright-core")


def missing(reason: str) -> None:
    """Under CI a missing tool is a broken install, so fail; on a dev machine, skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (run scripts/setup.sh test)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        missing("node is not on PATH")
    absent = [p for p in NODE_PACKAGES if not (ROOT / "node_modules" / p).is_dir()]
    if absent:
        missing(f"node_modules lacks {', '.join(absent)}; run npm ci")
    return path


@pytest.fixture
def driver(node: str) -> Iterator[NodeDriver]:
    running = NodeDriver(node)
    yield running
    running.close()


@pytest.fixture
def broadcaster() -> Iterator[Broadcaster]:
    server = start_broadcaster()
    yield server
    server.stop()


@pytest.fixture
def auth_endpoint(broadcaster: Broadcaster) -> Iterator[AuthEndpoint]:
    endpoint = AuthEndpoint(broadcaster.key, broadcaster.secret)
    yield endpoint
    endpoint.stop()


@pytest.fixture
def pusher_api(broadcaster: Broadcaster) -> pusher.Pusher:
    """The official Pusher server SDK, pointed at the broadcaster's HTTP API."""
    return pusher.Pusher(
        app_id=broadcaster.app_id, key=broadcaster.key, secret=broadcaster.secret,
        host=HOST, port=broadcaster.port, ssl=False,
    )



@pytest.fixture
def api(broadcaster: Broadcaster, tmp_path) -> Iterator[WebappApi]:
    """PROVISIONAL until tests/servers.start_webapp lands: web + worker on a seeded SQLite."""
    port = free_port()
    env = dict(os.environ, REVERB_APP_ID=broadcaster.app_id, REVERB_APP_KEY=broadcaster.key,
               REVERB_APP_SECRET=broadcaster.secret, REVERB_HOST=HOST,
               REVERB_PORT=str(broadcaster.port), REVERB_SCHEME="http",
               SECRET_KEY="test", DATABASE_URL=f"sqlite:///{tmp_path}/web.sqlite3")
    flask = [sys.executable, "-m", "flask", "--app", "webapp"]
    subprocess.run([*flask, "seed"], env=env, check=True, capture_output=True)
    web = subprocess.Popen([*flask, "run", "--host", HOST, "--port", str(port)], env=env)
    worker = subprocess.Popen([*flask, "worker"], env=env)
    wait_for_http(f"http://{HOST}:{port}/login", proc=web)
    yield WebappApi(f"http://{HOST}:{port}")
    for proc in (web, worker):
        proc.terminate()
        proc.wait()

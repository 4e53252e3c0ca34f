"""Fixtures for the real-client suites: node, the client driver, a broadcaster, the HTTP API."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pusher
import pytest

from tests.clients.auth_endpoint import AuthEndpoint
from tests.clients.driver import ROOT, NodeDriver
from tests.clients.webapp_api import WebappApi
from tests.sdk import sdk_for
from tests.servers import (
    Broadcaster,
    Webapp,
    start_webapp,
    start_worker,
)

NODE_PACKAGES = ("pusher-js", "laravel-echo", "playwright-core")
# scripts/test.sh (and so .ci/run) sets it: there the client suites must run, never skip.
REQUIRE_CLIENTS = "RESOUND_REQUIRE_CLIENTS"


def missing(reason: str) -> NoReturn:
    """Where the clients are required, a missing tool is a broken install, so fail; on a dev
    machine running pytest directly, skip."""
    if os.environ.get("CI") == "true" or os.environ.get(REQUIRE_CLIENTS) == "1":
        pytest.fail(f"{reason} (run scripts/setup.sh test; {REQUIRE_CLIENTS}=1 or CI=true "
                    "makes the client suites required)")
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


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium (scripts/setup.sh test installs it); never a downloaded browser."""
    path = shutil.which("chromium")
    if path is None:
        missing("chromium is not installed")
    return path


@pytest.fixture
def driver(node: str) -> Iterator[NodeDriver]:
    running = NodeDriver(node)
    yield running
    running.close()


@pytest.fixture
def auth_endpoint(broadcaster: Broadcaster) -> Iterator[AuthEndpoint]:
    endpoint = AuthEndpoint(broadcaster.key, broadcaster.secret)
    yield endpoint
    endpoint.stop()


@pytest.fixture
def pusher_api(broadcaster: Broadcaster) -> pusher.Pusher:
    """The official Pusher server SDK, pointed at the broadcaster's HTTP API."""
    return sdk_for(broadcaster)


@pytest.fixture
def webapp(broadcaster: Broadcaster, tmp_path: Path) -> Iterator[Webapp]:
    """The Flask app (seeded SQLite) and its outbox worker, publishing to ``broadcaster``."""
    web = start_webapp(broadcaster.port, tmp_path / "webapp.sqlite3")
    worker = start_worker(web)
    yield web
    worker.stop()
    web.stop()


@pytest.fixture
def api(webapp: Webapp) -> WebappApi:
    return WebappApi(webapp.url)

"""The Procfile's ``web`` command: gunicorn with several gthread workers serves the app, and a
worker that commits an order change delivers it at once from its own thread, so events arrive
with no outbox worker running, each once and in each order's order."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest

from tests.sdk import assert_nothing_then
from tests.servers import Broadcaster, Webapp, start_webapp
from tests.webapp.conftest import ADMIN, Databases
from tests.webapp.test_integration import (
    ADMIN_CHANNEL,
    http_authorizer,
    subscribed,
    token_of,
    walk_concurrently,
)

PATHS = {  # seeded orders and the rest of their lives
    6: ["paid", "processing", "shipped"],
    5: ["processing", "shipped", "delivered"],
    4: ["shipped", "delivered"],
}


@pytest.fixture
def server(broadcaster: Broadcaster) -> Broadcaster:
    return broadcaster


@pytest.fixture
def gunicorn(broadcaster: Broadcaster, database: Databases) -> Iterator[Webapp]:
    web = start_webapp(broadcaster.port, database.seeded(), procfile=True)
    yield web
    web.stop()


def test_gunicorn_serves_and_delivers_right_after_each_commit(broadcaster, gunicorn, sockets):
    with urllib.request.urlopen(f"{gunicorn.url}/login") as page:
        assert page.headers["Server"].startswith("gunicorn"), page.headers["Server"]
    admin = token_of(gunicorn, ADMIN)
    admin_ws = subscribed(sockets(), ADMIN_CHANNEL, http_authorizer(gunicorn, admin))

    walk_concurrently(gunicorn, admin, PATHS)
    expected = sum(len(path) for path in PATHS.values())
    received = [admin_ws.next_event(10.0) for _ in range(expected)]
    assert None not in received, "some events never arrived: no worker runs, only gunicorn"
    seen: dict[int, list[str]] = {order_id: [] for order_id in PATHS}
    for event in received:
        data = json.loads(event["data"])
        seen[data["order_id"]].append(data["current_status"])
    assert seen == PATHS
    assert_nothing_then(admin_ws, broadcaster, ADMIN_CHANNEL)  # each arrived once

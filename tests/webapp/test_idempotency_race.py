"""Two (or more) requests racing with one ``Idempotency-Key`` still make one order: against a
real webapp process (``flask run``, a thread per request) on SQLite, over real sockets."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.clients.webapp_api import ADMIN, ALICE, WebappApi
from tests.servers import Webapp, free_port, start_webapp

RACERS = 8


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Webapp]:
    running = start_webapp(free_port(), tmp_path / "race.sqlite3",
                           {"OUTBOX_DELIVER_ON_COMMIT": "0"})
    yield running
    running.stop()


def post_order(url: str, token: str, key: str, body: dict,
               start: threading.Barrier) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}/api/orders", method="POST", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}",
                 "Idempotency-Key": key})
    start.wait()
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.load(response)


def test_concurrent_duplicates_make_one_order(web: Webapp):
    api = WebappApi(web.url)
    alice, _ = api.login(ALICE)
    admin, _ = api.login(ADMIN)
    before = api.request("GET", "/api/orders", admin)["page"]["total"]
    body = {"items": [{"product_id": 1, "quantity": 1}, {"product_id": 3, "quantity": 2}]}
    start = threading.Barrier(RACERS)

    with ThreadPoolExecutor(RACERS) as pool:
        answers = list(pool.map(lambda _: post_order(web.url, alice, "double-click", body, start),
                                range(RACERS)))

    assert {status for status, _ in answers} == {201}
    assert all(answer == answers[0][1] for _, answer in answers)
    assert api.request("GET", "/api/orders", admin)["page"]["total"] == before + 1

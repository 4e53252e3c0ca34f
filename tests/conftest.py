"""Fixtures the suites share: a real broadcaster process (per module or per test), and sockets.

scripts/test.sh runs the tests on pytest-xdist workers, each module whole on one worker
(``--dist loadfile``), ``slow`` modules first. So that a test or fixture stays safe there:
ports come from ``tests.servers.free_port`` (each worker has its own block), never a fixed one;
files go under ``tmp_path``, never a fixed path in the checkout; a ``scope="session"`` fixture is
one per worker; tests that must run one after another (a shared file, a global setting) share a
module; waits are for an event (``tests.waiting.eventually``), never a fixed time; and a test of
10 s or more is marked ``slow``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.pusher_socket import PusherSocket
from tests.servers import Broadcaster, start_broadcaster


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The ``slow`` tests first, otherwise in order: xdist's workers (scripts/test.sh) start the
    long scenarios early and end together, instead of one worker finishing them alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="module")
def server() -> Iterator[Broadcaster]:
    """One broadcaster for a whole test module (tests that do not stop or restart it)."""
    broadcaster = start_broadcaster()
    yield broadcaster
    broadcaster.stop()


@pytest.fixture
def broadcaster() -> Iterator[Broadcaster]:
    """A broadcaster of the test's own, which the test may stop and start again."""
    running = start_broadcaster()
    yield running
    running.stop()


@pytest.fixture
def sockets(server: Broadcaster) -> Iterator[Callable[..., PusherSocket]]:
    """Open established sockets on the module's server on demand (keywords go to ``connect``);
    all are closed after the test."""
    opened: list[PusherSocket] = []

    def open_socket(**options: Any) -> PusherSocket:
        opened.append(PusherSocket.to(server, **options))
        return opened[-1]

    yield open_socket
    for socket in opened:
        socket.close()
